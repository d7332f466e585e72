package rectify_test

import (
	"errors"
	"testing"

	"medguard"
	"medguard/internal/rectify"
)

// FuzzReadReport feeds the report reader anything: it never panics; a
// report it accepts has at least one line, each with every column of the
// header and a line number after the header's; a report it refuses is
// Invalid, naming a column or the file.
func FuzzReadReport(f *testing.F) {
	for _, seed := range []string{
		"编号,问题,责任人,严重程度\nA-1,未启用双因素认证,wuyan,高\n",
		"\ufeffref,title,owner,severity,due_at\n\"A,1\",\"多行\n问题\",zhouqiang,high,2027-01-31\n",
		"编号,问题,责任人,严重程度,颜色\nA,b,c,d,e\n",
		"编号,问题,责任人\n",
		"编号,编号,问题,责任人,严重程度\n",
		"\"unterminated\n",
		"",
		"\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, headers, err := rectify.ReadReport(data)
		if err != nil {
			var me *medguard.Error
			if !errors.As(err, &me) || me.Kind != medguard.Invalid || me.Field == "" {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		if len(lines) == 0 || len(lines) > rectify.MaxImportLines {
			t.Fatalf("%d lines", len(lines))
		}
		for _, l := range lines {
			if l.Line < 2 || len(l.Values) != len(headers) {
				t.Fatalf("line %+v with headers %v", l, headers)
			}
		}
	})
}

// TestReadReportLines names the physical line of a value that follows a
// quoted value spanning lines.
func TestReadReportLines(t *testing.T) {
	lines, _, err := rectify.ReadReport([]byte("编号,问题,责任人,严重程度\nA-1,\"两行\n的问题\",wuyan,高\n\nA-2,问题,wuyan,低\n"))
	if err != nil || len(lines) != 2 || lines[0].Line != 2 || lines[1].Line != 5 || lines[0].Values["title"] != "两行\n的问题" {
		t.Fatalf("%+v %v", lines, err)
	}
}
