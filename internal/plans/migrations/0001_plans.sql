-- Emergency plans and drills (应急预案与演练, seed 003 §5, issue 13): the
-- plan library by type, each plan's versions (a published version is never
-- changed: a change is a new draft) with their workflow draft → expert
-- review → leadership approval → published and its history; the drills
-- (tabletop and live) with their departments' results, the response time
-- of each step against the plan's limit, the gaps found and the improvement
-- items; the drill cadence's missed periods, announced once; the
-- departments flagged for retraining after two failed drills in a row.
-- Plans' contents (scenarios, responders, steps), names, codes and dates
-- are stored as such; workflow notes, drill notes, gaps and improvement
-- items are sealed with medguard's "system:plans" data key. No patient
-- data is ever stored here.
CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    title TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_version INTEGER NOT NULL,
    published_at BIGINT,
    review_due_at BIGINT,
    reviewed_at BIGINT,
    reviewed_by TEXT NOT NULL,
    review_notified_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX plans_review ON plans (review_due_at);

CREATE TABLE plan_versions (
    plan_id TEXT NOT NULL REFERENCES plans (id),
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    authors TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    submitted_by TEXT NOT NULL,
    submitted_at BIGINT,
    reviewed_by TEXT NOT NULL,
    reviewed_by_id TEXT NOT NULL,
    reviewed_at BIGINT,
    approved_by TEXT NOT NULL,
    approved_at BIGINT,
    PRIMARY KEY (plan_id, version)
);

CREATE TABLE plan_events (
    plan_id TEXT NOT NULL REFERENCES plans (id),
    seq INTEGER NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL,
--- sqlite
    note BLOB,
--- postgres
    note BYTEA,
--- common
    PRIMARY KEY (plan_id, seq)
);

CREATE TABLE drills (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    plan_id TEXT NOT NULL REFERENCES plans (id),
    plan_version INTEGER NOT NULL,
    held_at BIGINT NOT NULL,
    participants TEXT NOT NULL,
    steps TEXT NOT NULL,
    passed INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
--- sqlite
    notes BLOB
--- postgres
    notes BYTEA
--- common
);
CREATE INDEX drills_held ON drills (kind, held_at);

CREATE TABLE drill_departments (
    drill_id TEXT NOT NULL REFERENCES drills (id),
    department TEXT NOT NULL,
    held_at BIGINT NOT NULL,
    passed INTEGER NOT NULL,
    PRIMARY KEY (drill_id, department)
);
CREATE INDEX drill_departments_by ON drill_departments (department, held_at);

CREATE TABLE drill_gaps (
    drill_id TEXT NOT NULL REFERENCES drills (id),
    seq INTEGER NOT NULL,
    department TEXT NOT NULL,
    severity TEXT NOT NULL,
--- sqlite
    description BLOB NOT NULL,
--- postgres
    description BYTEA NOT NULL,
--- common
    PRIMARY KEY (drill_id, seq)
);

CREATE TABLE drill_improvements (
    id TEXT PRIMARY KEY,
    drill_id TEXT NOT NULL REFERENCES drills (id),
    seq INTEGER NOT NULL,
--- sqlite
    action BLOB NOT NULL,
    note BLOB,
--- postgres
    action BYTEA NOT NULL,
    note BYTEA,
--- common
    owner TEXT NOT NULL,
    department TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    done_by TEXT NOT NULL,
    done_at BIGINT,
    notified_at BIGINT
);
CREATE INDEX drill_improvements_due ON drill_improvements (status, due_at);

CREATE TABLE drill_cadence (
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    notified_at BIGINT NOT NULL,
    resolved_at BIGINT,
    PRIMARY KEY (kind, period)
);

CREATE TABLE drill_retraining (
    department TEXT PRIMARY KEY,
    drills TEXT NOT NULL,
    flagged_at BIGINT NOT NULL,
    cleared_at BIGINT,
    cleared_by TEXT NOT NULL
);
