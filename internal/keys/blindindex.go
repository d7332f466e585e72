package keys

import (
	"crypto/hmac"
	"strings"
	"unicode"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/text/unicode/norm"
)

// BlindIndex computes keyed blind indexes: HMAC-SM3 over the field's name and
// its normalised value, under one version of the key file's index key. Equal
// values give equal indexes, so exact search works on encrypted fields, while
// without the key an index reveals nothing — not even for low-entropy values
// such as phone numbers, which an unkeyed hash would give away to a
// dictionary.
type BlindIndex struct {
	version uint32
	key     []byte
}

// NewBlindIndex returns the blind index keyed by the newest version of the
// key file's index key.
func NewBlindIndex(kf *KeyFile) *BlindIndex {
	vs := kf.IndexKeyVersions()
	return newBlindIndex(vs[len(vs)-1])
}

func newBlindIndex(k IndexKey) *BlindIndex { return &BlindIndex{version: k.Version, key: k.Secret} }

// Version returns the version of the index key this index is keyed by.
func (b *BlindIndex) Version() uint32 { return b.version }

// Of returns the index of value in the named field. Values are normalised
// first (Unicode NFKC, spaces removed, letters upper-cased), so that
// "110105 19491231 002x" and "11010519491231002X" index alike.
func (b *BlindIndex) Of(field, value string) []byte {
	m := hmac.New(sm3.New, b.key)
	m.Write([]byte(field))
	m.Write([]byte{0})
	m.Write([]byte(Normalize(value)))
	return m.Sum(nil)
}

// Normalize is the form in which values are indexed: NFKC, no white space,
// upper case.
func Normalize(value string) string {
	s := norm.NFKC.String(value)
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
}
