package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

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
}

func (c *Console) newRequest(w http.ResponseWriter, r *http.Request, p Page) *Request {
	rq := &Request{Request: r, W: w, Deps: &c.deps, c: c, page: p, Perms: policy.PermissionSet{}}
	rq.Lang = c.language(r)
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

// checkCSRF refuses a POST whose form lacks the token.
func (c *Console) checkCSRF(rq *Request) error {
	rq.Body = http.MaxBytesReader(rq.W, rq.Body, 64<<10)
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
	http.Redirect(rq.W, rq.Request, path, http.StatusSeeOther)
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

// Can reports whether the caller holds permission p.
func (rq *Request) Can(p policy.Permission) bool { return rq.Perms[p] }

// localPath keeps a redirect target on this site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}
