-- Data use (SPEC §8, issue 12): record-use requests (借阅/调阅), paper
-- folders (纸质病案) and their loans, copies (复印). Free text and names are
-- sealed with medguard's "system:datause" data key; ID numbers are never
-- stored (only compared through the patients' blind index, and a
-- requester's own kept as a blind index). Patient ids, record ids, codes,
-- usernames, barcodes and shelf locations are stored as such.
CREATE TABLE use_requests (
    id TEXT PRIMARY KEY,
    requester_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    requester_department TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    record_ids TEXT NOT NULL,
    record_types TEXT NOT NULL,
    departments TEXT NOT NULL,
    purpose TEXT NOT NULL,
--- sqlite
    reason BLOB NOT NULL,
    note BLOB,
--- postgres
    reason BYTEA NOT NULL,
    note BYTEA,
--- common
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    restricted INTEGER NOT NULL,
    approver_department TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX use_requests_requester ON use_requests (requester_id, patient_id);
CREATE INDEX use_requests_status ON use_requests (status, id);

CREATE TABLE paper_folders (
    id TEXT PRIMARY KEY,
    barcode TEXT NOT NULL UNIQUE,
    patient_id TEXT,
--- sqlite
    mrn BLOB,
--- postgres
    mrn BYTEA,
--- common
    mrn_tail TEXT NOT NULL,
    location TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX paper_folders_patient ON paper_folders (patient_id);

CREATE TABLE folder_loans (
    id TEXT PRIMARY KEY,
    folder_id TEXT NOT NULL REFERENCES paper_folders (id),
    borrower_id TEXT NOT NULL,
    borrower TEXT NOT NULL,
    purpose TEXT NOT NULL,
--- sqlite
    signature BLOB NOT NULL,
--- postgres
    signature BYTEA NOT NULL,
--- common
    signed_at BIGINT NOT NULL,
    lent_by TEXT NOT NULL,
    lent_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    returned_at BIGINT,
    returned_by TEXT,
    overdue_notified_at BIGINT
);
CREATE INDEX folder_loans_folder ON folder_loans (folder_id, lent_at);
CREATE INDEX folder_loans_open ON folder_loans (returned_at, due_at);

CREATE TABLE record_copies (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
--- sqlite
    requester_name BLOB NOT NULL,
    requester_id_index BLOB,
    proof BLOB,
--- postgres
    requester_name BYTEA NOT NULL,
    requester_id_index BYTEA,
    proof BYTEA,
--- common
    relation TEXT NOT NULL,
    purpose TEXT NOT NULL,
    record_ids TEXT NOT NULL,
    pages INTEGER NOT NULL,
    fee_fen BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX record_copies_patient ON record_copies (patient_id, id);
