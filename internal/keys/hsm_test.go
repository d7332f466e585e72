//go:build cgo

package keys_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"medguard/internal/keys"
	"medguard/internal/storage/storagetest"
)

// softHSM initialises a fresh SoftHSM2 token in a temporary directory and
// returns how to reach it. It skips when SoftHSM2 is not installed, unless
// MEDGUARD_TEST_SOFTHSM is set (CI), where a missing SoftHSM2 fails.
func softHSM(t *testing.T) keys.PKCS11Config {
	t.Helper()
	module := os.Getenv("MEDGUARD_PKCS11_MODULE")
	if module == "" {
		for _, m := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
			"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"} {
			if _, err := os.Stat(m); err == nil {
				module = m
				break
			}
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		if os.Getenv("MEDGUARD_TEST_SOFTHSM") != "" {
			t.Fatal("MEDGUARD_TEST_SOFTHSM is set but SoftHSM2 is not installed (apt-get install softhsm2)")
		}
		t.Skip("SoftHSM2 is not installed (apt-get install softhsm2); set MEDGUARD_TEST_SOFTHSM=1 to make this a failure")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", "medguard-test", "--pin", "246810", "--so-pin", "13579111").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	return keys.PKCS11Config{Module: module, Token: "medguard-test", PIN: "246810"}
}

// The KEKs live in a real (software) HSM: versions are generated in the
// token, data keys are wrapped and unwrapped there, a rotation rewraps
// them online, and a wrong PIN or token is refused.
func TestHSMKEKs(t *testing.T) {
	cfg := softHSM(t)
	ctx := context.Background()
	src, err := keys.OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.Versions()) != 0 {
		t.Fatalf("fresh token has versions %v", src.Versions())
	}
	if v, err := src.NewVersion(0, now); err != nil || v != 1 {
		t.Fatalf("first version: %d %v", v, err)
	}
	kf := keys.NewKeyFile(keys.SM4GCM, now)
	kf.KEKs, kf.KEKSource = nil, keys.SourcePKCS11
	db := storagetest.Open(t, keys.Schema())
	kr := keys.NewKeyringFrom(db, kf, src, clock)
	if err := kr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	vals := fill(t, kr, 40)
	var wrapped []byte
	db.QueryRowContext(ctx, `SELECT wrapped FROM data_keys LIMIT 1`).Scan(&wrapped)
	if alg, v, err := keys.Header(wrapped); err != nil || alg != keys.AES256GCM || v != 1 {
		t.Fatalf("wrapped by the HSM: %v %d %v", alg, v, err)
	}
	readAll(t, kr, vals)

	if v := rotate(t, kr); v != 2 {
		t.Fatalf("rotated to %d", v)
	}
	for {
		n, err := kr.RewrapBatch(ctx, 15)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	readAll(t, kr, vals)
	if r, _ := kr.Retirable(ctx); len(r) != 1 || r[0] != 1 {
		t.Fatalf("retirable %v", r)
	}

	// A second session on the same token (another server) sees both
	// versions and opens everything.
	src2, err := keys.OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if vs := src2.Versions(); len(vs) != 2 {
		t.Fatalf("second session sees %v", vs)
	}
	readAll(t, keys.NewKeyringFrom(db, kf, src2, clock), vals)
	src.(interface{ Close() error }).Close()
	src2.(interface{ Close() error }).Close()

	bad := cfg
	bad.PIN = "000000"
	if _, err := keys.OpenPKCS11(bad); err == nil || strings.Contains(err.Error(), "000000") {
		t.Fatalf("wrong PIN: %v", err)
	}
	bad = cfg
	bad.Token = "no-such-token"
	if _, err := keys.OpenPKCS11(bad); err == nil || !strings.Contains(err.Error(), "no-such-token") {
		t.Fatalf("wrong token: %v", err)
	}
}
