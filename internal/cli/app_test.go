package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/keys"
	"medguard/internal/records"
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
