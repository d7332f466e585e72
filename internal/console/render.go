package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"text/template/parse"
	"time"

	"medguard"
	"medguard/internal/policy"
	"medguard/internal/web"
)

//go:embed templates/*.html static/*
var assetsFS embed.FS

var notFound = medguard.Error{Kind: medguard.NotFound, Message: "no such page"}

// views are the page templates. Every page is parsed and checked when the
// console starts; a page's template for a language (its t function bound
// to the language) is built the first time it is rendered and kept. A
// server that only answers the API keeps none, and each page is parsed
// with the partial files it calls only: html/template gives every page its
// own copy of their trees (a copy of all of them for each of the hundred
// pages in both languages, built at start, kept ~60 MB alive).
type views struct {
	funcs map[string]template.FuncMap // lang → its functions
	files map[string][]string         // page name → its files, the page's last

	mu     sync.Mutex
	byLang map[string]map[string]*template.Template // lang → page name → template, as built
}

// loadViews finds templates/_*.html (the layout and partials) and the
// pages, templates/<page>.html; it parses each page with the partials it
// calls and checks that it defines "content" and that every literal key it
// gives to t exists in every catalog.
func loadViews(cat *catalog, zone *time.Location, dir *directory) (*views, error) {
	files, err := fs.Glob(assetsFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	var shared, pageFiles []string
	for _, f := range files {
		if strings.HasPrefix(path.Base(f), "_") {
			shared = append(shared, f)
		} else {
			pageFiles = append(pageFiles, f)
		}
	}
	v := &views{funcs: map[string]template.FuncMap{}, files: map[string][]string{}, byLang: map[string]map[string]*template.Template{}}
	for _, lang := range Languages {
		v.funcs[lang] = funcs(cat, lang, zone, dir)
		v.byLang[lang] = map[string]*template.Template{}
	}
	fm := v.funcs[Languages[0]]
	parts, err := readPartials(cat, fm, shared)
	if err != nil {
		return nil, err
	}
	for _, f := range pageFiles {
		t, err := template.New(path.Base(f)).Funcs(fm).ParseFS(assetsFS, f)
		if err != nil {
			return nil, err
		}
		if t.Lookup("content") == nil {
			return nil, fmt.Errorf("%s defines no \"content\" template", f)
		}
		if err := checkKeys(cat, f, t); err != nil {
			return nil, err
		}
		v.files[strings.TrimSuffix(path.Base(f), ".html")] = parts.filesFor(f, t)
	}
	return v, nil
}

// page returns page name's template in lang (nil if there is no such page
// or language), building it the first time.
func (v *views) page(lang, name string) (*template.Template, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	built, ok := v.byLang[lang]
	if !ok || v.files[name] == nil {
		return nil, nil
	}
	if t := built[name]; t != nil {
		return t, nil
	}
	t, err := template.New("base").Funcs(v.funcs[lang]).ParseFS(assetsFS, v.files[name]...)
	if err != nil {
		return nil, err
	}
	built[name] = t
	return t, nil
}

// partials are the shared template files (templates/_*.html): which file
// defines each template name, and which names each file's templates call.
type partials struct {
	files   []string
	definer map[string]string   // template name → the shared file defining it
	calls   map[string][]string // shared file → template names it calls
}

// layoutFile is the partial every page is rendered in.
const layoutFile = "templates/_layout.html"

// readPartials parses each shared file on its own to learn what it defines
// and calls, and checks the keys it gives to t.
func readPartials(cat *catalog, fm template.FuncMap, shared []string) (*partials, error) {
	p := &partials{files: shared, definer: map[string]string{}, calls: map[string][]string{}}
	for _, f := range shared {
		t, err := template.New(path.Base(f)).Funcs(fm).ParseFS(assetsFS, f)
		if err != nil {
			return nil, err
		}
		if err := checkKeys(cat, f, t); err != nil {
			return nil, err
		}
		for _, tt := range t.Templates() {
			if tt.Tree == nil || tt.Name() == path.Base(f) {
				continue
			}
			if other, ok := p.definer[tt.Name()]; ok && other != f {
				return nil, fmt.Errorf("console: template %q is defined in %s and %s", tt.Name(), other, f)
			}
			p.definer[tt.Name()] = f
		}
		p.calls[f] = calledIn(t)
	}
	return p, nil
}

// filesFor lists the files page (parsed alone as t) needs, in the order
// of p.files and the page last: the layout, the partial files defining
// what the page calls, and theirs in turn.
func (p *partials) filesFor(page string, t *template.Template) []string {
	need := map[string]bool{layoutFile: true}
	todo := append(calledIn(t), p.calls[layoutFile]...)
	for len(todo) > 0 {
		name := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		f, ok := p.definer[name]
		if !ok || need[f] {
			continue // defined by the page itself (or missing: Execute says so)
		}
		need[f] = true
		todo = append(todo, p.calls[f]...)
	}
	var files []string
	for _, f := range p.files {
		if need[f] {
			files = append(files, f)
		}
	}
	return append(files, page)
}

// checkKeys checks that every literal key file's templates (parsed as t)
// give to t exists in every catalog.
func checkKeys(cat *catalog, file string, t *template.Template) error {
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		for _, key := range usedKeys(tt.Tree.Root) {
			if err := cat.check(key); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
		}
	}
	return nil
}

// calledIn lists the template names t's templates call ({{template "x"}}).
func calledIn(t *template.Template) []string {
	var names []string
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walkTree(tt.Tree.Root, func(n parse.Node) {
				if c, ok := n.(*parse.TemplateNode); ok {
					names = append(names, c.Name)
				}
			})
		}
	}
	return names
}

// usedKeys finds the literal keys given to t in a template's tree.
func usedKeys(n parse.Node) []string {
	var keys []string
	walkTree(n, func(n parse.Node) {
		c, ok := n.(*parse.CommandNode)
		if !ok || len(c.Args) < 2 {
			return
		}
		if id, ok := c.Args[0].(*parse.IdentifierNode); ok && id.Ident == "t" {
			if s, ok := c.Args[1].(*parse.StringNode); ok {
				keys = append(keys, s.Text)
			}
		}
	})
	return keys
}

// walkTree calls visit on n and every node below it.
func walkTree(n parse.Node, visit func(parse.Node)) {
	switch n := n.(type) {
	case nil:
		return
	case *parse.ListNode: // an absent list or pipe is a typed nil
		if n == nil {
			return
		}
	case *parse.PipeNode:
		if n == nil {
			return
		}
	}
	visit(n)
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			walkTree(c, visit)
		}
	case *parse.PipeNode:
		for _, c := range n.Cmds {
			walkTree(c, visit)
		}
	case *parse.ActionNode:
		walkTree(n.Pipe, visit)
	case *parse.CommandNode:
		for _, a := range n.Args {
			walkTree(a, visit)
		}
	case *parse.IfNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.TemplateNode:
		walkTree(n.Pipe, visit)
	}
}

// walkBranch walks an if's, a range's or a with's pipeline and lists.
func walkBranch(b *parse.BranchNode, visit func(parse.Node)) {
	walkTree(b.Pipe, visit)
	walkTree(b.List, visit)
	walkTree(b.ElseList, visit)
}

// funcs are the template functions for one language.
func funcs(cat *catalog, lang string, zone *time.Location, dir *directory) template.FuncMap {
	if zone == nil {
		zone = time.UTC
	}
	if dir == nil {
		dir = &directory{}
	}
	t := func(key string, args ...any) string { return cat.text(lang, key, args...) }
	named := func(prefix string) func(string) string {
		return func(code string) string {
			if code == "" {
				return ""
			}
			if cat.has(prefix + code) {
				return cat.text(lang, prefix+code)
			}
			return code
		}
	}
	return template.FuncMap{
		"t": t,
		// rule names a policy rule in words, with its code.
		"rule": func(rule string) string {
			if rule == "" {
				return ""
			}
			if cat.has("rule." + rule) {
				return cat.text(lang, "rule."+rule)
			}
			return cat.text(lang, "rule.unknown")
		},
		"purpose": named("purpose."),
		"role":    named("role."),
		"kind":    named("kind."),
		// rectype names a record type in the language (the policy's names).
		"rectype": func(code string) string {
			rt, ok := policy.LookupRecordType(code)
			switch {
			case !ok:
				return code
			case lang == "en":
				return rt.NameEN
			}
			return rt.NameZH
		},
		"class": named("class."),
		// fieldname names a form or API field in words, or nothing when
		// the catalog has no words for it (never its code).
		"fieldname": func(name string) string {
			if cat.has("field." + name) {
				return cat.text(lang, "field."+name)
			}
			return ""
		},
		"gender": named("gender."),
		"status": named("status."),
		"time": func(at any) string {
			switch v := at.(type) {
			case time.Time:
				if v.IsZero() {
					return ""
				}
				return v.In(zone).Format("2006-01-02 15:04")
			case *time.Time:
				if v == nil || v.IsZero() {
					return ""
				}
				return v.In(zone).Format("2006-01-02 15:04")
			}
			return ""
		},
		"lang": func() string { return lang },
		// now is the time the page is made, in the hospital's zone.
		"now": func() string { return dir.now().In(zone).Format("2006-01-02 15:04") },
		// person names a member of staff (username or user id) by name and
		// department: 李强（信息科）.
		"person": func(who string) string { return dir.person(cat, lang, who) },
		// dept names a department by its code.
		"dept": dir.department,
		// duration says a duration in words: 10 分钟, 2 小时, 3 天.
		"duration": func(d any) string { return sayDuration(cat, lang, d) },
		// dict passes several values to a partial template.
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict needs key, value pairs")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict keys must be strings")
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"add": func(a, b int) int { return a + b },
		// anonymous: a path of the anonymous reporting channel, whose
		// links (the language switch) stay in it.
		"anonymous": web.AnonymousPath,
		"seq": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i
			}
			return out
		},
	}
}

// navLink is an entry of the navigation bar.
type navLink struct {
	Path, Key string
	Current   bool
}

// View is what every template gets: the layout's data and the page's Data.
type View struct {
	Lang        string
	Title       string
	Nav         []navLink
	User        *medguard.Actor
	Scope       string
	CSRF        string
	Flash       string
	Path        string // the current path, for the language switch
	IdleSeconds int
	Status      int
	// Print renders the page for printing: no navigation, every row.
	Print bool
	// Training is the training banner of a member of staff's home page
	// (training.go), or nil.
	Training *TrainingBanner
	// Suspended, if set, is the banner of the operations suspended now
	// that the caller holds (vulns.go).
	Suspended *banner
	Data      any
}

// Render writes page name (templates/<name>.html) with status. titleKey
// is a catalog key: titles never carry data, so no patient data reaches a
// window title, a tab or the browser history.
func (rq *Request) Render(status int, name, titleKey string, data any) error {
	t, err := rq.c.views.page(rq.Lang, name)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("console: no template %q", name)
	}
	v := View{Lang: rq.Lang, Title: rq.c.catalog.text(rq.Lang, titleKey), CSRF: rq.CSRFToken(), Flash: rq.Flash(),
		Path: rq.URL.Path, Status: status, Print: rq.print, Data: data}
	if rq.Method != http.MethodGet {
		v.Path = "/"
		if rq.page.Path != "" && !strings.Contains(rq.page.Path, "{") {
			v.Path = rq.page.Path
		}
	}
	if rq.Call != nil && (rq.page.Path == "/{$}" || status == http.StatusForbidden) && !rq.print {
		v.Training = rq.trainingBanner()
	}
	if rq.Call != nil {
		v.User, v.Scope = &rq.Call.Actor, rq.Scope
		v.IdleSeconds = int(rq.Deps.Identity.Config().IdleTimeout / time.Second)
		if rq.Scope != "mfa_enrollment" {
			v.Suspended = rq.suspendedBanner()
			for _, p := range rq.c.nav {
				if len(p.Any) == 0 || anyOf(rq.Perms, p.Any) {
					cur := rq.page.Path == p.Path || (p.Path != "/{$}" && strings.HasPrefix(rq.page.Path, p.Path+"/"))
					v.Nav = append(v.Nav, navLink{Path: strings.TrimSuffix(p.Path, "{$}"), Key: p.Nav.Key, Current: cur})
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return err
	}
	rq.W.Header().Set("Content-Type", "text/html; charset=utf-8")
	rq.W.WriteHeader(status)
	_, err = rq.W.Write(buf.Bytes())
	return err
}

// T is the message key in the page's language, for handlers.
func (rq *Request) T(key string, args ...any) string { return rq.c.catalog.text(rq.Lang, key, args...) }

// staticFiles serves the style sheet and the script: files only. A
// directory — /static/ itself or any below it, with or without the
// trailing slash — is not found rather than listed.
func (c *Console) staticFiles() http.Handler {
	sub, err := fs.Sub(assetsFS, "static")
	if err != nil {
		panic("console: " + err.Error()) // the embedded tree lacks static/
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		fi, err := fs.Stat(sub, name)
		if !fs.ValidPath(name) || name == "." || err != nil || !fi.Mode().IsRegular() {
			w.Header().Set("Cache-Control", "no-store")
			c.fail(c.newRequest(w, r, Page{Public: true}), &notFound)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		http.ServeFileFS(w, r, sub, name)
	})
}

// sayDuration says a duration (a time.Duration, or minutes as an int) in
// the language's words, in the largest whole unit: "90 分钟", "2 小时",
// "3 天".
func sayDuration(cat *catalog, lang string, v any) string {
	var d time.Duration
	switch x := v.(type) {
	case time.Duration:
		d = x
	case int:
		d = time.Duration(x) * time.Minute
	case int64:
		d = time.Duration(x) * time.Minute
	default:
		return ""
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return cat.text(lang, "duration.days", int(d/(24*time.Hour)))
	case d >= time.Hour && d%time.Hour == 0:
		return cat.text(lang, "duration.hours", int(d/time.Hour))
	case d >= time.Minute && d%time.Minute == 0:
		return cat.text(lang, "duration.minutes", int(d/time.Minute))
	}
	return cat.text(lang, "duration.seconds", int(d/time.Second))
}
