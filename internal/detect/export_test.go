package detect_test

import (
	"testing"
	"time"

	"medguard/internal/audit"
	"medguard/internal/detect"
)

// bulk_export (SPEC §6): an export the policy refused for want of an
// approved request freezes its actor at once; approved exports — one
// record.export_approved entry per patient, allowed — fire no freeze rule,
// however many patients they hold.
func TestBulkExportFreezesOnTheRefusal(t *testing.T) {
	e := detect.NewEngine(detect.DefaultRules(), nil)
	for i := 0; i < 500; i++ {
		en := read("chenjing", "10.0.0.9", "p"+string(rune('a'+i%26))+string(rune('a'+i/26)), t0.Add(time.Duration(i)*time.Millisecond))
		en.Action, en.Rule = detect.ApprovedExport, "allow.hospital_scope"
		if i, f := e.Screen([]*audit.Entry{en}); f != nil {
			t.Fatalf("an approved export's patient %d was screened out: %+v", i, f)
		}
		for _, f := range e.Observe(en) {
			if f.Action == detect.ActFreeze {
				t.Fatalf("an approved export froze: %+v", f)
			}
		}
	}
	refused := &audit.Entry{Time: t0.Add(time.Second), Actor: "zhangwei", ActorDepartment: "CARD", IP: "10.0.0.1",
		Action: "export.run", TargetType: "export", Decision: audit.Deny, Rule: "deny.export_not_approved", Outcome: audit.Denied}
	refused.Time = t0.Add(time.Hour) // past the windows of the reads
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
