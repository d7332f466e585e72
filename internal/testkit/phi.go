package testkit

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf16"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Secret is one piece of patient data with the byte forms it could take
// on disk: UTF-8, UTF-16 (both byte orders), GB18030, and JSON's \u escapes.
type Secret struct {
	Text  string
	Forms [][]byte
}

// PHI returns the byte forms of each piece of patient data to look for.
func PHI(values ...string) []Secret {
	var out []Secret
	for _, v := range values {
		s := Secret{Text: v, Forms: [][]byte{[]byte(v)}}
		u := utf16.Encode([]rune(v))
		le, be := make([]byte, 0, 2*len(u)), make([]byte, 0, 2*len(u))
		for _, c := range u {
			le = append(le, byte(c), byte(c>>8))
			be = append(be, byte(c>>8), byte(c))
		}
		s.Forms = append(s.Forms, le, be)
		if gb, err := simplifiedchinese.GB18030.NewEncoder().String(v); err == nil && gb != v {
			s.Forms = append(s.Forms, []byte(gb))
		}
		var esc strings.Builder
		enc := json.NewEncoder(&esc)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		ascii := strings.TrimSpace(esc.String())
		var jsonEsc strings.Builder
		for _, r := range strings.Trim(ascii, `"`) {
			if r > 127 {
				for _, c := range utf16.Encode([]rune{r}) {
					jsonEsc.WriteString(`\u`)
					jsonEsc.WriteString(strings.ToLower(hex4(c)))
				}
			} else {
				jsonEsc.WriteRune(r)
			}
		}
		if jsonEsc.String() != v {
			s.Forms = append(s.Forms, []byte(jsonEsc.String()))
		}
		out = append(out, s)
	}
	return out
}

func hex4(c uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>12], digits[c>>8&0xf], digits[c>>4&0xf], digits[c&0xf]})
}

// AssertNoPHI fails the test if any form of any secret occurs in the file.
func AssertNoPHI(t testing.TB, path string, secrets []Secret) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	for _, s := range secrets {
		for _, form := range s.Forms {
			if i := bytes.Index(data, form); i >= 0 {
				t.Errorf("%s holds patient data %q in clear at byte %d", path, s.Text, i)
				break
			}
		}
	}
}
