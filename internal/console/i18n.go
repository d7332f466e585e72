package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"

	"golang.org/x/text/language"
)

// Languages are the console's languages, the default first.
var Languages = []string{"zh-CN", "en"}

var matcher = language.NewMatcher([]language.Tag{language.MustParse("zh-CN"), language.English})

//go:embed locale
var localeFS embed.FS

// catalog holds every message in every language: locale/<lang>/<area>.json
// files, merged.
type catalog struct {
	msgs map[string]map[string]string // lang → key → text
}

// loadCatalog merges the embedded catalogs; a key defined in two files of
// one language is an error.
func loadCatalog() (*catalog, error) { return loadCatalogFrom(localeFS, "locale") }

func loadCatalogFrom(fsys fs.FS, root string) (*catalog, error) {
	c := &catalog{msgs: map[string]map[string]string{}}
	for _, lang := range Languages {
		c.msgs[lang] = map[string]string{}
		files, err := fs.Glob(fsys, path.Join(root, lang, "*.json"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no catalog for %s", lang)
		}
		from := map[string]string{}
		for _, f := range files {
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				return nil, err
			}
			var m map[string]string
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			for k, v := range m {
				if prev, dup := from[k]; dup {
					return nil, fmt.Errorf("key %q is in both %s and %s", k, prev, f)
				}
				from[k] = f
				c.msgs[lang][k] = v
			}
		}
	}
	return c, nil
}

// missing lists the keys some language has and another lacks.
func (c *catalog) missing() []string {
	all := map[string]bool{}
	for _, m := range c.msgs {
		for k := range m {
			all[k] = true
		}
	}
	var out []string
	for k := range all {
		for _, lang := range Languages {
			if _, ok := c.msgs[lang][k]; !ok {
				out = append(out, lang+": "+k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// check reports a key that is missing from a language.
func (c *catalog) check(key string) error {
	for _, lang := range Languages {
		if _, ok := c.msgs[lang][key]; !ok {
			return fmt.Errorf("message %q is missing from the %s catalog", key, lang)
		}
	}
	return nil
}

// text returns the message key in lang, formatted with args (fmt verbs,
// indexed ones like %[2]s where languages order words differently). A
// missing key shows as the key itself.
func (c *catalog) text(lang, key string, args ...any) string {
	s, ok := c.msgs[lang][key]
	if !ok {
		return key
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// has reports whether key exists.
func (c *catalog) has(key string) bool {
	_, ok := c.msgs[Languages[0]][key]
	return ok
}

// language picks the page's language: the lang cookie, else the browser's
// Accept-Language, else Simplified Chinese.
func (c *Console) language(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil {
		for _, l := range Languages {
			if strings.EqualFold(ck.Value, l) {
				return l
			}
		}
	}
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return Languages[0]
	}
	return Languages[i]
}

func init() {
	register(Page{Method: "GET", Path: "/lang/{lang}", Public: true, Handle: switchLanguage})
}

// switchLanguage sets the lang cookie and goes back to ?next=.
func switchLanguage(rq *Request) error {
	lang := rq.PathValue("lang")
	known := false
	for _, l := range Languages {
		known = known || l == lang
	}
	if !known {
		return &notFound
	}
	http.SetCookie(rq.W, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return rq.Redirect(localPath(rq.URL.Query().Get("next")), "")
}

var (
	wordsOnce sync.Once
	wordsCat  *catalog
)

// RuleName is a detection rule's name in lang (zh-CN or en) as the console
// shows it, or "" when the console has none: the posture reports name the
// rules so (internal/reports, wired in internal/cli).
func RuleName(lang, rule string) string {
	wordsOnce.Do(func() { wordsCat, _ = loadCatalog() })
	if wordsCat == nil {
		return ""
	}
	s, ok := wordsCat.msgs[lang]["detect.rule."+rule]
	if !ok {
		return ""
	}
	return s
}
