-- Exports (SPEC §8, issue 12): an export of one patient's records, or of
-- more than one under an approved four-eyes request (approvals kind
-- exports.bulk). The plan and the manifest hold ids, codes and counts
-- only; the reason is sealed with medguard's "system:exports" data key;
-- the file is stored only as ciphertext under a key the server never
-- keeps (shown once to the requester), and the ciphertext is deleted after
-- the last allowed download or at expiry.
CREATE TABLE exports (
    id TEXT PRIMARY KEY,
    requester_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    requester_department TEXT NOT NULL,
    approval_id TEXT,
    status TEXT NOT NULL,
    patients INTEGER NOT NULL,
    plan TEXT NOT NULL,
    record_types TEXT NOT NULL,
    fields TEXT NOT NULL,
    format TEXT NOT NULL,
    cipher TEXT NOT NULL,
    purpose TEXT NOT NULL,
    contains_core INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT,
    built_at BIGINT,
    expires_at BIGINT,
    max_downloads INTEGER NOT NULL,
    downloads INTEGER NOT NULL,
    manifest TEXT,
    sha256 TEXT,
    size BIGINT,
    manifest_index BIGINT,
--- sqlite
    reason BLOB NOT NULL,
    ciphertext BLOB
--- postgres
    reason BYTEA NOT NULL,
    ciphertext BYTEA
--- common
);
CREATE INDEX exports_requester ON exports (requester_id, id);
CREATE INDEX exports_approval ON exports (approval_id);
