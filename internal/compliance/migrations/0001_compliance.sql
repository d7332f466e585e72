-- The compliance checks (合规检查, issue 14): each run computes every
-- check of the catalogue at one moment and keeps the results, so that
-- trends can be drawn; attested checks keep their evidence files, sealed
-- with medguard's "system:compliance" data key, and the second person's
-- signature. Results name staff, keys, codes and opaque ids, never
-- patient data.
CREATE TABLE compliance_runs (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    trigger_kind TEXT NOT NULL,           -- schedule | manual
    run_by TEXT NOT NULL,
    scheduled_day TEXT UNIQUE,            -- the hospital day of a scheduled run (once per day across servers)
    catalogue_version TEXT NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    not_applicable INTEGER NOT NULL,
    needs_evidence INTEGER NOT NULL,
    score_permille INTEGER NOT NULL,
    audit_index BIGINT NOT NULL
);
CREATE INDEX compliance_runs_at ON compliance_runs (at);

CREATE TABLE compliance_results (
    run_id TEXT NOT NULL REFERENCES compliance_runs (id),
    check_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    status TEXT NOT NULL,
    value TEXT NOT NULL,
    result TEXT NOT NULL,                 -- the whole result as JSON (evidence, departments)
    PRIMARY KEY (run_id, check_id)
);
CREATE INDEX compliance_results_check ON compliance_results (check_id, at);

CREATE TABLE compliance_attestations (
    id TEXT PRIMARY KEY,
    check_id TEXT NOT NULL,
    kind TEXT NOT NULL,                   -- photo | report | other
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
--- sqlite
    filename BLOB NOT NULL,
    content BLOB NOT NULL,
    note BLOB NOT NULL,
    review_note BLOB,
--- postgres
    filename BYTEA NOT NULL,
    content BYTEA NOT NULL,
    note BYTEA NOT NULL,
    review_note BYTEA,
--- common
    attached_by_id TEXT NOT NULL,
    attached_by TEXT NOT NULL,
    attached_at BIGINT NOT NULL,
    reviewed_by_id TEXT,
    reviewed_by TEXT,
    reviewed_at BIGINT,
    expires_at BIGINT
);
CREATE INDEX compliance_attestations_check ON compliance_attestations (check_id, attached_at);
