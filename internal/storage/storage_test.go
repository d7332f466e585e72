package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"medguard"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

var testSchema = storage.Schema{Owner: "test", FS: os.DirFS("testdata/schema")}

// each runs fn against SQLite, and against PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set: the one store suite for both engines.
func each(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, storagetest.OpenSQLite(t, testSchema)) })
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		t.Run("postgres", func(t *testing.T) { fn(t, storagetest.OpenPostgres(t, dsn, testSchema)) })
	}
}

func TestMigrateIsIdempotentAndRecorded(t *testing.T) {
	each(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, testSchema); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE owner = 'test'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("%d migrations recorded, want 2", n)
		}
	})
}

func TestConflictAndForeignKeyKinds(t *testing.T) {
	each(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		ins := func(id, name string) error {
			return db.InTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO things (id, name, payload, created_at) VALUES ($1, $2, $3, $4)`,
					id, name, []byte{0, 1, 2}, 1)
				return err
			})
		}
		if err := ins("a", "心内科"); err != nil {
			t.Fatal(err)
		}
		if err := ins("b", "心内科"); !medguard.IsKind(err, medguard.Conflict) {
			t.Fatalf("duplicate name: %v, want conflict", err)
		}
		if err := ins("a", "神经内科"); !medguard.IsKind(err, medguard.Conflict) {
			t.Fatalf("duplicate key: %v, want conflict", err)
		}
		_, err := db.ExecContext(ctx, `INSERT INTO parts (id, thing_id) VALUES ('p', 'nope')`)
		if !medguard.IsKind(err, medguard.Invalid) {
			t.Fatalf("dangling reference: %v, want invalid", err)
		}
		var payload []byte
		if err := db.QueryRowContext(ctx, `SELECT payload FROM things WHERE id = 'a'`).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if string(payload) != "\x00\x01\x02" {
			t.Fatalf("payload %x", payload)
		}
	})
}

func TestRollbackOnError(t *testing.T) {
	each(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, name, created_at) VALUES ('x', '急诊科', 1)`); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		var n int
		db.QueryRowContext(ctx, `SELECT count(*) FROM things`).Scan(&n)
		if n != 0 {
			t.Fatal("rolled-back insert is visible")
		}
	})
}

func TestSQLiteReadPoolIsQueryOnly(t *testing.T) {
	db := storagetest.OpenSQLite(t, testSchema)
	if _, err := db.QueryContext(context.Background(), `INSERT INTO things (id, name, created_at) VALUES ('q', 'q', 1)`); err == nil {
		t.Fatal("read pool accepted a write")
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := os.Stat(filepath.Join(dir, "medguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestMigrationNamesChecked(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	bad := storage.Schema{Owner: "bad", FS: fstest.MapFS{"x_init.sql": {Data: []byte("SELECT 1")}}}
	if err := db.Migrate(context.Background(), bad); err == nil {
		t.Fatal("accepted a migration without a number")
	}
	dup := storage.Schema{Owner: "dup", FS: fstest.MapFS{"1_a.sql": {Data: []byte("SELECT 1")}, "0001_b.sql": {Data: []byte("SELECT 1")}}}
	if err := db.Migrate(context.Background(), dup); err == nil {
		t.Fatal("accepted two migrations with one number")
	}
}

func TestOpenRejectsUnknownDSN(t *testing.T) {
	if _, err := storage.Open(context.Background(), "mysql://x", t.TempDir()); !medguard.IsKind(err, medguard.Invalid) {
		t.Fatalf("got %v", err)
	}
}

// Connection says whether the link to PostgreSQL is encrypted, as the
// server sees it too (pg_stat_ssl); SQLite has no link.
func TestConnection(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		c, err := storagetest.OpenSQLite(t).Connection(ctx)
		if err != nil || c.Network {
			t.Fatalf("SQLite: %+v, %v; want no network link", c, err)
		}
	})
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		return
	}
	for _, mode := range []string{"disable", "require"} {
		t.Run("postgres sslmode="+mode, func(t *testing.T) {
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("sslmode", mode)
			u.RawQuery = q.Encode()
			db, err := storage.Open(ctx, u.String(), "")
			if err != nil {
				if mode == "require" {
					t.Skipf("the test server does not offer TLS: %v", err)
				}
				t.Fatal(err)
			}
			defer db.Close()
			c, err := db.Connection(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var serverSaysSSL bool
			var version sql.NullString
			if err := db.QueryRowContext(ctx, `SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&serverSaysSSL, &version); err != nil {
				t.Fatal(err)
			}
			wantTLS := mode == "require"
			if !c.Network || c.TLS != wantTLS || serverSaysSSL != wantTLS || c.SSLMode != mode || c.Target == "" {
				t.Fatalf("%+v; the server says ssl=%v; want TLS %v", c, serverSaysSSL, wantTLS)
			}
			if wantTLS && (c.TLSVersion != strings.ReplaceAll(version.String, "v", " ") || !strings.HasPrefix(c.TLSVersion, "TLS 1.")) {
				t.Fatalf("TLS version %q; the server says %q", c.TLSVersion, version.String)
			}
			if h := u.Hostname(); (h == "127.0.0.1" || h == "localhost" || h == "::1") && !c.Local {
				t.Fatalf("%+v is not local", c)
			}
		})
	}
}

// IsBusy tells SQLite's "database is locked" — a write to try again —
// from every other error.
func TestIsBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	holder, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.Exec(`CREATE TABLE t (note TEXT)`); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.Begin() // holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.Exec(`INSERT INTO t (note) VALUES ('备份期间写入')`)
	if !storage.IsBusy(err) || !storage.IsBusy(fmt.Errorf("ensure wal exists: %w", err)) {
		t.Fatalf("a write while another holds the lock: %v, not busy", err)
	}
	_, err = other.Exec(`INSERT INTO nosuch (note) VALUES ('x')`)
	if err == nil || storage.IsBusy(err) || storage.IsBusy(nil) || storage.IsBusy(errors.New("database is locked")) {
		t.Fatalf("not busy errors taken for busy: %v", err)
	}
}

// A server's PostgreSQL pool is opened at start and kept: a burst of
// queries beyond it waits for its connections instead of making the
// database start new backends, and the same backends serve burst after
// burst.
func TestKeepConnections(t *testing.T) {
	ctx := context.Background()
	each(t, func(t *testing.T, db *storage.DB) {
		if err := db.KeepConnections(ctx, 0); !medguard.IsKind(err, medguard.Invalid) {
			t.Fatalf("0 connections: %v; want Invalid", err)
		}
		if err := db.KeepConnections(ctx, 3); err != nil {
			t.Fatal(err)
		}
		if db.Dialect != storage.Postgres {
			return
		}
		if st := db.Stats(); st.OpenConnections != 3 || st.Idle != 3 || st.MaxOpenConnections != 3 {
			t.Fatalf("after KeepConnections(3): %+v; want 3 open, idle, at most", st)
		}
		burst := func() map[int]bool {
			pids := make(chan int, 12)
			errs := make(chan error, 12)
			for range 12 {
				go func() {
					var pid int
					err := db.QueryRowContext(ctx, `SELECT pg_backend_pid() FROM pg_sleep(0.02)`).Scan(&pid)
					pids <- pid
					errs <- err
				}()
			}
			seen := map[int]bool{}
			for range 12 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
				seen[<-pids] = true
			}
			return seen
		}
		first, second := burst(), burst()
		all := maps.Clone(first)
		maps.Copy(all, second)
		if len(all) > 3 {
			t.Fatalf("backends of two bursts of 12 queries: %v then %v; want the same 3 at most", first, second)
		}
		if st := db.Stats(); st.OpenConnections != 3 || st.WaitCount == 0 {
			t.Fatalf("after the bursts: %+v; want 3 connections, and queries that waited for one", st)
		}
	})
}
