-- Signed checkpoints (C2SP tlog-checkpoint notes) of the audit tree. Each is
-- also appended to DATA/checkpoints.log, outside the database, and sent to
-- the SIEM, so that a rewrite of the database is caught.
CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY,
--- sqlite
    root BLOB NOT NULL,
--- postgres
    root BYTEA NOT NULL,
--- common
    note TEXT NOT NULL,
    signed_at BIGINT NOT NULL
);

--- sqlite
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
--- postgres
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
