-- Incidents (事件管理, SPEC §7). Free text (titles, descriptions, updates,
-- the 5W1H analysis, corrective actions) is sealed with the incident's own
-- data key; the columns in clear hold only grades, codes, usernames, times
-- and audit indexes. Nothing is ever deleted: triggers refuse it, and the
-- timeline and the evidence are append-only.
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    grade INTEGER NOT NULL CHECK (grade BETWEEN 1 AND 3),
    criterion TEXT NOT NULL,
    suggested_grade INTEGER,
    suggested_criterion TEXT,
    facts TEXT,                         -- JSON of counts and flags, no free text
    status TEXT NOT NULL,               -- open | closed
    source TEXT NOT NULL,               -- report | freeze
    alert_id TEXT UNIQUE,
    frozen_user TEXT,
--- sqlite
    title BLOB NOT NULL,
    description BLOB NOT NULL,
    analysis BLOB,
--- postgres
    title BYTEA NOT NULL,
    description BYTEA NOT NULL,
    analysis BYTEA,
--- common
    reported_by TEXT NOT NULL,
    reported_at BIGINT NOT NULL,
    grade_confirmed_at BIGINT,
    grade_confirmed_by TEXT,
    authority_reported_at BIGINT,
    fixed_at BIGINT,
    analysis_at BIGINT,
    analysis_by TEXT,
    last_update_at BIGINT NOT NULL,
    closed_at BIGINT,
    closed_by TEXT
);
CREATE INDEX incidents_status ON incidents (status, id);

-- The timeline: one row per operation, keyed by its audit entry.
CREATE TABLE incident_updates (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    audit_index BIGINT NOT NULL,
    kind TEXT NOT NULL,
--- sqlite
    text BLOB,
--- postgres
    text BYTEA,
--- common
    by_name TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (incident_id, audit_index)
);

-- Evidence: audit entries with their inclusion proofs and the signed
-- checkpoint, as canonical bytes whose SHA-256 is the id. Frozen.
CREATE TABLE incident_evidence (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    id TEXT NOT NULL,
    entry_index BIGINT NOT NULL,
--- sqlite
    body BLOB NOT NULL,
--- postgres
    body BYTEA NOT NULL,
--- common
    attached_by TEXT NOT NULL,
    attached_at BIGINT NOT NULL,
    PRIMARY KEY (incident_id, id),
    UNIQUE (incident_id, entry_index)
);

-- Corrective actions (整改措施): owner, due date and state.
CREATE TABLE incident_actions (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
--- sqlite
    description BLOB NOT NULL,
--- postgres
    description BYTEA NOT NULL,
--- common
    owner TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    state TEXT NOT NULL,                -- open | done | verified
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX incident_actions_incident ON incident_actions (incident_id, id);

-- Overdue deadlines already announced, so that each is announced once.
CREATE TABLE incident_overdue_notices (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    deadline TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    notified_at BIGINT NOT NULL,
    PRIMARY KEY (incident_id, deadline, due_at)
);

--- sqlite
CREATE TRIGGER incidents_no_delete BEFORE DELETE ON incidents
BEGIN SELECT RAISE(ABORT, 'incidents are kept'); END;
CREATE TRIGGER incident_updates_no_update BEFORE UPDATE ON incident_updates
BEGIN SELECT RAISE(ABORT, 'the incident timeline is append-only'); END;
CREATE TRIGGER incident_updates_no_delete BEFORE DELETE ON incident_updates
BEGIN SELECT RAISE(ABORT, 'the incident timeline is append-only'); END;
CREATE TRIGGER incident_evidence_no_update BEFORE UPDATE ON incident_evidence
BEGIN SELECT RAISE(ABORT, 'incident evidence is frozen'); END;
CREATE TRIGGER incident_evidence_no_delete BEFORE DELETE ON incident_evidence
BEGIN SELECT RAISE(ABORT, 'incident evidence is frozen'); END;
CREATE TRIGGER incident_actions_no_delete BEFORE DELETE ON incident_actions
BEGIN SELECT RAISE(ABORT, 'corrective actions are kept'); END;
--- postgres
CREATE FUNCTION incidents_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
CREATE TRIGGER incidents_no_delete BEFORE DELETE ON incidents
    FOR EACH ROW EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incidents_no_truncate BEFORE TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incident_updates_append_only BEFORE UPDATE OR DELETE ON incident_updates
    FOR EACH ROW EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incident_updates_no_truncate BEFORE TRUNCATE ON incident_updates
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incident_evidence_frozen BEFORE UPDATE OR DELETE ON incident_evidence
    FOR EACH ROW EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incident_evidence_no_truncate BEFORE TRUNCATE ON incident_evidence
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incident_actions_no_delete BEFORE DELETE ON incident_actions
    FOR EACH ROW EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incident_actions_no_truncate BEFORE TRUNCATE ON incident_actions
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_refuse();
