package identity_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"medguard"
	"medguard/internal/identity"
	"medguard/internal/pulse"
)

// Two services on one database stand for two servers: each keeps sessions
// in memory behind its own pulse. Whatever one changes about a signed-in
// member of staff, the other sees at the next request.
func TestSessionCacheMissesNothing(t *testing.T) {
	f := setup(t, identity.Config{})
	ctx := context.Background()
	a, b := f.svc, identity.New(f.db, f.gate, f.keyring, identity.Config{Argon2: cheap})
	a.UsePulse(pulse.New(f.db))
	b.UsePulse(pulse.New(f.db))
	f.dept(t, "CARD", "心内科")
	f.dept(t, "NEUR", "神经内科")
	u := f.user(t, "wangfang", "CARD", "doctor", "nurse")
	token, secret := f.enrol(t, "wangfang", "Xinnei#Ke2026")

	// auth authenticates on a in a request of its own (a memo per request,
	// as the front door makes).
	auth := func(svc *identity.Service) (*identity.Principal, error) {
		return svc.Authenticate(pulse.Begin(ctx), token, "10.0.0.9", "r")
	}
	mustAuth := func(step string) *identity.Principal {
		t.Helper()
		p, err := auth(a)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return p
	}
	mustAuth("warm")
	mustAuth("cached")

	if err := b.RevokeRole(ctx, f.admin, u.ID, "nurse"); err != nil {
		t.Fatal(err)
	}
	if p := mustAuth("after a role was revoked on the other server"); slices.Contains(p.Actor.Roles, "nurse") {
		t.Fatalf("roles still %v", p.Actor.Roles)
	}
	f.apply(t, b.DepartmentChange(u.ID, "admin", f.departmentID(t, "NEUR")))
	if p := mustAuth("after a move"); p.Actor.Department != "NEUR" {
		t.Fatalf("department still %q", p.Actor.Department)
	}
	p := mustAuth("before a sign-out")
	if err := b.Logout(ctx, &medguard.Call{Actor: p.Actor, IP: "10.0.0.9"}); err != nil {
		t.Fatal(err)
	}
	if _, err := auth(a); medguard.KindOf(err) != medguard.Unauthenticated {
		t.Fatalf("after a sign-out on the other server: %v", err)
	}
	token = f.signIn(t, "wangfang", secret)
	mustAuth("new session")
	mustAuth("new session, cached")
	if _, _, err := b.FreezeAccount(ctx, "wangfang", "bulk_read", "alert-1", "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := auth(a); !errors.Is(err, identity.ErrFrozen) {
		t.Fatalf("after a freeze on the other server: %v", err)
	}
	other := f.user(t, "lijing", "CARD", "doctor")
	token, _ = f.enrol(t, "lijing", "Xinnei#Ke2026")
	mustAuth("another member of staff")
	mustAuth("another member of staff, cached")
	if _, err := b.Deactivate(ctx, f.admin, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := auth(a); medguard.KindOf(err) != medguard.Unauthenticated {
		t.Fatalf("after a deactivation on the other server: %v", err)
	}
}

// signIn signs a user with TOTP enrolled in again, a TOTP step later.
func (f *fixture) signIn(t *testing.T, username, secret string) string {
	t.Helper()
	f.clock.Advance(31 * time.Second)
	code, _ := totp.GenerateCode(secret, f.clock.Now())
	in, err := f.login(username, "Xinnei#Ke2026", code)
	if err != nil {
		t.Fatal(err)
	}
	return in.Token
}

// departmentID is the id of a department by its code.
func (f *fixture) departmentID(t *testing.T, code string) string {
	t.Helper()
	d, err := f.svc.DepartmentByCode(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// The epoch is raised by the database itself, whatever statement changes
// what a principal is made of — not by the code, which could forget — and
// not by what changes on every request (a session's last-seen time).
func TestIdentityEpochTriggers(t *testing.T) {
	f := setup(t, identity.Config{})
	ctx := context.Background()
	f.dept(t, "CARD", "心内科")
	u := f.user(t, "lijing", "CARD", "doctor")
	f.enrol(t, "lijing", "Xinnei#Ke2026")
	epoch := func() int64 {
		t.Helper()
		r, err := pulse.New(f.db).Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r.IdentityEpoch
	}
	for _, c := range []struct {
		stmt  string
		raise bool
	}{
		{`UPDATE sessions SET last_seen_at = last_seen_at + 1`, false},
		{`UPDATE users SET display_name = '李静'`, false},
		{`UPDATE users SET status = status`, true},
		{`UPDATE users SET frozen_at = 1 WHERE id = $1`, true},
		{`UPDATE users SET frozen_at = NULL WHERE id = $1`, true},
		{`UPDATE users SET username = username WHERE id = $1`, true},
		{`UPDATE users SET department_id = department_id WHERE id = $1`, true},
		{`UPDATE departments SET code = code`, true},
		{`UPDATE departments SET name = '心血管内科' WHERE code = 'CARD'`, false},
		{`INSERT INTO user_roles (user_id, role, granted_at, granted_by) VALUES ($1, 'nurse', 0, 'admin')`, true},
		{`UPDATE user_roles SET granted_by = 'admin' WHERE user_id = $1`, true},
		{`DELETE FROM user_roles WHERE user_id = $1 AND role = 'nurse'`, true},
		{`UPDATE sessions SET ended_at = 1 WHERE user_id = $1`, true},
		{`UPDATE sessions SET expires_at = expires_at`, true},
		{`DELETE FROM sessions WHERE user_id = $1`, true},
	} {
		before := epoch()
		var err error
		if strings.Contains(c.stmt, "$1") {
			_, err = f.db.ExecContext(ctx, c.stmt, u.ID)
		} else {
			_, err = f.db.ExecContext(ctx, c.stmt)
		}
		if err != nil {
			t.Fatalf("%s: %v", c.stmt, err)
		}
		if raised := epoch() > before; raised != c.raise {
			t.Errorf("%s: epoch raised %v, want %v", c.stmt, raised, c.raise)
		}
	}
}
