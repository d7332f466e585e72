-- The audit log (操作留痕): an RFC 6962 Merkle tree over canonical JSON
-- leaves, stored the way transparency logs store theirs:
--   audit_bundles  the leaves of each commit, as one row, byte for byte;
--   audit_tiles    the tree's hashes in tiles (C2SP tlog-tiles layout);
--   audit_head     the current tree size and root, which appenders lock;
--   audit_index    copies of the searched fields of each entry.
-- The application never changes or deletes any of it; triggers refuse it,
-- except that a tile at the right edge of the tree may grow.

-- A bundle holds the leaves [first_idx, first_idx + count) as a sequence of
-- (uvarint length, leaf bytes).
CREATE TABLE audit_bundles (
--- sqlite
    first_idx INTEGER PRIMARY KEY,
    leaves BLOB NOT NULL,
--- postgres
    first_idx BIGINT PRIMARY KEY,
    leaves BYTEA NOT NULL,
--- common
    count INTEGER NOT NULL
);

-- Tile (level L, index N) holds the hashes of tree level 8L at indexes
-- [256N, 256N + width), 32 bytes each; level 0 holds the leaf hashes. The
-- levels in between are folded from these when a proof needs them.
CREATE TABLE audit_tiles (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
--- sqlite
    hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
--- postgres
    hashes BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
--- common

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

-- The searched fields of each entry (the leaf is the truth; searches
-- re-check every result against it).
CREATE TABLE audit_index (
--- sqlite
    idx INTEGER PRIMARY KEY,
--- postgres
    idx BIGINT PRIMARY KEY,
--- common
    time_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    patient_id TEXT
);
CREATE INDEX audit_index_actor ON audit_index (actor, idx);
CREATE INDEX audit_index_patient ON audit_index (patient_id, idx);
CREATE INDEX audit_index_action ON audit_index (action, idx);
CREATE INDEX audit_index_time ON audit_index (time_ms);

--- sqlite
CREATE TRIGGER audit_bundles_no_update BEFORE UPDATE ON audit_bundles
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_bundles_no_delete BEFORE DELETE ON audit_bundles
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_tiles_only_grow BEFORE UPDATE ON audit_tiles
WHEN NEW.level <> OLD.level OR NEW.idx <> OLD.idx OR length(NEW.hashes) < length(OLD.hashes)
    OR substr(NEW.hashes, 1, length(OLD.hashes)) <> OLD.hashes
BEGIN SELECT RAISE(ABORT, 'audit tiles only grow'); END;
CREATE TRIGGER audit_tiles_no_delete BEFORE DELETE ON audit_tiles
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_index_no_update BEFORE UPDATE ON audit_index
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_index_no_delete BEFORE DELETE ON audit_index
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
--- postgres
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only';
END $$;
CREATE FUNCTION audit_tiles_only_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.level <> OLD.level OR NEW.idx <> OLD.idx OR length(NEW.hashes) < length(OLD.hashes)
        OR substring(NEW.hashes from 1 for length(OLD.hashes)) <> OLD.hashes THEN
        RAISE EXCEPTION 'audit tiles only grow';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_bundles_append_only BEFORE UPDATE OR DELETE ON audit_bundles
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_bundles_no_truncate BEFORE TRUNCATE ON audit_bundles
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_tiles_grow BEFORE UPDATE ON audit_tiles
    FOR EACH ROW EXECUTE FUNCTION audit_tiles_only_grow();
CREATE TRIGGER audit_tiles_no_delete BEFORE DELETE ON audit_tiles
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_tiles_no_truncate BEFORE TRUNCATE ON audit_tiles
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_index_append_only BEFORE UPDATE OR DELETE ON audit_index
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_index_no_truncate BEFORE TRUNCATE ON audit_index
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
