-- Retention and destruction (SPEC §4, issue 11). A record made from now on
-- has its own data key (content_key, owner "record:<id>") for its content
-- and attachments, so that destroying it crypto-shreds that key alone; a
-- record made before (content_key NULL) stays sealed under its patient's
-- key, and its destruction erases its sealed content instead (see
-- docs/retention.md). A destroyed record keeps its metadata (type,
-- department, dates) and names its destruction certificate.
ALTER TABLE records ADD COLUMN content_key TEXT;
ALTER TABLE records ADD COLUMN destroyed_at BIGINT;
ALTER TABLE records ADD COLUMN destruction_id TEXT;

-- Retention periods per record type, in years (none set: the default of
-- the type's class). Lengthening is direct; shortening is four-eyes.
CREATE TABLE retention_periods (
    record_type TEXT PRIMARY KEY,
    years INTEGER NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL
);

-- Destructions and their signed certificates (销毁证明), also kept in the
-- ledger outside the database (DATA/destructions.log).
CREATE TABLE destructions (
    id TEXT PRIMARY KEY,
    destroyed_at BIGINT NOT NULL,
    record_count INTEGER NOT NULL,
    certificate TEXT NOT NULL
);
