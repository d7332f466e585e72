-- Incidents and accountability, completed (issue 13).
--
-- Incidents get a type (a closed list) and a commander, assigned when the
-- grade is confirmed; every handling step a person records waits for a
-- second person's confirmation (kept, never changed); corrective actions
-- remember who marked them done, so that someone else verifies them; and
-- external evidence files (a log excerpt, a screenshot, a vendor's report)
-- are sealed with the incident's data key, their SHA-256 in clear beside
-- them, frozen like the audit-entry evidence.
ALTER TABLE incidents ADD COLUMN type TEXT NOT NULL DEFAULT 'other';
ALTER TABLE incidents ADD COLUMN commander_id TEXT;
ALTER TABLE incidents ADD COLUMN commander TEXT;
ALTER TABLE incidents ADD COLUMN commander_at BIGINT;
UPDATE incidents SET type = 'unauthorized_access' WHERE source = 'freeze';
UPDATE incidents SET type = 'data_leak' WHERE criterion = 'core_data_leak';
UPDATE incidents SET type = 'outage' WHERE criterion = 'hospital_outage';
UPDATE incidents SET type = 'misoperation' WHERE criterion = 'single_record';

-- Who recorded a timeline line, by user id (the policy compares ids); NULL
-- for lines written before this migration and for medguard's own.
ALTER TABLE incident_updates ADD COLUMN by_id TEXT;

-- A handling step's confirmation by a second person: one per step, kept.
CREATE TABLE incident_step_confirmations (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    step_index BIGINT NOT NULL,         -- the audit index of the step (its timeline line)
    confirmed_by_id TEXT NOT NULL,
    confirmed_by TEXT NOT NULL,
    confirmed_at BIGINT NOT NULL,
    audit_index BIGINT NOT NULL,
    PRIMARY KEY (incident_id, step_index)
);

ALTER TABLE incident_actions ADD COLUMN done_by_id TEXT;
ALTER TABLE incident_actions ADD COLUMN done_by TEXT;

-- External evidence files: name and content sealed with the incident's
-- data key; the SHA-256 of the content, its size and sniffed type in clear.
CREATE TABLE incident_files (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    kind TEXT NOT NULL,                 -- log_excerpt | screenshot | vendor_report | other
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
--- sqlite
    filename BLOB NOT NULL,
    content BLOB NOT NULL,
--- postgres
    filename BYTEA NOT NULL,
    content BYTEA NOT NULL,
--- common
    attached_by TEXT NOT NULL,
    attached_at BIGINT NOT NULL,
    audit_index BIGINT NOT NULL
);
CREATE INDEX incident_files_incident ON incident_files (incident_id, id);

-- Accountability: the handling opinion (处理意见, due within 5 working days
-- of the opening) with its sanction, what medguard proposed at the time
-- (repeat offences escalate), and when the retraining a warning orders
-- was handed to the training register.
ALTER TABLE accountability_cases ADD COLUMN sanction TEXT;
ALTER TABLE accountability_cases ADD COLUMN opinion_at BIGINT;
ALTER TABLE accountability_cases ADD COLUMN opinion_by TEXT;
ALTER TABLE accountability_cases ADD COLUMN proposed_grade INTEGER;
ALTER TABLE accountability_cases ADD COLUMN proposed_sanction TEXT;
ALTER TABLE accountability_cases ADD COLUMN retraining_ordered_at BIGINT;

-- Overdue deadlines of cases already announced, each once.
CREATE TABLE accountability_overdue_notices (
    case_id TEXT NOT NULL REFERENCES accountability_cases (id),
    deadline TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    notified_at BIGINT NOT NULL,
    PRIMARY KEY (case_id, deadline, due_at)
);

-- The anonymous reporting channel (举报). A report stores no identity of
-- its reporter: no user id, session, address, user agent or request id,
-- and no time finer than the hospital's day. Its id is random (not
-- time-ordered like other ids); the reporter's receipt code is kept only
-- as its SHA-256. The text of every message is sealed with medguard's
-- "system:anonymous_reports" data key.
CREATE TABLE anonymous_reports (
    id TEXT PRIMARY KEY,
    receipt_hash TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL,
    status TEXT NOT NULL,               -- new | in_review | converted | closed
    filed_on TEXT NOT NULL,             -- YYYY-MM-DD in the hospital's time zone
    updated_on TEXT NOT NULL,
    incident_id TEXT,
    case_id TEXT,
    closed_by TEXT
);
CREATE INDEX anonymous_reports_status ON anonymous_reports (status, filed_on);

CREATE TABLE anonymous_report_messages (
    report_id TEXT NOT NULL REFERENCES anonymous_reports (id),
    seq INTEGER NOT NULL,
    author TEXT NOT NULL,               -- reporter | office
    by_name TEXT,                       -- the member of the office; never the reporter
    on_day TEXT NOT NULL,               -- YYYY-MM-DD
--- sqlite
    body BLOB NOT NULL,
--- postgres
    body BYTEA NOT NULL,
--- common
    PRIMARY KEY (report_id, seq)
);

--- sqlite
CREATE TRIGGER incident_step_confirmations_kept BEFORE UPDATE ON incident_step_confirmations
BEGIN SELECT RAISE(ABORT, 'a step confirmation is kept as made'); END;
CREATE TRIGGER incident_step_confirmations_no_delete BEFORE DELETE ON incident_step_confirmations
BEGIN SELECT RAISE(ABORT, 'a step confirmation is kept as made'); END;
CREATE TRIGGER incident_files_frozen BEFORE UPDATE ON incident_files
BEGIN SELECT RAISE(ABORT, 'incident evidence is frozen'); END;
CREATE TRIGGER incident_files_no_delete BEFORE DELETE ON incident_files
BEGIN SELECT RAISE(ABORT, 'incident evidence is frozen'); END;
CREATE TRIGGER anonymous_reports_no_delete BEFORE DELETE ON anonymous_reports
BEGIN SELECT RAISE(ABORT, 'anonymous reports are kept'); END;
CREATE TRIGGER anonymous_report_messages_kept BEFORE UPDATE ON anonymous_report_messages
BEGIN SELECT RAISE(ABORT, 'report messages are kept as written'); END;
CREATE TRIGGER anonymous_report_messages_no_delete BEFORE DELETE ON anonymous_report_messages
BEGIN SELECT RAISE(ABORT, 'report messages are kept as written'); END;
DROP TRIGGER accountability_cases_final;
CREATE TRIGGER accountability_cases_final BEFORE UPDATE ON accountability_cases
WHEN (OLD.reviewed_at IS NOT NULL AND (NEW.status IS NOT OLD.status OR NEW.reviewed_at IS NOT OLD.reviewed_at
        OR NEW.review_outcome IS NOT OLD.review_outcome OR NEW.appealed_at IS NOT OLD.appealed_at))
    OR (OLD.decided_at IS NOT NULL AND (NEW.decided_at IS NOT OLD.decided_at OR NEW.outcome IS NOT OLD.outcome
        OR NEW.final_grade IS NOT OLD.final_grade
        OR (OLD.appeal_due_at IS NOT NULL AND NEW.appeal_due_at IS NOT OLD.appeal_due_at)))
    OR (OLD.opinion_at IS NOT NULL AND (NEW.opinion_at IS NOT OLD.opinion_at OR NEW.sanction IS NOT OLD.sanction
        OR NEW.opinion_by IS NOT OLD.opinion_by OR NEW.proposed_grade IS NOT OLD.proposed_grade
        OR NEW.proposed_sanction IS NOT OLD.proposed_sanction))
    OR (OLD.retraining_ordered_at IS NOT NULL AND NEW.retraining_ordered_at IS NOT OLD.retraining_ordered_at)
    OR NEW.subject_user_id <> OLD.subject_user_id OR NEW.opened_at <> OLD.opened_at
BEGIN SELECT RAISE(ABORT, 'a decision, an opinion or a review, once made, is final'); END;
--- postgres
CREATE TRIGGER incident_step_confirmations_kept BEFORE UPDATE OR DELETE ON incident_step_confirmations
    FOR EACH ROW EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incident_step_confirmations_no_truncate BEFORE TRUNCATE ON incident_step_confirmations
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incident_files_frozen BEFORE UPDATE OR DELETE ON incident_files
    FOR EACH ROW EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER incident_files_no_truncate BEFORE TRUNCATE ON incident_files
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER anonymous_reports_no_delete BEFORE DELETE ON anonymous_reports
    FOR EACH ROW EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER anonymous_reports_no_truncate BEFORE TRUNCATE ON anonymous_reports
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER anonymous_report_messages_kept BEFORE UPDATE OR DELETE ON anonymous_report_messages
    FOR EACH ROW EXECUTE FUNCTION incidents_refuse();
CREATE TRIGGER anonymous_report_messages_no_truncate BEFORE TRUNCATE ON anonymous_report_messages
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_refuse();
CREATE OR REPLACE FUNCTION accountability_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.reviewed_at IS NOT NULL AND (NEW.status IS DISTINCT FROM OLD.status
            OR NEW.reviewed_at IS DISTINCT FROM OLD.reviewed_at OR NEW.review_outcome IS DISTINCT FROM OLD.review_outcome
            OR NEW.appealed_at IS DISTINCT FROM OLD.appealed_at))
        OR (OLD.decided_at IS NOT NULL AND (NEW.decided_at IS DISTINCT FROM OLD.decided_at
            OR NEW.outcome IS DISTINCT FROM OLD.outcome OR NEW.final_grade IS DISTINCT FROM OLD.final_grade
            OR (OLD.appeal_due_at IS NOT NULL AND NEW.appeal_due_at IS DISTINCT FROM OLD.appeal_due_at)))
        OR (OLD.opinion_at IS NOT NULL AND (NEW.opinion_at IS DISTINCT FROM OLD.opinion_at
            OR NEW.sanction IS DISTINCT FROM OLD.sanction OR NEW.opinion_by IS DISTINCT FROM OLD.opinion_by
            OR NEW.proposed_grade IS DISTINCT FROM OLD.proposed_grade
            OR NEW.proposed_sanction IS DISTINCT FROM OLD.proposed_sanction))
        OR (OLD.retraining_ordered_at IS NOT NULL AND NEW.retraining_ordered_at IS DISTINCT FROM OLD.retraining_ordered_at)
        OR NEW.subject_user_id <> OLD.subject_user_id OR NEW.opened_at <> OLD.opened_at THEN
        RAISE EXCEPTION 'a decision, an opinion or a review, once made, is final';
    END IF;
    RETURN NEW;
END $$;
