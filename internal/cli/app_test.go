package cli_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// The server refuses to start with a key file that does not belong to the
// database, or with none when the database holds encrypted data — rather
// than failing at the first read, or silently making new keys.
func TestKeyFileMustMatchTheDatabase(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("the key file check is the same on both engines; this test uses the SQLite data directory")
	}
	ctx := context.Background()
	dir := t.TempDir()
	app, err := cli.Open(ctx, cli.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !app.KeyFileCreated {
		t.Fatal("no key file was created")
	}
	call := &medguard.Call{Actor: medguard.Actor{Kind: medguard.APIKeyActor, ID: "k", Name: "apikey:his",
		Scopes: []string{"patient.create"}}}
	if _, err := app.Records.CreatePatient(ctx, call, records.NewPatient{Name: "王秀英"}); err != nil {
		t.Fatal(err)
	}
	app.Close()

	path := filepath.Join(dir, "keys", "medguard.keys")
	good, _ := os.ReadFile(path)
	os.Remove(path)
	if _, err := cli.Open(ctx, cli.Config{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key file: %v", err)
	}
	if err := keys.WriteKeyFile(path, keys.NewKeyFile(keys.SM4GCM, medguard.SystemClock{}.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Open(ctx, cli.Config{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("wrong key file: %v", err)
	}
	os.Remove(path)
	os.WriteFile(path, good, 0o600)
	app, err = cli.Open(ctx, cli.Config{DataDir: dir})
	if err != nil {
		t.Fatalf("the right key file: %v", err)
	}
	app.Close()
}

// /readyz answers 503 while the audit log cannot commit (a full disk, a
// lost database), so that a load balancer sends no traffic to a server
// that would fail every write — and 200 again once a commit succeeds.
func TestReadyzWhileTheLogCannotCommit(t *testing.T) {
	ctx := context.Background()
	app := openApp(t, nil)
	srv := httptest.NewTLSServer(app.Web.Handler())
	defer srv.Close()
	ready := func() int {
		resp, err := srv.Client().Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := ready(); st != 200 {
		t.Fatalf("a fresh server: %d", st)
	}
	// Every insert into the log's index fails, as on a full disk.
	full := []string{`CREATE TRIGGER disk_full BEFORE INSERT ON audit_index BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`}
	healed := []string{`DROP TRIGGER disk_full`}
	if app.DB.Dialect == storage.Postgres {
		full = []string{`CREATE FUNCTION disk_full() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER disk_full BEFORE INSERT ON audit_index FOR EACH ROW EXECUTE FUNCTION disk_full()`}
		healed = []string{`DROP TRIGGER disk_full ON audit_index`, `DROP FUNCTION disk_full()`}
	}
	for _, q := range full {
		if _, err := app.DB.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	login := func() int {
		resp, err := srv.Client().Post(srv.URL+"/api/v1/auth/login", "application/json",
			strings.NewReader(`{"username":"nobody","password":"Cuowu#Mima2026"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := login(); st < 500 {
		t.Fatalf("a sign-in the log cannot record: %d", st)
	}
	if st := ready(); st != 503 {
		t.Fatalf("while the log cannot commit: %d", st)
	}
	for _, q := range healed {
		if _, err := app.DB.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if st := login(); st != 401 {
		t.Fatalf("a sign-in once healed: %d", st)
	}
	if st := ready(); st != 200 {
		t.Fatalf("healed: %d", st)
	}
}

// A client that sends its body slowly is cut off at the body deadline
// instead of holding a connection and a request for minutes.
func TestSlowBodiesAreCut(t *testing.T) {
	app := openApp(t, nil)
	app.Web.BodyDeadline = 300 * time.Millisecond
	srv := httptest.NewTLSServer(app.Web.Handler())
	defer srv.Close()
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), srv.Client().Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The head and one byte of a 1000-byte body, then nothing.
	fmt.Fprintf(conn, "POST /api/v1/auth/login HTTP/1.1\r\nHost: medguard\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	// Were the body waited for, this read would time out.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("a slow body: %d", resp.StatusCode)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server waited for a slow body")
	}
}

// openApp opens a fresh installation in-process (on PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set) on clock (the system's if nil), closed
// when the test ends.
func openApp(t *testing.T, clock medguard.Clock) *cli.App {
	t.Helper()
	cfg := cli.Config{DataDir: t.TempDir(), Clock: clock}
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		cfg.DB = storagetest.FreshSchema(t, dsn)
	}
	app, err := cli.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}
