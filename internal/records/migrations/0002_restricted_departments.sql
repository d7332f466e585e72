-- Departments whose every record is restricted (精神科 by default: the
-- Mental Health Law protects all of a psychiatric patient's records, not
-- only the notes typed as psychiatric). Their records open only to the
-- department itself and to grants approved by its head.
CREATE TABLE restricted_departments (
    department TEXT PRIMARY KEY,
    since BIGINT NOT NULL,
    set_by TEXT NOT NULL
);
