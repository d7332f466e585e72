package web

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"medguard"
)

// A failure to reach the database is a 503 with Retry-After, saying what
// the client may do and nothing of the cause; any other failure of the
// server stays a 500, and a medguard error keeps its own kind.
func TestProblemForUnreachableDatabase(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status int
		typ    string
	}{
		{"connection ended by PostgreSQL", medguard.Wrap("audit.Append", &pgconn.PgError{Severity: "FATAL", Code: "57P01",
			Message: "terminating connection due to administrator command"}), 503, "unavailable"},
		{"connection failure", fmt.Errorf("pulse: %w", &pgconn.PgError{Code: "08006"}), 503, "unavailable"},
		{"too many connections", medguard.Wrap("records.Get", &pgconn.PgError{Code: "53300"}), 503, "unavailable"},
		{"a connection known bad", medguard.Wrap("gate", driver.ErrBadConn), 503, "unavailable"},
		{"a statement refused", medguard.Wrap("records.Get", &pgconn.PgError{Code: "42P01", Message: "relation \"病人\" does not exist"}), 500, "internal"},
		{"a bug", errors.New("nil map"), 500, "internal"},
		{"a medguard error", &medguard.Error{Kind: medguard.Conflict, Message: "already exists", Err: &pgconn.PgError{Code: "57P01"}}, 409, "conflict"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/api/v1/records/x", nil)
			if st := writeProblem(rec, req, c.err); st != c.status || rec.Code != c.status {
				t.Fatalf("status %d / %d, want %d", st, rec.Code, c.status)
			}
			p := ProblemFor(c.err, "", "/api/v1/records/x")
			if p.Type != ProblemBase+c.typ {
				t.Fatalf("type %s, want %s", p.Type, c.typ)
			}
			switch c.status {
			case 503:
				if rec.Header().Get("Retry-After") != "1" || p.Detail != unavailableDetail {
					t.Fatalf("Retry-After %q, detail %q", rec.Header().Get("Retry-After"), p.Detail)
				}
			case 500:
				if rec.Header().Get("Retry-After") != "" || p.Detail == "" {
					t.Fatalf("Retry-After %q, detail %q", rec.Header().Get("Retry-After"), p.Detail)
				}
			}
			for _, secret := range []string{"病人", "terminating", "57P01", "administrator"} {
				if c.status != 409 && (strings.Contains(p.Detail, secret) || strings.Contains(p.Title, secret)) {
					t.Fatalf("the problem tells the cause: %+v", p)
				}
			}
		})
	}
}
