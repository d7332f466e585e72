//go:build !cgo

package keys_test

import (
	"errors"
	"strings"
	"testing"

	"medguard/internal/keys"
)

// Without cgo there is no PKCS#11, and the error says so plainly.
func TestNoHSMWithoutCgo(t *testing.T) {
	_, err := keys.OpenPKCS11(keys.PKCS11Config{Module: "/usr/lib/softhsm/libsofthsm2.so", Token: "t", PIN: "1"})
	if !errors.Is(err, keys.ErrNoHSM) || !strings.Contains(err.Error(), "HSM support is not compiled in") {
		t.Fatalf("%v", err)
	}
}
