-- Separation of duties (三权分立): who shaped whose account, forced password
-- changes after a reset, and API keys that wait for a second person and can
-- be frozen by detection.

-- Every change one person made to another's account: creation, roles
-- granted or revoked, resets of password, second factor or certificate. An
-- account someone shaped is never a second person to them (approvals).
CREATE TABLE account_changes (
    user_id TEXT NOT NULL REFERENCES users (id),
    by_user_id TEXT NOT NULL,
    change TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX account_changes_user ON account_changes (user_id, by_user_id);
INSERT INTO account_changes (user_id, by_user_id, change, at)
    SELECT id, created_by, 'created', created_at FROM users WHERE created_by <> 'system';
INSERT INTO account_changes (user_id, by_user_id, change, at)
    SELECT user_id, granted_by, 'role_granted', granted_at FROM user_roles WHERE granted_by <> 'system' AND granted_by <> user_id;

-- Who set the current password: the user (a change), or someone else
-- (creation, a reset). A reset makes the user choose a new one.
ALTER TABLE users ADD COLUMN password_set_by TEXT;
UPDATE users SET password_set_by = created_by;
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;

-- API keys that can read patient data wait for a second person (pending →
-- active); detection freezes a key as it freezes an account.
ALTER TABLE api_keys ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE api_keys ADD COLUMN approval_id TEXT;
ALTER TABLE api_keys ADD COLUMN frozen_at BIGINT;
ALTER TABLE api_keys ADD COLUMN frozen_reason TEXT;
