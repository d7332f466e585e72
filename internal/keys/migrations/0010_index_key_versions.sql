-- The versions of the blind-index key and their state (docs/keys.md, "The
-- blind-index key"): exactly one is active (every value written is indexed
-- under it); a rotation makes a new version active and the previous one
-- retiring until a re-index has moved every row to the new version, after
-- which it is retired and its secret deleted from the key file. The key
-- material never lives here: it is in the key file. Each indexed row names
-- its version itself (patients.index_version).
CREATE TABLE index_key_versions (
    version INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
