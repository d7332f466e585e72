package approvals_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

type fixture struct {
	clock *testkit.Clock
	log   *audit.Log
	id    *identity.Service
	svc   *approvals.Service
	calls map[string]*medguard.Call
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := storagetest.Open(t, keys.Schema(), audit.Schema(), identity.Schema(), approvals.Schema())
	f := &fixture{clock: testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)), calls: map[string]*medguard.Call{}}
	var err error
	if f.log, err = audit.Open(ctx, db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	g := gate.New(f.log, f.clock)
	f.id = identity.New(db, g, keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock),
		identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.svc = approvals.New(db, g, f.id)
	adminID, err := f.id.Bootstrap(ctx, "admin", "Guanli#Mima2026")
	if err != nil {
		t.Fatal(err)
	}
	f.calls["admin"] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: adminID, Name: "admin", Roles: []string{"admin"}}}
	if _, err := f.id.CreateDepartment(ctx, f.calls["admin"], "CARD", "心内科"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, dept, role string }{
		{"liuyang", "CARD", "dept_head"}, {"zhangwei", "CARD", "doctor"}, {"xuming", "", "researcher"},
	} {
		created, _, err := f.id.CreateUser(ctx, f.calls["admin"], identity.NewUser{Username: u.name, DisplayName: "测试",
			Department: u.dept, Roles: []string{u.role}, Password: "Yiyuan#Ceshi2026"})
		if err != nil {
			t.Fatal(err)
		}
		f.calls[u.name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: u.name,
			Department: u.dept, Roles: []string{u.role}}}
	}
	return f
}

func grant(userID, role string) approvals.NewRequest {
	p, _ := json.Marshal(approvals.RoleGrantPayload{UserID: userID, Role: role})
	return approvals.NewRequest{Kind: approvals.RoleGrant, Payload: p, Reason: "信息安全专员岗位调整"}
}

func wantKind(t *testing.T, err error, k medguard.Kind) {
	t.Helper()
	if !medguard.IsKind(err, k) {
		t.Fatalf("got %v, want %s", err, k)
	}
}

func TestFourEyesRoleGrant(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	xuming := f.calls["xuming"].Actor.ID
	a, err := f.svc.Request(ctx, f.calls["admin"], grant(xuming, "security_officer"))
	if err != nil || a.Status != approvals.Pending || a.SubjectUserID != xuming {
		t.Fatalf("%+v %v", a, err)
	}
	_, err = f.svc.Request(ctx, f.calls["admin"], grant(xuming, "security_officer"))
	wantKind(t, err, medguard.Conflict)
	// Non-privileged roles need no approval; unknown kinds and users are refused.
	_, err = f.svc.Request(ctx, f.calls["admin"], grant(xuming, "doctor"))
	wantKind(t, err, medguard.Invalid)
	_, err = f.svc.Request(ctx, f.calls["admin"], grant("01jd0000000000000000000000", "auditor"))
	wantKind(t, err, medguard.Invalid)
	_, err = f.svc.Request(ctx, f.calls["admin"], approvals.NewRequest{Kind: "export.bulk", Payload: json.RawMessage(`{}`), Reason: "x"})
	wantKind(t, err, medguard.Invalid)
	// Only holders of the request permission may ask.
	_, err = f.svc.Request(ctx, f.calls["zhangwei"], grant(xuming, "auditor"))
	wantKind(t, err, medguard.Forbidden)

	// The requester never approves their own request.
	_, err = f.svc.Approve(ctx, f.calls["admin"], a.ID, "")
	wantKind(t, err, medguard.Forbidden)
	if e := lastEntry(t, f); e.Rule != "deny.own_request" {
		t.Fatalf("entry %+v", e)
	}
	// A doctor holds no approver permission.
	_, err = f.svc.Approve(ctx, f.calls["zhangwei"], a.ID, "")
	wantKind(t, err, medguard.Forbidden)
	// The inbox shows it to approvers.
	inbox, _, err := f.svc.List(ctx, f.calls["liuyang"], "", "", 10)
	if err != nil || len(inbox) != 1 || inbox[0].ID != a.ID {
		t.Fatalf("%+v %v", inbox, err)
	}
	// A second person approves: the role is granted in the same transaction.
	done, err := f.svc.Approve(ctx, f.calls["liuyang"], a.ID, "同意")
	if err != nil || done.Status != approvals.Approved || done.DecidedBy != "liuyang" {
		t.Fatalf("%+v %v", done, err)
	}
	u, _ := f.id.UserByID(ctx, xuming)
	if len(u.Roles) != 2 || u.Roles[1] != "security_officer" {
		t.Fatalf("roles %v", u.Roles)
	}
	if e := lastEntry(t, f); e.Action != "user.role_grant" || e.TargetID != xuming || e.Rule != "allow.four_eyes:"+a.ID {
		t.Fatalf("entry %+v", e)
	}
	_, err = f.svc.Approve(ctx, f.calls["liuyang"], a.ID, "")
	wantKind(t, err, medguard.Conflict)

	// Nobody approves their own elevation: make liuyang's own request.
	b, err := f.svc.Request(ctx, f.calls["admin"], grant(f.calls["liuyang"].Actor.ID, "auditor"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Approve(ctx, f.calls["liuyang"], b.ID, "")
	wantKind(t, err, medguard.Forbidden)
	if e := lastEntry(t, f); e.Rule != "deny.own_elevation" {
		t.Fatalf("entry %+v", e)
	}
	// Refusal needs a note.
	_, err = f.svc.Refuse(ctx, f.calls["admin"], b.ID, "")
	wantKind(t, err, medguard.Forbidden) // admin asked for it: own request
	c, _ := f.svc.Request(ctx, f.calls["admin"], grant(f.calls["zhangwei"].Actor.ID, "it_engineer"))
	_, err = f.svc.Refuse(ctx, f.calls["liuyang"], c.ID, "")
	wantKind(t, err, medguard.Invalid)
	if r, err := f.svc.Refuse(ctx, f.calls["liuyang"], c.ID, "岗位不符"); err != nil || r.Status != approvals.Refused {
		t.Fatalf("%+v %v", r, err)
	}
	// Requests expire.
	f.clock.Advance(8 * 24 * time.Hour)
	got, err := f.svc.Get(ctx, f.calls["admin"], b.ID)
	if err != nil || got.Status != approvals.Expired {
		t.Fatalf("%+v %v", got, err)
	}
	// The requester may cancel their own pending request.
	d, _ := f.svc.Request(ctx, f.calls["admin"], grant(f.calls["zhangwei"].Actor.ID, "auditor"))
	_, err = f.svc.Cancel(ctx, f.calls["liuyang"], d.ID)
	wantKind(t, err, medguard.Forbidden)
	if got, err := f.svc.Cancel(ctx, f.calls["admin"], d.ID); err != nil || got.Status != approvals.Cancelled {
		t.Fatalf("%+v %v", got, err)
	}
}

func lastEntry(t *testing.T, f *fixture) *audit.Entry {
	t.Helper()
	size, _, _ := f.log.Head(context.Background())
	got, err := f.log.Entries(context.Background(), size-1, size)
	if err != nil {
		t.Fatal(err)
	}
	return got[0].Entry
}
