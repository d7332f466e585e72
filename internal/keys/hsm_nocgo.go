//go:build !cgo

package keys

// HSMCompiledIn says whether this build can reach a PKCS#11 module.
const HSMCompiledIn = false

// OpenPKCS11 would open the HSM holding the KEKs; this build has no
// PKCS#11 support (it was built without cgo), and says so.
func OpenPKCS11(PKCS11Config) (KEKSource, error) { return nil, ErrNoHSM }
