package identity_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"medguard"
	"medguard/internal/identity"
)

// TestComplianceFacts: what the compliance checks read of the accounts
// and keys — a live session and the last sign-in, sessions ended by a
// departure, a role granted after it, and a key whose maker left.
func TestComplianceFacts(t *testing.T) {
	f := setup(t, identity.Config{})
	ctx := context.Background()
	f.dept(t, "CARD", "心内科")
	doctor := f.user(t, "zhangwei", "CARD", "doctor")
	nurse := f.user(t, "lina", "CARD", "nurse")
	maker := f.user(t, "wanggang", "", "admin")
	for _, u := range []string{"zhangwei", "lina"} {
		if _, err := f.svc.Login(ctx, &medguard.Call{IP: "10.0.0.9"}, identity.Credentials{Username: u, Password: "Xinnei#Ke2026"}); err != nil {
			t.Fatal(err)
		}
	}
	// Signed in (a session that must first change the password is a way
	// in too, and counts).
	early, err := f.svc.AccountFacts(ctx, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range early {
		if (a.Username == "zhangwei" || a.Username == "lina") && (a.LiveSessions != 1 || a.LastSignIn == nil) {
			t.Errorf("signed in: %+v", a)
		}
	}
	makerCall := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: maker.ID, Name: "wanggang", Roles: []string{"admin"}}}
	key, err := f.svc.CreateAPIKey(ctx, makerCall, "lisgateway", []string{"record.write"}, "CARD")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	for _, id := range []string{nurse.ID, maker.ID} {
		if _, err := f.svc.Deactivate(ctx, f.admin, id); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(time.Hour)
	// medguard grants no role to a departed account; one written into
	// the database behind its back is what the check is there to find.
	if _, err := f.db.ExecContext(ctx, `INSERT INTO user_roles (user_id, role, granted_at, granted_by) VALUES ($1, $2, $3, $4)`,
		nurse.ID, "doctor", medguard.Millis(f.clock.Now()), "dba"); err != nil {
		t.Fatal(err)
	}

	facts, err := f.svc.AccountFacts(ctx, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]identity.AccountFacts{}
	for _, a := range facts {
		by[a.Username] = a
	}
	if d := by["zhangwei"]; d.ID != doctor.ID || !d.Active || d.LastSignIn == nil || d.TOTP || d.DeactivatedAt != nil {
		t.Errorf("the doctor: %+v", d)
	}
	if n := by["lina"]; n.Active || n.LiveSessions != 0 || n.DeactivatedAt == nil || !slices.Equal(n.RolesAfterDeparture, []string{"doctor"}) {
		t.Errorf("the departed nurse: %+v", n)
	}
	if m := by["wanggang"]; m.Active || len(m.RolesAfterDeparture) != 0 {
		t.Errorf("the departed maker: %+v", m)
	}
	// Sessions expire: two days later the doctor's is no longer live.
	f.clock.Advance(48 * time.Hour)
	if facts, err = f.svc.AccountFacts(ctx, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	for _, a := range facts {
		if a.Username == "zhangwei" && a.LiveSessions != 0 {
			t.Errorf("an expired session counted live: %+v", a)
		}
	}
	keys, err := f.svc.KeyFacts(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %+v %v", keys, err)
	}
	if k := keys[0]; k.ID != key.ID || k.Name != "lisgateway" || k.OwnerUsername != "wanggang" || k.OwnerActive || k.Revoked {
		t.Errorf("the key: %+v", k)
	}
}
