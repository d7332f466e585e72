package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/pulse"
)

// The front door: every request — API, console, operational endpoints —
// comes through Server.Handler, which, in one place,
//
//   - refuses at once an address that sent too many refused requests
//     lately (429), so that no client can flood the server or the log;
//   - bounds how long the request's head and body may take to arrive;
//   - recovers from a panic in a handler (500, logged with its stack);
//   - accounts for the request in the audit log when no service did: an
//     API request of a known actor that wrote no entry, any refused
//     request of a known actor (a console 403 page included), and a
//     refused request of an unknown client — within a budget per address,
//     beyond which such refusals are counted and summarised in one entry
//     per address ("request.refused", with how many);
//   - writes the access log (refusals beyond the budget summarised too)
//     and the metrics.
//
// The API (serve) and the console fill in the Exchange the door puts in
// the request's context: who the caller turned out to be, the operation's
// name for the log, and the error the request ended with. StatusOf maps
// error kinds to status codes for both.

// Exchange is one request as the front door follows it.
type Exchange struct {
	// Call is the caller, once known (nil or without an actor for an
	// unauthenticated client).
	Call *medguard.Call
	// Action names the operation in the log when no service logged it;
	// Route names the route in the access log and the metrics.
	Action, Route string
	// Err is the error the request ended with, if any.
	Err error
	// AuditAll makes the door log a request of a known actor that no
	// service logged even when it succeeded (the API's rule: every call of
	// a signed-in client leaves an entry).
	AuditAll bool
	trace    *gate.Trace
	ip       string

	// Anonymous marks a request of the anonymous reporting channel: the
	// door keeps nothing of who sent it (anonymous.go).
	Anonymous bool
}

type exchangeKey struct{}

// ExchangeOf returns the request's exchange (a fresh one outside the door,
// e.g. in a handler test).
func ExchangeOf(r *http.Request) *Exchange {
	if ex, ok := r.Context().Value(exchangeKey{}).(*Exchange); ok {
		return ex
	}
	return &Exchange{}
}

// StatusOf is the HTTP status of an error of kind k, for the API's
// problems and the console's error pages alike.
func StatusOf(k medguard.Kind) int {
	if pk, ok := problemKinds[k]; ok {
		return pk.status
	}
	return http.StatusInternalServerError
}

// Limits of the front door.
const (
	// defaultBodyDeadline is Deps.BodyDeadline's default.
	defaultBodyDeadline = 20 * time.Second
	// refusedBurst and refusedPerMinute bound the refused requests one
	// address may send: beyond them, every request from it is answered 429
	// at the door until the bucket refills.
	refusedBurst     = 120
	refusedPerMinute = 120
	// auditedBurst and auditedPerMinute bound the refusals of unknown
	// clients logged one by one per address; the others are summarised.
	auditedBurst     = 20
	auditedPerMinute = 20
)

// refusals keeps, per client address, the budgets of refused requests and
// the counts of those summarised instead of logged one by one.
type refusals struct {
	answered *limiter // refused requests answered at all
	audited  *limiter // refusals of unknown clients logged one by one
	mu       sync.Mutex
	counted  map[string]int // address → refusals not logged one by one since the last summary
}

func newRefusals(clock medguard.Clock) *refusals {
	return &refusals{answered: newLimiter(refusedPerMinute/60.0, refusedBurst, clock),
		audited: newLimiter(auditedPerMinute/60.0, auditedBurst, clock), counted: map[string]int{}}
}

// over reports whether ip has used up its refused requests for now.
func (f *refusals) over(ip string) bool { return !f.answered.has(ip) }

func (f *refusals) count(ip string) {
	f.mu.Lock()
	f.counted[ip]++
	f.mu.Unlock()
}

// Handler returns the front door (see above) around the API, the
// operational endpoints and the console.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if AnonymousPath(r.URL.Path) {
			s.anonymousDoor(w, r, start)
			return
		}
		ip := s.clientIP(r)
		api := s.Console == nil || apiPath(r.URL.Path)
		if s.refused.over(ip) {
			s.refused.count(ip)
			w.Header().Set("Retry-After", "60")
			if api {
				writeProblem(w, r, &medguard.Error{Kind: medguard.RateLimited, Message: "too many refused requests from this address; wait a minute"})
			} else {
				http.Error(w, "请求过多，请稍后再试 / Too many requests: wait a minute", http.StatusTooManyRequests)
			}
			return
		}
		ctx, trace := gate.WithTrace(pulse.Begin(r.Context()))
		ex := &Exchange{trace: trace, ip: ip, Route: "other"}
		r = r.WithContext(context.WithValue(ctx, exchangeKey{}, ex))
		deadline := s.BodyDeadline
		if deadline <= 0 {
			deadline = defaultBodyDeadline
		}
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(deadline))
		sw := &statusWriter{ResponseWriter: w, trace: trace}
		func() {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					s.Logger.Error("panic", "route", ex.Route, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					ex.Err = medguard.Errorf(medguard.Internal, "panic")
					if sw.code == 0 {
						writeProblem(sw, r, ex.Err)
					}
				}
			}()
			if api {
				s.api(sw, r)
			} else {
				s.Console.ServeHTTP(sw, r)
			}
		}()
		logged := s.account(ctx, ex, sw.status())
		sw.release()
		took := time.Since(start)
		if logged {
			actor := ""
			if ex.Call != nil {
				actor = ex.Call.Actor.Name
			}
			reqID := ""
			if ex.Call != nil {
				reqID = ex.Call.RequestID
			}
			s.Logger.Info("request", "method", r.Method, "route", ex.Route, "status", sw.status(),
				"duration_ms", float64(took.Microseconds())/1000, "request_id", reqID, "actor", actor, "ip", ip)
		}
		if s.Metrics != nil {
			s.Metrics.observe(ex.Route, sw.status(), took)
		}
	})
}

// api serves the API and the operational endpoints: security headers, and
// problem+json for unknown paths and methods.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.noRoute(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// account logs the request in the audit log if no service did and it must
// be, and reports whether the access log should name it (a refusal of an
// unknown client beyond its address's budget is only counted).
func (s *Server) account(ctx context.Context, ex *Exchange, status int) bool {
	known := ex.Call != nil && ex.Call.Actor.Name != ""
	refused := ex.Err != nil || status >= 400
	switch {
	case ex.trace.Entries() > 0:
		return true
	case known && (refused || ex.AuditAll):
		s.auditUnlogged(ctx, ex, status)
		return true
	case !refused:
		return true
	}
	// A refusal of an unknown client: it spends the address's budget.
	s.refused.answered.allow(ex.ip)
	if !s.refused.audited.allow(ex.ip) {
		s.refused.count(ex.ip)
		return false
	}
	s.auditUnlogged(ctx, ex, status)
	return true
}

// auditUnlogged logs a request that no service logged: one that failed
// before reaching its service, one refused at the door of the console or
// the API, or one that reads nothing but the caller's own session.
func (s *Server) auditUnlogged(ctx context.Context, ex *Exchange, status int) {
	call := ex.Call
	if call == nil {
		call = &medguard.Call{}
	}
	if call.IP == "" {
		call.IP = ex.ip
	}
	outcome, rule := audit.Success, "request.answered"
	if ex.Err != nil || status >= 400 {
		outcome, rule = audit.OutcomeOf(ex.Err), "request.rejected"
		if ex.Err == nil {
			outcome = statusOutcome(status)
		}
		if me := (*medguard.Error)(nil); errors.As(ex.Err, &me) && me.Rule != "" {
			rule = me.Rule
		}
	}
	action := ex.Action
	if action == "" {
		action = "request.unknown_route"
	}
	if _, err := s.Gate.Record(context.WithoutCancel(ctx), gate.Event{Call: call, Action: action, TargetType: "request",
		Allowed: outcome == audit.Success, Rule: rule, Outcome: outcome}, nil); err != nil {
		s.Logger.Error("audit of a request failed", "request_id", call.RequestID, "error", err.Error())
	}
}

// statusOutcome names the outcome of a request answered with an error
// status but no error (a 404 or 405 of the router).
func statusOutcome(status int) string {
	for k, pk := range problemKinds {
		if pk.status == status {
			return audit.OutcomeOf(&medguard.Error{Kind: k})
		}
	}
	return audit.Failed
}

// FlushRefusals writes one entry per address for the refused requests of
// unknown clients that were counted rather than logged one by one since
// the last flush ("request.refused", with how many), and a line in the
// server's log.
func (s *Server) FlushRefusals(ctx context.Context) {
	s.refused.mu.Lock()
	counted := s.refused.counted
	s.refused.counted = map[string]int{}
	s.refused.mu.Unlock()
	ips := make([]string, 0, len(counted))
	for ip := range counted {
		ips = append(ips, ip)
	}
	sort.Strings(ips)
	for _, ip := range ips {
		n := counted[ip]
		call := &medguard.Call{IP: ip, RequestID: medguard.NewID(s.clock.Now())}
		if _, err := s.Gate.Record(ctx, gate.Event{Call: call, Action: "request.refused", TargetType: "request",
			Rule: "flood.summarised", Outcome: audit.Limited, Count: n}, nil); err != nil {
			s.Logger.Error("audit of refused requests failed", "ip", ip, "error", err.Error())
		}
		s.Logger.Warn("refused requests summarised", "ip", ip, "count", n)
	}
}

// Run summarises refused requests every interval until ctx ends, and once
// more then.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.FlushRefusals(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.FlushRefusals(ctx)
		}
	}
}

// apiPath reports whether a path is the API's or an operational endpoint's
// rather than the console's.
func apiPath(p string) bool {
	return p == "/api" || strings.HasPrefix(p, "/api/") || p == "/healthz" || p == "/readyz" || p == "/metrics"
}
