package keys_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"medguard/internal/keys"
)

// A key file from before index key versions (index_key only) reads as
// version 1 of the index key; a later file holds index_keys, with or
// without version 1; repeated, short or missing index keys are refused.
func TestIndexKeyVersionsInKeyFile(t *testing.T) {
	kf := keys.NewKeyFile(keys.SM4GCM, now)
	old := kf.Marshal()
	if bytes.Contains(old, []byte("index_keys")) {
		t.Fatalf("a new key file writes index_keys: %s", old)
	}
	got, err := keys.ParseKeyFile(old)
	if err != nil {
		t.Fatal(err)
	}
	vs := got.IndexKeyVersions()
	if len(vs) != 1 || vs[0].Version != 1 || !bytes.Equal(vs[0].Secret, kf.IndexKey) {
		t.Fatalf("versions %+v", vs)
	}
	a := keys.NewBlindIndex(got)
	if a.Version() != 1 || !bytes.Equal(a.Of("name", "王秀英"), keys.NewBlindIndex(kf).Of("name", "王秀英")) {
		t.Fatal("version 1 indexes differently")
	}

	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	rotated := strings.Replace(string(old), `"index_key"`, `"index_keys": [{"version": 2, "secret": "`+secret+`"}], "index_key"`, 1)
	got, err = keys.ParseKeyFile([]byte(rotated))
	if err != nil {
		t.Fatal(err)
	}
	if b := keys.NewBlindIndex(got); b.Version() != 2 || bytes.Equal(b.Of("name", "王秀英"), a.Of("name", "王秀英")) {
		t.Fatal("version 2 is not the newest or indexes like version 1")
	}
	for name, bad := range map[string]string{
		"repeated": strings.Replace(string(old), `"index_key"`, `"index_keys": [{"version": 1, "secret": "`+secret+`"}], "index_key"`, 1),
		"short":    strings.Replace(string(old), `"index_key"`, `"index_keys": [{"version": 2, "secret": "AAAA"}], "index_key"`, 1),
		"none":     strings.Replace(string(old), `"index_key"`, `"index_key_gone"`, 1),
	} {
		if _, err := keys.ParseKeyFile([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
