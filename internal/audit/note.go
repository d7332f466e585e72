package audit

// SignNote signs a note's text (a destruction certificate, say) with the
// log's Ed25519 key, as a C2SP signed note that OpenNote verifies offline.
func (s *Signer) SignNote(text string) ([]byte, error) { return s.signText(text) }

// OpenNote verifies a signed note with a note verifier key
// (name+hash+base64key) and returns its text.
func OpenNote(msg []byte, verifierKey string) (string, error) { return openNote(msg, verifierKey) }
