package console

import (
	"slices"
	"strings"
	"testing"
)

// TestLines reads a plan form's text area as the officer typed it: blank
// lines skipped, fields trimmed, an empty field kept in its column.
func TestLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		want [][]string
	}{
		{"总指挥｜郑国华｜决定启动预案\r\n\n 值班工程师 | | 切换电源 ", [][]string{{"总指挥", "郑国华", "决定启动预案"}, {"值班工程师", "", "切换电源"}}},
		{"|", [][]string{{"", ""}}},
		{"只有一列", [][]string{{"只有一列"}}},
		{"  \n\t\n", nil},
	} {
		if got := lines(c.in); !slices.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("lines(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzLines: every line that is not blank gives one more field than it has
// bars, no field holds a bar or surrounding space, and nothing is lost but
// the bars, blank lines and spaces.
func FuzzLines(f *testing.F) {
	f.Add("总指挥｜郑国华｜决定启动预案\n值班工程师||切换电源")
	f.Add("|")
	f.Add("｜\r\n ｜ ")
	f.Fuzz(func(t *testing.T, in string) {
		var want []string
		for _, l := range strings.Split(strings.ReplaceAll(in, "\r", ""), "\n") {
			if strings.TrimSpace(l) != "" {
				want = append(want, l)
			}
		}
		got := lines(in)
		if len(got) != len(want) {
			t.Fatalf("%d lines, want %d", len(got), len(want))
		}
		for i, f := range got {
			if bars := strings.Count(want[i], "|") + strings.Count(want[i], "｜"); len(f) != bars+1 {
				t.Fatalf("line %q: %d fields for %d bars", want[i], len(f), bars)
			}
			for _, s := range f {
				if strings.ContainsFunc(s, fieldSep) || s != strings.TrimSpace(s) {
					t.Fatalf("line %q: field %q", want[i], s)
				}
			}
		}
	})
}
