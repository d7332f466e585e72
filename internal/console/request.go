package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"

	"medguard"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

// Cookie names. The __Host- prefix makes browsers insist on Secure, Path=/
// and no Domain.
const (
	sessionCookie = "__Host-mg_session"
	csrfCookie    = "__Host-mg_csrf" // before sign-in: a double-submit token
	langCookie    = "lang"
	csrfField     = "csrf_token"
)

// Request is one console request as a page handler sees it.
type Request struct {
	*http.Request
	W http.ResponseWriter
	// Deps are the services.
	Deps *Deps
	// Call is the signed-in caller (nil on public pages without a session);
	// pass it to the services.
	Call *medguard.Call
	// Scope is the session's scope (identity.ScopeFull or ScopeMFAEnrollment).
	Scope string
	// Perms are the caller's permissions, for showing only what they may use.
	Perms policy.PermissionSet
	// Lang is the page's language, "zh-CN" or "en".
	Lang string

	c     *Console
	page  Page
	token string // the session token
	csrf  string
	print bool // ?print=1 on a GET: the page for printing
}

func (c *Console) newRequest(w http.ResponseWriter, r *http.Request, p Page) *Request {
	rq := &Request{Request: r, W: w, Deps: &c.deps, c: c, page: p, Perms: policy.PermissionSet{}}
	rq.Lang = c.language(r)
	rq.print = r.Method == http.MethodGet && r.URL.Query().Get("print") == "1"
	return rq
}

// clientIP is the caller's address.
func (rq *Request) clientIP() string {
	if rq.Deps.ClientIP != nil {
		return rq.Deps.ClientIP(rq.Request)
	}
	host, _, err := net.SplitHostPort(rq.RemoteAddr)
	if err != nil {
		return rq.RemoteAddr
	}
	return host
}

// newCall is a call without an actor, for sign-in.
func (rq *Request) newCall() *medguard.Call {
	return &medguard.Call{IP: rq.clientIP(), RequestID: medguard.NewID(rq.Deps.Clock.Now())}
}

// authenticate resolves the session cookie to the caller, as the API does
// for bearer tokens.
func (c *Console) authenticate(rq *Request, p Page) error {
	ck, err := rq.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return &medguard.Error{Kind: medguard.Unauthenticated, Code: "missing_session", Message: "sign in first"}
	}
	call := rq.newCall()
	pr, err := c.deps.Identity.Authenticate(rq.Context(), ck.Value, call.IP, call.RequestID)
	if err != nil {
		return err
	}
	if pr.Actor.Kind != medguard.UserActor {
		return &medguard.Error{Kind: medguard.Unauthenticated, Code: "invalid_token", Message: "sign in first"}
	}
	if pr.Scope == identity.ScopeMFAEnrollment && !p.Enrolment && !p.Public {
		http.Redirect(rq.W, rq.Request, "/login/totp", http.StatusSeeOther)
		return errHandled
	}
	call.Actor = pr.Actor
	rq.Call, rq.Scope, rq.token = call, pr.Scope, ck.Value
	rq.Perms = policy.PermissionsOf(pr.Actor.Roles)
	return nil
}

// errHandled tells serve that the response was written already.
var errHandled = &medguard.Error{Kind: medguard.Conflict, Code: "handled"}

// CSRFToken is the token every POST form carries: for a session, an HMAC of
// the session token (which the page's author cannot read: the cookie is
// HttpOnly), so any server checks it without shared state; before sign-in,
// a random value also set as a cookie (double submit).
func (rq *Request) CSRFToken() string {
	if rq.csrf != "" {
		return rq.csrf
	}
	if rq.token != "" {
		m := hmac.New(sha256.New, []byte(rq.token))
		m.Write([]byte("medguard console csrf v1"))
		rq.csrf = base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		return rq.csrf
	}
	if ck, err := rq.Cookie(csrfCookie); err == nil && len(ck.Value) == 43 {
		rq.csrf = ck.Value
		return rq.csrf
	}
	b := make([]byte, 32)
	rand.Read(b)
	rq.csrf = base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(rq.W, &http.Cookie{Name: csrfCookie, Value: rq.csrf, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode})
	return rq.csrf
}

// maxForm is the largest form body the console reads.
const maxForm = 64 << 10

// checkCSRF refuses a POST whose form lacks the token (403), is larger than
// maxForm or the page's MaxForm (413), cannot be parsed or holds a name or value that is not valid
// UTF-8 (400). It parses the form, so the handlers' PostFormValue calls
// read only what passed here.
func (c *Console) checkCSRF(rq *Request) error {
	limit := int64(maxForm)
	if rq.page.MaxForm > 0 {
		limit = rq.page.MaxForm
	}
	rq.Body = http.MaxBytesReader(rq.W, rq.Body, limit)
	parseErr := rq.ParseForm()
	// Held in memory whole (never in temporary files): the body is at
	// most limit.
	if err := rq.ParseMultipartForm(limit + 1<<20); parseErr == nil && !errors.Is(err, http.ErrNotMultipart) {
		parseErr = err
	}
	if tooLarge := new(http.MaxBytesError); errors.As(parseErr, &tooLarge) {
		return &medguard.Error{Kind: medguard.TooLarge, Message: "the form is larger than the page takes"}
	}
	got := rq.PostFormValue(csrfField)
	var want string
	if rq.token != "" {
		want = rq.CSRFToken()
	} else if ck, err := rq.Cookie(csrfCookie); err == nil {
		want = ck.Value
	}
	if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return &medguard.Error{Kind: medguard.Forbidden, Rule: "deny.csrf", Message: "the form's security token is missing or stale"}
	}
	if parseErr != nil {
		return &medguard.Error{Kind: medguard.Malformed, Message: "the form could not be read", Err: parseErr}
	}
	// url.ParseQuery and mime/multipart pass invalid UTF-8 through: refuse
	// it here, once for every form (and the URL's query), rather than
	// store it.
	for name, values := range rq.Form {
		if !utf8.ValidString(name) {
			return &medguard.Error{Kind: medguard.Malformed, Message: "the form is not valid UTF-8"}
		}
		for _, v := range values {
			if !utf8.ValidString(v) {
				return &medguard.Error{Kind: medguard.Malformed, Message: "the form is not valid UTF-8"}
			}
		}
	}
	return nil
}

// setSession puts a session token in the cookie: a browser-session cookie
// (no Expires), while the server enforces the idle and absolute limits.
func setSession(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/",
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// clearSession removes the session cookie.
func clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// Redirect answers 303 See Other to a local path, with an optional flash
// message (a catalog key's suffix, e.g. "approved" for flash.approved).
func (rq *Request) Redirect(path, flash string) error {
	if flash != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "m=" + url.QueryEscape(flash)
	}
	// Handlers build paths from path values and form fields: keep them
	// on this site whatever those held.
	http.Redirect(rq.W, rq.Request, localPath(path), http.StatusSeeOther)
	return nil
}

var cursorPattern = regexp.MustCompile(`^[0-9a-z]{1,64}$`)

// Cursor is the ?after= cursor of a paginated list: an opaque id, or "".
func (rq *Request) Cursor() string {
	c := rq.URL.Query().Get("after")
	if !cursorPattern.MatchString(c) {
		return ""
	}
	return c
}

// Flash is the ?m= message's key suffix, if it is a known one.
func (rq *Request) Flash() string {
	m := rq.URL.Query().Get("m")
	if m == "" || rq.c.catalog.check("flash."+m) != nil {
		return ""
	}
	return "flash." + m
}

// Person names a member of staff (username or user id) by name and
// department, in the page's language.
func (rq *Request) Person(who string) string { return rq.c.dir.person(rq.c.catalog, rq.Lang, who) }

// Dept names a department by its code.
func (rq *Request) Dept(code string) string { return rq.c.dir.department(code) }

// Can reports whether the caller holds permission p.
func (rq *Request) Can(p policy.Permission) bool { return rq.Perms[p] }

// localPath keeps a redirect target on this site: p must be a path on this
// server ("/patients/search?status=all"), or the answer is "/". Browsers
// forgive much — they drop tabs and newlines anywhere in a URL, read a
// backslash as "/", and take "//host" as another site — so p is refused if
// it has a scheme, host or user, does not start with exactly one "/" (before
// or after unescaping), or holds a control character or backslash, raw or
// escaped. What is returned is rebuilt from the parsed URL — the cleaned,
// escaped path and the query — never p itself; a fragment is dropped.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsFunc(p, unsafeInPath) {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Opaque != "" || u.Host != "" || u.User != nil ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.ContainsFunc(u.Path, unsafeInPath) {
		return "/"
	}
	clean := path.Clean(u.Path)
	if strings.HasSuffix(u.Path, "/") && clean != "/" {
		clean += "/"
	}
	out := (&url.URL{Path: clean}).EscapedPath()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return "/"
	}
	if u.RawQuery != "" {
		out += "?" + escapeQuery(u.RawQuery)
	}
	return out
}

// unsafeInPath reports the characters a redirect target may not hold:
// controls (which browsers drop or choke on) and backslashes (which they
// read as slashes).
func unsafeInPath(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }

// escapeQuery percent-escapes the bytes of a raw query that are not
// printable ASCII (spaces, non-ASCII), keeping its parameters, order and
// existing escapes as they are.
func escapeQuery(q string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
