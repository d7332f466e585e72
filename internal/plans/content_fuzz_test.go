package plans

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"medguard"
)

// FuzzCheckContent feeds the plan content checker arbitrary responders and
// steps (from a plan's form or the API): it never panics, refuses with an
// invalid-field error that names a field, and what it accepts is valid
// UTF-8, within its limits, and accepted again unchanged (the stored
// content is what a later check would accept).
func FuzzCheckContent(f *testing.F) {
	f.Add("机房断电", "主机房双路市电同时中断", "总指挥", "郑国华", "决定启动预案", "切换到备用电源", "总指挥", 15)
	f.Add("t", "s", "r", "", "d", "a", "", 1)
	f.Add(" ", "\x00", "|", "｜", "\xff", "a\nb", "x", 0)
	f.Add(strings.Repeat("长", 201), "s", "r", "n", "d", "a", "r", MaxStepMinutes+1)
	f.Fuzz(func(t *testing.T, title, scenario, role, name, duty, action, stepRole string, minutes int) {
		in := Content{Title: title, Scenario: scenario,
			Responders: []Responder{{Role: role, Name: name, Duty: duty}},
			Steps:      []Step{{Title: title, Action: action, Role: stepRole, LimitMinutes: minutes}}}
		c, err := checkContent(in)
		if err != nil {
			var me *medguard.Error
			if !errors.As(err, &me) || me.Kind != medguard.Invalid || me.Field == "" {
				t.Fatalf("refused without naming a field: %v", err)
			}
			return
		}
		for _, s := range []string{c.Title, c.Scenario, c.Responders[0].Role, c.Responders[0].Name, c.Responders[0].Duty,
			c.Steps[0].Title, c.Steps[0].Action, c.Steps[0].Role} {
			if !utf8.ValidString(s) {
				t.Fatalf("accepted invalid UTF-8: %q", s)
			}
		}
		if c.Steps[0].LimitMinutes < 1 || c.Steps[0].LimitMinutes > MaxStepMinutes {
			t.Fatalf("accepted a time limit of %d minutes", c.Steps[0].LimitMinutes)
		}
		again, err := checkContent(c)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("accepted content is not accepted again unchanged: %v\n%#v\n%#v", err, c, again)
		}
	})
}
