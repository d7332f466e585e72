package media_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/media"
	"medguard/internal/policy"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// The removable media register on SQLite and, with
// MEDGUARD_TEST_POSTGRES, on PostgreSQL: staff are a fixed directory,
// time is the test's clock.

type staff map[string]*identity.User

func (s staff) UserByUsername(_ context.Context, username string) (*identity.User, error) {
	if u, ok := s[username]; ok {
		return u, nil
	}
	return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such user"}
}

type person struct {
	call *medguard.Call
	user *identity.User
}

func newPerson(id, username, role string) person {
	return person{call: &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: id, Name: username, Roles: []string{role}},
		IP: "10.3.4.5"}, user: &identity.User{ID: id, Username: username, Roles: []string{role}, Status: identity.Active}}
}

var (
	it       = newPerson("u-it", "chenjing", policy.ITEngineer)
	it2      = newPerson("u-it2", "hanmei", policy.ITEngineer)
	clerk    = newPerson("u-clerk", "zhaomin", policy.RecordsClerk)
	security = newPerson("u-sec", "zhouqiang", policy.SecurityOfficer)
	auditor  = newPerson("u-aud", "sunli", policy.Auditor)
	doctor   = newPerson("u-doc", "zhangwei", policy.Doctor)
	gone     = func() person {
		p := newPerson("u-gone", "lixue", policy.RecordsClerk)
		p.user.Status = identity.Deactivated
		return p
	}()
)

func open(t *testing.T) (*media.Service, *testkit.Clock, *audit.Log) {
	t.Helper()
	ctx := context.Background()
	db := storagetest.Open(t, keys.Schema(), audit.Schema(), media.Schema())
	clock := testkit.NewClock(time.Date(2026, 12, 28, 2, 0, 0, 0, time.UTC))
	log, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	g := gate.New(log, clock)
	kr := keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, clock.Now()), clock)
	dir := staff{}
	for _, p := range []person{it, it2, clerk, security, auditor, doctor, gone} {
		dir[p.user.Username] = p.user
	}
	return media.New(db, g, kr, dir, media.Config{}), clock, log
}

func field(err error) string {
	var me *medguard.Error
	if errors.As(err, &me) && me.Kind == medguard.Invalid {
		return me.Field
	}
	return "(not invalid: " + errString(err) + ")"
}

func rule(err error) string {
	var me *medguard.Error
	if errors.As(err, &me) && me.Kind == medguard.Forbidden {
		return me.Rule
	}
	return "(not forbidden: " + errString(err) + ")"
}

func code(err error) string {
	var me *medguard.Error
	if errors.As(err, &me) && me.Kind == medguard.Conflict {
		return me.Code
	}
	return "(not a conflict: " + errString(err) + ")"
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

var usb = media.NewDevice{Label: "yd-2026-007", Kind: media.USBDrive, Model: "金士顿 IronKey D500S", Serial: "IK500S-88231",
	CapacityGB: 64, Encrypted: true, Encryption: "硬件 AES-256 XTS"}

// TestRegister: a device is labelled, its kind and capacity known, and
// whether it is encrypted; an unencrypted one is registered and flagged.
func TestRegister(t *testing.T) {
	ctx := context.Background()
	svc, clock, _ := open(t)
	d, err := svc.Register(ctx, it.call, usb)
	if err != nil || d.Label != "YD-2026-007" || d.Status != media.Available || !d.Encrypted || d.RegisteredBy != "chenjing" {
		t.Fatalf("registered %+v %v", d, err)
	}
	if _, err := svc.Register(ctx, security.call, usb); code(err) != "" || !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("the label twice: %v", err)
	}
	for _, c := range []struct {
		name  string
		mod   func(*media.NewDevice)
		field string
	}{
		{"a label with spaces", func(d *media.NewDevice) { d.Label = "YD 2026" }, "label"},
		{"a label too short", func(d *media.NewDevice) { d.Label = "Y1" }, "label"},
		{"an unknown kind", func(d *media.NewDevice) { d.Kind = "floppy" }, "kind"},
		{"no model", func(d *media.NewDevice) { d.Model = "  " }, "model"},
		{"no serial", func(d *media.NewDevice) { d.Serial = "" }, "serial"},
		{"no capacity", func(d *media.NewDevice) { d.CapacityGB = 0 }, "capacity_gb"},
		{"encrypted without a method", func(d *media.NewDevice) { d.Encryption = "" }, "encryption"},
		{"unencrypted with a method", func(d *media.NewDevice) { d.Encrypted = false }, "encryption"},
		{"a control character", func(d *media.NewDevice) { d.Model = "U盘\x07" }, "model"},
	} {
		in := usb
		in.Label = "YD-2026-100"
		c.mod(&in)
		if _, err := svc.Register(ctx, it.call, in); field(err) != c.field {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := svc.Register(ctx, doctor.call, media.NewDevice{Label: "YD-2026-101", Kind: media.USBDrive, Model: "x", Serial: "y",
		CapacityGB: 8, Encrypted: true, Encryption: "BitLocker"}); rule(err) != policy.RuleNoPermission {
		t.Fatalf("a doctor registers a device: %v", err)
	}
	plain, err := svc.Register(ctx, it.call, media.NewDevice{Label: "YD-2019-003", Kind: media.PortableDisk, Model: "希捷 Expansion 2TB",
		Serial: "NAB1X2Y3", CapacityGB: 2000})
	if err != nil || plain.Encrypted {
		t.Fatalf("an unencrypted disk: %+v %v", plain, err)
	}
	flagged, err := svc.List(ctx, auditor.call, media.UnencryptedFilter)
	if err != nil || len(flagged) != 1 || flagged[0].Label != "YD-2019-003" {
		t.Fatalf("flagged: %+v %v", flagged, err)
	}
	if _, err := svc.Lend(ctx, it.call, plain.ID, media.NewLoan{Borrower: "zhaomin", Purpose: "复印病历刻录", DueAt: clock.Now().Add(48 * time.Hour)}); code(err) != "unencrypted" {
		t.Fatalf("an unencrypted disk lent: %v", err)
	}
	if _, err := svc.List(ctx, clerk.call, ""); rule(err) != policy.RuleNoPermission {
		t.Fatalf("a records clerk reads the register: %v", err)
	}
}

// TestLoanTwoSignatures: the lender signs by recording the loan — never
// to themselves —, the named borrower alone signs next, and only then is
// the device out; it comes back to a custodian other than the borrower,
// waits for its erasure (before a witness who is not the operator), and
// is lent again only then; an overdue loan is announced once and resolved
// by the return.
func TestLoanTwoSignatures(t *testing.T) {
	ctx := context.Background()
	svc, clock, log := open(t)
	var overdue []media.OverdueLoan
	var returned []string
	svc.OnOverdue(func(_ context.Context, o media.OverdueLoan) { overdue = append(overdue, o) })
	svc.OnReturned(func(_ context.Context, l media.Loan) { returned = append(returned, l.Label) })
	d, err := svc.Register(ctx, it.call, usb)
	if err != nil {
		t.Fatal(err)
	}
	due := clock.Now().Add(7 * 24 * time.Hour)
	lend := func(by person, to string, due time.Time) (*media.Loan, error) {
		return svc.Lend(ctx, by.call, d.ID, media.NewLoan{Borrower: to, Purpose: "为患者刻录出院病历复印件（已审批）", DueAt: due})
	}
	for _, c := range []struct {
		name, to string
		due      time.Time
		field    string
	}{
		{"to a doctor", "zhangwei", due, "borrower"},
		{"to a departed clerk", "lixue", due, "borrower"},
		{"to nobody", "", due, "borrower"},
		{"to a stranger", "wangwu", due, "borrower"},
		{"for 31 days", "zhaomin", clock.Now().Add(31 * 24 * time.Hour), "due_at"},
		{"due in the past", "zhaomin", clock.Now().Add(-time.Minute), "due_at"},
	} {
		if _, err := lend(it, c.to, c.due); field(err) != c.field {
			t.Errorf("lent %s: %v", c.name, err)
		}
	}
	if _, err := svc.Lend(ctx, it.call, d.ID, media.NewLoan{Borrower: "zhaomin", DueAt: due}); field(err) != "purpose" {
		t.Errorf("lent without a purpose: %v", err)
	}
	if _, err := lend(it, "chenjing", due); rule(err) != policy.RuleSameSignatory {
		t.Fatalf("lent to oneself: %v", err)
	}
	if _, err := lend(auditor, "zhaomin", due); rule(err) != policy.RuleNoPermission {
		t.Fatalf("an auditor lends: %v", err)
	}
	l, err := lend(it, "zhaomin", due)
	if err != nil || l.Status != media.AwaitingBorrower || l.Lender != "chenjing" || l.Borrower != "zhaomin" || l.SignedAt != nil {
		t.Fatalf("lent %+v %v", l, err)
	}
	if _, err := lend(security, "sunli", due); code(err) != "device_lent" {
		t.Fatalf("lent twice: %v", err)
	}
	if _, err := svc.Sign(ctx, auditor.call, l.ID); rule(err) != policy.RuleNotBorrower {
		t.Fatalf("someone else signs: %v", err)
	}
	if _, err := svc.Sign(ctx, doctor.call, l.ID); rule(err) != policy.RuleNoPermission {
		t.Fatalf("a doctor signs: %v", err)
	}
	clock.Advance(10 * time.Minute)
	signed, err := svc.Sign(ctx, clerk.call, l.ID)
	if err != nil || signed.Status != media.Out || signed.SignedAt == nil || !signed.SignedAt.Equal(clock.Now().Truncate(time.Millisecond)) {
		t.Fatalf("signed %+v %v", signed, err)
	}
	if _, err := svc.Sign(ctx, clerk.call, l.ID); code(err) != "loan_out" {
		t.Fatalf("signed twice: %v", err)
	}
	if _, err := svc.Cancel(ctx, it.call, l.ID); code(err) != "loan_out" {
		t.Fatalf("a signed loan cancelled: %v", err)
	}
	mine, err := svc.Loans(ctx, clerk.call, media.LoanQuery{Mine: true})
	if err != nil || len(mine) != 1 || mine[0].Purpose != "为患者刻录出院病历复印件（已审批）" {
		t.Fatalf("the clerk's loans: %+v %v", mine, err)
	}
	if others, err := svc.Loans(ctx, auditor.call, media.LoanQuery{Mine: true}); err != nil || len(others) != 0 {
		t.Fatalf("the auditor's loans: %+v %v", others, err)
	}

	// Overdue: announced once, the moment the due date passes.
	clock.Set(due)
	if got, err := svc.CheckOverdue(ctx); err != nil || len(got) != 0 {
		t.Fatalf("at the due time: %v %v", got, err)
	}
	clock.Advance(time.Millisecond)
	if got, err := svc.CheckOverdue(ctx); err != nil || len(got) != 1 || got[0].Label != "YD-2026-007" || got[0].Borrower != "zhaomin" {
		t.Fatalf("past due: %+v %v", got, err)
	}
	if got, err := svc.CheckOverdue(ctx); err != nil || len(got) != 0 || len(overdue) != 1 {
		t.Fatalf("announced twice: %v %v", got, err)
	}
	if late, err := svc.List(ctx, security.call, media.OverdueFilter); err != nil || len(late) != 1 || !late[0].Loan.Overdue {
		t.Fatalf("overdue devices: %+v %v", late, err)
	}

	// The return, to someone other than the borrower; then the erasure.
	back, err := svc.Return(ctx, it2.call, l.ID)
	if err != nil || back.Status != media.Returned || back.ReturnedTo != "hanmei" || !slices.Equal(returned, []string{"YD-2026-007"}) {
		t.Fatalf("returned %+v %v", back, err)
	}
	if _, err := svc.Return(ctx, it.call, l.ID); code(err) != "loan_returned" {
		t.Fatalf("returned twice: %v", err)
	}
	if _, err := lend(it, "zhaomin", clock.Now().Add(24*time.Hour)); code(err) != "device_awaiting_erasure" {
		t.Fatalf("lent again before its erasure: %v", err)
	}
	if _, err := svc.Dispose(ctx, it.call, d.ID, media.NewDisposal{Method: media.PhysicalDestruction, Witness: "zhouqiang"}); code(err) != "device_awaiting_erasure" {
		t.Fatalf("disposed of before its erasure: %v", err)
	}
	if _, err := svc.Erase(ctx, it.call, d.ID, media.NewErasure{Method: media.Overwrite, Witness: "chenjing"}); rule(err) != policy.RuleSameSignatory {
		t.Fatalf("witnessed by its operator: %v", err)
	}
	if _, err := svc.Erase(ctx, it.call, d.ID, media.NewErasure{Method: "format", Witness: "zhouqiang"}); field(err) != "method" {
		t.Fatalf("a quick format: %v", err)
	}
	if _, err := svc.Erase(ctx, it.call, d.ID, media.NewErasure{Method: media.Overwrite, Witness: "lixue"}); field(err) != "witness" {
		t.Fatalf("witnessed by a departed clerk: %v", err)
	}
	e, err := svc.Erase(ctx, it.call, d.ID, media.NewErasure{Method: media.CryptoErase, Witness: "zhouqiang", Note: "销毁加密密钥后全盘覆写一次"})
	if err != nil || e.ErasedBy != "chenjing" || e.Witness != "zhouqiang" {
		t.Fatalf("erased %+v %v", e, err)
	}

	clock.Advance(time.Hour)
	// The security officer borrows it next: lent by an IT engineer, and
	// taken back by the other IT engineer, never by the borrower himself.
	l2, err := lend(it, "zhouqiang", clock.Now().Add(3*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Sign(ctx, security.call, l2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Return(ctx, security.call, l2.ID); rule(err) != policy.RuleSameSignatory {
		t.Fatalf("the borrower takes his own device back: %v", err)
	}
	if _, err := svc.Return(ctx, it.call, l2.ID); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if _, err := svc.Erase(ctx, it2.call, d.ID, media.NewErasure{Method: media.Degauss, Witness: "chenjing"}); err != nil {
		t.Fatal(err)
	}
	// A loan never signed is cancelled; the device is back in the store.
	clock.Advance(time.Hour)
	l3, err := lend(it, "sunli", clock.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := svc.Cancel(ctx, security.call, l3.ID); err != nil || c.Status != media.Cancelled {
		t.Fatalf("cancelled %+v %v", c, err)
	}
	if _, err := svc.Sign(ctx, auditor.call, l3.ID); code(err) != "loan_cancelled" {
		t.Fatalf("a cancelled loan signed: %v", err)
	}
	// Disposal, before a witness; then nothing more.
	if _, err := svc.Dispose(ctx, it.call, d.ID, media.NewDisposal{Method: media.PhysicalDestruction, Witness: "zhouqiang",
		Note: "外壳破损，物理粉碎"}); err != nil {
		t.Fatal(err)
	}
	if _, err := lend(it, "zhaomin", clock.Now().Add(24*time.Hour)); code(err) != "device_disposed" {
		t.Fatalf("a disposed device lent: %v", err)
	}
	if _, err := svc.Erase(ctx, it.call, d.ID, media.NewErasure{Method: media.Overwrite, Witness: "zhouqiang"}); code(err) != "device_disposed" {
		t.Fatalf("a disposed device erased: %v", err)
	}
	got, err := svc.Get(ctx, auditor.call, d.ID)
	if err != nil || got.Status != media.Disposed || len(got.Loans) != 3 || len(got.Erasures) != 2 || got.Disposal == nil ||
		got.Disposal.Note != "外壳破损，物理粉碎" || got.Disposal.Witness != "zhouqiang" || got.Loan != nil || got.LastErasure.Method != media.Degauss ||
		got.Erasures[1].Note != "销毁加密密钥后全盘覆写一次" {
		t.Fatalf("the device's history: %+v %v", got, err)
	}
	if _, err := svc.Get(ctx, auditor.call, "06h4j9khpaef1743afn74xhkkm"); !medguard.IsKind(err, medguard.NotFound) {
		t.Fatalf("a missing device: %v", err)
	}
	if _, err := svc.Sign(ctx, clerk.call, "06h4j9khpaef1743afn74xhkkm"); !medguard.IsKind(err, medguard.NotFound) {
		t.Fatalf("a missing loan: %v", err)
	}
	// The log holds every signature and every refusal, and no purpose in
	// clear.
	size, _, _ := log.Head(ctx)
	es, err := log.Entries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, s := range es {
		x := s.Entry
		if strings.HasPrefix(x.Action, "media.") {
			seen = append(seen, x.Action+" "+x.Actor+" "+x.Rule)
		}
	}
	for _, want := range []string{"media.lend chenjing deny.same_signatory", "media.loan_sign sunli deny.not_borrower",
		"media.loan_sign zhaomin allow.permission", "media.loan_overdue system allow.system.deadline:media_loan_due",
		"media.return zhouqiang deny.same_signatory", "media.erase chenjing deny.same_signatory", "media.dispose chenjing allow.permission"} {
		if !slices.Contains(seen, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}
