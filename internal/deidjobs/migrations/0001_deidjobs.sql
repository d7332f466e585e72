-- De-identification jobs (脱敏任务, SPEC §8, issue 12). A job's spec names
-- ids, codes, dates and rules only (no patient data); its output is sealed
-- with the job's own data key ("deidjob:<id>"), shredded when the output
-- expires or its downloads are used up; its manifest is signed and holds
-- counts, rules and checksums only.
CREATE TABLE deid_jobs (
    id TEXT PRIMARY KEY,
    approval_id TEXT NOT NULL,
    requester_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    purpose TEXT NOT NULL,
    spec TEXT NOT NULL,
    agreement_id TEXT,
    status TEXT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT,
    started_at BIGINT,
    finished_at BIGINT,
    error TEXT,
    max_downloads INTEGER NOT NULL,
    downloads INTEGER NOT NULL,
    expires_at BIGINT NOT NULL,
    manifest TEXT,
    purged_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX deid_jobs_status ON deid_jobs (status, id);
CREATE INDEX deid_jobs_recipient ON deid_jobs (recipient_id, id);

CREATE TABLE deid_outputs (
    job_id TEXT NOT NULL REFERENCES deid_jobs (id),
    format TEXT NOT NULL,
--- sqlite
    sealed BLOB NOT NULL,
--- postgres
    sealed BYTEA NOT NULL,
--- common
    bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (job_id, format)
);
