-- Retention and archiving. Entries are kept at least 180 days; the period
-- may be raised, never lowered. Entries older than it may be archived to
-- signed files (medguard audit archive), a prefix of whole bundles at a
-- time; only then may their bundles and index rows leave the database. The
-- triggers below enforce that for every path, not only the application's.

CREATE TABLE audit_retention (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    days INTEGER NOT NULL CHECK (days >= 180),
    updated_at BIGINT NOT NULL
);
INSERT INTO audit_retention (id, days, updated_at) VALUES (1, 180, 0);

-- One row per archive run: entries [first_idx, end_idx), the newest of them
-- written at newest_ms, and the signed manifest of the files.
CREATE TABLE audit_archives (
    first_idx BIGINT PRIMARY KEY,
    end_idx BIGINT NOT NULL,
    newest_ms BIGINT NOT NULL,
    archived_at BIGINT NOT NULL,
    manifest TEXT NOT NULL,
    CHECK (end_idx > first_idx)
);

--- sqlite
CREATE TRIGGER audit_retention_upward BEFORE UPDATE ON audit_retention
WHEN NEW.days < OLD.days
BEGIN SELECT RAISE(ABORT, 'the audit retention period may be raised, never lowered'); END;
CREATE TRIGGER audit_retention_no_delete BEFORE DELETE ON audit_retention
BEGIN SELECT RAISE(ABORT, 'the audit retention period may be raised, never lowered'); END;

CREATE TRIGGER audit_archives_in_order BEFORE INSERT ON audit_archives
WHEN NEW.first_idx <> COALESCE((SELECT MAX(end_idx) FROM audit_archives), 0)
    OR NEW.end_idx > (SELECT size FROM audit_head)
    OR NEW.newest_ms > CAST(strftime('%s', 'now') AS INTEGER) * 1000 - (SELECT days FROM audit_retention) * 86400000
BEGIN SELECT RAISE(ABORT, 'audit entries may be archived only in order and only when older than the retention period'); END;
CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit archives are append-only'); END;
CREATE TRIGGER audit_archives_no_delete BEFORE DELETE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit archives are append-only'); END;

DROP TRIGGER audit_bundles_no_delete;
CREATE TRIGGER audit_bundles_no_delete BEFORE DELETE ON audit_bundles
WHEN OLD.first_idx + OLD.count > COALESCE((SELECT MAX(end_idx) FROM audit_archives), 0)
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only until archived'); END;
DROP TRIGGER audit_index_no_delete;
CREATE TRIGGER audit_index_no_delete BEFORE DELETE ON audit_index
WHEN OLD.idx >= COALESCE((SELECT MAX(end_idx) FROM audit_archives), 0)
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only until archived'); END;
--- postgres
CREATE FUNCTION audit_retention_upward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.days < OLD.days THEN
        RAISE EXCEPTION 'the audit retention period may be raised, never lowered';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_retention_upward BEFORE UPDATE OR DELETE ON audit_retention
    FOR EACH ROW EXECUTE FUNCTION audit_retention_upward();
CREATE TRIGGER audit_retention_no_truncate BEFORE TRUNCATE ON audit_retention
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE FUNCTION audit_archives_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.first_idx <> COALESCE((SELECT MAX(end_idx) FROM audit_archives), 0)
        OR NEW.end_idx > (SELECT size FROM audit_head)
        OR NEW.newest_ms > (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT - (SELECT days FROM audit_retention) * 86400000::BIGINT THEN
        RAISE EXCEPTION 'audit entries may be archived only in order and only when older than the retention period';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_archives_in_order BEFORE INSERT ON audit_archives
    FOR EACH ROW EXECUTE FUNCTION audit_archives_in_order();
CREATE TRIGGER audit_archives_append_only BEFORE UPDATE OR DELETE ON audit_archives
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_archives_no_truncate BEFORE TRUNCATE ON audit_archives
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Bundles and index rows may be deleted once archived, and not before.
CREATE FUNCTION audit_delete_archived() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    archived BIGINT := COALESCE((SELECT MAX(end_idx) FROM audit_archives), 0);
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- (nested: PL/pgSQL does not short-circuit AND over record fields)
        IF TG_TABLE_NAME = 'audit_bundles' THEN
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
DROP TRIGGER audit_bundles_append_only ON audit_bundles;
CREATE TRIGGER audit_bundles_append_only BEFORE UPDATE OR DELETE ON audit_bundles
    FOR EACH ROW EXECUTE FUNCTION audit_delete_archived();
DROP TRIGGER audit_index_append_only ON audit_index;
CREATE TRIGGER audit_index_append_only BEFORE UPDATE OR DELETE ON audit_index
    FOR EACH ROW EXECUTE FUNCTION audit_delete_archived();
