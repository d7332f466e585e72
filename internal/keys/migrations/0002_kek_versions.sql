-- The versions of the key-encryption key (KEK) and their state: exactly one
-- is active (new data keys are wrapped under it); a rotation makes a new
-- version active and the previous one retiring until every live data key
-- it wraps has been rewrapped, after which it is retired. The key material
-- itself never lives here: it is in the key file, the environment or the
-- HSM (source).
CREATE TABLE kek_versions (
    version INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    approval_id TEXT
);
