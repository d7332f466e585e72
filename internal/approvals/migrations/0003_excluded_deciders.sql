-- Some requests name people who, beyond the requester, may not decide
-- them: the person who placed a legal hold does not approve its lifting.
-- excluded_users lists their user ids (comma-separated), excluded_rule the
-- policy rule that refuses them (e.g. deny.own_hold), so that the inbox
-- offers them no decision and a decision is refused before it runs.
ALTER TABLE approvals ADD COLUMN excluded_users TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN excluded_rule TEXT NOT NULL DEFAULT '';
