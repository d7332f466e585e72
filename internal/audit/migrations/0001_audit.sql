-- The audit log (操作留痕): an RFC 6962 Merkle tree over canonical JSON leaves.
-- audit_leaves holds each entry's leaf bytes exactly as hashed, plus copies of
-- a few fields for searching (the leaf is the truth; searches re-check it).
-- audit_nodes holds the hash of every perfect subtree (level 0 = leaf hashes),
-- so appends cost O(log n) and proofs are read, not recomputed.
-- audit_head holds the current tree size and root; appenders lock it.
-- The application never updates or deletes any of these rows; triggers refuse it.
CREATE TABLE audit_leaves (
    idx BIGINT PRIMARY KEY,
--- sqlite
    leaf BLOB NOT NULL,
--- postgres
    leaf BYTEA NOT NULL,
--- common
    time_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    patient_id TEXT,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    break_glass BOOLEAN NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX audit_leaves_actor ON audit_leaves (actor, idx);
CREATE INDEX audit_leaves_patient ON audit_leaves (patient_id, idx);
CREATE INDEX audit_leaves_action ON audit_leaves (action, idx);
CREATE INDEX audit_leaves_time ON audit_leaves (time_ms);

CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
--- sqlite
    hash BLOB NOT NULL,
--- postgres
    hash BYTEA NOT NULL,
--- common
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL,
--- sqlite
    root BLOB,
--- postgres
    root BYTEA,
--- common
    updated_at BIGINT NOT NULL
);
INSERT INTO audit_head (id, size, root, updated_at) VALUES (1, 0, NULL, 0);

--- sqlite
CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
--- postgres
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only';
END $$;
CREATE TRIGGER audit_leaves_append_only BEFORE UPDATE OR DELETE ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_leaves_no_truncate BEFORE TRUNCATE ON audit_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
