package backup

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
)

// ed25519PublicFromNoteKey derives the public key from the base64 private
// part of a note signer key (algorithm byte 1, then the 32-byte seed).
func ed25519PublicFromNoteKey(b64 string) (ed25519.PublicKey, error) {
	priv, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(priv) != 33 || priv[0] != 1 {
		return nil, errors.New("backup: signing key is not an Ed25519 note key")
	}
	return ed25519.NewKeyFromSeed(priv[1:]).Public().(ed25519.PublicKey), nil
}
