package keys_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm4"

	"medguard"
	"medguard/internal/keys"
	"medguard/internal/storage/storagetest"
)

var now = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
var clock = medguard.ClockFunc(func() time.Time { return now })

func newKeyring(t testing.TB, alg keys.Algorithm) *keys.Keyring {
	t.Helper()
	db := storagetest.Open(t, keys.Schema())
	return keys.NewKeyring(db, keys.NewKeyFile(alg, now), clock)
}

func TestSealOpenBothAlgorithms(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.SM4GCM, keys.AES256GCM} {
		t.Run(alg.String(), func(t *testing.T) {
			kr := newKeyring(t, alg)
			ctx := context.Background()
			k, err := kr.NewDataKey("patient:p1")
			if err != nil {
				t.Fatal(err)
			}
			loc := keys.Location{Table: "patients", Row: "p1", Column: "name"}
			ct := k.SealString(loc, "张伟")
			if bytes.Contains(ct, []byte("张伟")) {
				t.Fatal("plaintext visible in ciphertext")
			}
			gotAlg, ver, err := keys.Header(ct)
			if err != nil || gotAlg != alg || ver != 1 {
				t.Fatalf("header: %v %v %v", gotAlg, ver, err)
			}
			if len(ct) != keys.Overhead+len("张伟") {
				t.Fatalf("ciphertext length %d", len(ct))
			}
			if err := saveKey(ctx, kr, k); err != nil {
				t.Fatal(err)
			}
			kr.Forget("patient:p1")
			pt, err := kr.OpenString(ctx, "patient:p1", loc, ct)
			if err != nil || pt != "张伟" {
				t.Fatalf("open: %q %v", pt, err)
			}
		})
	}
}

// saveKey stores k through the keyring's own database.
func saveKey(ctx context.Context, kr *keys.Keyring, k *keys.DataKey) error {
	return kr.DB().InTx(ctx, func(tx *sql.Tx) error { return kr.Save(ctx, tx, k) })
}

func TestCiphertextIsBoundToItsPlace(t *testing.T) {
	kr := newKeyring(t, keys.SM4GCM)
	ctx := context.Background()
	k, _ := kr.NewDataKey("patient:p1")
	if err := saveKey(ctx, kr, k); err != nil {
		t.Fatal(err)
	}
	loc := keys.Location{Table: "patients", Row: "p1", Column: "phone"}
	ct := k.SealString(loc, "13912345678")
	for _, other := range []keys.Location{
		{Table: "patients", Row: "p2", Column: "phone"},
		{Table: "patients", Row: "p1", Column: "address"},
		{Table: "records", Row: "p1", Column: "phone"},
	} {
		if _, err := kr.Open(ctx, "patient:p1", other, ct); !errors.Is(err, keys.ErrDecrypt) {
			t.Errorf("opened at %+v: %v", other, err)
		}
	}
	// Any changed byte fails, including the header (algorithm, version).
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if _, err := kr.Open(ctx, "patient:p1", loc, bad); err == nil {
			t.Fatalf("byte %d changed and still opened", i)
		}
	}
	// Another owner's key does not open it.
	k2, _ := kr.NewDataKey("patient:p2")
	saveKey(ctx, kr, k2)
	if _, err := kr.Open(ctx, "patient:p2", loc, ct); err == nil {
		t.Fatal("another patient's key opened it")
	}
}

func TestWrappedKeysNeedTheirKeyFile(t *testing.T) {
	ctx := context.Background()
	db := storagetest.Open(t, keys.Schema())
	kf := keys.NewKeyFile(keys.SM4GCM, now)
	kr := keys.NewKeyring(db, kf, clock)
	k, _ := kr.NewDataKey("patient:p1")
	if err := saveKey(ctx, kr, k); err != nil {
		t.Fatal(err)
	}
	loc := keys.Location{Table: "t", Row: "r", Column: "c"}
	ct := k.SealString(loc, "北京市朝阳区建国路88号")

	// The same database with another key file cannot unwrap.
	other := keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, now), clock)
	if _, err := other.Open(ctx, "patient:p1", loc, ct); err == nil {
		t.Fatal("opened with a different key file")
	}
	// The wrapped key in the database does not contain the raw key.
	var wrapped []byte
	db.QueryRowContext(ctx, `SELECT wrapped FROM data_keys WHERE owner = 'patient:p1'`).Scan(&wrapped)
	if len(wrapped) != keys.Overhead+16 {
		t.Fatalf("wrapped key has %d bytes", len(wrapped))
	}
	// A fresh keyring with the right key file opens it (cold cache).
	again := keys.NewKeyring(db, kf, clock)
	if pt, err := again.OpenString(ctx, "patient:p1", loc, ct); err != nil || pt != "北京市朝阳区建国路88号" {
		t.Fatalf("%q %v", pt, err)
	}
	if _, err := again.Current(ctx, "patient:nobody"); !errors.Is(err, keys.ErrNoKey) {
		t.Fatalf("missing owner: %v", err)
	}
}

func TestSystemKeyIsCreatedOnce(t *testing.T) {
	kr := newKeyring(t, keys.AES256GCM)
	ctx := context.Background()
	a, err := kr.SystemKey(ctx, "totp")
	if err != nil {
		t.Fatal(err)
	}
	kr.Forget("system:totp")
	b, err := kr.SystemKey(ctx, "totp")
	if err != nil {
		t.Fatal(err)
	}
	loc := keys.Location{Table: "users", Row: "u", Column: "totp_secret"}
	if pt, err := kr.Open(ctx, "system:totp", loc, a.SealString(loc, "JBSWY3DPEHPK3PXP")); err != nil || string(pt) != "JBSWY3DPEHPK3PXP" {
		t.Fatal(err)
	}
	if a.Version != b.Version {
		t.Fatal("system key changed")
	}
}

func TestKeyFileLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "medguard.keys")
	kf, created, err := keys.LoadOrCreateKeyFile(path, keys.SM4GCM, now)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
	dst, _ := os.Stat(filepath.Dir(path))
	if dst.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v", dst.Mode().Perm())
	}
	again, created, err := keys.LoadOrCreateKeyFile(path, keys.AES256GCM, now)
	if err != nil || created || !bytes.Equal(again.IndexKey, kf.IndexKey) || again.Algorithm() != keys.SM4GCM {
		t.Fatalf("reload: %v %v", created, err)
	}
	os.Chmod(path, 0o644)
	if _, err := keys.LoadKeyFile(path); !errors.Is(err, keys.ErrKeyFilePermissions) {
		t.Fatalf("world-readable key file accepted: %v", err)
	}
	for _, bad := range []string{`{}`, `not json`, `{"format":"medguard-keys/1","cipher":"DES","index_key":"AAAA","keks":[]}`} {
		if _, err := keys.ParseKeyFile([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestBlindIndex(t *testing.T) {
	a := keys.NewBlindIndex(keys.NewKeyFile(keys.SM4GCM, now))
	b := keys.NewBlindIndex(keys.NewKeyFile(keys.SM4GCM, now))
	if !bytes.Equal(a.Of("id_number", "11010519491231002x"), a.Of("id_number", " 110105 19491231002X")) {
		t.Error("normalisation differs")
	}
	if !bytes.Equal(a.Of("name", "张伟"), a.Of("name", "张伟")) || bytes.Equal(a.Of("name", "张伟"), a.Of("name", "张玮")) {
		t.Error("names")
	}
	if bytes.Equal(a.Of("phone", "13912345678"), a.Of("mrn", "13912345678")) {
		t.Error("fields not separated")
	}
	if bytes.Equal(a.Of("phone", "13912345678"), b.Of("phone", "13912345678")) {
		t.Error("index does not depend on the key")
	}
}

func TestParseAlgorithm(t *testing.T) {
	for in, want := range map[string]keys.Algorithm{"SM4-GCM": keys.SM4GCM, "sm4": keys.SM4GCM, "AES-256-GCM": keys.AES256GCM, "aes": keys.AES256GCM} {
		if got, err := keys.ParseAlgorithm(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	if _, err := keys.ParseAlgorithm("rc4"); err == nil {
		t.Error("rc4 accepted")
	}
}

// The benchmarks compare sealing a field (random nonce, header, associated
// data binding table/row/column) with the same library's raw GCM Seal on the
// same data with a fixed nonce: the target is within 2x (SPEC §13).
var benchSizes = []int{64, 1024, 16384}

var sink []byte

func BenchmarkSeal(b *testing.B) {
	for _, alg := range []keys.Algorithm{keys.SM4GCM, keys.AES256GCM} {
		kr := keys.NewKeyring(nil, keys.NewKeyFile(alg, now), clock)
		k, err := kr.NewDataKey("patient:bench")
		if err != nil {
			b.Fatal(err)
		}
		loc := keys.Location{Table: "record_versions", Row: "01jd0000000000000000000000/3", Column: "text"}
		for _, n := range benchSizes {
			pt := bytes.Repeat([]byte("患"), n/3+1)[:n]
			b.Run(alg.String()+"/field/"+itoa(n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					sink = k.Seal(loc, pt)
				}
			})
			aead := rawAEAD(b, alg)
			nonce := make([]byte, 12)
			dst := make([]byte, 0, n+16)
			b.Run(alg.String()+"/raw/"+itoa(n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					aead.Seal(dst[:0], nonce, pt, nil)
				}
			})
			// The raw cipher writing a fresh ciphertext each time, as any
			// caller that stores ciphertexts must.
			b.Run(alg.String()+"/raw-fresh/"+itoa(n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					sink = aead.Seal(nil, nonce, pt, nil)
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, alg := range []keys.Algorithm{keys.SM4GCM, keys.AES256GCM} {
		kr := newKeyring(b, alg)
		ctx := context.Background()
		k, _ := kr.NewDataKey("patient:bench")
		if err := saveKey(ctx, kr, k); err != nil {
			b.Fatal(err)
		}
		loc := keys.Location{Table: "record_versions", Row: "r/1", Column: "text"}
		for _, n := range benchSizes {
			ct := k.Seal(loc, make([]byte, n))
			b.Run(alg.String()+"/field/"+itoa(n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					if _, err := kr.Open(ctx, "patient:bench", loc, ct); err != nil {
						b.Fatal(err)
					}
				}
			})
			aead := rawAEAD(b, alg)
			nonce := make([]byte, 12)
			sealed := aead.Seal(nil, nonce, make([]byte, n), nil)
			out := make([]byte, 0, n)
			b.Run(alg.String()+"/raw/"+itoa(n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					if _, err := aead.Open(out[:0], nonce, sealed, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(alg.String()+"/raw-fresh/"+itoa(n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					if _, err := aead.Open(nil, nonce, sealed, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func rawAEAD(b *testing.B, alg keys.Algorithm) cipher.AEAD {
	var block cipher.Block
	var err error
	if alg == keys.SM4GCM {
		block, err = sm4.NewCipher(make([]byte, 16))
	} else {
		block, err = aes.NewCipher(make([]byte, 32))
	}
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return aead
}

func itoa(n int) string { return strconv.Itoa(n) + "B" }
