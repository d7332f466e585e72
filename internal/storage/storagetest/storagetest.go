// Package storagetest opens throw-away databases for tests: a SQLite file in
// the test's temporary directory, or — when MEDGUARD_TEST_POSTGRES names a
// PostgreSQL database — a fresh schema in it, dropped when the test ends.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"medguard/internal/storage"
)

// PostgresEnv is the environment variable naming the PostgreSQL test database.
const PostgresEnv = "MEDGUARD_TEST_POSTGRES"

// Open returns a migrated, empty database for one test. It uses PostgreSQL
// when MEDGUARD_TEST_POSTGRES is set and SQLite otherwise, so that running the
// suite twice (with and without the variable) covers both engines.
func Open(t testing.TB, schemas ...storage.Schema) *storage.DB {
	t.Helper()
	if dsn := os.Getenv(PostgresEnv); dsn != "" {
		return OpenPostgres(t, dsn, schemas...)
	}
	return OpenSQLite(t, schemas...)
}

// OpenIn is Open with the SQLite file in dir (whose files a test may then
// scan for patient data); with PostgreSQL, dir holds nothing.
func OpenIn(t testing.TB, dir string, schemas ...storage.Schema) *storage.DB {
	t.Helper()
	if dsn := os.Getenv(PostgresEnv); dsn != "" {
		return OpenPostgres(t, dsn, schemas...)
	}
	return openSQLite(t, dir, schemas...)
}

// OpenSQLite returns a migrated SQLite database in the test's temp directory.
func OpenSQLite(t testing.TB, schemas ...storage.Schema) *storage.DB {
	t.Helper()
	return openSQLite(t, t.TempDir(), schemas...)
}

func openSQLite(t testing.TB, dir string, schemas ...storage.Schema) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background(), schemas...); err != nil {
		t.Fatal(err)
	}
	return db
}

// OpenPostgres returns a migrated, fresh schema in the PostgreSQL database dsn.
func OpenPostgres(t testing.TB, dsn string, schemas ...storage.Schema) *storage.DB {
	t.Helper()
	schemaDSN := FreshSchema(t, dsn)
	db, err := storage.Open(context.Background(), schemaDSN, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background(), schemas...); err != nil {
		t.Fatal(err)
	}
	return db
}

// FreshSchema creates an empty schema in the PostgreSQL database dsn, drops
// it when the test ends, and returns a DSN whose search_path is that schema.
// Several servers opened with the returned DSN share the schema.
func FreshSchema(t testing.TB, dsn string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "mgtest_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Named returns schemaDSN (from FreshSchema) with a connection name of its
// own, by which EndConnections finds the connections opened with it.
func Named(t testing.TB, schemaDSN, name string) string {
	t.Helper()
	u, err := url.Parse(schemaDSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name+"-"+q.Get("search_path"))
	u.RawQuery = q.Encode()
	return u.String()
}

// EndConnections has PostgreSQL end every connection opened with namedDSN
// (from Named), as a restart or failover of the database would, and
// returns how many it ended; admin is a DSN of the same database.
func EndConnections(t testing.TB, admin, namedDSN string) int {
	t.Helper()
	u, err := url.Parse(namedDSN)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND pid <> pg_backend_pid()`, u.Query().Get("application_name")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Rows is the number of rows in table (a name the test chose, never
// input): what a test counts to show that a refused call stored nothing.
func Rows(t testing.TB, db *storage.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
