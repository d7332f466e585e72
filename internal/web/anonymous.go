package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/incidents"
)

// The anonymous reporting channel (举报) at the front door.
//
// Its paths — the API's under /api/v1/anonymous/ and the console's under
// /anonymous/ — are served by a door of their own that keeps nothing of
// who sent a request: it never works out the client's address (so the
// per-address budgets neither see nor count it, and no refusal summary
// names it), never reads a bearer token or a session cookie (so no session
// is touched, and nobody is signed in as far as the request goes), takes
// no request id, and writes the access log line without actor, address or
// request id. A request that no service logged and that was refused (a
// malformed body, a stale form token) is logged as "anonymous", within
// one budget for the whole channel. The services behind it
// (incidents.FileAnonymous, ReceiptStatus, AddToReport) take no caller at
// all. See docs/incidents.md for what remains visible elsewhere (the TLS
// connection, a proxy's logs).

// AnonymousAPIPrefix and AnonymousConsolePrefix are the channel's paths.
const (
	AnonymousAPIPrefix     = "/api/v1/anonymous/"
	AnonymousConsolePrefix = "/anonymous/"
)

// AnonymousPath reports whether p belongs to the anonymous channel.
func AnonymousPath(p string) bool {
	return strings.HasPrefix(p, AnonymousAPIPrefix) || strings.HasPrefix(p, AnonymousConsolePrefix) ||
		p == strings.TrimSuffix(AnonymousAPIPrefix, "/") || p == strings.TrimSuffix(AnonymousConsolePrefix, "/")
}

// anonymousCaller is how the door logs a refusal of the channel.
var anonymousCaller = medguard.Actor{Name: "anonymous"}

// anonymousDoor serves a request of the anonymous channel (see above).
func (s *Server) anonymousDoor(w http.ResponseWriter, r *http.Request, start time.Time) {
	ctx, trace := gate.WithTrace(r.Context())
	ex := &Exchange{trace: trace, Route: "anonymous", Anonymous: true}
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
		if s.Console == nil || apiPath(r.URL.Path) {
			s.api(sw, r)
		} else {
			s.Console.ServeHTTP(sw, r)
		}
	}()
	s.accountAnonymous(ctx, ex, sw.status())
	sw.release()
	took := time.Since(start)
	s.Logger.Info("request", "method", r.Method, "route", ex.Route, "status", sw.status(),
		"duration_ms", float64(took.Microseconds())/1000)
	if s.Metrics != nil {
		s.Metrics.observe(ex.Route, sw.status(), took)
	}
}

// accountAnonymous logs, as "anonymous", a refused request of the channel
// that no service logged, within the channel's one budget; beyond it the
// refusals are counted and summarised with no address.
func (s *Server) accountAnonymous(ctx context.Context, ex *Exchange, status int) {
	if ex.trace.Entries() > 0 || ex.Err == nil && status < 400 {
		return
	}
	if !s.refused.audited.allow("") {
		s.refused.count("")
		return
	}
	ex.Call, ex.ip = &medguard.Call{Actor: anonymousCaller}, ""
	s.auditUnlogged(ctx, ex, status)
}

// serveAnonymous wraps a route of the channel: no request id, no
// credentials, no address; the handler gets an empty call.
func (s *Server) serveAnonymous(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := ExchangeOf(r)
		ex.Anonymous, ex.Action, ex.Route = true, rt.Action, rt.Method+" "+rt.Pattern
		if err := rt.h(w, r, &medguard.Call{}); err != nil {
			ex.Err = err
			if medguard.KindOf(err) == medguard.Internal {
				s.Logger.Error("request failed", "route", rt.Pattern, "error", err.Error())
			}
			writeProblem(w, r, err)
		}
	})
}

// noAnonymousRoute answers an unknown path or method of the channel
// without looking at who asks.
func (s *Server) noAnonymousRoute(w http.ResponseWriter, r *http.Request) {
	ex := ExchangeOf(r)
	ex.Anonymous = true
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, r)
	if rec.Code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.Header().Get("Allow"))
		ex.Err = &medguard.Error{Kind: medguard.NotFound, Code: "method_not_allowed", Message: "this path does not accept " + r.Method}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		json.NewEncoder(w).Encode(Problem{Type: ProblemBase + "method-not-allowed", Title: "Method not allowed",
			Status: http.StatusMethodNotAllowed, Detail: "this path does not accept " + r.Method, Instance: r.URL.Path})
		return
	}
	ex.Err = &medguard.Error{Kind: medguard.NotFound, Message: "no such path"}
	writeProblem(w, r, ex.Err)
}

// receiptRequest names a report by its receipt code.
type receiptRequest struct {
	Receipt string `json:"receipt"`
}

// receiptMessage adds to a report by its receipt code.
type receiptMessage struct {
	Receipt string `json:"receipt"`
	Text    string `json:"text"`
}

// closeReportRequest closes a report with the office's last word.
type closeReportRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) fileAnonymous(w http.ResponseWriter, r *http.Request, _ *medguard.Call) error {
	var req incidents.NewAnonymousReport
	if err := decode(r, &req); err != nil {
		return err
	}
	rc, err := s.Incidents.FileAnonymous(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, rc)
}

func (s *Server) anonymousStatus(w http.ResponseWriter, r *http.Request, _ *medguard.Call) error {
	var req receiptRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	v, err := s.Incidents.ReceiptStatus(r.Context(), req.Receipt)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) anonymousAdd(w http.ResponseWriter, r *http.Request, _ *medguard.Call) error {
	var req receiptMessage
	if err := decode(r, &req); err != nil {
		return err
	}
	v, err := s.Incidents.AddToReport(r.Context(), req.Receipt, req.Text)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, "status", "limit", "cursor"); err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Incidents.ListReports(r.Context(), c, r.URL.Query().Get("status"), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, next))
}

func (s *Server) getReport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	rep, err := s.Incidents.GetReport(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) replyReport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req noteRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	rep, err := s.Incidents.ReplyReport(r.Context(), c, r.PathValue("id"), req.Text)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) closeReport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req closeReportRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	rep, err := s.Incidents.CloseReport(r.Context(), c, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) reportToIncident(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.NewIncident
	if err := decode(r, &req); err != nil {
		return err
	}
	in, err := s.Incidents.ReportToIncident(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, in)
}

func (s *Server) reportToCase(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req incidents.NewCase
	if err := decode(r, &req); err != nil {
		return err
	}
	cs, err := s.Incidents.ReportToCase(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, cs)
}
