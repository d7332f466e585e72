-- Data keys (DEKs), one or more versions per owner ("patient:<id>",
-- "system:<name>"), each wrapped by a KEK from the key file. The wrapped
-- form names its algorithm and KEK version. Destroying a key (crypto-
-- shredding) clears wrapped and sets destroyed_at.
CREATE TABLE data_keys (
    owner TEXT NOT NULL,
    version INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    kek_version INTEGER NOT NULL,
--- sqlite
    wrapped BLOB,
--- postgres
    wrapped BYTEA,
--- common
    created_at BIGINT NOT NULL,
    destroyed_at BIGINT,
    PRIMARY KEY (owner, version)
);
CREATE INDEX data_keys_kek ON data_keys (kek_version);
