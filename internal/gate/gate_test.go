package gate_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// The gate's contract (package doc): decide, do the work, append one durable
// audit entry with the work's changes — and answer only then. These tests
// run against a real audit log, on SQLite and, with MEDGUARD_TEST_POSTGRES,
// on PostgreSQL.

var now = time.Date(2026, 11, 23, 9, 30, 0, 250e6, time.UTC)

// door is a gate over a fresh log, with a throw-away table for the work's
// changes (ward_notes) and a record of what Observe was told.
type door struct {
	db    *storage.DB
	log   *audit.Log
	gate  *gate.Gate
	close func() // closes the log (once)

	mu       sync.Mutex
	observed []observation
}

type observation struct {
	entry   audit.Entry
	receipt audit.Receipt
	durable bool // the entry was readable from the database when Observe ran
}

func open(t *testing.T) *door {
	t.Helper()
	ctx := context.Background()
	db := storagetest.Open(t, audit.Schema())
	if _, err := db.ExecContext(ctx, `CREATE TABLE ward_notes (id TEXT PRIMARY KEY, audit_index BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := &door{db: db, log: log, gate: gate.New(log, testkit.NewClock(now)), close: sync.OnceFunc(func() { log.Close() })}
	t.Cleanup(d.close)
	d.gate.Observe = func(ctx context.Context, e *audit.Entry, r audit.Receipt) {
		stored, err := audit.ReadEntries(ctx, db, r.Index, r.Index+1)
		durable := err == nil && len(stored) == 1 && string(stored[0].Leaf) == string(e.Leaf())
		d.mu.Lock()
		d.observed = append(d.observed, observation{entry: *e, receipt: r, durable: durable})
		d.mu.Unlock()
	}
	return d
}

// observations returns what Observe was told since the last call.
func (d *door) observations() []observation {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.observed
	d.observed = nil
	return o
}

// note is the work's change: a row of ward_notes naming its entry's index.
func note(id string) audit.Mutation {
	return func(ctx context.Context, tx *sql.Tx, index uint64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO ward_notes (id, audit_index) VALUES ($1, $2)`, id, int64(index))
		return err
	}
}

// noted returns the index recorded with note id, if it was committed.
func (d *door) noted(t *testing.T, id string) (uint64, bool) {
	t.Helper()
	var index int64
	err := d.db.QueryRowContext(context.Background(), `SELECT audit_index FROM ward_notes WHERE id = $1`, id).Scan(&index)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return uint64(index), true
}

// stored reads the entry at index back from the database, and checks that
// it is in the tree the receipt names.
func (d *door) stored(t *testing.T, r audit.Receipt) *audit.Entry {
	t.Helper()
	ctx := context.Background()
	got, err := audit.ReadEntries(ctx, d.db, r.Index, r.Index+1)
	if err != nil || len(got) != 1 {
		t.Fatalf("entry %d is not in the database: %v", r.Index, err)
	}
	hashes, err := d.log.InclusionProof(ctx, r.Index, r.TreeSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, r.TreeSize, audit.LeafHash(got[0].Leaf), hashes, r.Root); err != nil {
		t.Fatalf("entry %d is not in the tree of the receipt: %v", r.Index, err)
	}
	return got[0].Entry
}

// Staff of the test hospital.
var (
	zhangwei = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "u-zhangwei", Name: "zhangwei",
		Department: "CARD", Roles: []string{"doctor"}}, IP: "10.1.2.3", RequestID: "req-张伟", Purpose: "treatment"}
	lina = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "u-lina", Name: "lina",
		Department: "NEUR", Roles: []string{"doctor"}}, IP: "10.1.2.4", RequestID: "req-李娜"}
	linaBreaksGlass = &medguard.Call{Actor: lina.Actor, IP: lina.IP, RequestID: "req-李娜-急诊", BreakGlassReason: "患者昏迷，急诊抢救"}
	admin           = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "u-admin", Name: "admin",
		Roles: []string{"admin"}}, RequestID: "req-admin"}
	departed = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, Name: "wangfang", Department: "CARD",
		Roles: []string{"doctor"}}, RequestID: "req-离职"}
	his = &medguard.Call{Actor: medguard.Actor{Kind: medguard.APIKeyActor, ID: "k-his", Name: "apikey:his",
		Department: "CARD", Scopes: []string{"record.read"}}, RequestID: "req-his"}
)

// readRecord is a passage reading record rec of patient pat00001, owned by
// the cardiology department.
func readRecord(call *medguard.Call, rec string) gate.Passage {
	return gate.Passage{Call: call, Action: policy.RecordRead,
		Resource: policy.Resource{Type: "record", ID: fakeID(rec), PatientID: patient, Departments: []string{"CARD"}, RecordType: "progress_note"}}
}

// patient is the opaque id of the patient the records belong to.
var patient = fakeID("pat00001")

// fakeID turns a readable name into an opaque id of the shape the log
// keeps (anything else a client typed is logged as "").
func fakeID(name string) string {
	sum := sha256.Sum256([]byte(name))
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	b := make([]byte, 26)
	for i := range b {
		b[i] = alphabet[sum[i]%32]
	}
	return string(b)
}

// TestNothingButIDsIsLogged: what a client typed into a path (a name and
// an ID number, 60 KB of junk) never reaches the permanent log as a target.
func TestNothingButIDsIsLogged(t *testing.T) {
	d := open(t)
	for _, id := range []string{"张伟110105194912310021", "110105194912310021", strings.Repeat("x", 60<<10), "MR00000001"} {
		p := readRecord(zhangwei, "")
		p.Resource.ID, p.Resource.PatientID = id, id
		_, r, _ := d.gate.Enter(context.Background(), p, (&worker{}).work)
		if e := d.stored(t, r); e.TargetID != "" || e.PatientID != "" {
			t.Errorf("%.40q logged as target %q, patient %q", id, e.TargetID, e.PatientID)
		}
	}
	if got := gate.SafeTargetID("department", "CARD"); got != "CARD" {
		t.Errorf("a department's code: %q", got)
	}
}

// A worker is the work of a passage, counting its calls.
type worker struct {
	calls    int
	mutation audit.Mutation
	err      error
}

func (w *worker) work(policy.Decision) (audit.Mutation, error) {
	w.calls++
	return w.mutation, w.err
}

func TestEnter(t *testing.T) {
	errInvalid := medguard.InvalidField("title", "a title is required")
	errMissing := medguard.Errorf(medguard.NotFound, "no such record")
	errConflict := medguard.Errorf(medguard.Conflict, "the record changed meanwhile")
	errBroken := errors.New("the key service did not answer")
	frozen := &medguard.Error{Kind: medguard.Locked, Rule: "detect.bulk_read", Message: "the account is frozen"}
	refusedByAgreement := &medguard.Error{Kind: medguard.Forbidden, Rule: "deny.outside_agreement", Message: "no agreement covers it"}
	cases := []struct {
		name    string
		passage gate.Passage
		screen  error // what Screen says, if set
		workErr error // what the work returns besides its mutation

		admitted   bool   // the work is called
		committed  bool   // the work's mutation is committed
		decision   string // of the entry
		rule       string
		policyRule string // the policy's rule, when the entry's differs
		outcome    string
		breakGlass bool
		action     string
	}{
		// (1) Denied by the policy: logged, never worked.
		{name: "denied: no permission", passage: readRecord(admin, "rec-1"),
			decision: audit.Deny, rule: policy.RuleNoPermission, outcome: audit.Denied},
		{name: "denied: no relation", passage: readRecord(lina, "rec-2"),
			decision: audit.Deny, rule: policy.RuleNoRelation, outcome: audit.Denied},
		{name: "denied: inactive account", passage: readRecord(departed, "rec-3"),
			decision: audit.Deny, rule: policy.RuleInactive, outcome: audit.Denied},
		{name: "denied: API key without the scope", passage: gate.Passage{Call: his, Action: policy.RecordWrite,
			Resource: policy.Resource{Type: "record", ID: fakeID("rec-4"), PatientID: patient, Departments: []string{"CARD"}}},
			decision: audit.Deny, rule: policy.RuleNoPermission, outcome: audit.Denied},
		// (2) The work fails: logged with its outcome, nothing committed.
		{name: "work invalid", passage: readRecord(zhangwei, "rec-5"), workErr: errInvalid, admitted: true,
			decision: audit.Allow, rule: policy.RuleSameDepartment, outcome: audit.Invalid},
		{name: "work not found", passage: readRecord(zhangwei, "rec-6"), workErr: errMissing, admitted: true,
			decision: audit.Allow, rule: policy.RuleSameDepartment, outcome: audit.Missing},
		{name: "work conflict", passage: readRecord(zhangwei, "rec-7"), workErr: errConflict, admitted: true,
			decision: audit.Allow, rule: policy.RuleSameDepartment, outcome: audit.Conflict},
		{name: "work broken", passage: readRecord(zhangwei, "rec-8"), workErr: errBroken, admitted: true,
			decision: audit.Allow, rule: policy.RuleSameDepartment, outcome: audit.Failed},
		// A rule of the work refuses what the policy admitted (a partner
		// agreement not covering a job): logged as denied by that rule.
		{name: "work refused by its own rule", passage: readRecord(zhangwei, "rec-16"), workErr: refusedByAgreement, admitted: true,
			policyRule: policy.RuleSameDepartment, decision: audit.Deny, rule: "deny.outside_agreement", outcome: audit.Denied},
		// (3) Refused by the screen (detection): logged with its rule.
		{name: "screen refuses", passage: readRecord(zhangwei, "rec-9"), screen: frozen,
			decision: audit.Deny, rule: "detect.bulk_read", outcome: audit.Locked},
		{name: "screen refuses, wrapped", passage: readRecord(zhangwei, "rec-10"), screen: fmt.Errorf("detect: %w", frozen),
			decision: audit.Deny, rule: "detect.bulk_read", outcome: audit.Locked},
		{name: "screen refuses without a rule", passage: readRecord(zhangwei, "rec-11"), screen: medguard.Errorf(medguard.Locked, "locked"),
			decision: audit.Deny, rule: policy.RuleSameDepartment, outcome: audit.Locked},
		// (4) Admitted and done: committed with the entry.
		{name: "allowed: same department", passage: readRecord(zhangwei, "rec-12"), admitted: true, committed: true,
			decision: audit.Allow, rule: policy.RuleSameDepartment, outcome: audit.Success},
		{name: "allowed: break glass", passage: readRecord(linaBreaksGlass, "rec-13"), admitted: true, committed: true,
			decision: audit.Allow, rule: policy.RuleBreakGlass, outcome: audit.Success, breakGlass: true},
		{name: "allowed: API key", passage: readRecord(his, "rec-14"), admitted: true, committed: true,
			decision: audit.Allow, rule: policy.RuleSameDepartment, outcome: audit.Success},
		{name: "allowed, logged under its own action", admitted: true, committed: true,
			passage: func() gate.Passage {
				p := readRecord(zhangwei, "rec-15")
				p.AuditAction = "record.attachment.read"
				return p
			}(),
			decision: audit.Allow, rule: policy.RuleSameDepartment, outcome: audit.Success, action: "record.attachment.read"},
	}
	d := open(t)
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := c.passage.Resource.ID
			w := &worker{mutation: note(id), err: c.workErr}
			var screened []audit.Entry
			d.gate.Screen = nil
			if c.screen != nil {
				d.gate.Screen = func(_ context.Context, es []*audit.Entry) (int, error) {
					for _, e := range es {
						screened = append(screened, *e)
					}
					return 0, c.screen
				}
			}
			dec, r, err := d.gate.Enter(ctx, c.passage, w.work)

			policyRule := c.rule
			if c.policyRule != "" {
				policyRule = c.policyRule
			}
			if dec.Rule != policyRule && c.screen == nil {
				t.Errorf("decision rule %q, want %q", dec.Rule, policyRule)
			}
			switch {
			case c.decision == audit.Deny && c.screen == nil && c.workErr == nil:
				var me *medguard.Error
				if !errors.As(err, &me) || me.Kind != medguard.Forbidden || me.Rule != c.rule {
					t.Errorf("error %v, want forbidden by %s", err, c.rule)
				}
			case c.screen != nil:
				if err != c.screen {
					t.Errorf("error %v, want the screen's own", err)
				}
				if len(screened) != 1 || screened[0].Decision != audit.Allow || screened[0].Actor != c.passage.Call.Actor.Name {
					t.Errorf("screen saw %+v", screened)
				}
			case c.workErr != nil:
				if err != c.workErr {
					t.Errorf("error %v, want the work's own", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := w.calls; got != map[bool]int{true: 1}[c.admitted] {
				t.Errorf("work called %d times", got)
			}
			if r.TreeSize <= r.Index || r.Root == nil {
				t.Fatalf("receipt %+v", r)
			}
			e := d.stored(t, r)
			action := c.action
			if action == "" {
				action = string(c.passage.Action)
			}
			want := audit.Entry{Time: now, Actor: c.passage.Call.Actor.Name, ActorDepartment: c.passage.Call.Actor.Department,
				IP: c.passage.Call.IP, Action: action, TargetType: "record", TargetID: id, PatientID: patient,
				Purpose: c.passage.Call.Purpose, Decision: c.decision, Rule: c.rule, Outcome: c.outcome,
				BreakGlass: c.breakGlass, RequestID: c.passage.Call.RequestID}
			if got, want := entryText(e), entryText(&want); got != want {
				t.Errorf("entry\n%s\nwant\n%s", got, want)
			}
			wantRoles := c.passage.Call.Actor.Roles
			if c.passage.Call.Actor.Kind == medguard.APIKeyActor {
				wantRoles = []string{"api_key"}
			}
			if !slices.Equal(e.ActorRoles, wantRoles) {
				t.Errorf("roles %v, want %v", e.ActorRoles, wantRoles)
			}
			at, ok := d.noted(t, id)
			if ok != c.committed || (ok && at != r.Index) {
				t.Errorf("the work's change: committed %v at %d; want committed %v with entry %d", ok, at, c.committed, r.Index)
			}
			obs := d.observations()
			if len(obs) != 1 || obs[0].receipt.Index != r.Index || string(obs[0].entry.Leaf()) != string(e.Leaf()) || !obs[0].durable {
				t.Errorf("observed %+v", obs)
			}
		})
	}
}

// entryText is the fields of an entry that a case pins, for comparison.
func entryText(e *audit.Entry) string {
	return fmt.Sprintf("time=%s actor=%s dept=%s ip=%s action=%s target=%s/%s patient=%s purpose=%s decision=%s rule=%s outcome=%s break_glass=%v request=%s",
		e.Time.UTC().Format(audit.TimeFormat), e.Actor, e.ActorDepartment, e.IP, e.Action, e.TargetType, e.TargetID, e.PatientID,
		e.Purpose, e.Decision, e.Rule, e.Outcome, e.BreakGlass, e.RequestID)
}

// TestMissing: an attempt on something that does not exist is the caller's
// operation all the same — decided on the permission alone, logged, and
// answered with the not-found error (or the refusal); it never answers nil
// and commits nothing.
func TestMissing(t *testing.T) {
	errMissing := medguard.Errorf(medguard.NotFound, "no such record")
	cases := []struct {
		name     string
		passage  gate.Passage
		notFound error

		kind     medguard.Kind // of the error returned
		message  string        // of the error returned, when notFound is nil
		decision string        // of the entry
		rule     string
		outcome  string
	}{
		// Another department's record would be refused for want of a
		// relation: a missing one is decided on the permission alone.
		{name: "allowed: the permission alone decides", passage: readRecord(lina, "gone-1"), notFound: errMissing,
			kind: medguard.NotFound, decision: audit.Allow, rule: policy.RulePermission, outcome: audit.Missing},
		{name: "allowed, logged under its own action", passage: func() gate.Passage {
			p := readRecord(zhangwei, "gone-2")
			p.AuditAction = "record.attachment.read"
			return p
		}(), notFound: errMissing,
			kind: medguard.NotFound, decision: audit.Allow, rule: policy.RulePermission, outcome: audit.Missing},
		{name: "allowed, without an error of its own", passage: readRecord(zhangwei, "gone-3"),
			kind: medguard.NotFound, message: "no such record", decision: audit.Allow, rule: policy.RulePermission, outcome: audit.Missing},
		{name: "denied: no permission", passage: readRecord(admin, "gone-4"), notFound: errMissing,
			kind: medguard.Forbidden, decision: audit.Deny, rule: policy.RuleNoPermission, outcome: audit.Denied},
		{name: "denied: no permission, without an error of its own", passage: readRecord(admin, "gone-5"),
			kind: medguard.Forbidden, decision: audit.Deny, rule: policy.RuleNoPermission, outcome: audit.Denied},
	}
	d := open(t)
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := c.passage.Resource.ID
			err := d.gate.Missing(ctx, c.passage, c.notFound)

			var me *medguard.Error
			switch {
			case err == nil:
				t.Fatal("answered nil")
			case c.kind == medguard.Forbidden:
				if !errors.As(err, &me) || me.Kind != medguard.Forbidden || me.Rule != c.rule {
					t.Errorf("error %v, want forbidden by %s", err, c.rule)
				}
			case c.notFound != nil:
				if err != c.notFound {
					t.Errorf("error %v, want the caller's own", err)
				}
			default:
				if !errors.As(err, &me) || me.Kind != c.kind || me.Message != c.message {
					t.Errorf("error %v, want %v %q", err, c.kind, c.message)
				}
			}
			obs := d.observations()
			if len(obs) != 1 || !obs[0].durable {
				t.Fatalf("observed %+v, want one durable entry", obs)
			}
			e := d.stored(t, obs[0].receipt)
			action := c.passage.AuditAction
			if action == "" {
				action = string(c.passage.Action)
			}
			want := audit.Entry{Time: now, Actor: c.passage.Call.Actor.Name, ActorDepartment: c.passage.Call.Actor.Department,
				IP: c.passage.Call.IP, Action: action, TargetType: "record", TargetID: id, PatientID: patient,
				Purpose: c.passage.Call.Purpose, Decision: c.decision, Rule: c.rule, Outcome: c.outcome,
				RequestID: c.passage.Call.RequestID}
			if got, want := entryText(e), entryText(&want); got != want {
				t.Errorf("entry\n%s\nwant\n%s", got, want)
			}
			if _, ok := d.noted(t, id); ok {
				t.Errorf("something was committed for %s", id)
			}
			if c.passage.Resource.Missing {
				t.Errorf("the caller's passage was changed")
			}
		})
	}
}

// A change that fails in the database is rolled back, and its entry written
// with the failure as its outcome: the caller gets the failure, not success.
func TestEnterMutationFails(t *testing.T) {
	d := open(t)
	ctx := context.Background()
	if _, _, err := d.gate.Enter(ctx, readRecord(zhangwei, "rec-1"), (&worker{mutation: note("rec-1")}).work); err != nil {
		t.Fatal(err)
	}
	d.observations()
	cases := []struct {
		name     string
		mutation audit.Mutation
		kind     medguard.Kind
		outcome  string
	}{
		{"duplicate row", note("rec-1"), medguard.Conflict, audit.Conflict},
		{"invalid", func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := note("rec-2")(ctx, tx, index); err != nil {
				return err
			}
			return medguard.InvalidField("title", "too long")
		}, medguard.Invalid, audit.Invalid},
		{"broken", func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := note("rec-3")(ctx, tx, index); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO no_such_table VALUES (1)`)
			return err
		}, medguard.Internal, audit.Failed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, r, err := d.gate.Enter(ctx, readRecord(zhangwei, "rec-x"), (&worker{mutation: c.mutation}).work)
			if err == nil || medguard.KindOf(err) != c.kind {
				t.Fatalf("error %v, want %v", err, c.kind)
			}
			e := d.stored(t, r)
			if e.Decision != audit.Allow || e.Rule != policy.RuleSameDepartment || e.Outcome != c.outcome {
				t.Errorf("entry %s", entryText(e))
			}
			for _, id := range []string{"rec-2", "rec-3"} {
				if _, ok := d.noted(t, id); ok {
					t.Errorf("the failed change %s was committed", id)
				}
			}
			if obs := d.observations(); len(obs) != 1 || obs[0].entry.Outcome != c.outcome || !obs[0].durable {
				t.Errorf("observed %+v", obs)
			}
		})
	}
	if at, _ := d.noted(t, "rec-1"); at != 0 {
		t.Errorf("the first change moved to entry %d", at)
	}
}

// When the entry cannot be made durable, nothing is answered but an
// internal error: not the decision, not the work's result, not a refusal.
func TestEnterWithoutALog(t *testing.T) {
	d := open(t)
	ctx, trace := gate.WithTrace(context.Background())
	d.close()
	cases := []struct {
		name    string
		passage gate.Passage
		screen  error
		workErr error
	}{
		{name: "allowed", passage: readRecord(zhangwei, "rec-1")},
		{name: "denied", passage: readRecord(admin, "rec-2")},
		{name: "work fails", passage: readRecord(zhangwei, "rec-3"), workErr: medguard.Errorf(medguard.NotFound, "no such record")},
		{name: "screen refuses", passage: readRecord(zhangwei, "rec-4"), screen: medguard.Errorf(medguard.Locked, "frozen")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d.gate.Screen = nil
			if c.screen != nil {
				d.gate.Screen = func(context.Context, []*audit.Entry) (int, error) { return 0, c.screen }
			}
			_, r, err := d.gate.Enter(ctx, c.passage, (&worker{mutation: note(c.passage.Resource.ID), err: c.workErr}).work)
			if !medguard.IsKind(err, medguard.Internal) || !errors.Is(err, audit.ErrClosed) {
				t.Errorf("error %v, want an internal error", err)
			}
			if r.TreeSize != 0 {
				t.Errorf("receipt %+v", r)
			}
			if _, ok := d.noted(t, c.passage.Resource.ID); ok {
				t.Error("the work's change was committed without its entry")
			}
		})
	}
	if _, err := d.gate.Record(ctx, gate.Event{Call: zhangwei, Action: "auth.logout", Allowed: true}, note("logout")); !medguard.IsKind(err, medguard.Internal) {
		t.Errorf("record: %v", err)
	}
	if obs := d.observations(); len(obs) != 0 {
		t.Errorf("observed %+v", obs)
	}
	if n := trace.Entries(); n != 0 {
		t.Errorf("trace counted %d entries", n)
	}
	if size, _, err := audit.HeadOf(context.Background(), d.db); err != nil || size != 0 {
		t.Errorf("log of %d entries: %v", size, err)
	}
}

func TestRecord(t *testing.T) {
	d := open(t)
	ctx := context.Background()
	stranger := &medguard.Call{Actor: medguard.Actor{Name: "zhangwie"}, IP: "10.9.9.9", RequestID: "req-陌生人"}
	cases := []struct {
		name     string
		event    gate.Event
		mutation bool
		decision string
		outcome  string
	}{
		{name: "sign-in", event: gate.Event{Call: zhangwei, Action: "auth.login", TargetType: "user", TargetID: fakeID("u-zhangwei"),
			Allowed: true, Rule: "auth.password_totp"}, mutation: true, decision: audit.Allow, outcome: audit.Success},
		{name: "wrong password", event: gate.Event{Call: stranger, Action: "auth.login", TargetType: "user",
			Rule: "auth.bad_password", Outcome: audit.Refused}, decision: audit.Deny, outcome: audit.Refused},
		{name: "lockout", event: gate.Event{Call: zhangwei, Action: "auth.lockout", TargetType: "user", TargetID: fakeID("u-zhangwei"),
			Rule: "auth.too_many_failures", Outcome: audit.Locked}, mutation: true, decision: audit.Deny, outcome: audit.Locked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m audit.Mutation
			if c.mutation {
				m = note(c.name)
			}
			r, err := d.gate.Record(ctx, c.event, m)
			if err != nil {
				t.Fatal(err)
			}
			e := d.stored(t, r)
			ev := c.event
			want := audit.Entry{Time: now, Actor: ev.Call.Actor.Name, ActorDepartment: ev.Call.Actor.Department, IP: ev.Call.IP,
				Action: ev.Action, TargetType: ev.TargetType, TargetID: ev.TargetID, Purpose: ev.Call.Purpose,
				Decision: c.decision, Rule: ev.Rule, Outcome: c.outcome, RequestID: ev.Call.RequestID}
			if got, want := entryText(e), entryText(&want); got != want {
				t.Errorf("entry\n%s\nwant\n%s", got, want)
			}
			if at, ok := d.noted(t, c.name); ok != c.mutation || (ok && at != r.Index) {
				t.Errorf("change committed %v at %d", ok, at)
			}
			if obs := d.observations(); len(obs) != 1 || obs[0].receipt.Index != r.Index || !obs[0].durable {
				t.Errorf("observed %+v", obs)
			}
		})
	}
}

func TestTraceCountsEntriesPerRequest(t *testing.T) {
	d := open(t)
	background := context.Background()
	first, t1 := gate.WithTrace(background)
	second, t2 := gate.WithTrace(background)
	if _, ok := t1.Last(); ok || t1.Entries() != 0 {
		t.Fatal("a new trace counts entries")
	}
	w := func() *worker { return &worker{} }
	d.gate.Enter(first, readRecord(zhangwei, "rec-1"), w().work)
	d.gate.Enter(second, readRecord(zhangwei, "rec-2"), w().work)
	d.gate.Enter(background, readRecord(zhangwei, "rec-3"), w().work) // no trace: not counted anywhere
	d.gate.Enter(first, readRecord(admin, "rec-4"), w().work)         // denied: counted
	r, err := d.gate.Record(first, gate.Event{Call: zhangwei, Action: "auth.logout", Allowed: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if last, ok := t1.Last(); t1.Entries() != 3 || !ok || last != r.Index {
		t.Errorf("first request: %d entries, last %d %v; want 3, last %d", t1.Entries(), last, ok, r.Index)
	}
	if last, ok := t2.Last(); t2.Entries() != 1 || !ok || last != 1 {
		t.Errorf("second request: %d entries, last %d %v", t2.Entries(), last, ok)
	}
}

// TestEnterList pins the contract of an operation that shows many
// patients: the lead and one entry per item, committed together; items
// the policy refuses are logged as denied and not shown; the items are
// screened together, and a refusal logs the refused item alone, runs no
// work and shows nothing.
func TestEnterList(t *testing.T) {
	d := open(t)
	ctx := context.Background()
	lead := gate.Passage{Call: zhangwei, Action: policy.PatientList, Resource: policy.Resource{Type: "department", ID: "CARD",
		Departments: []string{"CARD"}}}
	items := func() []gate.Passage {
		var ps []gate.Passage
		for i, dept := range []string{"CARD", "NEUR", "CARD"} {
			id := fakeID(fmt.Sprint("listed-", i))
			ps = append(ps, gate.Passage{Call: zhangwei, Action: policy.PatientList, Resource: policy.Resource{Type: "patient",
				ID: id, PatientID: id, Departments: []string{dept}}})
		}
		return ps
	}
	before, _, _ := audit.HeadOf(ctx, d.db)
	var shown []bool
	err := d.gate.EnterList(ctx, lead, func(policy.Decision) ([]gate.Passage, error) { return items(), nil },
		func(ds []policy.Decision) error {
			for _, dec := range ds {
				shown = append(shown, dec.Allowed)
			}
			return nil
		})
	if err != nil || fmt.Sprint(shown) != "[true false true]" {
		t.Fatalf("%v %v", shown, err)
	}
	after, _, _ := audit.HeadOf(ctx, d.db)
	got, _ := audit.ReadEntries(ctx, d.db, before, after)
	if len(got) != 4 || got[0].Entry.TargetType != "department" || got[2].Entry.Decision != audit.Deny ||
		got[1].Entry.PatientID != fakeID("listed-0") || got[3].Entry.Outcome != audit.Success {
		t.Fatalf("%d entries: %+v", len(got), got)
	}
	if n := len(d.observations()); n != 4 {
		t.Fatalf("observed %d", n)
	}

	// A screen that refuses the second shown item.
	var judged int
	d.gate.Screen = func(_ context.Context, es []*audit.Entry) (int, error) {
		judged = len(es)
		return 2, medguard.Errorf(medguard.Locked, "frozen")
	}
	defer func() { d.gate.Screen = nil }()
	worked := false
	err = d.gate.EnterList(ctx, lead, func(policy.Decision) ([]gate.Passage, error) { return items(), nil },
		func([]policy.Decision) error { worked = true; return nil })
	if !medguard.IsKind(err, medguard.Locked) || worked || judged != 3 {
		t.Fatalf("%v worked %v judged %d", err, worked, judged)
	}
	end, _, _ := audit.HeadOf(ctx, d.db)
	refused, _ := audit.ReadEntries(ctx, d.db, after, end)
	if len(refused) != 1 || refused[0].Entry.Outcome != audit.Locked || refused[0].Entry.PatientID != fakeID("listed-2") {
		t.Fatalf("%+v", refused)
	}
}

// TestRestrictions: the registers' restrictions reach the policy through
// the gate on every decision — the member of staff's own and everyone's —
// and a refusal is logged with the restriction's rule, the work never done.
func TestRestrictions(t *testing.T) {
	d := open(t)
	var asked []string
	d.gate.Restrict(func(a *medguard.Actor, at time.Time) (own, all []policy.Restriction) {
		asked = append(asked, a.Name)
		if !at.Equal(now) {
			t.Errorf("asked at %v, want the gate's clock %v", at, now)
		}
		if a.Name == "lina" {
			own = []policy.Restriction{{Rule: policy.RuleTrainingRequired, Emergency: true}}
		}
		return own, nil
	})
	suspended := false
	d.gate.Restrict(func(*medguard.Actor, time.Time) (own, all []policy.Restriction) {
		if suspended {
			all = []policy.Restriction{{Rule: policy.RuleOperationSuspended, Actions: []policy.Permission{policy.RecordRead}}}
		}
		return nil, all
	})
	ctx := context.Background()
	cases := []struct {
		name      string
		call      *medguard.Call
		suspended bool
		rule      string
	}{
		{"an unrestricted doctor reads", zhangwei, false, policy.RuleSameDepartment},
		{"a doctor without the training is refused", &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "u-lina",
			Name: "lina", Department: "CARD", Roles: []string{"doctor"}}, RequestID: "req-未培训"}, false, policy.RuleTrainingRequired},
		{"break-glass still opens in an emergency", linaBreaksGlass, false, policy.RuleBreakGlass},
		{"a suspended read is refused to everyone", zhangwei, true, policy.RuleOperationSuspended},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			suspended = c.suspended
			w := &worker{}
			p := readRecord(c.call, "rec-1")
			dec, r, err := d.gate.Enter(ctx, p, w.work)
			if dec.Rule != c.rule {
				t.Fatalf("rule %q, want %q (%v)", dec.Rule, c.rule, err)
			}
			e := d.stored(t, r)
			if e.Rule != c.rule {
				t.Fatalf("logged rule %q, want %q", e.Rule, c.rule)
			}
			if refused := !dec.Allowed; refused != (w.calls == 0) || refused != (err != nil) {
				t.Fatalf("allowed %v, work done %d times, error %v", dec.Allowed, w.calls, err)
			}
		})
	}
	if len(asked) == 0 || asked[0] != "zhangwei" {
		t.Fatalf("sources asked about %v", asked)
	}
}
