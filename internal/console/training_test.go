package console_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	coursePath  = regexp.MustCompile(`/training/courses/([0-9a-z]{26})`)
	sessionPath = regexp.MustCompile(`/training/sessions/([0-9a-z]{26})`)
)

// TestTrainingGatesADoctor walks the register in the console: the security
// officer creates the privacy course, requires it for record access,
// publishes the commitment letter, holds a session and enters the doctor's
// score; the doctor, refused a record with the rule in words and a banner
// on the home page, signs the letter on "my training" and reads. Nobody
// enters their own score; the pages speak English too.
func TestTrainingGatesADoctor(t *testing.T) {
	h := newHospital(t)
	sec := h.browser("zh-CN")
	sec.signIn("zhouqiang", staffPassword)
	doc := h.browser("zh-CN")
	h.clock.Advance(30 * time.Second)
	doc.signIn("zhangwei", staffPassword)
	if p := doc.get("/records/" + h.recordID); p.status != 200 {
		t.Fatalf("before any course: %d", p.status)
	}
	if p := doc.get("/"); strings.Contains(p.body, `id="training-banner"`) {
		t.Fatal("a banner before any course is required")
	}

	courses := sec.get("/training/courses")
	p := sec.post("/training/courses", courses, url.Values{"code": {"PRIV-101"}, "title": {"患者隐私保护与病案安全"}, "kind": {"general"},
		"pass_mark": {"80"}, "description": {"全体员工必修"}})
	m := coursePath.FindStringSubmatch(p.url.Path)
	if p.status != 200 || m == nil {
		t.Fatalf("create course: %d %s %s", p.status, p.url, p.body)
	}
	course := m[1]
	p = sec.post("/training/courses/"+course+"/required", p, url.Values{"required": {"1"}})
	if !strings.Contains(between(p.body, `id="required-state"`, `</dd>`), "起必修") {
		t.Fatalf("required: %s", p.body)
	}
	letters := sec.get("/training/letters")
	if p := sec.post("/training/letters", letters, url.Values{"title": {"病案信息安全承诺书"},
		"body": {"本人承诺：严格遵守病案管理制度，不越权查询、不泄露患者信息。"}}); p.status != 200 || !strings.Contains(p.body, `id="letter-1"`) {
		t.Fatalf("letter: %d %s", p.status, p.body)
	}

	// The doctor is refused, and told why and where to go.
	r := doc.get("/records/" + h.recordID)
	if r.status != 403 || !strings.Contains(r.body, `data-rule="deny.training_required"`) || !strings.Contains(r.body, "未完成病历访问所需的培训") ||
		!strings.Contains(r.body, `id="my-training-link"`) {
		t.Fatalf("refused: %d %s", r.status, between(r.body, "<main", "</main>"))
	}
	home := doc.get("/")
	if banner := between(home.body, `id="training-banner"`, `</section>`); !strings.Contains(banner, "病历访问已因培训未完成而暂停") ||
		!strings.Contains(banner, "PRIV-101") || !strings.Contains(banner, `href="/training/me"`) {
		t.Fatalf("banner: %s", banner)
	}
	// A doctor sees no register, only their own.
	if p := doc.get("/training"); p.status != 403 {
		t.Fatalf("a doctor's register: %d", p.status)
	}

	// The session: held an hour ago; the doctor and the officer enrolled.
	cp := sec.get("/training/courses/" + course)
	p = sec.post("/training/sessions", cp, url.Values{"course_id": {course}, "held_at": {"2026-03-02T09:00"}, "location": {"门诊楼三楼会议室"},
		"trainer": {"周强"}})
	m = sessionPath.FindStringSubmatch(p.url.Path)
	if p.status != 200 || m == nil {
		t.Fatalf("session: %d %s", p.status, p.body)
	}
	session := m[1]
	p = sec.post("/training/sessions/"+session+"/enrolments", p, url.Values{"department": {"CARD"}})
	p = sec.post("/training/sessions/"+session+"/enrolments", p, url.Values{"user_id": {h.users["zhouqiang"]}})
	if !strings.Contains(p.body, `id="result-`+h.users["zhangwei"]+`"`) || strings.Contains(p.body, `id="result-`+h.users["zhouqiang"]+`"`) {
		t.Fatalf("enrolment (no form for one's own row): %s", between(p.body, `id="attendance"`, `</table>`))
	}
	// Nobody enters their own score, even by posting the form.
	if own := sec.post("/training/sessions/"+session+"/results/"+h.users["zhouqiang"], p, url.Values{"attended": {"1"}, "score": {"100"}}); own.status != 403 ||
		!strings.Contains(own.body, `data-rule="deny.own_training"`) {
		t.Fatalf("own score: %d", own.status)
	}
	p = sec.post("/training/sessions/"+session+"/results/"+h.users["zhangwei"], p, url.Values{"attended": {"1"}, "score": {"92"}})
	if row := between(p.body, `id="attendance"`, `</table>`); p.status != 200 || !strings.Contains(row, "92") || !strings.Contains(row, "通过") {
		t.Fatalf("score: %d %s", p.status, row)
	}
	// Passed, the letter unsigned: still refused; "my training" says so.
	if r := doc.get("/records/" + h.recordID); r.status != 403 {
		t.Fatalf("passed, unsigned: %d", r.status)
	}
	me := doc.get("/training/me")
	if me.status != 200 || !strings.Contains(between(me.body, `id="owes"`, `</ul>`), "安全承诺书第 1 版未签署") ||
		!strings.Contains(me.body, `id="sign-form"`) || !strings.Contains(me.body, "不越权查询") {
		t.Fatalf("my training: %d %s", me.status, between(me.body, "<main", "</main>"))
	}
	if p := doc.post("/training/me/letter", me, url.Values{"version": {"1"}, "sha256": {between(me.body, `name="sha256" value="`, `"`)}}); p.status != 422 {
		t.Fatalf("signing without agreeing: %d", p.status)
	}
	p = doc.post("/training/me/letter", me, url.Values{"version": {"1"}, "agree": {"1"},
		"sha256": {between(me.body, `name="sha256" value="`, `"`)}})
	if p.status != 200 || !strings.Contains(p.body, `id="letter-signed"`) {
		t.Fatalf("sign: %d %s", p.status, p.body)
	}
	if r := doc.get("/records/" + h.recordID); r.status != 200 {
		t.Fatalf("trained and signed: %d", r.status)
	}
	if home := doc.get("/"); strings.Contains(home.body, `id="training-banner"`) {
		t.Fatal("the banner stays")
	}

	// The coverage grid: the doctor current, the untrained colleagues gated;
	// CSV; the person's record; the dashboard's tile; English.
	g := sec.get("/training?status=gated")
	grid := between(g.body, `id="coverage"`, `</table>`)
	if !strings.Contains(grid, "王丽（心内科）") || strings.Contains(grid, "张伟（心内科）") || !strings.Contains(grid, "已限制访问") {
		t.Fatalf("coverage: %s", grid)
	}
	if c := sec.get("/training?format=csv"); c.status != 200 || !strings.Contains(c.body, "张伟（心内科）") || !strings.Contains(c.body, "无欠缺") {
		t.Fatalf("csv: %d %s", c.status, c.body)
	}
	if pr := sec.get("/training/people/" + h.users["zhangwei"]); pr.status != 200 || !strings.Contains(pr.body, "PRIV-101") ||
		!strings.Contains(between(pr.body, `id="signatures"`, `</ul>`), "第 1 版") {
		t.Fatalf("record: %d", pr.status)
	}
	if d := sec.get("/"); !strings.Contains(d.body, `id="tile-training-coverage"`) || !strings.Contains(d.body, "已设病历访问必修课程") {
		t.Fatalf("dashboard: %s", between(d.body, `id="figures"`, `</ul>`))
	}
	sec.lang = "en"
	if p := sec.get("/training"); p.status != 200 || !strings.Contains(p.body, "Training: coverage") || !strings.Contains(p.body, "Access closed") {
		t.Fatalf("English: %d", p.status)
	}
	for _, path := range []string{"/training/courses", "/training/courses/" + course, "/training/sessions/" + session, "/training/letters",
		"/training/retraining", "/training/assessments", "/training/me"} {
		if p := sec.get(path); p.status != 200 {
			t.Errorf("%s: %d", path, p.status)
		}
	}
}
