-- The risk register (风险评估, seed 001 §4, issue 13): risks scored
-- likelihood × impact on 5 × 5, their treatment and owner, the review
-- each is due, and the history of every change; the risk assessments that
-- group the risks of one system; and the checklist of a new system's
-- introduction (新系统上线检查), whose risk-assessment item is satisfied
-- only by a completed assessment. Treatment plans, notes and summaries are
-- sealed with medguard's "system:risks" data key; titles, threats,
-- vulnerabilities, systems, usernames, codes and dates are stored as such.
-- No patient data is ever stored here.
CREATE TABLE risks (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    asset_name TEXT NOT NULL,
    threat TEXT NOT NULL,
    vulnerability TEXT NOT NULL,
    likelihood INTEGER NOT NULL,
    impact INTEGER NOT NULL,
    score INTEGER NOT NULL,
    treatment TEXT NOT NULL,
--- sqlite
    treatment_plan BLOB NOT NULL,
--- postgres
    treatment_plan BYTEA NOT NULL,
--- common
    acceptance TEXT NOT NULL,
    acceptance_proposed_by TEXT NOT NULL,
    acceptance_decided_by TEXT NOT NULL,
    acceptance_decided_at BIGINT,
    accepted_score INTEGER NOT NULL,
    owner TEXT NOT NULL,
    assessment_id TEXT NOT NULL,
    status TEXT NOT NULL,
    review_due_at BIGINT NOT NULL,
    reviewed_at BIGINT,
    review_notified_at BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX risks_review ON risks (status, review_due_at);
CREATE INDEX risks_assessment ON risks (assessment_id);

CREATE TABLE risk_events (
    risk_id TEXT NOT NULL REFERENCES risks (id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL,
    likelihood INTEGER NOT NULL,
    impact INTEGER NOT NULL,
    treatment TEXT NOT NULL,
    review_due_at BIGINT NOT NULL,
--- sqlite
    note BLOB,
--- postgres
    note BYTEA,
--- common
    PRIMARY KEY (risk_id, seq)
);

CREATE TABLE risk_assessments (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    system TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    asset_name TEXT NOT NULL,
    assessor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    completed_by TEXT NOT NULL,
    completed_at BIGINT,
--- sqlite
    summary BLOB
--- postgres
    summary BYTEA
--- common
);

CREATE TABLE system_introductions (
    id TEXT PRIMARY KEY,
    system TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    asset_name TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_by_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    planned_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at BIGINT,
--- sqlite
    note BLOB
--- postgres
    note BYTEA
--- common
);

CREATE TABLE introduction_items (
    introduction_id TEXT NOT NULL REFERENCES system_introductions (id),
    item TEXT NOT NULL,
    done_by TEXT NOT NULL,
    done_by_id TEXT NOT NULL,
    done_at BIGINT NOT NULL,
    assessment_id TEXT NOT NULL,
--- sqlite
    note BLOB,
--- postgres
    note BYTEA,
--- common
    PRIMARY KEY (introduction_id, item)
);
