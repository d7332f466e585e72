-- The rectification register (整改, seed 003 §2.1 and §6.2, issue 14):
-- items opened by a failing compliance check, a quarterly compliance
-- check, an internal audit or an imported third-party audit report, each
-- with its department, owner, deadline and severity; the history of every
-- change; the monthly reviews signed by the security office; and the
-- quarterly compliance checks (季度合规检查) with their sampled
-- departments, findings and the department heads they were published to.
-- Descriptions, notes and evidence (text and files) are sealed with
-- medguard's "system:rectify" data key; titles, clause ids, department
-- codes, usernames and dates are stored as such. No patient data is ever
-- stored here.
CREATE TABLE rectification_items (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    -- open_key is kind and ref while an item with a ref is not verified
    -- (NULL otherwise): one open item per finding.
    open_key TEXT UNIQUE,
    title TEXT NOT NULL,
    title_en TEXT NOT NULL,
    clauses TEXT NOT NULL,
    department TEXT NOT NULL,
    owner TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    due_at BIGINT NOT NULL,
--- sqlite
    description BLOB,
--- postgres
    description BYTEA,
--- common
    auditor TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    done_by TEXT NOT NULL,
    done_by_id TEXT NOT NULL,
    done_at BIGINT,
    verified_by TEXT NOT NULL,
    verified_at BIGINT,
    overdue_notified_at BIGINT
);
CREATE INDEX rectification_items_due ON rectification_items (status, due_at);
CREATE INDEX rectification_items_department ON rectification_items (department);

CREATE TABLE rectification_events (
    item_id TEXT NOT NULL REFERENCES rectification_items (id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    evidence_name TEXT NOT NULL,
    evidence_sha256 TEXT NOT NULL,
--- sqlite
    note BLOB,
    evidence BLOB,
--- postgres
    note BYTEA,
    evidence BYTEA,
--- common
    PRIMARY KEY (item_id, seq)
);

CREATE TABLE rectification_reviews (
    id TEXT PRIMARY KEY,
    month TEXT NOT NULL,
    reviewed_by TEXT NOT NULL,
    reviewed_at BIGINT NOT NULL,
    figures TEXT NOT NULL,
--- sqlite
    note BLOB
--- postgres
    note BYTEA
--- common
);
CREATE INDEX rectification_reviews_month ON rectification_reviews (month);

CREATE TABLE quarterly_runs (
    id TEXT PRIMARY KEY,
    quarter TEXT NOT NULL,
    seed BIGINT NOT NULL,
    departments TEXT NOT NULL,
    sampled TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    published_at BIGINT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE quarterly_findings (
    run_id TEXT NOT NULL REFERENCES quarterly_runs (id),
    department TEXT NOT NULL,
    item TEXT NOT NULL,
    measured TEXT NOT NULL,
    measured_pass INTEGER NOT NULL,
    measured_evidence TEXT NOT NULL,
    result TEXT NOT NULL,
--- sqlite
    note BLOB,
--- postgres
    note BYTEA,
--- common
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT,
    rectification_id TEXT NOT NULL,
    PRIMARY KEY (run_id, department, item)
);

CREATE TABLE quarterly_recipients (
    run_id TEXT NOT NULL REFERENCES quarterly_runs (id),
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    department TEXT NOT NULL,
    read_at BIGINT,
    PRIMARY KEY (run_id, user_id)
);
