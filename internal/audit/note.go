package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// SignNote signs a note's text (a destruction certificate, say) with the
// log's Ed25519 key, as a C2SP signed note that OpenNote verifies offline.
func (s *Signer) SignNote(text string) ([]byte, error) { return s.signText(text) }

// OpenNote verifies a signed note with a note verifier key
// (name+hash+base64key) and returns its text.
func OpenNote(msg []byte, verifierKey string) (string, error) { return openNote(msg, verifierKey) }

// Signed documents (destruction certificates, de-identification
// manifests) are a signed note whose text is a format line and the
// document's canonical JSON.

// documentText is the signed text of a document of the given format.
func documentText(format string, doc any) (string, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	return format + "\n" + string(b) + "\n", nil
}

// SignDocument signs doc (its JSON) under the format line.
func (s *Signer) SignDocument(format string, doc any) (string, error) {
	text, err := documentText(format, doc)
	if err != nil {
		return "", err
	}
	n, err := s.signText(text)
	return string(n), err
}

// Why a document does not verify (OpenDocument).
var (
	ErrDocumentSignature = errors.New("the signature")
	ErrDocumentKind      = errors.New("the signed note is of another kind")
	ErrDocumentChanged   = errors.New("the document differs from what was signed")
)

// OpenDocument checks that note verifies with verifierKey and says exactly
// what doc says under the format line; its errors are one of the three
// above (the signature's with the cause).
func OpenDocument(note, verifierKey, format string, doc any) error {
	text, err := openNote([]byte(note), verifierKey)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDocumentSignature, err)
	}
	want, err := documentText(format, doc)
	if err != nil {
		return err
	}
	if text != want {
		if first, _, _ := strings.Cut(text, "\n"); first != format {
			return ErrDocumentKind
		}
		return ErrDocumentChanged
	}
	return nil
}
