package storage

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Schema is one capability's tables: the owner's name and its migrations.
// Each capability package embeds its own migrations and owns its tables; no
// package writes to another's.
//
// FS holds files named NNNN_description.sql, applied in order of NNNN. One
// file serves both engines: lines after "--- sqlite" apply only to SQLite,
// lines after "--- postgres" only to PostgreSQL, and lines after "--- common"
// (the default) to both.
type Schema struct {
	Owner string
	FS    fs.FS
}

// NewSchema returns the schema of owner whose migrations are in dir of fsys
// (typically an embed.FS).
func NewSchema(owner string, fsys fs.FS, dir string) Schema {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic("storage: " + err.Error())
	}
	return Schema{Owner: owner, FS: sub}
}

type migration struct {
	version int
	name    string
	sql     string
}

// Migrate brings every schema up to date, in the order given (owners whose
// tables refer to others' come later). On PostgreSQL an advisory lock makes
// concurrent servers take turns; each migration runs in its own transaction.
func (db *DB) Migrate(ctx context.Context, schemas ...Schema) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		owner TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at BIGINT NOT NULL,
		PRIMARY KEY (owner, version))`); err != nil {
		return fmt.Errorf("storage: migrate: %w", err)
	}
	for _, s := range schemas {
		ms, err := db.load(s)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if err := db.apply(ctx, s.Owner, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (db *DB) load(s Schema) ([]migration, error) {
	names, err := fs.Glob(s.FS, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		prefix, _, ok := strings.Cut(path.Base(n), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("storage: %s migration %s: name must start with a number and _", s.Owner, n)
		}
		b, err := fs.ReadFile(s.FS, n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: n, sql: db.section(string(b))})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("storage: %s has two migrations numbered %d", s.Owner, ms[i].version)
		}
	}
	return ms, nil
}

// section keeps the lines of a migration file that apply to this engine.
func (db *DB) section(text string) string {
	var b strings.Builder
	keep := true
	for _, line := range strings.SplitAfter(text, "\n") {
		switch strings.TrimSpace(line) {
		case "--- common":
			keep = true
			continue
		case "--- sqlite":
			keep = db.Dialect == SQLite
			continue
		case "--- postgres":
			keep = db.Dialect == Postgres
			continue
		}
		if keep {
			b.WriteString(line)
		}
	}
	return b.String()
}

func (db *DB) apply(ctx context.Context, owner string, m migration) error {
	return db.InTx(ctx, func(tx *sql.Tx) error {
		if db.Dialect == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7246381)`); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE owner = $1 AND version = $2`,
			owner, m.version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("storage: %s migration %s: %w", owner, m.name, err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (owner, version, name, applied_at) VALUES ($1, $2, $3, $4)`,
			owner, m.version, m.name, time.Now().UnixMilli())
		return err
	})
}
