package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

func TestDeidTextPlaceholders(t *testing.T) {
	in := strings.Join([]string{
		`{"id":"n1","text":"患者欧阳明华，男，67岁，身份证号110105194002031232，电话139-1234-5678，因黄疸入院。"}`,
		``,
		`{"id":2,"text":"家住北京市朝阳区建国路88号1单元1203室，2024年3月5日由张伟医生接诊，予甘草、柴胡。"}`,
		`{"id":"n3","text":"Mr. John Smith, a 92-year-old man, MRN: 004587621."}`,
	}, "\n")
	var out, errb bytes.Buffer
	if err := deidText(context.Background(), []string{"--jsonl"}, noEnv, strings.NewReader(in), &out, &errb); err != nil {
		t.Fatalf("deidText: %v (%s)", err, errb.String())
	}
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		got = append(got, m)
	}
	want := []struct {
		id   any
		text string
	}{
		{"n1", "患者[姓名]，男，67岁，身份证号[身份证号]，电话[电话]，因黄疸入院。"},
		{float64(2), "家住[地址]，[日期]由[姓名]医生接诊，予甘草、柴胡。"},
		{"n3", "Mr. [NAME], a [AGE] man, MRN: [RECORD]."},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d: %s", len(got), len(want), out.String())
	}
	for i, w := range want {
		if got[i]["id"] != w.id || got[i]["text"] != w.text {
			t.Errorf("line %d = %v, want id %v text %q", i+1, got[i], w.id, w.text)
		}
	}
}

func TestDeidTextSurrogates(t *testing.T) {
	in := `{"id":"a","text":"患者董珍，电话19948725728。董珍诉头痛。"}` + "\n"
	var out, errb bytes.Buffer
	if err := deidText(context.Background(), []string{"--jsonl", "--lang", "zh", "--surrogate"}, noEnv, strings.NewReader(in), &out, &errb); err != nil {
		t.Fatal(err)
	}
	var m struct{ ID, Text string }
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != "a" || strings.Contains(m.Text, "董珍") || strings.Contains(m.Text, "19948725728") || strings.Contains(m.Text, "[") {
		t.Errorf("surrogate output %q", m.Text)
	}
}

func TestDeidTextErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		in    string
		usage bool
	}{
		{[]string{}, "", true},
		{[]string{"--jsonl", "--lang", "fr"}, "", true},
		{[]string{"--jsonl"}, "{\"id\":1,\"text\":\"ok\"}\n患者张伟 not json\n", false},
		{[]string{"--jsonl"}, "{\"id\":1}\n", false},
	} {
		var out, errb bytes.Buffer
		err := deidText(context.Background(), tc.args, noEnv, strings.NewReader(tc.in), &out, &errb)
		if err == nil {
			t.Errorf("%v %q: no error", tc.args, tc.in)
			continue
		}
		var ue usageError
		if errors.As(err, &ue) != tc.usage {
			t.Errorf("%v: usage error %v, want %v (%v)", tc.args, !tc.usage, tc.usage, err)
		}
		if strings.Contains(err.Error(), "张伟") {
			t.Errorf("error repeats the note: %v", err)
		}
	}
}
