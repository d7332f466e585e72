-- The growing tiles at the tree's right edge, a commit's new hashes at a
-- time. Until now every commit rewrote its whole partial tile in
-- audit_tiles (up to 8 KiB, most of it unchanged): a quarter of the pages
-- SQLite wrote to its WAL for a request's commit of a few entries, and half
-- of PostgreSQL's WAL bytes (the tile is TOASTed and rewritten whole). Now a
-- commit inserts only the hashes it adds, as a part of the tile starting at
-- position first; a tile is written to audit_tiles once, when it is full,
-- and its parts are then deleted. A tile is its audit_tiles row (none, a
-- full one, or — written before this migration — a partial one) followed
-- by the parts that continue it without a gap.
CREATE TABLE audit_tile_parts (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    first INTEGER NOT NULL,
--- sqlite
    hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx, first)
) WITHOUT ROWID;
--- postgres
    hashes BYTEA NOT NULL,
    PRIMARY KEY (level, idx, first)
);
--- common

-- Parts are never changed, and leave only once their tile is whole in
-- audit_tiles (8,192 bytes: 256 hashes). From now on audit_tiles takes
-- whole tiles only: a server of an earlier version, still running beside
-- upgraded ones on one PostgreSQL, would write its partial tile there
-- without the parts and corrupt the tree; its commits fail instead, loudly,
-- until it is upgraded. (Partial rows written before stay, and are read.)
--- sqlite
CREATE TRIGGER audit_tiles_whole_insert BEFORE INSERT ON audit_tiles
WHEN length(NEW.hashes) <> 8192
BEGIN SELECT RAISE(ABORT, 'audit tiles are written whole since migration 0006: a server older than its database is appending'); END;
CREATE TRIGGER audit_tiles_whole_update BEFORE UPDATE ON audit_tiles
WHEN length(NEW.hashes) <> 8192
BEGIN SELECT RAISE(ABORT, 'audit tiles are written whole since migration 0006: a server older than its database is appending'); END;
CREATE TRIGGER audit_tile_parts_no_update BEFORE UPDATE ON audit_tile_parts
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_tile_parts_until_whole BEFORE DELETE ON audit_tile_parts
WHEN NOT EXISTS (SELECT 1 FROM audit_tiles t WHERE t.level = OLD.level AND t.idx = OLD.idx AND length(t.hashes) = 8192)
BEGIN SELECT RAISE(ABORT, 'a part of an audit tile leaves only once the tile is whole'); END;
--- postgres
CREATE FUNCTION audit_tiles_whole() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF length(NEW.hashes) <> 8192 THEN
        RAISE EXCEPTION 'audit tiles are written whole since migration 0006: a server older than its database is appending';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_tiles_whole BEFORE INSERT OR UPDATE ON audit_tiles
    FOR EACH ROW EXECUTE FUNCTION audit_tiles_whole();
CREATE FUNCTION audit_tile_parts_until_whole() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_tiles t WHERE t.level = OLD.level AND t.idx = OLD.idx AND length(t.hashes) = 8192) THEN
        RAISE EXCEPTION 'a part of an audit tile leaves only once the tile is whole';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER audit_tile_parts_no_update BEFORE UPDATE ON audit_tile_parts
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_tile_parts_until_whole BEFORE DELETE ON audit_tile_parts
    FOR EACH ROW EXECUTE FUNCTION audit_tile_parts_until_whole();
CREATE TRIGGER audit_tile_parts_no_truncate BEFORE TRUNCATE ON audit_tile_parts
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
