-- Every freeze of an account by detection, and its release by a security
-- officer with a reason (sealed: staff may write anything in it). Kept for
-- good: no delete path.
CREATE TABLE account_freezes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    frozen_at BIGINT NOT NULL,
    rule TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    released_at BIGINT,
    released_by TEXT,
--- sqlite
    release_reason BLOB
--- postgres
    release_reason BYTEA
--- common
);
CREATE INDEX account_freezes_user ON account_freezes (user_id, frozen_at);
