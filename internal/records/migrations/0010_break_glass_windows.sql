-- Break-glass windows (issue 10): one declaration — patient, reason,
-- purpose — opens a time-boxed window during which the reader's reads of
-- that patient's data are emergency accesses attached to the one event,
-- reviewed once. ends_at is the window's end (NULL for the events made
-- before windows, one per read, already closed); purpose the declared
-- purpose of use.
ALTER TABLE break_glass_events ADD COLUMN purpose TEXT;
ALTER TABLE break_glass_events ADD COLUMN ends_at BIGINT;
CREATE INDEX break_glass_open ON break_glass_events (user_id, patient_id, ends_at);

-- What was read in a window: each record read (record_id set), and each
-- department whose data was shown otherwise (the patient's details, the
-- record list, the declaration itself). The department heads of these
-- departments review the event.
CREATE TABLE break_glass_reads (
    event_id TEXT NOT NULL REFERENCES break_glass_events (id),
    id TEXT NOT NULL,
    audit_index BIGINT NOT NULL,
    action TEXT NOT NULL,
    record_id TEXT,
    department TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (event_id, id)
);
CREATE INDEX break_glass_reads_department ON break_glass_reads (department, event_id);

INSERT INTO break_glass_reads (event_id, id, audit_index, action, record_id, department, at)
    SELECT id, id, audit_index, CASE WHEN record_id IS NULL THEN 'record.list' ELSE 'record.read' END,
        record_id, department, at FROM break_glass_events;
