-- The remaining clocks of SPEC §7: when the emergency meeting was held
-- (grades 1–2, 15 min), the health authority first told (grade 1, at once:
-- 1 h), the emergency plan started (grade 1, 1 h), the risk isolated
-- (grade 2, 2 h) and a data leak's cause analysed (48 h). Each is the time
-- of the first update of its kind; NULL until then. Times only, no text.
ALTER TABLE incidents ADD COLUMN authority_notified_at BIGINT;
ALTER TABLE incidents ADD COLUMN meeting_held_at BIGINT;
ALTER TABLE incidents ADD COLUMN plan_started_at BIGINT;
ALTER TABLE incidents ADD COLUMN risk_isolated_at BIGINT;
ALTER TABLE incidents ADD COLUMN cause_analysed_at BIGINT;

-- An incident opened by a freeze had its risk isolated by the freeze.
UPDATE incidents SET risk_isolated_at = reported_at WHERE source = 'freeze';
