-- Patients and their records (SPEC §4). Every identifying field, all free
-- text and every attachment is sealed with the patient's data key (owner
-- "patient:<id>", see package keys); exact search uses keyed blind indexes.
-- Department codes and usernames are stored as such: they are immutable.
-- There is no delete path: corrections make new versions, removals are soft.
CREATE TABLE patients (
    id TEXT PRIMARY KEY,
--- sqlite
    name BLOB NOT NULL,
    gender BLOB NOT NULL,
    birth_date BLOB,
    id_number BLOB,
    phone BLOB,
    address BLOB,
    mrn BLOB,
    name_index BLOB NOT NULL,
    id_number_index BLOB UNIQUE,
    phone_index BLOB,
    mrn_index BLOB UNIQUE,
--- postgres
    name BYTEA NOT NULL,
    gender BYTEA NOT NULL,
    birth_date BYTEA,
    id_number BYTEA,
    phone BYTEA,
    address BYTEA,
    mrn BYTEA,
    name_index BYTEA NOT NULL,
    id_number_index BYTEA UNIQUE,
    phone_index BYTEA,
    mrn_index BYTEA UNIQUE,
--- common
    version INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX patients_name_index ON patients (name_index);
CREATE INDEX patients_phone_index ON patients (phone_index);

-- The departments that hold data of a patient: where the patient was
-- registered, admitted, or has records. The access policy's relation.
CREATE TABLE patient_departments (
    patient_id TEXT NOT NULL REFERENCES patients (id),
    department TEXT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (patient_id, department)
);
CREATE INDEX patient_departments_department ON patient_departments (department, patient_id);

CREATE TABLE admissions (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    department TEXT NOT NULL,
    admitted_at BIGINT NOT NULL,
    discharged_at BIGINT,
    archive_due_at BIGINT,
    archived_at BIGINT,
    archived_by TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX admissions_patient ON admissions (patient_id);
CREATE INDEX admissions_archive_due ON admissions (archive_due_at);

CREATE TABLE records (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    admission_id TEXT REFERENCES admissions (id),
    type TEXT NOT NULL,
    department TEXT NOT NULL,
    classification TEXT NOT NULL,
    version INTEGER NOT NULL,
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX records_patient ON records (patient_id, id);
CREATE INDEX records_department ON records (department, id);

CREATE TABLE record_versions (
    record_id TEXT NOT NULL REFERENCES records (id),
    version INTEGER NOT NULL,
--- sqlite
    title BLOB NOT NULL,
    body BLOB NOT NULL,
    fields BLOB,
--- postgres
    title BYTEA NOT NULL,
    body BYTEA NOT NULL,
    fields BYTEA,
--- common
    classification TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (record_id, version)
);

CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL REFERENCES records (id),
    patient_id TEXT NOT NULL REFERENCES patients (id),
--- sqlite
    filename BLOB NOT NULL,
    content BLOB NOT NULL,
--- postgres
    filename BYTEA NOT NULL,
    content BYTEA NOT NULL,
--- common
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX attachments_record ON attachments (record_id);

CREATE TABLE care_team (
    patient_id TEXT NOT NULL REFERENCES patients (id),
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    until_at BIGINT,
    removed_at BIGINT,
    removed_by TEXT,
    PRIMARY KEY (patient_id, user_id)
);
CREATE INDEX care_team_user ON care_team (user_id, patient_id);

CREATE TABLE access_grants (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    department TEXT NOT NULL,
    grantee_id TEXT NOT NULL,
    grantee TEXT NOT NULL,
--- sqlite
    reason BLOB NOT NULL,
--- postgres
    reason BYTEA NOT NULL,
--- common
    granted_by TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_grants_grantee ON access_grants (grantee_id, patient_id);
CREATE INDEX access_grants_patient ON access_grants (patient_id);

-- Emergency accesses (紧急访问), each awaiting review by the head of the
-- record's department within the review period.
CREATE TABLE break_glass_events (
    id TEXT PRIMARY KEY,
    audit_index BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    record_id TEXT,
    department TEXT NOT NULL,
--- sqlite
    reason BLOB NOT NULL,
    review_note BLOB,
--- postgres
    reason BYTEA NOT NULL,
    review_note BYTEA,
--- common
    at BIGINT NOT NULL,
    review_due_at BIGINT NOT NULL,
    reviewed_at BIGINT,
    reviewed_by TEXT,
    review_outcome TEXT
);
CREATE INDEX break_glass_department ON break_glass_events (department, reviewed_at);
CREATE INDEX break_glass_due ON break_glass_events (review_due_at);
