-- Searches over time read the time map (audit_time_blocks) and then the
-- index rows by entry index; nothing reads audit_index by time_ms alone, and
-- its index cost a fifth of every row's write.
DROP INDEX audit_index_time;

--- postgres
-- The tables that grow with the log — audit_index (a row an entry) and
-- audit_bundles (the leaves themselves) — are partitioned by range of
-- entry index, so that a log of 100 M entries is a dozen tables of a few
-- million rows: each index stays small enough to cache, and whole
-- partitions can be vacuumed, backed up or (once archived) dropped on
-- their own. audit_tiles (one row per 256 entries) and audit_time_blocks
-- (one per 4,096) stay single tables.
--
-- The existing tables become the first partitions, covering the entries
-- they hold; the appender adds the next ones ahead of need, each in its own
-- transaction (audit_add_partition). audit_partitions records the ranges.
CREATE TABLE audit_partitions (
    first_idx BIGINT PRIMARY KEY,
    end_idx BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (end_idx > first_idx)
);

-- (Partitions fire these triggers under their own names.)
CREATE OR REPLACE FUNCTION audit_delete_archived() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    archived BIGINT := COALESCE((SELECT MAX(end_idx) FROM audit_archives), 0);
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- (nested: PL/pgSQL does not short-circuit AND over record fields)
        IF TG_TABLE_NAME LIKE 'audit\_bundles%' THEN
            IF OLD.first_idx + OLD.count <= archived THEN
                RETURN OLD;
            END IF;
        ELSIF OLD.idx < archived THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit entries are append-only until archived';
    END IF;
    RAISE EXCEPTION 'audit entries are append-only';
END $$;

ALTER TABLE audit_bundles RENAME TO audit_bundles_p0;
ALTER INDEX audit_bundles_pkey RENAME TO audit_bundles_p0_pkey;
DROP TRIGGER audit_bundles_append_only ON audit_bundles_p0;
CREATE TABLE audit_bundles (
    first_idx BIGINT NOT NULL,
    leaves BYTEA NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (first_idx)
) PARTITION BY RANGE (first_idx);
CREATE TRIGGER audit_bundles_append_only BEFORE UPDATE OR DELETE ON audit_bundles
    FOR EACH ROW EXECUTE FUNCTION audit_delete_archived();
CREATE TRIGGER audit_bundles_no_truncate BEFORE TRUNCATE ON audit_bundles
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

ALTER TABLE audit_index RENAME TO audit_index_p0;
ALTER INDEX audit_index_pkey RENAME TO audit_index_p0_pkey;
ALTER INDEX audit_index_actor RENAME TO audit_index_p0_actor;
ALTER INDEX audit_index_patient RENAME TO audit_index_p0_patient;
ALTER INDEX audit_index_action RENAME TO audit_index_p0_action;
DROP TRIGGER audit_index_append_only ON audit_index_p0;
CREATE TABLE audit_index (
    idx BIGINT NOT NULL,
    time_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    patient_id TEXT,
    PRIMARY KEY (idx)
) PARTITION BY RANGE (idx);
CREATE INDEX audit_index_actor ON audit_index (actor, idx);
CREATE INDEX audit_index_patient ON audit_index (patient_id, idx);
CREATE INDEX audit_index_action ON audit_index (action, idx);
CREATE TRIGGER audit_index_append_only BEFORE UPDATE OR DELETE ON audit_index
    FOR EACH ROW EXECUTE FUNCTION audit_delete_archived();
CREATE TRIGGER audit_index_no_truncate BEFORE TRUNCATE ON audit_index
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- The first partitions hold what there is, up to the next multiple of
-- 4,096 entries (rows beyond the tree head, which verify reports, too).
DO $$
DECLARE
    hi BIGINT := GREATEST((SELECT size FROM audit_head),
        (SELECT MAX(first_idx) + 1 FROM audit_bundles_p0), (SELECT MAX(idx) + 1 FROM audit_index_p0), 1);
BEGIN
    hi := (hi + 4095) / 4096 * 4096;
    EXECUTE format('ALTER TABLE audit_bundles ATTACH PARTITION audit_bundles_p0 FOR VALUES FROM (0) TO (%s)', hi);
    EXECUTE format('ALTER TABLE audit_index ATTACH PARTITION audit_index_p0 FOR VALUES FROM (0) TO (%s)', hi);
    INSERT INTO audit_partitions (first_idx, end_idx, created_at) VALUES (0, hi, 0);
END $$;

-- Leaves are compressed with LZ4 where the server has it (PostgreSQL 14
-- on, built with it): a tenth of the time of the default, pglz, when a
-- bundle is stored, and faster to read. Tiles hold hashes, which do not
-- compress: they are not tried.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        -- (not inherited by existing partitions; new ones copy it)
        ALTER TABLE audit_bundles ALTER COLUMN leaves SET COMPRESSION lz4;
        ALTER TABLE audit_bundles_p0 ALTER COLUMN leaves SET COMPRESSION lz4;
    END IF;
END $$;
ALTER TABLE audit_tiles ALTER COLUMN hashes SET STORAGE EXTERNAL;

-- audit_add_partition adds the partitions of the next span entries to both
-- tables and returns the end of the entries covered. Each is created
-- empty and then attached, which locks the parent only against other
-- schema changes — appends, searches and a running verify go on.
CREATE FUNCTION audit_add_partition(span BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    lo BIGINT;
    hi BIGINT;
    t TEXT;
BEGIN
    LOCK TABLE audit_partitions IN EXCLUSIVE MODE; -- one server at a time
    lo := (SELECT MAX(end_idx) FROM audit_partitions);
    hi := lo + span;
    FOREACH t IN ARRAY ARRAY['audit_bundles', 'audit_index'] LOOP
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)', t || '_p' || lo, t);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', t, t || '_p' || lo, lo, hi);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()',
            t || '_no_truncate', t || '_p' || lo);
    END LOOP;
    INSERT INTO audit_partitions (first_idx, end_idx, created_at)
        VALUES (lo, hi, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT);
    RETURN hi;
END $$;
