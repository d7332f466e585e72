package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The training journey (issue 13) in headless Chromium, over HTTPS, in
// Chinese: with the privacy course required for record access, a new
// doctor opens a record and is refused with the reason in words and a
// link to their training; the security officer sees them gated in the
// coverage grid and enters their exam score on the session's page; the
// doctor, still refused, reads the commitment letter on "my training",
// signs it, and opens the record.
func TestConsoleTrainingJourney(t *testing.T) {
	chromium := chromiumPath(t)
	t.Parallel()
	s := start(t)
	admin, security := s.admin(), s.security()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	ids := map[string]string{}
	for _, u := range [][4]string{{"zhangwei", "张建国", "CARD", "doctor"}, {"zhouqiang", "周强", "", "security_officer"}} {
		ids[u[0]] = s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	cardio := s.token("zhangwei", staffPassword)
	pid := s.json(201, "POST", "/api/v1/patients", cardio, map[string]any{"name": "王秀英", "gender": "female", "birth_date": "1958-03-07"})["id"].(string)
	record := s.json(201, "POST", "/api/v1/patients/"+pid+"/records", cardio, map[string]any{"type": "progress_note",
		"department": "CARD", "title": "病程记录", "text": "胸闷较前好转，继续阿司匹林抗血小板治疗。", "classification": "general"})["id"].(string)
	// The office's set-up through the API: the course, the letter, the
	// cardiologist on the ward trained, then the course required.
	course := s.json(201, "POST", "/api/v1/trainings/courses", security, map[string]any{"code": "PRIV-101", "title": "患者隐私保护与病案安全",
		"kind": "general", "pass_mark": 80})["id"].(string)
	s.json(201, "POST", "/api/v1/trainings/letters", security, map[string]any{"title": "病案信息安全承诺书",
		"body": "本人承诺：严格遵守病案管理制度，不越权查询、不泄露患者信息。"})
	held := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	first := s.json(201, "POST", "/api/v1/trainings/sessions", security, map[string]any{"course_id": course, "held_at": held,
		"location": "门诊楼三楼会议室", "trainer": "周强"})["id"].(string)
	s.json(200, "POST", "/api/v1/trainings/sessions/"+first+"/enrolments", security, map[string]any{"user_ids": []string{ids["zhangwei"]}})
	s.json(200, "PUT", "/api/v1/trainings/sessions/"+first+"/results/"+ids["zhangwei"], security, map[string]any{"attended": true, "score": 95})
	sha := s.json(200, "GET", "/api/v1/trainings/letters/mine", cardio, nil)["letter"].(map[string]any)["sha256"]
	s.json(201, "POST", "/api/v1/trainings/letters/1/signatures", cardio, map[string]any{"sha256": sha})
	s.json(200, "PUT", "/api/v1/trainings/courses/"+course+"/required", security, map[string]any{"required": true})
	// A new doctor joins, and is enrolled in the next session.
	ids["liming"] = s.staff("liming", "李明", "CARD", "doctor", staffPassword)
	next := s.json(201, "POST", "/api/v1/trainings/sessions", security, map[string]any{"course_id": course, "held_at": held,
		"location": "门诊楼三楼会议室", "trainer": "周强"})["id"].(string)
	s.json(200, "POST", "/api/v1/trainings/sessions/"+next+"/enrolments", security, map[string]any{"user_ids": []string{ids["liming"]}})

	doctor := openBrowser(t, s, chromium, "zh-CN", 1200, 3*time.Minute)
	doctor.signIn("liming", staffPassword)
	doctor.run("the record, untrained", chromedp.Navigate(s.base+"/records/"+record), chromedp.WaitVisible(chromedp.ID("my-training-link")))
	if why := doctor.get("the refusal", chromedp.Text(chromedp.ID("rule"))); !strings.Contains(why, "未完成病历访问所需的培训") {
		t.Fatalf("the refusal says %q", why)
	}
	if page := doctor.get("the refusal's page", chromedp.Text(chromedp.CSS("main"))); strings.Contains(page, "阿司匹林") ||
		!strings.Contains(page, "必修课程 PRIV-101 未通过") {
		t.Fatalf("the refusal's page: %q", page)
	}

	officer := openBrowser(t, s, chromium, "zh-CN", 1400, 3*time.Minute)
	officer.signIn("zhouqiang", staffPassword)
	officer.run("the coverage grid", chromedp.Navigate(s.base+"/training?status=gated"), chromedp.WaitVisible(chromedp.ID("coverage")))
	if grid := officer.get("gated", chromedp.Text(chromedp.ID("coverage"))); !strings.Contains(grid, "李明") || strings.Contains(grid, "张建国") {
		t.Fatalf("the gated: %q", grid)
	}
	officer.run("entering the score",
		chromedp.Navigate(s.base+"/training/sessions/"+next),
		chromedp.WaitVisible(chromedp.ID("score-"+ids["liming"])),
		chromedp.SendKeys(chromedp.ID("score-"+ids["liming"]), "91"),
		chromedp.Click(chromedp.CSS("#result-"+ids["liming"]+" button")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	)
	if grid := officer.get("attendance", chromedp.Text(chromedp.ID("attendance"))); !strings.Contains(grid, "91") || !strings.Contains(grid, "通过") {
		t.Fatalf("the attendance: %q", grid)
	}

	doctor.run("my training",
		chromedp.Navigate(s.base+"/records/"+record),
		chromedp.WaitVisible(chromedp.ID("my-training-link")),
		chromedp.Click(chromedp.ID("my-training-link")),
		chromedp.WaitVisible(chromedp.ID("sign-form")),
	)
	if owes := doctor.get("owed", chromedp.Text(chromedp.ID("owes"))); !strings.Contains(owes, "安全承诺书第 1 版未签署") || strings.Contains(owes, "PRIV-101") {
		t.Fatalf("owed: %q", owes)
	}
	doctor.run("signing the letter",
		chromedp.Click(chromedp.ID("agree")),
		chromedp.Click(chromedp.ID("sign")),
		chromedp.WaitVisible(chromedp.ID("letter-signed")),
		chromedp.Navigate(s.base+"/records/"+record),
		chromedp.WaitVisible(chromedp.ID("record-text")),
	)
	if text := doctor.get("the record", chromedp.Text(chromedp.ID("record-text"))); !strings.Contains(text, "阿司匹林") {
		t.Fatalf("the record's text: %q", text)
	}
}
