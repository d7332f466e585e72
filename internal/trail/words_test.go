package trail

import (
	"strings"
	"testing"
	"time"

	"medguard/internal/audit"
	"medguard/internal/detect"
	"medguard/internal/policy"
)

// TestWordsComplete checks that every phrase exists in both languages and
// that every purpose-of-use code and role has words.
func TestWordsComplete(t *testing.T) {
	categories := map[string]bool{CategoryRead: true, CategoryChange: true, CategoryAccessControl: true,
		CategoryOversight: true, CategoryReport: true}
	for code, a := range actions {
		if !categories[a.category] {
			t.Errorf("%s: category %q", code, a.category)
		}
		for _, b := range []bilingual{a.did, a.do} {
			if b.zh == "" || b.en == "" {
				t.Errorf("%s: a phrase lacks a language: %+v", code, a)
			}
		}
		if strings.HasPrefix(a.do.en, "to ") || strings.Contains(a.did.zh, "试图") {
			t.Errorf("%s: phrases must be bare: %+v", code, a)
		}
	}
	// Every disclosure detection counts is in a patient's access report in
	// words.
	for _, a := range detect.DisclosureActions {
		if _, ok := actions[a]; !ok {
			t.Errorf("the disclosure %s has no words for the access report", a)
		}
	}
	for _, p := range policy.Purposes {
		if w, ok := purposes[p]; !ok || w.zh == "" || w.en == "" {
			t.Errorf("purpose %s has no words in both languages", p)
		}
	}
	if len(purposes) != len(policy.Purposes) {
		t.Errorf("words for %d purposes, policy knows %d", len(purposes), len(policy.Purposes))
	}
	for _, r := range policy.DefaultRoles {
		if rolesEN[r.Name] == "" || r.NameZH == "" {
			t.Errorf("role %s has no words in both languages", r.Name)
		}
	}
	for status, w := range results {
		if w.zh == "" || w.en == "" {
			t.Errorf("status %s has no words in both languages", status)
		}
	}
}

// TestLineWords writes lines of actors and actions the report's end-to-end
// tests do not meet: systems, several roles, unknown actions and purposes.
func TestLineWords(t *testing.T) {
	when := time.Date(2026, 11, 23, 16, 5, 0, 0, time.UTC) // 00:05 on the 24th in Shanghai
	for _, c := range []struct {
		name     string
		entry    audit.Entry
		dept     string
		lang     Lang
		text     string
		kind     string
		category string
	}{
		{"an API key", audit.Entry{Actor: "apikey:his", ActorRoles: []string{"api_key"}, Action: "record.create",
			Purpose: "treatment", Decision: audit.Allow, Outcome: audit.Success}, "", Chinese,
			"2026年11月24日 00:05，医院信息系统接口 his 新建了一份病历（用途：诊疗）。", ActorSystem, CategoryChange},
		{"an API key in English", audit.Entry{Actor: "apikey:his", ActorRoles: []string{"api_key"}, Action: "record.create",
			Decision: audit.Allow, Outcome: audit.Success}, "", English,
			"24 November 2026, 00:05: hospital system interface “his” added a medical record (purpose: not stated).", ActorSystem, CategoryChange},
		{"medguard itself", audit.Entry{Actor: "system", Action: "record.export", Purpose: "legal",
			Decision: audit.Allow, Outcome: audit.Success}, "", English,
			"24 November 2026, 00:05: medguard itself exported medical records (purpose: a request by a court or the police).", ActorSystem, CategoryRead},
		{"a department head", audit.Entry{Actor: "liuyang", ActorDepartment: "CARD", ActorRoles: []string{"dept_head", "doctor"},
			Action: "breakglass.review", Decision: audit.Allow, Outcome: audit.Success}, "心内科", English,
			"24 November 2026, 00:05: liuyang (head of department / doctor, 心内科) reviewed an emergency access (purpose: not stated).", ActorStaff, CategoryOversight},
		{"a department head in Chinese", audit.Entry{Actor: "liuyang", ActorDepartment: "CARD", ActorRoles: []string{"dept_head", "doctor"},
			Action: "grant.create", Purpose: "care_coordination", Decision: audit.Allow, Outcome: audit.Success}, "心内科", Chinese,
			"2026年11月24日 00:05，心内科 科室主任、医生 liuyang 授权了一名医务人员查看您的病历（用途：会诊协作）。", ActorStaff, CategoryAccessControl},
		{"an unknown action and purpose", audit.Entry{Actor: "sunli", ActorRoles: []string{"records_clerk", "ghost"},
			Action: "record.print", Purpose: "curiosity", Decision: audit.Deny, Outcome: audit.Denied}, "", Chinese,
			"2026年11月24日 00:05，病案管理员、ghost sunli 试图进行操作「record.print」（用途：curiosity），被系统拒绝。", ActorStaff, CategoryOther},
		{"an unknown action in English", audit.Entry{Actor: "sunli", ActorDepartment: "MRD", ActorRoles: []string{"records_clerk"},
			Action: "record.print", Decision: audit.Allow, Outcome: audit.Success}, "", English,
			"24 November 2026, 00:05: sunli (medical records clerk, MRD) performed the operation “record.print” (purpose: not stated).", ActorStaff, CategoryOther},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := c.entry
			e.Time = when
			l := wordsFor(c.lang, DefaultZone).line(audit.Stored{Index: 7, Entry: &e}, c.dept)
			if l.Text != c.text || l.ActorKind != c.kind || l.Category != c.category || l.Index != 7 {
				t.Errorf("line %+v\n text %s\n want %s", l, l.Text, c.text)
			}
		})
	}
}

func TestSummaryWords(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, DefaultZone)
	to := time.Date(2026, 4, 1, 0, 0, 0, 0, DefaultZone)
	for _, c := range []struct {
		s      AccessSummary
		zh, en string
	}{
		{AccessSummary{Entries: 1, Accesses: 1, Staff: 1},
			"2026年3月1日 00:00 至 2026年4月1日 00:00，共有1名工作人员访问了您的数据1次。",
			"From 1 March 2026, 00:00 to 1 April 2026, 00:00, 1 member of staff accessed your data once."},
		{AccessSummary{Entries: 5, Accesses: 4, Staff: 2, Systems: 1, Denied: 1},
			"2026年3月1日 00:00 至 2026年4月1日 00:00，共有2名工作人员和1个医院信息系统访问了您的数据4次；另有1次访问被系统拒绝。",
			"From 1 March 2026, 00:00 to 1 April 2026, 00:00, 2 members of staff and 1 hospital system accessed your data 4 times; 1 attempt was denied by the system."},
		{AccessSummary{Entries: 3, Accesses: 2, Systems: 2, BreakGlass: 2, Incomplete: 1},
			"2026年3月1日 00:00 至 2026年4月1日 00:00，共有2个医院信息系统访问了您的数据2次，其中紧急访问（破窗）2次；1次操作未完成。",
			"From 1 March 2026, 00:00 to 1 April 2026, 00:00, 2 hospital systems accessed your data twice, 2 of these by emergency access (break-glass); 1 operation did not complete."},
		{AccessSummary{Entries: 2, Denied: 2},
			"2026年3月1日 00:00 至 2026年4月1日 00:00，没有人成功访问您的数据；有2次访问被系统拒绝。",
			"From 1 March 2026, 00:00 to 1 April 2026, 00:00, nobody accessed your data successfully; 2 attempts were denied by the system."},
	} {
		for lang, want := range map[Lang]string{Chinese: c.zh, English: c.en} {
			w := wordsFor(lang, DefaultZone)
			s := c.s
			s.Period = w.period(&from, to)
			if got := w.summary(s); got != want {
				t.Errorf("%s %+v:\n got %s\nwant %s", lang, c.s, got, want)
			}
		}
	}
	if got := wordsFor(Chinese, DefaultZone).period(nil, to); got != "截至 2026年4月1日 00:00" {
		t.Errorf("open period: %s", got)
	}
	if got := wordsFor(English, DefaultZone).period(nil, to); got != "up to 1 April 2026, 00:00" {
		t.Errorf("open period: %s", got)
	}
}
