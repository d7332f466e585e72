-- Daily inspections (巡查, seed 003 §4.1.1, issue 13): the checklist's
-- versions (the built-in first version lives in the code), one inspection
-- per hospital day with its readings, the inspector's and the reviewer's
-- signatures, and the days announced as missed. Readings, ranges, units,
-- usernames and times are stored as such; the notes people write (the
-- inspector's, the reviewer's) are sealed with medguard's
-- "system:inspections" data key. No patient data is ever stored here.
CREATE TABLE inspection_templates (
    version INTEGER PRIMARY KEY,
    items TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE inspections (
    id TEXT PRIMARY KEY,
    day TEXT NOT NULL UNIQUE,
    template_version INTEGER NOT NULL,
    readings TEXT NOT NULL,
    out_of_range INTEGER NOT NULL,
--- sqlite
    notes BLOB,
--- postgres
    notes BYTEA,
--- common
    inspector_id TEXT NOT NULL,
    inspector TEXT NOT NULL,
    inspected_at BIGINT NOT NULL,
    reviewer_id TEXT,
    reviewer TEXT,
    reviewed_at BIGINT,
--- sqlite
    review_note BLOB
--- postgres
    review_note BYTEA
--- common
);

CREATE TABLE inspection_missed (
    day TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    noticed_at BIGINT NOT NULL
);
