// Package console is medguard's web console (SPEC §11): server-rendered
// html/template pages in Simplified Chinese and English, for the hospital's
// staff. It owns the pages, their templates, message catalogs, style sheet
// and the cookie session that carries a sign-in from page to page.
//
// It must not hold rules or touch the database: every operation goes through
// the capability services (which decide with the access policy and write the
// audit entry), exactly as the JSON API does, with a *medguard.Call built
// from the session cookie. Patient data never appears in URLs (searches are
// POSTed, ids are opaque), in page titles (they come from the catalogs only)
// or in logs (which name the route pattern, not the path).
//
// # Routes
//
// The console is mounted by web.Server for every path outside /api/, /healthz,
// /readyz and /metrics. Its paths are flat: /login, /logout, /lang/{lang},
// /static/…, / (the dashboard) and the pages, e.g. /patients/search,
// /patients/{id}, /records/{id}, /approvals, /break-glass.
//
// # Adding a page (the extension pattern)
//
// A page is one Go file, one template and catalog keys; no existing file
// changes. First, internal/console/alerts.go registers its routes in init:
//
//	func init() {
//		register(
//			Page{Method: "GET", Path: "/alerts", Any: []policy.Permission{policy.AlertRead},
//				Nav: &Nav{Key: "nav.alerts", Order: 40}, Handle: alertsPage},
//			Page{Method: "POST", Path: "/alerts/{id}/acknowledge",
//				Any: []policy.Permission{policy.AlertManage}, Handle: acknowledgeAlert},
//		)
//	}
//
//	func alertsPage(rq *Request) error {
//		as, next, err := rq.Deps.Detect.Alerts(rq.Context(), rq.Call,
//			detect.AlertQuery{After: rq.Cursor(), Limit: PageSize})
//		if err != nil {
//			return err // 403, 423 and 401 become the right page or redirect
//		}
//		return rq.Render(http.StatusOK, "alerts", "alerts.title",
//			map[string]any{"Alerts": as, "Next": next})
//	}
//
//	func acknowledgeAlert(rq *Request) error {
//		// The CSRF token was checked before the handler runs.
//		if _, err := rq.Deps.Detect.SetStatus(rq.Context(), rq.Call, rq.PathValue("id"),
//			detect.StatusAcknowledged, ""); err != nil {
//			return err
//		}
//		return rq.Redirect("/alerts", "acknowledged") // shows flash.acknowledged
//	}
//
// Second, internal/console/templates/alerts.html defines the page's body as
// {{define "content"}}…{{end}}; _layout.html around it gives the nav (only
// the pages the user's roles allow), language switch, skip link and flash
// message. The template gets a View: .Data is what the handler passed, .CSRF
// the form token. Every POST form carries {{template "csrf" $}}. Texts come
// from {{t "key" args…}} (fmt verbs); other helpers are in funcs (render.go):
// rule, purpose, status, kind, gender, class, rectype, time, dict, and the
// partials "pager", "purpose-select", "column-chart", "bar-chart".
//
// Third, the page's texts go in internal/console/locale/zh-CN/<area>.json
// and locale/en/<area>.json (e.g. security.json; a file per area, merged at
// start; a key in two files is an error). TestCatalogParity fails when a key
// is missing from a language, and New panics when a template uses a literal
// key that no catalog holds, or a nav key is missing.
//
// Page.Any lists the permissions of which the user needs one to see the page
// (and its nav entry); nil means any signed-in user. Handlers return errors:
// a *medguard.Error of kind Forbidden renders the 403 page naming the rule in
// words (catalog key "rule.<rule>"), Locked the 423 page, Unauthenticated
// redirects to /login with a message, NotFound the 404 page. POSTs are
// checked for the CSRF token before the handler runs.
package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/assets"
	"medguard/internal/audit"
	"medguard/internal/backuphealth"
	"medguard/internal/compliance"
	"medguard/internal/datause"
	"medguard/internal/deidjobs"
	"medguard/internal/detect"
	"medguard/internal/exports"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/inspections"
	"medguard/internal/keys"
	"medguard/internal/media"
	"medguard/internal/partners"
	"medguard/internal/plans"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/rectify"
	"medguard/internal/reports"
	"medguard/internal/risks"
	"medguard/internal/trail"
	"medguard/internal/training"
	"medguard/internal/vulns"
	"medguard/internal/web"
)

// Deps are the services the console uses: the same as the JSON API's.
type Deps struct {
	Identity    *identity.Service
	Records     *records.Service
	Approvals   *approvals.Service
	Trail       *trail.Service
	Detect      *detect.Service
	Incidents   *incidents.Service
	Checkpoints *audit.Checkpoints
	Clock       medguard.Clock
	Logger      *slog.Logger
	// ClientIP is the client's address as the API sees it (behind trusted
	// proxies, the forwarded one); nil for the peer address.
	ClientIP func(*http.Request) string
	// AllowSignIn rate-limits sign-in attempts per client IP; nil for none.
	AllowSignIn func(ip string) bool
	// KeyStatus reads the KEK versions and a rotation's progress through
	// the gate (the keys page); nil hides it.
	KeyStatus func(ctx context.Context, call *medguard.Call) (*keys.KEKStatus, error)
	// Backups reads the backups' health and drills; nil shows them as not
	// configured.
	Backups *backuphealth.Service
	// DataUse is record-use requests, paper folders, copies and the
	// reconciliation (datause.go); nil hides those pages' data.
	DataUse *datause.Service
	// Partners is external partners and their agreements (partners.go);
	// nil hides those pages' data.
	Partners *partners.Service
	// DeidJobs is de-identification jobs (deid.go); nil hides their data.
	DeidJobs *deidjobs.Service
	// Exports is exports of patients' records (exports.go); nil hides
	// those pages' data.
	Exports *exports.Service
	// Inspections is the daily inspection and Media the removable media
	// register (inspections.go, media.go); nil hides their data.
	Inspections *inspections.Service
	Media       *media.Service
	// Training is the training register (training.go); nil hides its
	// pages' data and the training banner.
	Training *training.Service
	// Assets is the asset register and Vulns vulnerability management
	// (assets.go, vulns.go); nil hides their data and the banner of the
	// operations suspended.
	Assets *assets.Service
	Vulns  *vulns.Service
	// Risks is the risk register and Plans the emergency plans and drills
	// (risks.go, plans.go); nil hides those pages' data.
	Risks *risks.Service
	Plans *plans.Service
	// Reports is the leadership's posture reports (reports.go); nil hides
	// their pages' data.
	Reports *reports.Service
	// Rectify is the rectification register and the quarterly
	// compliance check (issue 14).
	Rectify *rectify.Service
	// Compliance is the compliance checks (compliance.go); nil hides
	// their data.
	Compliance *compliance.Service
}

// PageSize is the length of a page of a paginated list.
const PageSize = 25

// Nav is a page's entry in the navigation bar.
type Nav struct {
	Key   string // catalog key of the entry's text
	Order int    // position, smallest first
}

// Page is one console route.
type Page struct {
	Method string // GET or POST
	Path   string // net/http pattern path, e.g. /records/{id}
	// Public pages need no session (sign-in); Enrolment pages accept a
	// session good only for enrolling a second factor.
	Public, Enrolment bool
	// Anonymous pages are the anonymous reporting channel's (paths under
	// /anonymous/): they never read the session cookie, even of a
	// signed-in member of staff, and the front door keeps nothing of who
	// asked (web.AnonymousPath).
	Anonymous bool
	// Any lists permissions of which the user must hold one; nil for any
	// signed-in user.
	Any []policy.Permission
	// Nav, for a GET page, shows it in the navigation bar.
	Nav *Nav
	// MaxForm, if set, is the largest form body the page reads (a file
	// upload), instead of 64 KiB; the file is kept in memory.
	MaxForm int64
	Handle  func(*Request) error
}

// pages are every page, registered by the init functions of this package's
// files.
var pages []Page

// register adds pages to the console; call it from init.
func register(ps ...Page) { pages = append(pages, ps...) }

// Console serves the web console.
type Console struct {
	deps    Deps
	mux     *http.ServeMux
	views   *views
	catalog *catalog
	nav     []Page
	// zone is the hospital's time zone; dir names people and departments.
	zone *time.Location
	dir  *directory
}

// New returns the console. The templates and catalogs are embedded: New
// panics if a template does not parse, uses a catalog key that does not
// exist, or a catalog lacks a language's key — programming errors that every
// test run catches.
func New(d Deps) http.Handler {
	c, err := build(d)
	if err != nil {
		panic("console: " + err.Error())
	}
	return c
}

func build(d Deps) (*Console, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = medguard.SystemClock{}
	}
	cat, err := loadCatalog()
	if err != nil {
		return nil, err
	}
	var zone *time.Location
	if d.Trail != nil {
		zone = d.Trail.Zone()
	}
	if zone == nil {
		zone = time.UTC
	}
	dir := newDirectory(d.Identity, d.Clock)
	v, err := loadViews(cat, zone, dir)
	if err != nil {
		return nil, err
	}
	c := &Console{deps: d, mux: http.NewServeMux(), views: v, catalog: cat, zone: zone, dir: dir}
	seen := map[string]bool{}
	for _, p := range pages {
		if p.Anonymous != web.AnonymousPath(p.Path) {
			return nil, fmt.Errorf("page %s %s: anonymous pages, and only they, live under %s", p.Method, p.Path, web.AnonymousConsolePrefix)
		}
		key := p.Method + " " + p.Path
		if seen[key] {
			return nil, fmt.Errorf("page %s registered twice", key)
		}
		seen[key] = true
		if p.Nav != nil {
			if err := cat.check(p.Nav.Key); err != nil {
				return nil, err
			}
			c.nav = append(c.nav, p)
		}
		c.mux.Handle(key, c.serve(p))
	}
	sort.SliceStable(c.nav, func(i, j int) bool { return c.nav[i].Nav.Order < c.nav[j].Nav.Order })
	c.mux.Handle("GET /static/", c.staticFiles())
	return c, nil
}

// ServeHTTP serves a console request: security headers, then the page.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if _, pattern := c.mux.Handler(r); pattern == "" {
		h.Set("Cache-Control", "no-store")
		// A signed-in caller's 404 is logged under their name (outside
		// the anonymous channel, where nobody is anybody).
		p := Page{Public: true}
		rq := c.newRequest(w, r, p)
		if _, err := r.Cookie(sessionCookie); err == nil && !web.AnonymousPath(r.URL.Path) {
			c.authenticate(rq, p)
		}
		ex := web.ExchangeOf(r)
		ex.Action, ex.Route, ex.Call = "console.page", "console: no such page", rq.Call
		ex.Err = &medguard.Error{Kind: medguard.NotFound, Message: "no such page"}
		c.fail(rq, ex.Err)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// serve wraps a page's handler: language, session, permission and CSRF
// checks, and errors as pages. The front door (web.Server.Handler) logs a
// refused page in the audit log and writes the access log: serve tells it
// who the caller is and how the request ended.
func (c *Console) serve(p Page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := c.newRequest(w, r, p)
		ex := web.ExchangeOf(r)
		ex.Action, ex.Route = "console.page", "console: "+p.Method+" "+p.Path
		ex.Anonymous = ex.Anonymous || p.Anonymous
		err := func() error {
			if p.Anonymous {
				// No session is read, whatever the browser sends.
			} else if _, err := r.Cookie(sessionCookie); !p.Public || err == nil {
				// Public pages (sign-in) take a session if there is one.
				err := c.authenticate(rq, p)
				ex.Call = rq.Call
				if err != nil && (!p.Public || err == error(errHandled)) {
					return err
				}
			}
			if r.Method == http.MethodPost {
				if err := c.checkCSRF(rq); err != nil {
					return err
				}
			}
			if rq.Call != nil && len(p.Any) > 0 && !anyOf(rq.Perms, p.Any) {
				return &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNoPermission, Message: "no permission for this page"}
			}
			return p.Handle(rq)
		}()
		if err != nil && err != error(errHandled) {
			ex.Err = err
			c.fail(rq, err)
		}
	})
}

// fail answers an error: a redirect to sign-in, or an error page.
func (c *Console) fail(rq *Request, err error) {
	if err == error(errHandled) {
		return
	}
	var me *medguard.Error
	if !errors.As(err, &me) {
		me = &medguard.Error{Kind: medguard.Internal, Err: err}
	}
	switch me.Kind {
	case medguard.Unauthenticated:
		clearSession(rq.W)
		msg := "expired"
		if me.Code == "invalid_token" || me.Code == "missing_session" {
			msg = "signin_required"
		}
		// A page asked for by GET is where sign-in goes back to (a deep
		// link, a bookmark): login keeps it on this site.
		if next := nextOf(rq); next != "" {
			msg += "&next=" + url.QueryEscape(next)
		}
		http.Redirect(rq.W, rq.Request, "/login?m="+msg, http.StatusSeeOther)
		return
	case medguard.Locked:
		clearSession(rq.W)
	case medguard.Internal:
		c.deps.Logger.Error("console request failed", "route", rq.page.Path, "error", err.Error())
	}
	status := web.StatusOf(me.Kind)
	if rerr := rq.Render(status, "error", "error.title."+fmt.Sprint(status), map[string]any{
		"Status": status, "Rule": me.Rule, "Field": me.Field, "Code": me.Code, "Kind": me.Kind.String(),
		"Certificate": me.Ref}); rerr != nil {
		c.deps.Logger.Error("rendering the error page failed", "error", rerr.Error())
		http.Error(rq.W, http.StatusText(status), status)
	}
}

// anyOf reports whether set holds one of ps.
func anyOf(set policy.PermissionSet, ps []policy.Permission) bool {
	return slices.ContainsFunc(ps, func(p policy.Permission) bool { return set[p] })
}
