-- Four-eyes approvals (双人复核): a request by one user, decided by another
-- with the approver permission, then run. Payloads name ids and codes only.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    subject_user_id TEXT,
    reason TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_by_name TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    status TEXT NOT NULL,              -- pending | approved | refused | cancelled
    decided_by TEXT,
    decided_by_name TEXT,
    decided_at BIGINT,
    decision_note TEXT
);
CREATE INDEX approvals_status ON approvals (status, id);
