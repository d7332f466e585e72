package medguard_test

import (
	"errors"
	"strings"
	"testing"

	"medguard"
)

// TestLineAndText: what a one-line field and a free text accept, what
// they return, and that every refusal is Invalid and names the field.
func TestLineAndText(t *testing.T) {
	const max = 10
	tests := []struct {
		name      string
		multiline bool
		v         string
		required  bool
		want      string // when ok
		refused   bool
	}{
		{"Chinese line", false, "胸痛 三小时，伴出汗", true, "胸痛 三小时，伴出汗", false},
		{"Chinese text", true, "胸痛 三小时，伴出汗", true, "胸痛 三小时，伴出汗", false},
		{"line collapses spaces", false, "  胸痛   三小时\u3000伴出汗 ", true, "胸痛 三小时 伴出汗", false},
		{"text trims the ends only", true, "  胸痛   三小时 \n", true, "胸痛   三小时", false},
		{"line required empty", false, "   ", true, "", true},
		{"text required empty", true, " \n ", true, "", true},
		{"line optional empty", false, "  ", false, "", false},
		{"text optional empty", true, "", false, "", false},
		{"line exactly max Chinese", false, strings.Repeat("痛", max), true, strings.Repeat("痛", max), false},
		{"text exactly max Chinese", true, strings.Repeat("痛", max), true, strings.Repeat("痛", max), false},
		{"line max+1 Chinese", false, strings.Repeat("痛", max+1), true, "", true},
		{"text max+1 Chinese", true, strings.Repeat("痛", max+1), true, "", true},
		{"line counts after collapsing", false, "胸痛     三小时", true, "胸痛 三小时", false},
		{"line invalid UTF-8", false, "胸痛\xff", true, "", true},
		{"text invalid UTF-8", true, "胸痛\xff", true, "", true},
		{"line invalid UTF-8 alone", false, "\xff", false, "", true},
		{"text truncated Chinese", true, "胸\xe7\x97", false, "", true},
		{"line NUL", false, "胸痛\x00", true, "", true},
		{"text NUL", true, "胸痛\x00三小时", true, "", true},
		{"line escape", false, "胸痛\x1b[31m", true, "", true},
		{"text escape", true, "胸痛\x1b[31m", true, "", true},
		{"line DEL", false, "胸痛\x7f", true, "", true},
		{"text DEL", true, "胸痛\x7f", true, "", true},
		{"line C1 NEL", false, "胸痛\u0085三小时", true, "", true},
		{"text C1 NEL", true, "胸痛\u0085三小时", true, "", true},
		{"text C1 CSI", true, "胸痛\u009b", true, "", true},
		{"line newline refused", false, "胸痛\n三小时", true, "", true},
		{"line trailing newline refused", false, "胸痛三小时\n", true, "", true},
		{"line tab refused", false, "胸痛\t三小时", true, "", true},
		{"text newline kept", true, "胸痛三小时\n伴出汗", true, "胸痛三小时\n伴出汗", false},
		{"text CRLF kept", true, "胸痛\r\n\r\n伴出汗", true, "胸痛\r\n\r\n伴出汗", false},
		{"text tab kept", true, "体温\t38.5℃", true, "体温\t38.5℃", false},
		{"text lone CR refused", true, "胸痛三小时\r伴出汗", true, "", true},
		{"text vertical tab refused", true, "胸痛\v三小时", true, "", true},
		{"text form feed refused", true, "胸痛\f三小时", true, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := medguard.Line
			if tt.multiline {
				check = medguard.Text
			}
			got, err := check("主诉", tt.v, max, tt.required)
			if !tt.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got != tt.want {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
				return
			}
			var e *medguard.Error
			if !errors.As(err, &e) || e.Kind != medguard.Invalid {
				t.Fatalf("got %q, %v; want Invalid", got, err)
			}
			if e.Field != "主诉" {
				t.Errorf("field %q, want 主诉", e.Field)
			}
			if got != "" {
				t.Errorf("refused, yet returned %q", got)
			}
			if strings.Contains(e.Message, "胸痛") || strings.Contains(e.Message, "痛痛") {
				t.Errorf("the message repeats the value: %q", e.Message)
			}
		})
	}
}

// TestLineAndTextMessages: each refusal says why, in the words every
// package used.
func TestLineAndTextMessages(t *testing.T) {
	for _, tt := range []struct {
		multiline bool
		v         string
		want      string
	}{
		{false, "", "title is required"},
		{true, "\xff", "title is not valid UTF-8"},
		{false, "一二三四五六", "title may be at most 5 characters"},
		{true, "一\x1b二", "title holds control characters"},
		{false, "一\n二", "title holds control characters"},
	} {
		check := medguard.Line
		if tt.multiline {
			check = medguard.Text
		}
		_, err := check("title", tt.v, 5, true)
		var e *medguard.Error
		if !errors.As(err, &e) || e.Message != tt.want {
			t.Errorf("%q: got %v, want %q", tt.v, err, tt.want)
		}
	}
}
