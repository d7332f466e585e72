package backup

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
)

// TestPieceCiphers: a piece sealed with either cipher opens with the same
// key and name, says which cipher it is, and any change — one byte, a cut,
// bytes added, another piece's name, another key — makes it fail.
func TestPieceCiphers(t *testing.T) {
	plain := make([]byte, 200_000) // several 64 KiB fragments
	rand.Read(plain)
	copy(plain, "患者 张伟 北京市朝阳区")
	key, other := newBackupKey(), newBackupKey()
	for _, c := range []string{CipherAES, CipherSM4} {
		t.Run(c, func(t *testing.T) {
			enc, err := encryptReader(c, key, "backups/x/database.sio", bytes.NewReader(plain))
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := io.ReadAll(enc)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(sealed, []byte("张伟")) || bytes.HasPrefix(sealed, sm4Magic) != (c == CipherSM4) {
				t.Fatalf("sealed piece: clear text or the wrong format")
			}
			open := func(b []byte, k []byte, name string) ([]byte, error) {
				dec, err := decryptReader(k, name, bytes.NewReader(b))
				if err != nil {
					return nil, err
				}
				return io.ReadAll(dec)
			}
			if got, err := open(sealed, key, "backups/x/database.sio"); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("round trip: %v", err)
			}
			flip := bytes.Clone(sealed)
			flip[len(flip)/2] ^= 1
			cut := sealed[:len(sealed)-100]
			cutFragment := sealed[:len(sealed)-(len(sealed)%65536)]
			more := append(bytes.Clone(sealed), 0)
			for name, tc := range map[string]struct {
				b    []byte
				k    []byte
				name string
			}{
				"one byte changed":  {flip, key, "backups/x/database.sio"},
				"truncated":         {cut, key, "backups/x/database.sio"},
				"cut at a fragment": {cutFragment, key, "backups/x/database.sio"},
				"extended":          {more, key, "backups/x/database.sio"},
				"another name":      {sealed, key, "backups/y/database.sio"},
				"another key":       {sealed, other, "backups/x/database.sio"},
			} {
				if _, err := open(tc.b, tc.k, tc.name); err == nil {
					t.Errorf("%s: opened", name)
				}
			}
		})
	}
	if _, err := CipherNamed("DES"); err == nil {
		t.Fatal("an unknown cipher was accepted")
	}
	if c, err := CipherNamed("sm4-gcm"); err != nil || c != CipherSM4 {
		t.Fatalf("SM4-GCM: %q %v", c, err)
	}
}
