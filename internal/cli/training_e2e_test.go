package cli_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// Training gates record access over HTTPS (issue 13): the security office
// creates the privacy course, trains the cardiologist already on the ward
// and then requires the course for record access; a new doctor is refused
// records (deny.training_required) — also after failing the exam, and
// after passing it with the commitment letter unsigned — yet may break
// the glass in an emergency; once the course is passed and the letter
// signed, the new doctor reads. Nobody enters their own score. Every
// refusal is in the audit log with its rule; the coverage grid shows who
// is gated.
func TestTrainingOverHTTPS(t *testing.T) {
	t.Parallel()
	s := start(t)
	admin, security := s.admin(), s.security()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"YWK", "医务科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	ids := map[string]string{}
	for _, u := range [][4]string{{"zhangwei", "张伟", "CARD", "doctor"}, {"wangli", "王丽", "YWK", "medical_affairs"},
		{"sunli", "孙丽", "", "auditor"}} {
		ids[u[0]] = s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	zhang, affairs, auditor := s.token("zhangwei", staffPassword), s.token("wangli", staffPassword), s.token("sunli", staffPassword)
	pt := s.json(201, "POST", "/api/v1/patients", zhang, map[string]any{"name": "欧阳娜娜", "gender": "female", "birth_date": "1962-05-17"})
	rid := s.json(201, "POST", "/api/v1/patients/"+pt["id"].(string)+"/records", zhang, map[string]any{"type": "progress_note",
		"department": "CARD", "title": "病程记录", "text": "胸闷三天，心电图示 ST 段压低。", "classification": "general"})["id"].(string)

	// A new installation requires no course: the summary says so.
	if sum := s.json(200, "GET", "/api/v1/trainings/summary", auditor, nil); sum["enforced"] != false || sum["settings"].(map[string]any)["period_days"] != float64(182) {
		t.Fatalf("summary %v", sum)
	}
	course := s.json(201, "POST", "/api/v1/trainings/courses", affairs, map[string]any{"code": "PRIV-101", "title": "患者隐私保护与病案安全",
		"kind": "general", "pass_mark": 80, "description": "全体员工：病案保密制度与最小必要原则"})["id"].(string)
	letter := s.json(201, "POST", "/api/v1/trainings/letters", security, map[string]any{"title": "病案信息安全承诺书",
		"body": "本人承诺：严格遵守医院病案管理与信息安全制度，不越权查询、不泄露患者信息。"})
	session := func(score map[string]any) string {
		t.Helper()
		id := s.json(201, "POST", "/api/v1/trainings/sessions", affairs, map[string]any{"course_id": course,
			"held_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "location": "门诊楼三楼会议室", "trainer": "王丽"})["id"].(string)
		var people []string
		for who := range score {
			people = append(people, ids[who])
		}
		s.json(200, "POST", "/api/v1/trainings/sessions/"+id+"/enrolments", affairs, map[string]any{"user_ids": people})
		for who, sc := range score {
			body := map[string]any{"attended": sc != nil}
			if sc != nil {
				body["score"] = sc
			}
			s.json(200, "PUT", "/api/v1/trainings/sessions/"+id+"/results/"+ids[who], affairs, body)
		}
		return id
	}
	sign := func(tok string) {
		t.Helper()
		mine := s.json(200, "GET", "/api/v1/trainings/letters/mine", tok, nil)
		l := mine["letter"].(map[string]any)
		s.json(201, "POST", "/api/v1/trainings/letters/1/signatures", tok, map[string]string{"sha256": l["sha256"].(string)})
	}
	session(map[string]any{"zhangwei": 95})
	sign(zhang)
	s.json(200, "PUT", "/api/v1/trainings/courses/"+course+"/required", security, map[string]any{"required": true})
	s.json(200, "GET", "/api/v1/records/"+rid, zhang, nil)

	// A new doctor joins cardiology: refused, with the rule.
	ids["liming"] = s.staff("liming", "李明", "CARD", "doctor", staffPassword)
	newdoc := s.token("liming", staffPassword)
	rule(t, s.problem(403, "GET", "/api/v1/records/"+rid, newdoc, nil), "deny.training_required")
	rule(t, s.problem(403, "GET", "/api/v1/patients?department=CARD", newdoc, nil), "deny.training_required")
	me := s.json(200, "GET", "/api/v1/trainings/me", newdoc, nil)
	st := me["standing"].(map[string]any)
	if st["gated"] != true || len(st["obligations"].([]any)) != 2 {
		t.Fatalf("the new doctor's standing %v", st)
	}
	// In an emergency the glass still breaks — as break-glass, reviewed.
	bg := s.json(200, "GET", "/api/v1/records/"+rid, newdoc, nil, "X-Break-Glass-Reason", url.PathEscape("患者室颤，抢救"))
	if bg["break_glass"] == nil {
		t.Fatalf("break-glass %v", bg)
	}
	// Nobody enters their own score; a doctor enters none.
	own := session(map[string]any{"zhangwei": 90})
	s.json(200, "POST", "/api/v1/trainings/sessions/"+own+"/enrolments", affairs, map[string]any{"user_ids": []string{ids["wangli"], ids["liming"]}})
	rule(t, s.problem(403, "PUT", "/api/v1/trainings/sessions/"+own+"/results/"+ids["wangli"], affairs, map[string]any{"attended": true, "score": 100}),
		"deny.own_training")
	rule(t, s.problem(403, "PUT", "/api/v1/trainings/sessions/"+own+"/results/"+ids["liming"], newdoc, map[string]any{"attended": true, "score": 100}),
		"deny.no_permission")
	// Failed, then passed with the letter unsigned: still refused.
	s.json(200, "PUT", "/api/v1/trainings/sessions/"+own+"/results/"+ids["liming"], affairs, map[string]any{"attended": true, "score": 60})
	rule(t, s.problem(403, "GET", "/api/v1/records/"+rid, newdoc, nil), "deny.training_required")
	session(map[string]any{"liming": 88})
	rule(t, s.problem(403, "GET", "/api/v1/records/"+rid, newdoc, nil), "deny.training_required")
	if e := s.problem(409, "POST", "/api/v1/trainings/letters/1/signatures", newdoc, map[string]string{"sha256": strings.Repeat("0", 64)}); e["code"] != "text_changed" {
		t.Fatalf("a letter not shown: %v", e)
	}
	if letter["version"] != float64(1) {
		t.Fatalf("letter %v", letter)
	}
	sign(newdoc)
	if got := s.json(200, "GET", "/api/v1/records/"+rid, newdoc, nil); got["title"] != "病程记录" {
		t.Fatalf("trained: %v", got)
	}

	// The audit log holds the refusals with their rule; the register its
	// changes.
	es := s.json(200, "GET", "/api/v1/audit/search?actor=liming&action=record.read", auditor, nil)["items"].([]any)
	refused := 0
	for _, it := range es {
		e := it.(map[string]any)
		if f, ok := e["entry"].(map[string]any); ok {
			e = f
		}
		if e["rule"] == "deny.training_required" && e["decision"] == "deny" {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("%d refusals logged: %v", refused, es)
	}
	for _, a := range []string{"training.course_require", "training.result", "training.letter_sign"} {
		if len(s.json(200, "GET", "/api/v1/audit/search?action="+a, auditor, nil)["items"].([]any)) == 0 {
			t.Errorf("no %s in the audit log", a)
		}
	}
	cov := s.json(200, "GET", "/api/v1/trainings?department=CARD", auditor, nil)["items"].([]any)
	if len(cov) != 2 {
		t.Fatalf("coverage %v", cov)
	}
	for _, r := range cov {
		if r.(map[string]any)["status"] == "gated" {
			t.Fatalf("someone still gated: %v", r)
		}
	}
	rule(t, s.problem(403, "GET", "/api/v1/trainings", newdoc, nil), "deny.no_permission")
}
