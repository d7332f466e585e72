package approvals_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/medguardtest"
	"medguard/internal/records"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

type fixture struct {
	clock *testkit.Clock
	log   *audit.Log
	id    *identity.Service
	rec   *records.Service
	svc   *approvals.Service
	calls map[string]*medguard.Call
	dir   string
}

// setup opens an installation with its two bootstrap accounts, two
// departments and staff whose roles were approved by the security
// administrator.
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db := storagetest.OpenIn(t, dir, keys.Schema(), audit.Schema(), identity.Schema(), records.Schema(), approvals.Schema())
	f := &fixture{clock: testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)), calls: map[string]*medguard.Call{}, dir: dir}
	var err error
	if f.log, err = audit.Open(ctx, db, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	g := gate.New(f.log, f.clock)
	kr := keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, f.clock.Now()), f.clock)
	f.id = identity.New(db, g, kr, identity.Config{Argon2: identity.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	f.rec = records.New(db, g, kr, f.id, records.Config{})
	f.svc = approvals.New(db, g, kr, f.id, f.rec)
	for _, a := range identity.BootstrapAccounts("Guanli#Mima2026", "Anquan#Mima2026") {
		uid, err := f.id.Bootstrap(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		f.calls[a.Username] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: uid, Name: a.Username, Roles: []string{a.Role}}}
	}
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}} {
		if _, _, err := f.svc.CreateDepartment(ctx, f.calls["admin"], d[0], d[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct{ name, dept, role string }{
		{"liuyang", "CARD", "dept_head"}, {"zhangwei", "CARD", "doctor"}, {"lina", "NEUR", "doctor"},
		{"chenjing", "NEUR", "dept_head"}, {"xuming", "", "researcher"},
	} {
		f.staff(t, u.name, u.dept, u.role)
	}
	return f
}

// staff creates a member of staff as the administrator; the security
// administrator approves the role if it needs a second person.
func (f *fixture) staff(t *testing.T, name, dept, role string) {
	t.Helper()
	ctx := context.Background()
	created, pending, err := f.id.CreateUser(ctx, f.calls["admin"], identity.NewUser{Username: name, DisplayName: "测试人员",
		Department: dept, Roles: []string{role}, Password: "Yiyuan#Ceshi2026"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pending {
		a, err := f.svc.GrantRole(ctx, f.calls["admin"], created.ID, r, "岗位任命")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Approve(ctx, f.calls["security"], a.ID, "同意"); err != nil {
			t.Fatal(err)
		}
	}
	f.calls[name] = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: created.ID, Name: name,
		Department: dept, Roles: []string{role}}}
}

func grant(userID, role string) approvals.NewRequest {
	p, _ := json.Marshal(approvals.RoleGrantPayload{UserID: userID, Role: role})
	return approvals.NewRequest{Kind: approvals.RoleGrant, Payload: p, Reason: "信息安全专员岗位调整"}
}

func wantRule(t *testing.T, f *fixture, err error, rule string) {
	t.Helper()
	medguardtest.WantKind(t, err, medguard.Forbidden)
	if e := lastEntry(t, f); e.Rule != rule || e.Decision != audit.Deny {
		t.Fatalf("entry %+v, want rule %s", e, rule)
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

func TestFourEyesRoleGrant(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	xuming := f.calls["xuming"].Actor.ID
	a, err := f.svc.Request(ctx, f.calls["admin"], grant(xuming, "security_officer"))
	if err != nil || a.Status != approvals.Pending || a.SubjectUserID != xuming || !a.Approvers.SecurityOfficer || a.Approvers.DepartmentHead != "" {
		t.Fatalf("%+v %v", a, err)
	}
	_, err = f.svc.Request(ctx, f.calls["admin"], grant(xuming, "security_officer"))
	medguardtest.WantKind(t, err, medguard.Conflict)
	// A role that opens neither patient data nor privilege needs no
	// approval; unknown kinds and users are refused.
	_, err = f.svc.Request(ctx, f.calls["admin"], grant(xuming, "researcher"))
	medguardtest.WantKind(t, err, medguard.Invalid)
	_, err = f.svc.Request(ctx, f.calls["admin"], grant("01jd0000000000000000000000", "auditor"))
	medguardtest.WantKind(t, err, medguard.Invalid)
	_, err = f.svc.Request(ctx, f.calls["admin"], approvals.NewRequest{Kind: "export.bulk", Payload: json.RawMessage(`{}`), Reason: "x"})
	medguardtest.WantKind(t, err, medguard.Invalid)
	// A reason is free text: bad bytes and control characters are refused,
	// naming it, and nothing is filed.
	for _, reason := range []string{"岗位调整\xff", "岗位\x1b[31m调整", strings.Repeat("调", 501)} {
		bad := grant(f.calls["liuyang"].Actor.ID, "auditor")
		bad.Reason = reason
		_, err = f.svc.Request(ctx, f.calls["admin"], bad)
		medguardtest.WantField(t, err, "reason")
	}
	if list, _, err := f.svc.List(ctx, f.calls["admin"], "", "", 100); err != nil || len(list) != 1 {
		t.Fatalf("requests after refused ones: %d %v", len(list), err)
	}
	// Only holders of the request permission may ask; nobody asks for
	// their own account.
	_, err = f.svc.Request(ctx, f.calls["zhangwei"], grant(xuming, "auditor"))
	medguardtest.WantKind(t, err, medguard.Forbidden)
	_, err = f.svc.Request(ctx, f.calls["admin"], grant(f.calls["admin"].Actor.ID, "records_clerk"))
	wantRule(t, f, err, "deny.own_account")

	// The requester never approves their own request (an administrator
	// approves nothing); the head the administrator created is no second
	// person to the administrator; a doctor is no approver.
	_, err = f.svc.Approve(ctx, f.calls["admin"], a.ID, "")
	wantRule(t, f, err, "deny.no_permission")
	_, err = f.svc.Approve(ctx, f.calls["liuyang"], a.ID, "")
	wantRule(t, f, err, "deny.approver_changed_by_requester")
	_, err = f.svc.Approve(ctx, f.calls["zhangwei"], a.ID, "")
	medguardtest.WantKind(t, err, medguard.Forbidden)
	// The inbox shows it to security officers, not to department heads.
	inbox, _, err := f.svc.List(ctx, f.calls["security"], "", "", 10)
	if err != nil || len(inbox) != 1 || inbox[0].ID != a.ID || inbox[0].Reason != "信息安全专员岗位调整" {
		t.Fatalf("%+v %v", inbox, err)
	}
	if inbox, _, _ := f.svc.List(ctx, f.calls["liuyang"], "", "", 10); len(inbox) != 0 {
		t.Fatalf("a head's inbox shows %+v", inbox)
	}
	// A second person approves: the role is granted in the same transaction.
	done, err := f.svc.Approve(ctx, f.calls["security"], a.ID, "同意")
	if err != nil || done.Status != approvals.Approved || done.DecidedBy != "security" {
		t.Fatalf("%+v %v", done, err)
	}
	u, _ := f.id.UserByID(ctx, xuming)
	if len(u.Roles) != 2 || u.Roles[1] != "security_officer" {
		t.Fatalf("roles %v", u.Roles)
	}
	f.calls["xuming"].Actor.Roles = u.Roles // as the next sign-in reads them
	if e := lastEntry(t, f); e.Action != "user.role_grant" || e.TargetID != xuming || e.Rule != "allow.four_eyes:"+a.ID {
		t.Fatalf("entry %+v", e)
	}
	_, err = f.svc.Approve(ctx, f.calls["security"], a.ID, "")
	medguardtest.WantKind(t, err, medguard.Conflict)

	// A clinical role in one department, asked for by a second
	// administrator (who shaped neither head): that department's head may
	// approve it, another department's head may not; a privileged role
	// only a security officer.
	f.staff(t, "wangqiang", "", "admin")
	f.staff(t, "wuhao", "CARD", "researcher")
	c, err := f.svc.GrantRole(ctx, f.calls["wangqiang"], f.calls["wuhao"].Actor.ID, "doctor", "新入职")
	if err != nil || c.Approvers.DepartmentHead != "CARD" {
		t.Fatalf("%+v %v", c, err)
	}
	_, err = f.svc.Approve(ctx, f.calls["chenjing"], c.ID, "")
	wantRule(t, f, err, "deny.not_an_eligible_approver")
	if _, err := f.svc.Approve(ctx, f.calls["liuyang"], c.ID, "同意"); err != nil {
		t.Fatal(err)
	}
	priv, _ := f.svc.GrantRole(ctx, f.calls["wangqiang"], f.calls["wuhao"].Actor.ID, "auditor", "调岗")
	_, err = f.svc.Approve(ctx, f.calls["liuyang"], priv.ID, "")
	wantRule(t, f, err, "deny.not_an_eligible_approver")
	// Records clerks see the whole hospital: only a security officer.
	r, _ := f.svc.GrantRole(ctx, f.calls["admin"], f.calls["wuhao"].Actor.ID, "records_clerk", "调岗")
	if r.Approvers.DepartmentHead != "" {
		t.Fatalf("records clerk approvers %+v", r.Approvers)
	}

	// Nobody approves their own elevation.
	b, err := f.svc.Request(ctx, f.calls["wangqiang"], grant(f.calls["security"].Actor.ID, "auditor"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Approve(ctx, f.calls["security"], b.ID, "")
	wantRule(t, f, err, "deny.own_elevation")
	// Refusal needs a note.
	_, err = f.svc.Refuse(ctx, f.calls["xuming"], b.ID, "")
	medguardtest.WantKind(t, err, medguard.Invalid)
	if r, err := f.svc.Refuse(ctx, f.calls["xuming"], b.ID, "岗位不符"); err != nil || r.Status != approvals.Refused {
		t.Fatalf("%+v %v", r, err)
	}
	// Requests expire.
	e, _ := f.svc.Request(ctx, f.calls["admin"], grant(f.calls["zhangwei"].Actor.ID, "it_engineer"))
	f.clock.Advance(8 * 24 * time.Hour)
	got, err := f.svc.Get(ctx, f.calls["admin"], e.ID)
	if err != nil || got.Status != approvals.Expired {
		t.Fatalf("%+v %v", got, err)
	}
	// The requester may cancel their own pending request.
	d, _ := f.svc.Request(ctx, f.calls["admin"], grant(f.calls["zhangwei"].Actor.ID, "auditor"))
	_, err = f.svc.Cancel(ctx, f.calls["liuyang"], d.ID)
	medguardtest.WantKind(t, err, medguard.Forbidden)
	if got, err := f.svc.Cancel(ctx, f.calls["admin"], d.ID); err != nil || got.Status != approvals.Cancelled {
		t.Fatalf("%+v %v", got, err)
	}
}

// TestNoPuppets: an account the requester created, changed or reset is
// never a second person to them — the attack: an administrator makes a
// puppet department head and has it approve the administrator's requests.
func TestNoPuppets(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// liuyang (CARD's head) was created by admin: a puppet of admin's.
	z := f.calls["zhangwei"].Actor.ID
	a, err := f.svc.GrantRole(ctx, f.calls["admin"], z, "dept_head", "提任")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Approve(ctx, f.calls["liuyang"], a.ID, "")
	wantRule(t, f, err, "deny.approver_changed_by_requester")
	// A second administrator, made by the first, is no second person to
	// it either — and the first cannot make one without a security officer.
	f.staff(t, "wangqiang", "", "admin")
	b, err := f.svc.GrantRole(ctx, f.calls["wangqiang"], z, "records_clerk", "调岗")
	if err != nil {
		t.Fatal(err)
	}
	// The security administrator (made by medguard itself) approves.
	if _, err := f.svc.Approve(ctx, f.calls["security"], b.ID, "核实"); err != nil {
		t.Fatal(err)
	}
}

// TestSplitPasswordReset: a reset of an account that reaches patient data
// is asked for by one person and approved by another; each sees one half
// of the new password, and the user must choose their own.
func TestSplitPasswordReset(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	z := f.calls["zhangwei"].Actor.ID
	// An administrator alone cannot choose a doctor's new password.
	_, err := f.svc.ResetPassword(ctx, f.calls["admin"], z, "Xin#Mima20260", "")
	medguardtest.WantKind(t, err, medguard.Invalid)
	a, err := f.svc.ResetPassword(ctx, f.calls["admin"], z, "", "本人遗忘密码，已电话核实身份")
	if err != nil || a == nil || len(a.Secret) != 10 || a.Approvers.DepartmentHead != "CARD" {
		t.Fatalf("%+v %v", a, err)
	}
	requesterHalf := a.Secret
	// The half is never listed or shown again.
	if got, _ := f.svc.Get(ctx, f.calls["security"], a.ID); got.Secret != "" {
		t.Fatal("the requester's half was shown again")
	}
	done, err := f.svc.Approve(ctx, f.calls["security"], a.ID, "已核实")
	if err != nil || len(done.Secret) != 10 || done.Secret == requesterHalf {
		t.Fatalf("%+v %v", done, err)
	}
	for _, pw := range []string{requesterHalf, done.Secret} {
		_, err := f.id.Login(ctx, &medguard.Call{IP: "10.0.0.9"}, identity.Credentials{Username: "zhangwei", Password: pw})
		medguardtest.WantKind(t, err, medguard.Unauthenticated)
	}
	in, err := f.id.Login(ctx, &medguard.Call{IP: "10.0.0.9"}, identity.Credentials{Username: "zhangwei",
		Password: identity.SplitPassword(requesterHalf, done.Secret)})
	if err != nil || !in.PasswordChangeRequired || !in.MFAEnrollmentRequired {
		t.Fatalf("%+v %v", in, err)
	}
	// A second-factor reset alone is refused while someone else set the
	// user's password (the requester might know it).
	_, err = f.svc.ResetTOTP(ctx, f.calls["admin"], z, "换手机")
	medguardtest.WantKind(t, err, medguard.Conflict)
	// Accounts that reach neither patient data nor privilege are reset
	// directly.
	if a, err := f.svc.ResetPassword(ctx, f.calls["admin"], f.calls["xuming"].Actor.ID, "Keyan#Mima2026x", ""); err != nil || a != nil {
		t.Fatalf("%+v %v", a, err)
	}
}

// TestKeysThatReadWaitForApproval: an API key that can read patient data
// works only once a security officer approves it.
func TestKeysThatReadWaitForApproval(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	k, a, err := f.svc.CreateAPIKey(ctx, f.calls["admin"], "emr-reader", []string{"record.read", "patient.read"}, "CARD", "电子病历浏览器")
	if err != nil || a == nil || k.Status != identity.KeyPending || k.Key == "" || a.Secret != "" {
		t.Fatalf("%+v %+v %v", k, a, err)
	}
	_, err = f.id.Authenticate(ctx, k.Key, "10.0.0.20", "r")
	medguardtest.WantKind(t, err, medguard.Unauthenticated)
	_, err = f.svc.Approve(ctx, f.calls["liuyang"], a.ID, "")
	medguardtest.WantKind(t, err, medguard.Forbidden)
	if _, err := f.svc.Approve(ctx, f.calls["security"], a.ID, "范围已核对"); err != nil {
		t.Fatal(err)
	}
	if p, err := f.id.Authenticate(ctx, k.Key, "10.0.0.20", "r"); err != nil || p.Actor.Name != "apikey:emr-reader" {
		t.Fatalf("%+v %v", p, err)
	}
	// A key that only writes is made at once.
	if k, a, err := f.svc.CreateAPIKey(ctx, f.calls["admin"], "his", []string{"record.write", "scope.all_departments"}, "", ""); err != nil || a != nil || k.Status != identity.KeyActive {
		t.Fatalf("%+v %+v %v", k, a, err)
	}
}

// TestGrantsAndCareTeams: a grant opens a department's records only with
// its head's approval; a member of another department joins a care team
// only with a security officer's; nobody adds themselves.
func TestGrantsAndCareTeams(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, err := f.rec.CreatePatient(ctx, f.calls["zhangwei"], records.NewPatient{Name: "欧阳娜娜", Gender: "female", BirthDate: "1980-05-01"})
	if err != nil {
		t.Fatal(err)
	}
	lina := f.calls["lina"].Actor.ID
	// lina (NEUR) asks for CARD's records of the patient.
	g, err := f.svc.RequestGrant(ctx, f.calls["lina"], records.NewGrant{PatientID: p.ID, GranteeID: lina, Department: "CARD",
		Reason: "会诊需要查阅心内科病历", ExpiresAt: f.clock.Now().Add(48 * time.Hour)})
	if err != nil || g.Approvers.DepartmentHead != "CARD" || g.Approvers.SecurityOfficer {
		t.Fatalf("%+v %v", g, err)
	}
	// The reason is the request's, sealed — never in the payload.
	if string(g.Payload) != "" && json.Valid(g.Payload) {
		var m map[string]any
		json.Unmarshal(g.Payload, &m)
		if _, ok := m["reason"]; ok {
			t.Fatalf("payload %s holds the reason", g.Payload)
		}
	}
	_, err = f.svc.Approve(ctx, f.calls["security"], g.ID, "")
	wantRule(t, f, err, "deny.not_an_eligible_approver")
	_, err = f.svc.Approve(ctx, f.calls["chenjing"], g.ID, "")
	wantRule(t, f, err, "deny.not_an_eligible_approver")
	if _, err := f.svc.Approve(ctx, f.calls["liuyang"], g.ID, "同意"); err != nil {
		t.Fatal(err, lastEntry(t, f))
	}
	grants, err := f.rec.ListGrants(ctx, f.calls["liuyang"])
	if err != nil || len(grants) != 1 || grants[0].Reason != "会诊需要查阅心内科病历" || grants[0].GrantedBy != "liuyang" {
		t.Fatalf("%+v %v", grants, err)
	}

	// Care team: the head puts a colleague of the department on it at
	// once, a member of another department through a request, never
	// themselves.
	m, a, err := f.svc.AddCareTeamMember(ctx, f.calls["liuyang"], p.ID, f.calls["zhangwei"].Actor.ID, nil, "")
	if err != nil || a != nil || m == nil {
		t.Fatalf("%+v %+v %v", m, a, err)
	}
	_, _, err = f.svc.AddCareTeamMember(ctx, f.calls["liuyang"], p.ID, f.calls["liuyang"].Actor.ID, nil, "")
	wantRule(t, f, err, "deny.own_relation")
	m, a, err = f.svc.AddCareTeamMember(ctx, f.calls["liuyang"], p.ID, lina, nil, "多学科诊疗")
	if err != nil || a == nil || m != nil {
		t.Fatalf("%+v %+v %v", m, a, err)
	}
	if _, err := f.svc.Approve(ctx, f.calls["security"], a.ID, "同意"); err != nil {
		t.Fatal(err)
	}
	team, err := f.rec.ListCareTeam(ctx, f.calls["liuyang"], p.ID)
	if err != nil || len(team) != 2 {
		t.Fatalf("%+v %v", team, err)
	}
	// A head whose department holds nothing of the patient cannot ask.
	_, _, err = f.svc.AddCareTeamMember(ctx, f.calls["chenjing"], p.ID, f.calls["zhangwei"].Actor.ID, nil, "x")
	wantRule(t, f, err, "deny.write_other_department")
}

// TestFreeTextIsSealed: reasons and notes may name a patient; none of it
// reaches the database files in clear.
func TestFreeTextIsSealed(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	a, err := f.svc.Request(ctx, f.calls["admin"], approvals.NewRequest{Kind: approvals.RoleGrant,
		Payload: grant(f.calls["xuming"].Actor.ID, "auditor").Payload, Reason: "为患者欧阳娜娜（身份证11010519491231002X）的投诉调查"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Refuse(ctx, f.calls["security"], a.ID, "欧阳娜娜一案另行处理"); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Get(ctx, f.calls["admin"], a.ID)
	if err != nil || got.Reason != "为患者欧阳娜娜（身份证11010519491231002X）的投诉调查" || got.DecisionNote != "欧阳娜娜一案另行处理" {
		t.Fatalf("%+v %v", got, err)
	}
	f.log.Close()
	secrets := testkit.PHI("欧阳娜娜", "11010519491231002X", "投诉调查")
	filepath.Walk(f.dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			testkit.AssertNoPHI(t, path, secrets)
		}
		return nil
	})
}

// TestDepartmentChange: moving an account that reaches patient data is a
// four-eyes request, approved by a security officer or the head of the
// department it moves to — never the head of the one it leaves; an
// account that reaches nothing moves at once; nobody moves themselves.
func TestDepartmentChange(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// A second administrator asks, so that the heads (made by the first)
	// are second persons to it.
	f.staff(t, "wangqiang", "", "admin")
	asker := f.calls["wangqiang"]
	z := f.calls["zhangwei"].Actor.ID
	a, err := f.svc.ChangeDepartment(ctx, asker, z, "NEUR", "支援神经内科")
	if err != nil || a == nil || a.Kind != approvals.DepartmentChange || a.SubjectUserID != z ||
		!a.Approvers.SecurityOfficer || a.Approvers.DepartmentHead != "NEUR" {
		t.Fatalf("%+v %v", a, err)
	}
	if u, _ := f.id.UserByID(ctx, z); u.Department != "CARD" {
		t.Fatalf("moved before approval: %s", u.Department)
	}
	// The same move twice, a move to where they are, to nowhere.
	_, err = f.svc.ChangeDepartment(ctx, asker, z, "NEUR", "支援神经内科")
	medguardtest.WantKind(t, err, medguard.Conflict)
	_, err = f.svc.ChangeDepartment(ctx, asker, z, "CARD", "留任")
	medguardtest.WantKind(t, err, medguard.Conflict)
	_, err = f.svc.ChangeDepartment(ctx, asker, z, "ORTH", "调岗")
	medguardtest.WantKind(t, err, medguard.Invalid)
	// Nobody moves their own account.
	_, err = f.svc.ChangeDepartment(ctx, asker, asker.Actor.ID, "CARD", "调岗")
	wantRule(t, f, err, "deny.own_account")

	// The head of the department left is not an approver; the head of the
	// one joined is — and sees it in the inbox, as one they may decide.
	_, err = f.svc.Approve(ctx, f.calls["liuyang"], a.ID, "")
	wantRule(t, f, err, "deny.not_an_eligible_approver")
	inbox, _, err := f.svc.List(ctx, f.calls["chenjing"], approvals.Pending, "", 10)
	if err != nil || len(inbox) != 1 || inbox[0].ID != a.ID || !inbox[0].MayDecide {
		t.Fatalf("NEUR head's inbox %+v %v", inbox, err)
	}
	if mine, _, _ := f.svc.List(ctx, asker, approvals.Pending, "", 10); len(mine) != 1 || mine[0].MayDecide {
		t.Fatalf("the requester's list %+v", mine)
	}
	if _, err := f.svc.Approve(ctx, f.calls["chenjing"], a.ID, "同意"); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.id.UserByID(ctx, z); u.Department != "NEUR" {
		t.Fatalf("department %s after approval", u.Department)
	}
	if e := lastEntry(t, f); e.Action != "user.department_change" || e.TargetID != z || e.Rule != "allow.four_eyes:"+a.ID {
		t.Fatalf("entry %+v", e)
	}
	// The move made the requester someone who changed zhangwei's account:
	// zhangwei is no second person to them from now on.
	if by, _ := f.id.ChangedBy(ctx, z); !containsID(by, asker.Actor.ID) {
		t.Fatalf("changed by %v", by)
	}

	// A privileged account: a security officer alone.
	f.staff(t, "sunli", "CARD", "auditor")
	p, err := f.svc.ChangeDepartment(ctx, asker, f.calls["sunli"].Actor.ID, "NEUR", "调岗")
	if err != nil || p == nil || p.Approvers.DepartmentHead != "" {
		t.Fatalf("%+v %v", p, err)
	}
	_, err = f.svc.Approve(ctx, f.calls["chenjing"], p.ID, "")
	wantRule(t, f, err, "deny.not_an_eligible_approver")

	// An account that reaches nothing moves at once, logged.
	x := f.calls["xuming"].Actor.ID
	if a, err := f.svc.ChangeDepartment(ctx, asker, x, "CARD", ""); err != nil || a != nil {
		t.Fatalf("%+v %v", a, err)
	}
	if u, _ := f.id.UserByID(ctx, x); u.Department != "CARD" {
		t.Fatalf("researcher's department %s", u.Department)
	}
	if e := lastEntry(t, f); e.Action != "user.department_change" || e.Decision != audit.Allow {
		t.Fatalf("entry %+v", e)
	}
}

// TestMayDecide: the inbox says who may decide each request exactly as
// the policy decides it — not the requester, not the subject, not a puppet
// of the requester, not a head of another department.
func TestMayDecide(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// The administrator asks for a doctor's role for a researcher of CARD:
	// CARD's head was made by the administrator (a puppet), the security
	// administrator was not.
	f.staff(t, "wuhao", "CARD", "researcher")
	a, err := f.svc.GrantRole(ctx, f.calls["admin"], f.calls["wuhao"].Actor.ID, "doctor", "新入职")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who  string
		want bool
	}{{"liuyang", false}, {"chenjing", false}, {"admin", false}, {"wuhao", false}, {"security", true}} {
		who, want := c.who, c.want
		items, _, err := f.svc.List(ctx, f.calls[who], approvals.Pending, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		got := false
		for _, it := range items {
			if it.ID == a.ID {
				got = it.MayDecide
			}
		}
		if got != want {
			t.Errorf("%s may decide: %v, want %v", who, got, want)
		}
		if _, err := f.svc.Approve(ctx, f.calls[who], a.ID, "同意"); (err == nil) != want {
			t.Errorf("%s approving: %v", who, err)
		}
	}
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
