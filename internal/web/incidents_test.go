package web

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard/internal/audit"
	"medguard/internal/incidents"
	"medguard/internal/keys"
	"medguard/internal/testkit"
	"medguard/internal/trail"
)

// incidentServer is the API on a fresh database with incidents, a
// checkpoint signer, and staff signed in: a security officer, two quality
// auditors, a cardiologist and the head of cardiology.
type incidentServer struct {
	*reportServer
	cps    *audit.Checkpoints
	tokens map[string]string
	ids    map[string]string
}

func startIncidentServer(t *testing.T) *incidentServer {
	t.Helper()
	clock := testkit.NewClock(time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)) // 09:00 in Shanghai
	var cps *audit.Checkpoints
	base := startAPI(t, clock, func(d *Deps, kr *keys.Keyring) {
		signer, _, err := audit.LoadOrCreateSigner(filepath.Join(t.TempDir(), "audit.key"), "medguard/test")
		if err != nil {
			t.Fatal(err)
		}
		cps = audit.NewCheckpoints(d.Log, signer, "", clock)
		d.Trail = trail.New(d.Gate, cps, d.Identity, d.Records, nil)
		d.Incidents = incidents.New(d.DB, d.Gate, cps, kr, d.Identity, d.Records)
	})
	is := &incidentServer{reportServer: base, cps: cps, tokens: map[string]string{}, ids: map[string]string{}}
	base.department("CARD", "心内科")
	const password = "Yiyuan#Ceshi2026"
	for _, u := range []struct{ name, display, dept, role string }{
		{"liuyang", "刘洋", "CARD", "dept_head"}, {"zhangwei", "张伟", "CARD", "doctor"},
		{"zhouqiang", "周强", "", "security_officer"}, {"wuyan", "吴燕", "", "auditor"}, {"zhaomin", "赵敏", "", "auditor"},
		{"sunli", "孙丽", "", "security_officer"},
	} {
		is.ids[u.name] = base.person(u.name, u.display, u.dept, u.role, password)
		is.tokens[u.name] = is.login(u.name, password)
	}
	return is
}

// advance moves the clock and signs everyone in again (sessions idle out).
func (s *incidentServer) advance(d time.Duration) {
	s.clock.Advance(d)
	for name := range s.tokens {
		s.tokens[name] = s.login(name, "Yiyuan#Ceshi2026")
	}
}

// problemOf makes a request that must fail with want as problem+json.
func (s *incidentServer) problemOf(want int, method, path, token string, body any) Problem {
	s.t.Helper()
	st, h, out := s.do(method, path, token, body)
	var p Problem
	json.Unmarshal(out, &p)
	if st != want || h.Get("Content-Type") != "application/problem+json" {
		s.t.Fatalf("%s %s: %d %s, want a %d problem: %s", method, path, st, h.Get("Content-Type"), want, out)
	}
	return p
}

func TestIncidentsOverHTTP(t *testing.T) {
	s := startIncidentServer(t)
	so, auditor, doctor := s.tokens["zhouqiang"], s.tokens["wuyan"], s.tokens["zhangwei"]

	// Report, with a grade suggested from the facts.
	var in incidents.Incident
	s.ok(201, &in, "POST", "/api/v1/incidents", so, map[string]any{"title": "心内科病案系统无法访问",
		"description": "心内科病案系统无法访问，影响门诊", "facts": map[string]any{"departments_affected": 1, "departments_total": 40}})
	if in.Grade != 2 || in.Criterion != "department_affected" || in.Status != "open" || len(in.Deadlines) != 5 {
		t.Fatalf("%+v", in)
	}
	// Appendix A: {"items":[{"id","grade","status","deadlines":[{"name","due_at"}]}],"next"}.
	var raw map[string]any
	s.ok(200, &raw, "GET", "/api/v1/incidents", auditor, nil)
	items, _ := raw["items"].([]any)
	if _, ok := raw["next"]; !ok || len(items) != 1 {
		t.Fatalf("%v", raw)
	}
	item := items[0].(map[string]any)
	for _, k := range []string{"id", "grade", "status", "deadlines"} {
		if _, ok := item[k]; !ok {
			t.Errorf("list item lacks %q", k)
		}
	}
	dl := item["deadlines"].([]any)[0].(map[string]any)
	if dl["name"] != "grade_confirmation" || dl["due_at"] != "2026-11-23T01:30:00Z" || dl["state"] != "pending" {
		t.Errorf("deadline %v", dl)
	}
	if p := s.problemOf(403, "GET", "/api/v1/incidents", doctor, nil); p.Rule != "deny.no_permission" {
		t.Errorf("%+v", p)
	}
	if p := s.problemOf(403, "POST", "/api/v1/incidents/"+in.ID+"/updates", auditor,
		map[string]string{"kind": "progress", "text": "x"}); p.Rule != "deny.no_permission" {
		t.Errorf("%+v", p)
	}
	s.problemOf(404, "GET", "/api/v1/incidents/01jd0000000000000000000000", auditor, nil)
	if p := s.problemOf(422, "POST", "/api/v1/incidents", so, map[string]any{"title": "x", "description": "y", "severity": 1}); p.Field != "severity" {
		t.Errorf("%+v", p)
	}
	if p := s.problemOf(422, "POST", "/api/v1/incidents", so, map[string]any{"title": "x", "description": "y", "grade": 2, "criterion": "minor_fault"}); p.Field != "criterion" {
		t.Errorf("%+v", p)
	}

	base := "/api/v1/incidents/" + in.ID
	s.ok(200, &in, "POST", base+"/grade", so, map[string]any{"grade": 2, "criterion": "department_affected"})
	if !in.GradeConfirmed || in.Deadlines[0].State != "met" {
		t.Fatalf("%+v", in.Deadlines)
	}
	s.problemOf(409, "POST", base+"/grade", so, map[string]any{"grade": 2, "criterion": "department_affected"})
	// The emergency meeting, within 15 minutes, meets its deadline.
	s.ok(201, &in, "POST", base+"/updates", so, map[string]string{"kind": "meeting_held", "text": "信息科、医务处召开应急会议"})
	if d := deadlineNamed(in, "emergency_meeting"); d.State != "met" || d.Late {
		t.Errorf("%+v", d)
	}
	if p := s.problemOf(422, "POST", base+"/updates", so, map[string]string{"kind": "meeting", "text": "x"}); p.Field != "kind" {
		t.Errorf("%+v", p)
	}
	s.advance(90 * time.Minute)
	so, auditor = s.tokens["zhouqiang"], s.tokens["wuyan"]
	s.ok(201, &in, "POST", base+"/updates", so, map[string]string{"kind": "progress", "text": "已切换至备用服务器，门诊恢复"})
	if d := deadlineNamed(in, "progress_update"); !d.DueAt.Equal(time.Date(2026, 11, 23, 4, 30, 0, 0, time.UTC)) {
		t.Errorf("%+v", d)
	}
	// Closing a grade 2 without the analysis names the field.
	if p := s.problemOf(422, "POST", base+"/close", so, nil); p.Field != "analysis" {
		t.Errorf("%+v", p)
	}

	// Evidence verifies against the signed checkpoint with public libraries.
	var ev List[incidents.Evidence]
	s.ok(201, &ev, "POST", base+"/evidence", so, map[string]any{"indexes": []int{2, 5}})
	if len(ev.Items) != 2 || ev.Next != nil {
		t.Fatalf("%+v", ev)
	}
	for _, e := range ev.Items {
		_, size, root, err := audit.OpenCheckpoint([]byte(e.Checkpoint), s.cps.Signer().VerifierKey())
		if err != nil || size != e.TreeSize {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, e.Index, size, rfc6962.DefaultHasher.HashLeaf(e.Leaf), e.Proof, root); err != nil {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
		if incidents.EvidenceID(incidents.EvidenceBytes(&e)) != e.ID {
			t.Errorf("evidence %d: id is not its hash", e.Index)
		}
	}
	var again List[incidents.Evidence]
	s.ok(201, &again, "POST", base+"/evidence", so, map[string]any{"indexes": []int{5}})
	if again.Items[0].ID != ev.Items[1].ID {
		t.Errorf("the same evidence got another id")
	}
	s.problemOf(422, "POST", base+"/evidence", so, map[string]any{"indexes": []int{}})

	s.ok(200, &in, "POST", base+"/analysis", so, map[string]string{"what": "心内科病案系统无法访问，影响门诊",
		"when": "08:40–10:15", "where": "心内科", "who": "信息科", "why": "交换机端口故障", "how": "更换端口"})
	var act incidents.Action
	s.ok(201, &act, "POST", base+"/actions", so, map[string]string{"description": "增加备用链路", "owner": "xinxike",
		"due_at": "2026-12-01T18:00:00+08:00"})
	if p := s.problemOf(422, "POST", base+"/actions", so, map[string]string{"description": "x", "owner": "y", "due_at": "明天"}); p.Field != "due_at" {
		t.Errorf("%+v", p)
	}
	if p := s.problemOf(422, "POST", base+"/actions", so, map[string]string{"description": "x", "owner": "王主任",
		"due_at": "2026-12-01T18:00:00+08:00"}); p.Field != "owner" {
		t.Errorf("%+v", p)
	}
	s.ok(200, &act, "PATCH", base+"/actions/"+act.ID, so, map[string]string{"state": "done"})
	s.problemOf(409, "PATCH", base+"/actions/"+act.ID, so, map[string]string{"state": "done"})
	// A second person verifies the action and confirms the meeting.
	sunli := s.tokens["sunli"]
	if p := s.problemOf(403, "PATCH", base+"/actions/"+act.ID, so, map[string]string{"state": "verified"}); p.Rule != "deny.own_step" {
		t.Errorf("%+v", p)
	}
	s.ok(200, &act, "PATCH", base+"/actions/"+act.ID, sunli, map[string]string{"state": "verified"})
	if p := s.problemOf(422, "POST", base+"/close", so, nil); p.Field != "steps" {
		t.Errorf("%+v", p)
	}
	for _, u := range in.Timeline {
		if u.Step {
			path := base + "/steps/" + strconv.FormatUint(u.AuditIndex, 10) + "/confirm"
			if p := s.problemOf(403, "POST", path, so, nil); p.Rule != "deny.own_step" {
				t.Errorf("%+v", p)
			}
			s.ok(200, &in, "POST", path, sunli, nil)
		}
	}
	s.problemOf(422, "POST", base+"/steps/x/confirm", sunli, nil)
	s.ok(200, &in, "POST", base+"/close", so, map[string]string{"summary": "整改完成"})
	if in.Status != "closed" || len(in.Timeline) < 7 || len(in.Evidence) != 2 || len(in.Actions) != 1 || in.Analysis == nil {
		t.Fatalf("%+v", in)
	}
	s.problemOf(409, "POST", base+"/close", so, nil)

	// Overdue deadlines are listed.
	var other incidents.Incident
	s.ok(201, &other, "POST", "/api/v1/incidents", so, map[string]any{"title": "单条检验报告误录", "description": "患者李华的血常规报告录入错误",
		"grade": 3, "criterion": "single_record"})
	s.advance(31 * time.Minute)
	auditor = s.tokens["wuyan"]
	var overdue List[incidents.OverdueItem]
	s.ok(200, &overdue, "GET", "/api/v1/incidents/overdue", auditor, nil)
	if len(overdue.Items) != 1 || overdue.Items[0].Incident.ID != other.ID || overdue.Items[0].Deadline.Name != "grade_confirmation" {
		t.Fatalf("%+v", overdue)
	}
	var open List[incidents.Incident]
	s.ok(200, &open, "GET", "/api/v1/incidents?status=open&limit=1", auditor, nil)
	if len(open.Items) != 1 || open.Items[0].ID != other.ID || open.Next != nil {
		t.Fatalf("%+v", open)
	}
	var fix incidents.Deadline
	for _, d := range open.Items[0].Deadlines {
		if d.Name == "fix" {
			fix = d
		}
	}
	if !fix.DueAt.Equal(other.ReportedAt.Truncate(time.Minute).Add(24 * time.Hour)) {
		t.Errorf("single-record fix due %s", fix.DueAt)
	}
}

func deadlineNamed(in incidents.Incident, name string) incidents.Deadline {
	for _, d := range in.Deadlines {
		if d.Name == name {
			return d
		}
	}
	return incidents.Deadline{}
}

func TestAccountabilityOverHTTP(t *testing.T) {
	s := startIncidentServer(t)
	wuyan, zhaomin, doctor, head := s.tokens["wuyan"], s.tokens["zhaomin"], s.tokens["zhangwei"], s.tokens["liuyang"]

	var cands List[incidents.Candidate]
	s.ok(200, &cands, "GET", "/api/v1/accountability/candidates", wuyan, nil)
	s.problemOf(403, "GET", "/api/v1/accountability/candidates", doctor, nil)
	if p := s.problemOf(422, "GET", "/api/v1/accountability/candidates?from=yesterday", wuyan, nil); p.Field != "from" {
		t.Errorf("%+v", p)
	}

	var c incidents.Case
	s.ok(201, &c, "POST", "/api/v1/accountability", wuyan, map[string]any{"subject_user_id": s.ids["zhangwei"],
		"criterion": "unauthorized_queries", "summary": "张伟多次越权查询神经内科患者病历", "evidence_indexes": []int{3}})
	if c.Grade != 2 || c.Status != "investigating" || c.Deadlines[0].Name != "fact_finding" {
		t.Fatalf("%+v", c)
	}
	base := "/api/v1/accountability/" + c.ID
	// The person concerned reads their own case and answers; nobody else may.
	s.ok(200, &c, "GET", base, doctor, nil)
	s.problemOf(403, "GET", base, head, nil)
	if p := s.problemOf(403, "POST", base+"/statement", head, map[string]string{"text": "代为陈述"}); p.Rule != "deny.not_own_case" {
		t.Errorf("%+v", p)
	}
	s.ok(200, &c, "POST", base+"/statement", doctor, map[string]string{"text": "会诊需要，并非有意"})
	s.problemOf(409, "POST", base+"/statement", doctor, map[string]string{"text": "补充"})
	s.ok(200, &c, "POST", base+"/findings", wuyan, map[string]string{"text": "4次被拒绝的查阅"})
	if p := s.problemOf(403, "POST", base+"/findings", doctor, map[string]string{"text": "x"}); p.Rule != "deny.no_permission" {
		t.Errorf("%+v", p)
	}
	s.ok(200, &c, "POST", base+"/decision", wuyan, map[string]string{"outcome": "upheld", "text": "通报批评"})
	if p := s.problemOf(422, "POST", base+"/decision", wuyan, map[string]string{"outcome": "maybe", "text": "x"}); p.Field != "outcome" {
		t.Errorf("%+v", p)
	}
	if p := s.problemOf(409, "POST", base+"/appeal", doctor, map[string]string{"text": "当日为急会诊"}); !strings.HasSuffix(p.Type, ":no_opinion") {
		t.Errorf("%+v", p)
	}
	if p := s.problemOf(422, "POST", base+"/opinion", wuyan, map[string]string{"sanction": "fine", "text": "x"}); p.Field != "sanction" {
		t.Errorf("%+v", p)
	}
	s.problemOf(403, "POST", base+"/opinion", doctor, map[string]string{"sanction": "warning_retraining", "text": "x"})
	s.ok(200, &c, "POST", base+"/opinion", wuyan, map[string]string{"sanction": "warning_retraining", "text": "通报批评，重新培训"})
	if c.Sanction != "warning_retraining" || c.Proposal == nil || c.Proposal.Sanction != "pay_1_month" {
		t.Fatalf("%+v", c)
	}
	s.ok(200, &c, "POST", base+"/appeal", doctor, map[string]string{"text": "当日为急会诊"})
	if p := s.problemOf(403, "POST", base+"/appeal/review", wuyan, map[string]string{"outcome": "overturned", "text": "x"}); p.Rule != "deny.own_investigation" {
		t.Errorf("%+v", p)
	}
	s.ok(200, &c, "POST", base+"/appeal/review", zhaomin, map[string]string{"outcome": "upheld", "text": "维持原决定"})
	if c.Status != "reviewed" || c.Review == nil || c.Review.By != "zhaomin" {
		t.Fatalf("%+v", c)
	}
	s.problemOf(409, "POST", base+"/appeal/review", zhaomin, map[string]string{"outcome": "upheld", "text": "x"})
	var list List[incidents.Case]
	s.ok(200, &list, "GET", "/api/v1/accountability?status=reviewed", zhaomin, nil)
	if len(list.Items) != 1 {
		t.Fatalf("%+v", list)
	}

	// A second case: the appeal after 7 days is refused.
	var c2 incidents.Case
	s.ok(201, &c2, "POST", "/api/v1/accountability", wuyan, map[string]any{"subject_user_id": s.ids["zhangwei"],
		"criterion": "late_archiving", "summary": "出院病历归档延迟3天"})
	s.ok(200, &c2, "POST", "/api/v1/accountability/"+c2.ID+"/decision", zhaomin, map[string]string{"outcome": "upheld", "text": "提醒"})
	s.ok(200, &c2, "POST", "/api/v1/accountability/"+c2.ID+"/opinion", zhaomin, map[string]string{"sanction": "warning_retraining", "text": "提醒"})
	s.advance(7*24*time.Hour + time.Minute)
	doctor = s.tokens["zhangwei"]
	if p := s.problemOf(409, "POST", "/api/v1/accountability/"+c2.ID+"/appeal", doctor, map[string]string{"text": "申诉"}); !strings.HasSuffix(p.Type, ":appeal_window_closed") {
		t.Errorf("%+v", p)
	}

	// Each request left its entry, denials included.
	size, _, _ := s.log.Head(context.Background())
	var found []string
	for i := uint64(0); i < size; i += audit.MaxEntries {
		st, err := s.log.Entries(context.Background(), i, size)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range st {
			if strings.HasPrefix(e.Entry.Action, "accountability.") {
				found = append(found, e.Entry.Action+"/"+e.Entry.Decision)
			}
			if bytes.Contains(e.Leaf, []byte("会诊")) {
				t.Errorf("entry %d holds free text", e.Index)
			}
		}
	}
	joined := strings.Join(found, " ")
	for _, want := range []string{"accountability.candidates/allow", "accountability.open/allow", "accountability.read/allow",
		"accountability.read/deny", "accountability.statement/deny", "accountability.statement/allow", "accountability.finding/allow",
		"accountability.decide/allow", "accountability.appeal/allow", "accountability.review/deny", "accountability.review/allow",
		"accountability.list/allow"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %s entry in %s", want, joined)
		}
	}
}
