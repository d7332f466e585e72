//go:build cgo

package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"medguard/internal/cli"
	"medguard/internal/keys"
	"medguard/internal/storage/storagetest"
)

// An installation whose KEKs are in an HSM (a real SoftHSM2 token): the
// first start generates KEK version 1 in the token, the key file holds no
// KEK, data keys are wrapped in the token, a rotation makes version 2
// there, and "keys rotate" and "keys status" work with the same flags.
func TestHSMInstallation(t *testing.T) {
	module := "/usr/lib/softhsm/libsofthsm2.so"
	util, err := exec.LookPath("softhsm2-util")
	if _, serr := os.Stat(module); serr != nil || err != nil {
		if os.Getenv("MEDGUARD_TEST_SOFTHSM") != "" {
			t.Fatal("MEDGUARD_TEST_SOFTHSM is set but SoftHSM2 is not installed")
		}
		t.Skip("SoftHSM2 is not installed (apt-get install softhsm2)")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
	conf := filepath.Join(dir, "softhsm2.conf")
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command(util, "--init-token", "--free", "--label", "病案库KEK", "--pin", "735146", "--so-pin", "90817263").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	data := filepath.Join(dir, "data")
	hsm := cli.KEKConfig{Source: keys.SourcePKCS11, PKCS11: keys.PKCS11Config{Module: module, Token: "病案库KEK", PIN: "735146"}}
	cfg := cli.Config{DataDir: data, KEK: hsm}
	var dbArgs []string
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		cfg.DB = storagetest.FreshSchema(t, dsn)
		dbArgs = []string{"--db", cfg.DB}
	}
	ctx := context.Background()
	app, err := cli.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := keys.LoadKeyFile(filepath.Join(data, "keys", "medguard.keys"))
	if err != nil || len(kf.KEKs) != 0 || kf.KEKSource != keys.SourcePKCS11 {
		t.Fatalf("key file: %+v %v", kf, err)
	}
	k, err := app.Keys.NewDataKey("patient:hsm1")
	if err != nil {
		t.Fatal(err)
	}
	if err := app.DB.InTx(ctx, func(tx *sql.Tx) error { return app.Keys.Save(ctx, tx, k) }); err != nil {
		t.Fatal(err)
	}
	loc := keys.Location{Table: "patients", Row: "hsm1", Column: "name"}
	ct := k.SealString(loc, "欧阳娜娜")
	_, activate, err := app.Keys.NewKEKVersion(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := app.DB.InTx(ctx, func(tx *sql.Tx) error { return activate(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	app.Close()

	env := map[string]string{"MEDGUARD_PKCS11_PIN": "735146"}
	flags := append([]string{"--data", data, "--kek-source", "pkcs11", "--pkcs11-module", module, "--pkcs11-token", "病案库KEK"}, dbArgs...)
	var out, errb bytes.Buffer
	if err := cli.Run(ctx, append([]string{"keys", "rotate"}, flags...), func(k string) string { return env[k] }, &out, &errb); err != nil {
		t.Fatalf("keys rotate: %v %s", err, errb.String())
	}
	// The patient's data key and medguard's own system keys made at start.
	if !regexp.MustCompile(`rewrapped [1-9]\d* data keys`).MatchString(out.String()) {
		t.Fatalf("rotate said %s", out.String())
	}
	out.Reset()
	if err := cli.Run(ctx, append([]string{"keys", "status"}, flags...), func(k string) string { return env[k] }, &out, &errb); err != nil {
		t.Fatalf("keys status: %v %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "KEK source: pkcs11") || !strings.Contains(out.String(), "active KEK version: 2") {
		t.Fatalf("status: %s", out.String())
	}
	// Without the HSM flags the key file's source is refused clearly.
	_, err = cli.Open(ctx, cli.Config{DataDir: data, DB: cfg.DB, KEK: cli.KEKConfig{Source: keys.SourceFile}})
	if err == nil || !strings.Contains(err.Error(), "pkcs11") {
		t.Fatalf("file source over an HSM key file: %v", err)
	}
	app, err = cli.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if got, err := app.Keys.OpenString(ctx, "patient:hsm1", loc, ct); err != nil || got != "欧阳娜娜" {
		t.Fatalf("%q %v", got, err)
	}
}
