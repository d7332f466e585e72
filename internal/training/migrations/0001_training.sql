-- The training register (培训考核, SPEC §10, issue 13): courses by role,
-- sessions with attendance and exam scores, the commitment letters
-- (安全承诺书) and their signatures, retraining orders, the notices of
-- overdue training, the quarterly staff assessments with their appeals,
-- and the register's settings. Course titles and descriptions, letter
-- texts, staff usernames, scores and dates are stored as such (staff names
-- are not patient data); free text that may say something about a person
-- — a note on a result, the reason of a retraining order, an appeal and its
-- decision — is sealed with medguard's "system:training" data key. No
-- patient data is ever stored here.
CREATE TABLE training_settings (
    id INTEGER PRIMARY KEY,
    period_days INTEGER NOT NULL,
    grace_days INTEGER NOT NULL,
    assessment_pass_mark INTEGER NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);

CREATE TABLE training_courses (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    audience TEXT NOT NULL,
    pass_mark INTEGER NOT NULL,
    description TEXT NOT NULL,
    required_from BIGINT,
    required_by TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE training_sessions (
    id TEXT PRIMARY KEY,
    course_id TEXT NOT NULL REFERENCES training_courses (id),
    held_at BIGINT NOT NULL,
    location TEXT NOT NULL,
    trainer TEXT NOT NULL,
    pass_mark INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX training_sessions_course ON training_sessions (course_id, held_at);
CREATE INDEX training_sessions_held ON training_sessions (held_at);

CREATE TABLE training_attendance (
    session_id TEXT NOT NULL REFERENCES training_sessions (id),
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    enrolled_by TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    attended INTEGER,
    score INTEGER,
    passed INTEGER,
--- sqlite
    note BLOB,
--- postgres
    note BYTEA,
--- common
    recorded_by TEXT,
    recorded_at BIGINT,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX training_attendance_user ON training_attendance (user_id);

CREATE TABLE training_letters (
    version INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    resign INTEGER NOT NULL,
    effective_from BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    published_at BIGINT NOT NULL
);

CREATE TABLE training_signatures (
    user_id TEXT NOT NULL,
    version INTEGER NOT NULL REFERENCES training_letters (version),
    username TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    signed_at BIGINT NOT NULL,
    audit_index BIGINT NOT NULL,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE training_orders (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    course_id TEXT NOT NULL REFERENCES training_courses (id),
    source TEXT NOT NULL,
    reference TEXT NOT NULL,
    department TEXT NOT NULL,
--- sqlite
    reason BLOB NOT NULL,
--- postgres
    reason BYTEA NOT NULL,
--- common
    ordered_by TEXT NOT NULL,
    ordered_at BIGINT NOT NULL,
    gates_from BIGINT NOT NULL,
    cancelled_by TEXT,
    cancelled_at BIGINT
);
CREATE INDEX training_orders_user ON training_orders (user_id, ordered_at);

CREATE TABLE training_notices (
    user_id TEXT NOT NULL,
    notice_key TEXT NOT NULL,
    notified_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, notice_key)
);

CREATE TABLE training_assessments (
    id TEXT PRIMARY KEY,
    quarter TEXT NOT NULL,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    department TEXT NOT NULL,
    compliance INTEGER NOT NULL,
    incidents INTEGER NOT NULL,
    attendance INTEGER NOT NULL,
    score INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    flagged INTEGER NOT NULL,
    details TEXT NOT NULL,
    computed_by TEXT NOT NULL,
    computed_by_id TEXT NOT NULL,
    computed_at BIGINT NOT NULL,
--- sqlite
    appeal BLOB,
    decision BLOB,
--- postgres
    appeal BYTEA,
    decision BYTEA,
--- common
    appealed_at BIGINT,
    appeal_outcome TEXT,
    decided_by TEXT,
    decided_at BIGINT,
    UNIQUE (quarter, user_id)
);
CREATE INDEX training_assessments_user ON training_assessments (user_id, quarter);
