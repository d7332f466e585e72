-- The removable media register (移动存储介质, seed 003, issue 13): every
-- device with its label, kind, serial and whether it is encrypted; its
-- loans, each signed by the lender and then by the borrower; its erasures,
-- each before a witness; its disposal. Labels, serials, usernames, methods
-- and times are stored as such; a loan's purpose and the notes people
-- write are sealed with medguard's "system:media" data key. No patient
-- data is ever stored here.
CREATE TABLE media_devices (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    serial TEXT NOT NULL,
    capacity_gb INTEGER NOT NULL,
    encrypted INTEGER NOT NULL,
    encryption TEXT NOT NULL,
    status TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    disposal_method TEXT,
    disposed_by TEXT,
    disposed_at BIGINT,
    disposal_witness TEXT,
--- sqlite
    disposal_note BLOB
--- postgres
    disposal_note BYTEA
--- common
);

CREATE TABLE media_loans (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES media_devices (id),
    lender_id TEXT NOT NULL,
    lender TEXT NOT NULL,
    lent_at BIGINT NOT NULL,
    borrower_id TEXT NOT NULL,
    borrower TEXT NOT NULL,
--- sqlite
    purpose BLOB NOT NULL,
--- postgres
    purpose BYTEA NOT NULL,
--- common
    due_at BIGINT NOT NULL,
    signed_at BIGINT,
    cancelled_at BIGINT,
    cancelled_by TEXT,
    returned_at BIGINT,
    returned_to TEXT,
    overdue_notified_at BIGINT
);
CREATE INDEX media_loans_device ON media_loans (device_id, lent_at);
CREATE INDEX media_loans_borrower ON media_loans (borrower_id, lent_at);

CREATE TABLE media_erasures (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES media_devices (id),
    method TEXT NOT NULL,
    erased_by TEXT NOT NULL,
    erased_at BIGINT NOT NULL,
    witness TEXT NOT NULL,
--- sqlite
    note BLOB
--- postgres
    note BYTEA
--- common
);
CREATE INDEX media_erasures_device ON media_erasures (device_id, erased_at);
