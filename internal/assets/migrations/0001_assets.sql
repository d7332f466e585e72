-- The asset register (资产台账, issue 13): the hospital's servers,
-- applications, workstations, mobile, medical, network and security
-- devices, each with its inventory code, owner (a member of staff's
-- username), department (code), location, network address, the
-- classification of the data it holds, labels, end of support, and
-- whether it is part of the records system. No patient data is ever
-- stored here; nothing is sealed because nothing here is personal beyond
-- staff usernames.
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    department TEXT NOT NULL,
    location TEXT NOT NULL,
    address TEXT NOT NULL,
    classification TEXT NOT NULL,
    labels TEXT NOT NULL,
    end_of_support TEXT NOT NULL,
    records_system INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX assets_kind ON assets (kind, code);
CREATE INDEX assets_department ON assets (department, code);
