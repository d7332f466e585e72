package detect_test

import (
	"testing"
	"time"

	"medguard/internal/audit"
	"medguard/internal/detect"
)

// bulk_export (SPEC §6): an export the policy refused for want of an
// approved request freezes its actor at once; approved exports — one
// record.export entry per patient, allowed — never fire it, however many.
func TestBulkExportFreezesOnTheRefusal(t *testing.T) {
	var rules []detect.Rule
	for _, r := range detect.DefaultRules() {
		if r.Name == "bulk_export" {
			rules = append(rules, r)
		}
	}
	if len(rules) != 1 {
		t.Fatal("no bulk_export rule")
	}
	e := detect.NewEngine(rules, nil)
	for i := 0; i < 500; i++ {
		en := read("chenjing", "10.0.0.9", "p"+string(rune('a'+i%26))+string(rune('a'+i/26)), t0.Add(time.Duration(i)*time.Millisecond))
		en.Action, en.TargetType, en.TargetID, en.Rule = "record.export", "export", "e1", "allow.hospital_scope"
		if i, f := e.Screen([]*audit.Entry{en}); f != nil {
			t.Fatalf("an approved export's patient %d was screened out: %+v", i, f)
		}
		if fs := e.Observe(en); fs != nil {
			t.Fatalf("an approved export fired: %+v", fs)
		}
	}
	refused := &audit.Entry{Time: t0.Add(time.Second), Actor: "zhangwei", ActorDepartment: "CARD", IP: "10.0.0.1",
		Action: "export.run", TargetType: "export", Decision: audit.Deny, Rule: "deny.export_not_approved", Outcome: audit.Denied}
	fs := e.Observe(refused)
	if len(fs) != 1 || fs[0].Action != detect.ActFreeze || fs[0].Username != "zhangwei" || fs[0].Rule != "bulk_export" {
		t.Fatalf("the refusal fired %+v", fs)
	}
	// Another refusal (no relation) does not.
	other := *refused
	other.Rule = "deny.no_relation"
	if fs := e.Observe(&other); fs != nil {
		t.Fatalf("deny.no_relation fired %+v", fs)
	}
}
