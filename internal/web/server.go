// Package web is medguard's HTTP interface: the JSON API under /api/v1
// (SPEC §12), the operational endpoints (/healthz, /readyz, /metrics) and the
// OpenAPI document. All routes are registered in routes.go.
//
// Handlers translate HTTP to calls on the capability services and back; they
// hold no rules of their own. Every authenticated request leaves an audit
// entry: the services write it through the gate, and a request that fails
// before reaching the gate (a malformed body, say) is logged here.
package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/inspections"
	"medguard/internal/keys"
	"medguard/internal/media"
	"medguard/internal/partners"
	"medguard/internal/plans"
	"medguard/internal/policy"
	"medguard/internal/pulse"
	"medguard/internal/records"
	"medguard/internal/rectify"
	"medguard/internal/reports"
	"medguard/internal/risks"
	"medguard/internal/storage"
	"medguard/internal/trail"
	"medguard/internal/training"
	"medguard/internal/vulns"
)

// Deps are what the server needs.
type Deps struct {
	DB        *storage.DB
	Gate      *gate.Gate
	Log       *audit.Log
	Identity  *identity.Service
	Records   *records.Service
	Approvals *approvals.Service
	Trail     *trail.Service
	Incidents *incidents.Service
	Detect    *detect.Service
	// Pulse, if set, lets the routes marked later judge a sign-in by a
	// session kept in memory and confirm it with the reading their first
	// query brings (see serve).
	Pulse   *pulse.Pulse
	Keys    *keys.Keyring // the key status (GET /api/v1/keys)
	Logger  *slog.Logger
	Metrics *Metrics
	// TrustedProxies are the load balancers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// SignInPerMinute and SignInBurst limit sign-in attempts per client IP.
	SignInPerMinute float64
	SignInBurst     int
	// MetricsPublic serves /metrics to anyone; otherwise only to loopback
	// clients and holders of system.metrics.
	MetricsPublic bool
	Version       string
	// BodyDeadline is how long a request's body may take to arrive after
	// its head (default 20s): a slow client holds nothing longer. Routes
	// that take large bodies from an admitted caller extend it.
	BodyDeadline time.Duration
	// Console, if set, serves every path outside /api/, /healthz, /readyz
	// and /metrics: the web console (internal/console), which sets its own
	// headers.
	Console http.Handler
	// Backups reads the backups' health and drills (set once; the schedule
	// it watches is given to it after the server has started).
	Backups *backuphealth.Service
	// DataUse is record-use requests, paper folders, copies and the
	// reconciliation (SPEC §8).
	DataUse *datause.Service
	// Partners is external partners, their agreements and deletion
	// confirmations (SPEC §8).
	Partners *partners.Service
	// DeidJobs is de-identification jobs (SPEC §8).
	DeidJobs *deidjobs.Service
	// Exports is exports of patients' records (SPEC §8).
	Exports *exports.Service
	// Inspections is the daily inspection (巡查) and Media the removable
	// media register (issue 13).
	Inspections *inspections.Service
	Media       *media.Service
	// Training is the training register (培训考核, SPEC §10, issue 13).
	Training *training.Service
	// Assets is the asset register and Vulns vulnerability management
	// (issue 13).
	Assets *assets.Service
	Vulns  *vulns.Service
	// Risks is the risk register (issue 13); Plans the emergency plans
	// and drills (issue 13).
	Risks *risks.Service
	Plans *plans.Service
	// Reports is the leadership's posture reports (issue 14).
	Reports *reports.Service
	// Rectify is the rectification register and the quarterly
	// compliance check (issue 14).
	Rectify *rectify.Service
	// Compliance is the compliance checks (合规检查, issue 14); nil
	// answers their routes 503.
	Compliance *compliance.Service
	// CompliancePDF renders the compliance report as a PDF in lang; while
	// it is nil, a request for the PDF is answered 406.
	CompliancePDF func(ctx context.Context, lang string, r compliance.Report) ([]byte, error)
}

// Server serves medguard over HTTP.
type Server struct {
	Deps
	clock   medguard.Clock
	routes  []Route
	mux     *http.ServeMux
	signIns *limiter
	refused *refusals
	// uploads bounds the attachment bodies read at once.
	uploads chan struct{}
}

// authLevel says who may call a route.
type authLevel int

const (
	public    authLevel = iota // anyone
	enrolment                  // a user session, full or good only for TOTP enrolment
	userOnly                   // a full user session (not an API key)
	signedIn                   // a full user session or an API key
)

// Route is one API operation.
type Route struct {
	Method  string
	Pattern string // net/http pattern path, e.g. /api/v1/records/{id}
	// Action names the operation in the audit log when the request fails
	// before a service logs it.
	Action string
	auth   authLevel
	// Body is the request body's type, for the OpenAPI check; nil for none.
	Body any
	// Perms, if set, are the permissions of which the caller must hold one
	// for the route to read the request at all (checked before the body).
	Perms []policy.Permission
	h     handlerFunc
	// anonymous marks a route of the anonymous reporting channel (a
	// public route under /api/v1/anonymous/): it reads no credentials,
	// takes no request id, and the front door records nothing of who
	// called it (see AnonymousPath).
	anonymous bool
	// later marks a route that may judge its caller's sign-in by a session
	// kept in memory before reading the shared database's counters
	// (pulse.Later): its first query brings the reading that confirms the
	// sign-in, and every disclosure passes the gate, which confirms first.
	later bool
}

// handlerFunc handles one request for the call's actor. It writes success
// responses itself and returns errors, which become problem responses.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *medguard.Call) error

// New returns the server.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.SignInPerMinute == 0 {
		d.SignInPerMinute = 60
	}
	if d.SignInBurst == 0 {
		d.SignInBurst = 30
	}
	if d.Backups == nil {
		d.Backups = backuphealth.New(d.Gate) // reports configured:false
	}
	s := &Server{Deps: d, clock: d.Gate.Clock(), mux: http.NewServeMux()}
	s.signIns = newLimiter(d.SignInPerMinute/60, d.SignInBurst, s.clock)
	s.refused = newRefusals(s.clock)
	s.uploads = make(chan struct{}, maxUploads)
	s.routes = s.buildRoutes()
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.serve(rt))
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	s.mux.HandleFunc("GET /api/v1/openapi.json", s.openAPI)
	return s
}

// Routes returns the API routes.
func (s *Server) Routes() []Route { return s.routes }

// ClientIP is the client's address as the API sees it (see clientIP), for
// the console.
func (s *Server) ClientIP(r *http.Request) string { return s.clientIP(r) }

// AllowSignIn reports whether a sign-in attempt from ip is within the
// per-address limit the API's sign-in shares with the console's.
func (s *Server) AllowSignIn(ip string) bool { return s.signIns.allow(ip) }

// noRoute answers 404 or 405 as problem+json; a signed-in caller's is in
// the audit log under their name, an unknown client's within its budget.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	ex := ExchangeOf(r)
	ex.Action = "request.unknown_route"
	if AnonymousPath(r.URL.Path) {
		s.noAnonymousRoute(w, r)
		return
	}
	call := &medguard.Call{IP: s.clientIP(r)}
	ex.Call = call
	s.requestID(r, w, call) // a malformed id is replaced; the answer stays 404
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && token != "" {
		if p, err := s.Identity.Authenticate(r.Context(), strings.TrimSpace(token), call.IP, call.RequestID); err == nil {
			call.Actor = p.Actor
		}
	}
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, r)
	if rec.Code == http.StatusMethodNotAllowed {
		ex.Err = &medguard.Error{Kind: medguard.NotFound, Code: "method_not_allowed", Message: "this path does not accept " + r.Method}
		w.Header().Set("Allow", rec.Header().Get("Allow"))
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		json.NewEncoder(w).Encode(Problem{Type: ProblemBase + "method-not-allowed", Title: "Method not allowed",
			Status: http.StatusMethodNotAllowed, Detail: "this path does not accept " + r.Method, Instance: r.URL.Path})
		return
	}
	ex.Err = &medguard.Error{Kind: medguard.NotFound, Message: "no such path"}
	writeProblem(w, r, ex.Err)
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// serve wraps a route's handler: request id, authentication, the
// route's permission (checked before any body is read), the headers of the
// call, and the problem for an error. The front door (door.go) logs what
// no service logged, and writes the access log and the metrics.
func (s *Server) serve(rt Route) http.Handler {
	if rt.anonymous {
		return s.serveAnonymous(rt)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := ExchangeOf(r)
		var call *medguard.Call
		attempt := func(r *http.Request) error {
			call = &medguard.Call{IP: s.clientIP(r)}
			ex.Call, ex.Action, ex.Route, ex.AuditAll = call, rt.Action, rt.Method+" "+rt.Pattern, true
			if err := s.requestID(r, w, call); err != nil {
				return err
			}
			if err := s.authenticate(r, rt, call); err != nil {
				return err
			}
			if err := s.permitted(rt, call); err != nil {
				return err
			}
			if err := callHeaders(r, call); err != nil {
				return err
			}
			return rt.h(w, r, call)
		}
		later := rt.later && s.Pulse != nil
		if later {
			pulse.Later(r.Context())
		}
		err := attempt(r)
		if later && err != nil && ex.trace.Entries() == 0 && s.stale(r.Context(), err) {
			// The sign-in was judged by a session in memory and users,
			// roles or sessions changed since: nothing was decided, logged
			// or written; answer again from the start, reading first.
			err = attempt(r.WithContext(pulse.Begin(r.Context())))
		}
		if err != nil {
			ex.Err = err
			if medguard.KindOf(err) == medguard.Internal {
				s.Logger.Error("request failed", "route", rt.Pattern, "request_id", call.RequestID, "error", err.Error())
			}
			writeProblem(w, r, err)
		}
	})
}

// stale reports whether a request that may have been judged by a session
// in memory ended with err because that session may have changed: it says
// so (pulse.ErrStale), or it ended unconfirmed and the reading taken now
// says so. Any other refusal of a confirmed request stands.
func (s *Server) stale(ctx context.Context, err error) bool {
	if errors.Is(err, pulse.ErrStale) {
		return true
	}
	return pulse.Pending(ctx) && errors.Is(s.Pulse.Confirm(ctx), pulse.ErrStale)
}

// permitted refuses, before any body is read, a caller who holds none of
// the route's permissions (the services decide on the rest: relations,
// departments, four eyes).
func (s *Server) permitted(rt Route, call *medguard.Call) error {
	if len(rt.Perms) == 0 || rt.auth == public {
		return nil
	}
	held := policy.PermissionsOf(call.Actor.Roles)
	if call.Actor.Kind == medguard.APIKeyActor {
		held = policy.SetOf(call.Actor.Scopes)
	}
	for _, p := range rt.Perms {
		if held[p] {
			return nil
		}
		for h := range held { // a permission for one record type, e.g. record.write:nursing_note
			if strings.HasPrefix(string(h), string(p)+":") {
				return nil
			}
		}
	}
	return &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNoPermission, Message: "denied by the access policy"}
}

// requestID takes the client's X-Request-Id if it is well formed, or makes one.
func (s *Server) requestID(r *http.Request, w http.ResponseWriter, call *medguard.Call) error {
	id := r.Header.Get("X-Request-Id")
	if id == "" {
		id = medguard.NewID(s.clock.Now())
	}
	if !requestIDPattern.MatchString(id) {
		call.RequestID = medguard.NewID(s.clock.Now())
		w.Header().Set("X-Request-Id", call.RequestID)
		return medguard.InvalidField("X-Request-Id", "X-Request-Id must be 1-128 letters, digits, '.', '_', ':' or '-'")
	}
	call.RequestID = id
	w.Header().Set("X-Request-Id", id)
	return nil
}

// authenticate resolves the bearer token for routes that need one.
func (s *Server) authenticate(r *http.Request, rt Route, call *medguard.Call) error {
	if rt.auth == public {
		return nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return &medguard.Error{Kind: medguard.Unauthenticated, Code: "missing_token",
			Message: "sign in first and send Authorization: Bearer <token>"}
	}
	p, err := s.Identity.Authenticate(r.Context(), strings.TrimSpace(token), call.IP, call.RequestID)
	if err != nil {
		return err
	}
	call.Actor = p.Actor
	switch {
	case p.Actor.Kind == medguard.APIKeyActor && rt.auth != signedIn:
		return &medguard.Error{Kind: medguard.Forbidden, Rule: "deny.api_key_not_allowed",
			Message: "this operation is for signed-in staff, not API keys"}
	case p.Scope == identity.ScopeMFAEnrollment && rt.auth != enrolment:
		return &medguard.Error{Kind: medguard.Unauthenticated, Code: "mfa_enrollment_required",
			Message: "enrol a second factor first: POST /api/v1/auth/totp, then /api/v1/auth/totp/confirm"}
	}
	return nil
}

// callHeaders reads the purpose of use and the break-glass reason.
func callHeaders(r *http.Request, call *medguard.Call) error {
	if p := strings.TrimSpace(r.Header.Get("X-Purpose-Of-Use")); p != "" {
		if !policy.KnownPurpose(p) {
			return medguard.InvalidField("X-Purpose-Of-Use", "X-Purpose-Of-Use must be one of %s", strings.Join(policy.Purposes, ", "))
		}
		call.Purpose = p
	}
	if v := r.Header.Get("X-Break-Glass-Reason"); v != "" {
		reason := v
		// Chinese reasons may arrive percent-encoded (RFC 3986) or as raw UTF-8.
		if strings.Contains(v, "%") {
			if d, err := url.PathUnescape(v); err == nil && utf8.ValidString(d) {
				reason = d
			}
		}
		if !utf8.ValidString(reason) {
			return medguard.InvalidField("X-Break-Glass-Reason", "X-Break-Glass-Reason must be UTF-8 text, raw or percent-encoded")
		}
		call.BreakGlassReason = strings.TrimSpace(reason)
	}
	return nil
}

// clientIP is the peer address, or — behind a trusted proxy — the last
// address in X-Forwarded-For that is not a trusted proxy.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if !s.trusted(addr) {
		return addr.String()
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.trusted(a.Unmap()) {
			return a.Unmap().String()
		}
	}
	return addr.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// statusWriter remembers the status code written, and names the request's
// audit entry in the X-Audit-Index header, so that a client can ask for the
// proof of its own entry (/api/v1/audit/proof/inclusion). An answer given
// before any entry was written (a refusal at the door, a page that read
// nothing) is held back until the front door has logged what it must, so
// that no answer leaves before its entry is durable; such answers are
// small.
type statusWriter struct {
	http.ResponseWriter
	code  int
	trace *gate.Trace
	hold  bool
	held  bytes.Buffer
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code != 0 {
		return
	}
	w.code = code
	if w.trace.Entries() == 0 {
		w.hold = true
		return
	}
	w.send()
}

// send writes the status line and headers, naming the last entry.
func (w *statusWriter) send() {
	if i, ok := w.trace.Last(); ok {
		w.Header().Set("X-Audit-Index", strconv.FormatUint(i, 10))
	}
	w.ResponseWriter.WriteHeader(w.code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.hold {
		return w.held.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// release sends a held answer, once the door has logged the request.
func (w *statusWriter) release() {
	if !w.hold {
		return
	}
	w.hold = false
	w.send()
	w.ResponseWriter.Write(w.held.Bytes())
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// List is a page of items with the cursor of the next page (null at the end).
type List[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

func list[T any](items []T, next string) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, Next: nextCursor(next)}
}

// nextCursor encodes a service's continuation as the cursor of the next
// page, which page reads back; nil (JSON null) at the end.
func nextCursor(next string) *string {
	if next == "" {
		return nil
	}
	c := base64.RawURLEncoding.EncodeToString([]byte(next))
	return &c
}

// MaxLimit is the largest page size.
const MaxLimit = 200

// page reads the cursor and limit of a list request.
func page(r *http.Request) (after string, limit int, err error) {
	q := r.URL.Query()
	limit = 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return "", 0, medguard.InvalidField("limit", "limit must be a number from 1 to %d", MaxLimit)
		}
		limit = n
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) > 64 {
			return "", 0, medguard.InvalidField("cursor", "cursor is not one this server gave out")
		}
		after = string(b)
	}
	return after, limit, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.Version})
}

// minFreeSpace is the free space below which an embedded database's
// server is not ready: writes would soon fail.
const minFreeSpace = 64 << 20

// readyz answers 200 when the database answers, the audit log's last commit
// succeeded and (for the embedded database) the disk has room; load
// balancers send no traffic otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.DB.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
		return
	}
	if _, _, err := s.Log.Head(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "audit log unavailable"})
		return
	}
	if s.Log.Failing() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "audit log cannot commit"})
		return
	}
	if free, ok := s.DB.FreeSpace(); ok && free < minFreeSpace {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "disk nearly full"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// metrics serves Prometheus metrics to loopback clients, to holders of
// system.metrics, or to anyone when MetricsPublic is set.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		writeProblem(w, r, &medguard.Error{Kind: medguard.NotFound, Message: "metrics are off"})
		return
	}
	ip, _ := netip.ParseAddr(s.clientIP(r))
	if !s.MetricsPublic && !ip.IsLoopback() {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, err := s.Identity.Authenticate(r.Context(), token, ip.String(), "")
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		if !policy.PermissionsOf(p.Actor.Roles)[policy.SystemMetrics] {
			writeProblem(w, r, &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNoPermission, Message: "metrics need system.metrics"})
			return
		}
	}
	s.Metrics.handler.ServeHTTP(w, r)
}
