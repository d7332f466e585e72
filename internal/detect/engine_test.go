package detect_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/detect"
)

var t0 = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC) // 10:00 in Shanghai

func read(actor, ip, patient string, at time.Time) *audit.Entry {
	return &audit.Entry{Time: at, Actor: actor, ActorDepartment: "CARD", ActorRoles: []string{"doctor"}, IP: ip,
		Action: "record.read", TargetType: "record", TargetID: "rec" + patient, PatientID: patient, Purpose: "treatment",
		Decision: audit.Allow, Rule: "allow.same_department", Outcome: audit.Success, RequestID: fmt.Sprintf("req-%s-%d", patient, at.UnixMilli())}
}

func rule(threshold int, window time.Duration, key, action string) detect.Rule {
	return detect.Rule{Name: "r", Actions: []string{"record.read"}, Decision: "allow", Key: key, Threshold: threshold,
		Window: detect.Duration(window), Action: action, Enabled: true}
}

// ≥ N events within the last T, both ends included.
func TestWindowIsInclusive(t *testing.T) {
	e := detect.NewEngine([]detect.Rule{rule(3, time.Minute, detect.ByUser, detect.ActAlert)}, nil)
	if fs := e.Observe(read("zhangwei", "10.0.0.1", "p1", t0)); fs != nil {
		t.Fatal(fs)
	}
	e.Observe(read("zhangwei", "10.0.0.1", "p2", t0.Add(30*time.Second)))
	// Exactly T after the first: it still counts.
	fs := e.Observe(read("zhangwei", "10.0.0.1", "p3", t0.Add(time.Minute)))
	if len(fs) != 1 || fs[0].Count != 3 || !fs[0].From.Equal(t0) {
		t.Fatalf("at T: %+v", fs)
	}
	// One millisecond later the first would have left.
	e = detect.NewEngine([]detect.Rule{rule(3, time.Minute, detect.ByUser, detect.ActAlert)}, nil)
	e.Observe(read("zhangwei", "10.0.0.1", "p1", t0))
	e.Observe(read("zhangwei", "10.0.0.1", "p2", t0.Add(30*time.Second)))
	if fs := e.Observe(read("zhangwei", "10.0.0.1", "p3", t0.Add(time.Minute+time.Millisecond))); fs != nil {
		t.Fatalf("after T: %+v", fs)
	}
}

// Wazuh reports: a counter that never resets (every later event alerts
// again), and frequency rules that count all users together.
func TestCounterResetsAndGroupsByUser(t *testing.T) {
	e := detect.NewEngine([]detect.Rule{rule(3, time.Hour, detect.ByUser, detect.ActAlert)}, nil)
	fired := 0
	for i := 0; i < 9; i++ {
		fired += len(e.Observe(read("zhangwei", "10.0.0.1", fmt.Sprint("p", i), t0.Add(time.Duration(i)*time.Second))))
	}
	if fired != 3 {
		t.Fatalf("9 events, threshold 3: %d alerts, want 3", fired)
	}
	// Two users with two events each never reach 3.
	e = detect.NewEngine([]detect.Rule{rule(3, time.Hour, detect.ByUser, detect.ActAlert)}, nil)
	for i := 0; i < 2; i++ {
		for _, u := range []string{"zhangwei", "lina"} {
			if fs := e.Observe(read(u, "10.0.0.1", "p", t0.Add(time.Duration(i)*time.Second))); fs != nil {
				t.Fatalf("users counted together: %+v", fs)
			}
		}
	}
	// Keyed by IP they are counted together.
	e = detect.NewEngine([]detect.Rule{rule(3, time.Hour, detect.ByIP, detect.ActAlert)}, nil)
	n := 0
	for i, u := range []string{"zhangwei", "lina", "wangfang"} {
		n += len(e.Observe(read(u, "10.0.0.9", "p", t0.Add(time.Duration(i)*time.Second))))
	}
	if n != 1 {
		t.Fatalf("by IP: %d", n)
	}
}

// Two rules matching one event both see it (Wazuh stops at the first).
func TestTwoRulesOnOneEvent(t *testing.T) {
	a, b := rule(2, time.Minute, detect.ByUser, detect.ActAlert), rule(2, time.Minute, detect.ByIP, detect.ActAlert)
	a.Name, b.Name = "per_user", "per_ip"
	e := detect.NewEngine([]detect.Rule{a, b}, nil)
	e.Observe(read("zhangwei", "10.0.0.1", "p1", t0))
	fs := e.Observe(read("zhangwei", "10.0.0.1", "p2", t0.Add(time.Second)))
	if len(fs) != 2 || fs[0].Rule != "per_user" || fs[1].Rule != "per_ip" {
		t.Fatalf("%+v", fs)
	}
}

// A rule with a time frame but no count (or the other way) is refused.
func TestRuleNeedsCountAndFrame(t *testing.T) {
	described := func(d string) detect.Rule {
		r := rule(5, time.Minute, detect.ByUser, detect.ActAlert)
		r.Description = d
		return r
	}
	for field, r := range map[string]detect.Rule{
		"description": described("夜间批量调阅\x1b[2J"), // shown to officers: no terminal escapes
		"threshold":   rule(0, time.Minute, detect.ByUser, detect.ActAlert),
		"window":      rule(5, 0, detect.ByUser, detect.ActAlert),
		"key":         rule(5, time.Minute, "department", detect.ActAlert),
		"action":      rule(5, time.Minute, detect.ByIP, detect.ActFreeze), // an IP rule may not freeze
	} {
		err := r.Validate()
		var me *medguard.Error
		if !medguard.IsKind(err, medguard.Invalid) || !asError(err, &me) || me.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	for _, r := range detect.DefaultRules() {
		if err := r.Validate(); err != nil {
			t.Errorf("default rule %s: %v", r.Name, err)
		}
	}
}

func asError(err error, target **medguard.Error) bool {
	e, ok := err.(*medguard.Error)
	*target = e
	return ok
}

// The bulk-read freeze rule counts distinct patients and refuses the
// operation that would reach the threshold, before it is done.
func TestScreenRefusesTheReadThatReachesTheThreshold(t *testing.T) {
	e := detect.NewEngine(detect.DefaultRules(), nil)
	for i := 1; i <= 70; i++ {
		en := read("zhangwei", "10.0.0.1", fmt.Sprintf("pat%03d", i), t0.Add(time.Duration(i)*time.Second))
		if _, f := e.Screen([]*audit.Entry{en}); f != nil {
			if i != 51 || f.Rule != "bulk_read_user" || f.Count != 51 || !f.Screened {
				t.Fatalf("read %d: %+v", i, f)
			}
			return
		}
		// Reading the same patients again does not count twice.
		e.Observe(en)
		e.Observe(read("zhangwei", "10.0.0.1", fmt.Sprintf("pat%03d", i), t0.Add(time.Duration(i)*time.Second+time.Millisecond)))
	}
	t.Fatal("70 patients read, never stopped")
}

// Off-hours rules read the time in the hospital's zone.
func TestOffHoursInTheHospitalsZone(t *testing.T) {
	r := rule(1, time.Hour, detect.ByUser, detect.ActAlert)
	r.OffHours = "22:00-07:00"
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	e := detect.NewEngine([]detect.Rule{r}, shanghai)
	if fs := e.Observe(read("zhangwei", "ip", "p", time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC))); fs != nil { // 10:00
		t.Fatalf("day: %+v", fs)
	}
	if fs := e.Observe(read("zhangwei", "ip", "p", time.Date(2026, 11, 23, 15, 30, 0, 0, time.UTC))); len(fs) != 1 { // 23:30
		t.Fatalf("night: %+v", fs)
	}
}

// A user's reads are compared with their usual count in the same hour of
// the week; the alert explains itself.
func TestBaselineFlagsStrongDeviation(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	var r detect.Rule
	for _, d := range detect.DefaultRules() {
		if d.Name == "baseline_deviation" {
			r = d
		}
	}
	monday10 := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC) // Monday 10:00 in Shanghai
	run := func(usual, now int) []detect.Firing {
		e := detect.NewEngine([]detect.Rule{r}, shanghai)
		var out []detect.Firing
		for week := 0; week < 4; week++ {
			n := usual
			if week == 3 {
				n = now
			}
			for i := 0; i < n; i++ {
				at := monday10.Add(time.Duration(week)*7*24*time.Hour + time.Duration(i)*time.Minute/2)
				out = append(out, e.Observe(read("zhangwei", "10.0.0.1", fmt.Sprint("p", i%7), at))...)
			}
			// Some activity on another day keeps the hours rolling.
			e.Observe(read("zhangwei", "10.0.0.1", "p1", monday10.Add(time.Duration(week)*7*24*time.Hour+26*time.Hour)))
		}
		return out
	}
	fs := run(3, 42)
	if len(fs) != 1 || fs[0].Count != 20 || !strings.Contains(fs[0].Note, "20 reads this hour, usually 3 ± 0") ||
		!strings.Contains(fs[0].Explain(), "本小时已读取 20 次") {
		t.Fatalf("3 usually, 42 now: %+v", fs)
	}
	if fs := run(40, 42); len(fs) != 0 {
		t.Fatalf("40 usually, 42 now: %+v", fs)
	}
	if fs := run(0, 0); len(fs) != 0 {
		t.Fatal(fs)
	}
}

// A system's API key is screened like an account: the key is frozen at the
// read that reaches the bulk-read threshold (issue: keys were never frozen).
func TestAPIKeysAreScreened(t *testing.T) {
	e := detect.NewEngine(detect.DefaultRules(), nil)
	for i := 1; i <= 60; i++ {
		en := read("apikey:his", "10.2.0.1", fmt.Sprintf("pat%03d", i), t0.Add(time.Duration(i)*time.Second))
		en.ActorRoles = []string{"api_key"}
		if _, f := e.Screen([]*audit.Entry{en}); f != nil {
			if i != 51 || f.Rule != "bulk_read_user" || f.Username != "apikey:his" {
				t.Fatalf("read %d: %+v", i, f)
			}
			return
		}
		e.Observe(en)
	}
	t.Fatal("60 patients read by a key, never stopped")
}

// A list is screened as a whole, each item counted: a page of 200 patients
// is refused at the item that would be the 51st patient.
func TestListsAreScreenedItemByItem(t *testing.T) {
	e := detect.NewEngine(detect.DefaultRules(), nil)
	var page []*audit.Entry
	for i := 1; i <= 200; i++ {
		en := read("clerk", "10.0.0.5", fmt.Sprintf("pat%03d", i), t0)
		en.Action = "patient.list"
		page = append(page, en)
	}
	i, f := e.Screen(page)
	if f == nil || i != 50 || f.Count != 51 {
		t.Fatalf("refused at %d: %+v", i, f)
	}
	// A short page of patients already seen does not fire.
	e2 := detect.NewEngine(detect.DefaultRules(), nil)
	for i := 1; i <= 50; i++ {
		e2.Observe(read("clerk", "10.0.0.5", fmt.Sprintf("pat%03d", i), t0))
	}
	if _, f := e2.Screen(page[:50]); f != nil {
		t.Fatalf("the same 50 patients again: %+v", f)
	}
	if i, f := e2.Screen(page[:51]); f == nil || i != 50 {
		t.Fatalf("a 51st patient: %d %+v", i, f)
	}
}

// Every disclosure counts towards the distinct-patient rule: reads, lists,
// search results, attachments, versions, access reports.
func TestEveryDisclosureCounts(t *testing.T) {
	e := detect.NewEngine(detect.DefaultRules(), nil)
	for i := 1; i <= 50; i++ {
		en := read("clerk", "10.0.0.5", fmt.Sprintf("pat%03d", i), t0.Add(time.Duration(i)*time.Second))
		en.Action = detect.DisclosureActions[i%len(detect.DisclosureActions)]
		if en.Action == detect.ApprovedExport {
			en.Action = "record.export" // a second person approved those (export_test.go)
		}
		e.Observe(en)
	}
	en := read("clerk", "10.0.0.5", "pat999", t0.Add(time.Minute))
	en.Action = "patient.search_match"
	if _, f := e.Screen([]*audit.Entry{en}); f == nil || f.Rule != "bulk_read_user" {
		t.Fatalf("the 51st patient shown: %+v", f)
	}
}

// A refusal by a screen starts the rule's window afresh on every engine
// that sees the refused entry — as on the engine that screened it — so
// that servers sharing a log count alike.
func TestARefusedEntryResetsTheWindowEverywhere(t *testing.T) {
	screening, watching := detect.NewEngine(detect.DefaultRules(), nil), detect.NewEngine(detect.DefaultRules(), nil)
	for i := 1; i <= 50; i++ {
		en := read("zhangwei", "10.0.0.1", fmt.Sprintf("pat%03d", i), t0.Add(time.Duration(i)*time.Second))
		screening.Observe(en)
		watching.Observe(en)
	}
	en := read("zhangwei", "10.0.0.1", "pat051", t0.Add(time.Minute))
	_, f := screening.Screen([]*audit.Entry{en})
	if f == nil {
		t.Fatal("not refused")
	}
	refused := *en
	refused.Decision, refused.Outcome, refused.Rule = audit.Deny, audit.Locked, "detect.bulk_read_user"
	screening.Observe(&refused)
	watching.Observe(&refused)
	next := read("zhangwei", "10.0.0.1", "pat052", t0.Add(time.Minute+time.Second))
	for name, e := range map[string]*detect.Engine{"screening": screening, "watching": watching} {
		if _, f := e.Screen([]*audit.Entry{next}); f != nil {
			t.Errorf("%s engine fired again at once: %+v", name, f)
		}
	}
}

// Alerts on core data rank one step higher.
func TestCoreDataRanksHigher(t *testing.T) {
	r := rule(2, time.Hour, detect.ByUser, detect.ActAlert)
	r.Severity = detect.SeverityMedium
	for _, c := range []struct {
		class, want string
	}{{"general", detect.SeverityMedium}, {"core", detect.SeverityHigh}} {
		e := detect.NewEngine([]detect.Rule{r}, nil)
		var fs []detect.Firing
		for i := 0; i < 2; i++ {
			en := read("zhangwei", "10.0.0.1", "p1", t0.Add(time.Duration(i)*time.Second))
			en.Classification = c.class
			fs = e.Observe(en)
		}
		if len(fs) != 1 || fs[0].Severity != c.want {
			t.Errorf("%s: %+v", c.class, fs)
		}
	}
}
