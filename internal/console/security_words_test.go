package console

import (
	"testing"
	"time"

	"medguard/internal/detect"
	"medguard/internal/incidents"
	"medguard/internal/policy"
)

// TestSecurityCodesHaveWords checks that every code the security and
// administration pages turn into words through a computed key has a text
// in both languages: alert and case states, detection rules, deadlines,
// timeline kinds, action states, outcomes, roles.
func TestSecurityCodesHaveWords(t *testing.T) {
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
	add("alert.status.", append(AlertStatuses, "all")...)
	for _, r := range detect.DefaultRules() {
		add("detect.rule.", r.Name)
	}
	add("detect.rule.", "incident_deadline_overdue") // raised by the App for an overdue incident deadline
	add("incident.status.", incidents.Open, incidents.Closed, "all")
	add("incident.source.", incidents.SourceReport, incidents.SourceFreeze)
	add("deadline.", incidents.DeadlineNames...)
	add("deadline.state.", incidents.Pending, incidents.Met, incidents.Overdue)
	add("update.", append(incidents.UpdateKinds, "reported", "grade_confirmed", "evidence", "analysis", "analysis_revised",
		"action", "action_state", "closed")...)
	add("action.state.", incidents.ActionStates...)
	add("case.status.", append(CaseStatuses, "all")...)
	add("outcome.", incidents.Upheld, incidents.Dismissed, incidents.Overturned)
	add("user.status.", "active", "deactivated")
	for _, r := range policy.DefaultRoles {
		add("role.", r.Name)
		add("role.desc.", r.Name)
	}
	for _, k := range keys {
		if err := cat.check(k); err != nil {
			t.Error(err)
		}
	}
}

// TestCountdown checks the time left or overdue, in words, to the minute.
func TestCountdown(t *testing.T) {
	c, err := build(Deps{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		due    time.Duration
		zh, en string
	}{
		{80 * time.Minute, "剩余 1 小时 20 分", "1 h 20 min left"},
		{30 * time.Minute, "剩余 30 分钟", "30 min left"},
		{30*time.Minute + 40*time.Second, "剩余 30 分钟", "30 min left"},
		{-35 * time.Minute, "已超期 35 分钟", "overdue by 35 min"},
		{-10 * time.Second, "已超期 1 分钟", "overdue by 1 min"},
		{-(2*time.Hour + 5*time.Minute), "已超期 2 小时 5 分", "overdue by 2 h 5 min"},
		{48 * time.Hour, "剩余 2 天 0 小时", "2 d 0 h left"},
	} {
		for lang, want := range map[string]string{"zh-CN": tc.zh, "en": tc.en} {
			rq := &Request{c: c, Lang: lang}
			if got := rq.countdown(now.Add(tc.due), now); got != want {
				t.Errorf("%s %v: %q, want %q", lang, tc.due, got, want)
			}
		}
	}
}
