package console

import (
	"fmt"
	"testing"

	"medguard/internal/plans"
	"medguard/internal/risks"
)

// TestRegisterCodesHaveWords checks that every code the risk register's
// and the plans' and drills' pages turn into words through a computed key
// has a text in both languages.
func TestRegisterCodesHaveWords(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	add := func(prefix string, codes ...string) {
		for _, c := range codes {
			keys = append(keys, prefix+c)
		}
	}
	add("risk.level.", risks.Levels...)
	add("heatmap.band.", risks.Levels...)
	add("risk.treatment.", risks.Treatments...)
	add("risk.acceptance.", risks.AcceptanceStates...)
	add("risk.status.", risks.Statuses...)
	add("risk.event.", risks.EventKinds...)
	add("assessment.status.", risks.AssessmentStatuses...)
	add("introduction.status.", risks.IntroductionStatuses...)
	add("introduction.item.", risks.ChecklistItems...)
	add("introduction.item_help.", risks.ChecklistItems...)
	for i := 1; i <= 5; i++ {
		add("risk.likelihood.", fmt.Sprint(i))
		add("risk.impact.", fmt.Sprint(i))
	}
	add("plan.type.", plans.Types...)
	add("plan.status.", plans.VersionStatuses...)
	add("plan.event.", plans.EventActions...)
	add("drill.kind.", append(plans.DrillKinds, plans.Restore)...)
	add("drill.severity.", plans.Severities...)
	add("drill.improvement.", plans.ImprovementStatuses...)
	for _, r := range registerAlertRules {
		add("detect.rule.", r)
		add("alerts.explain.", r)
	}
	add("period.", "q1", "q2", "q3", "q4", "h1", "h2", "quarter", "month")
	for _, k := range keys {
		if err := cat.check(k); err != nil {
			t.Error(err)
		}
	}
	c, err := build(Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, zh, en string }{
		{"2026-Q4", "2026年第四季度", "Q4 2026"}, {"2027-H1", "2027年上半年", "H1 2027"}, {"2026-H2", "2026年下半年", "H2 2026"},
	} {
		for lang, want := range map[string]string{"zh-CN": tc.zh, "en": tc.en} {
			if got := (&Request{c: c, Lang: lang}).periodWords(tc.name); got != want {
				t.Errorf("%s %s: %q, want %q", lang, tc.name, got, want)
			}
		}
	}
}
