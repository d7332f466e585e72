-- Accountability cases (违规责任追究, SPEC §7). The case row carries the
-- state; every step (opening, findings, the person's statement, the
-- decision, the appeal and its review) is an append-only entry keyed by its
-- audit entry, its text sealed with the case's own data key. Cases are kept
-- permanently: triggers refuse deleting anything, changing an entry, or
-- changing a decision or a review once made.
CREATE TABLE accountability_cases (
    id TEXT PRIMARY KEY,
    subject_user_id TEXT NOT NULL,
    subject_username TEXT NOT NULL,
    grade INTEGER NOT NULL CHECK (grade BETWEEN 1 AND 3),
    criterion TEXT NOT NULL,
    evidence_indexes TEXT NOT NULL,     -- JSON list of audit entry indexes
    status TEXT NOT NULL,               -- investigating | decided | appealed | reviewed
    opened_by TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    decided_at BIGINT,
    outcome TEXT,
    final_grade INTEGER,
    appeal_due_at BIGINT,
    appealed_at BIGINT,
    reviewed_at BIGINT,
    review_outcome TEXT
);
CREATE INDEX accountability_cases_status ON accountability_cases (status, id);
CREATE INDEX accountability_cases_subject ON accountability_cases (subject_user_id, id);

CREATE TABLE accountability_entries (
    case_id TEXT NOT NULL REFERENCES accountability_cases (id),
    audit_index BIGINT NOT NULL,
    kind TEXT NOT NULL,                 -- opened | finding | statement | decision | appeal | review
    outcome TEXT,
--- sqlite
    text BLOB,
--- postgres
    text BYTEA,
--- common
    by_id TEXT NOT NULL,
    by_name TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (case_id, audit_index)
);

--- sqlite
CREATE TRIGGER accountability_cases_no_delete BEFORE DELETE ON accountability_cases
BEGIN SELECT RAISE(ABORT, 'accountability cases are kept permanently'); END;
CREATE TRIGGER accountability_cases_final BEFORE UPDATE ON accountability_cases
WHEN OLD.reviewed_at IS NOT NULL
    OR (OLD.decided_at IS NOT NULL AND (NEW.decided_at IS NOT OLD.decided_at OR NEW.outcome IS NOT OLD.outcome
        OR NEW.final_grade IS NOT OLD.final_grade OR NEW.appeal_due_at IS NOT OLD.appeal_due_at))
    OR NEW.subject_user_id <> OLD.subject_user_id OR NEW.opened_at <> OLD.opened_at
BEGIN SELECT RAISE(ABORT, 'a decision or review, once made, is final'); END;
CREATE TRIGGER accountability_entries_no_update BEFORE UPDATE ON accountability_entries
BEGIN SELECT RAISE(ABORT, 'accountability entries are kept permanently'); END;
CREATE TRIGGER accountability_entries_no_delete BEFORE DELETE ON accountability_entries
BEGIN SELECT RAISE(ABORT, 'accountability entries are kept permanently'); END;
--- postgres
CREATE FUNCTION accountability_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is kept permanently: % refused', TG_TABLE_NAME, TG_OP;
END $$;
CREATE FUNCTION accountability_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.reviewed_at IS NOT NULL
        OR (OLD.decided_at IS NOT NULL AND (NEW.decided_at IS DISTINCT FROM OLD.decided_at
            OR NEW.outcome IS DISTINCT FROM OLD.outcome OR NEW.final_grade IS DISTINCT FROM OLD.final_grade
            OR NEW.appeal_due_at IS DISTINCT FROM OLD.appeal_due_at))
        OR NEW.subject_user_id <> OLD.subject_user_id OR NEW.opened_at <> OLD.opened_at THEN
        RAISE EXCEPTION 'a decision or review, once made, is final';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accountability_cases_no_delete BEFORE DELETE ON accountability_cases
    FOR EACH ROW EXECUTE FUNCTION accountability_refuse();
CREATE TRIGGER accountability_cases_no_truncate BEFORE TRUNCATE ON accountability_cases
    FOR EACH STATEMENT EXECUTE FUNCTION accountability_refuse();
CREATE TRIGGER accountability_cases_final BEFORE UPDATE ON accountability_cases
    FOR EACH ROW EXECUTE FUNCTION accountability_final();
CREATE TRIGGER accountability_entries_append_only BEFORE UPDATE OR DELETE ON accountability_entries
    FOR EACH ROW EXECUTE FUNCTION accountability_refuse();
CREATE TRIGGER accountability_entries_no_truncate BEFORE TRUNCATE ON accountability_entries
    FOR EACH STATEMENT EXECUTE FUNCTION accountability_refuse();
