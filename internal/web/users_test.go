package web

import (
	"testing"
	"time"

	"medguard/internal/approvals"
	"medguard/internal/identity"
	"medguard/internal/testkit"
)

// TestUserAdministrationOverHTTP drives the two routes of issue 10's
// safer administration: moving a user to another department (at once, or
// through a four-eyes request the new department's head approves) and
// lifting a sign-in lockout.
func TestUserAdministrationOverHTTP(t *testing.T) {
	s := startAPI(t, testkit.NewClock(time.Date(2026, 3, 5, 6, 30, 0, 0, time.UTC)), nil)
	s.department("CARD", "心内科")
	s.department("NEUR", "神经内科")
	const password = "Yiyuan#Ceshi2026"
	doctor := s.person("zhangwei", "张伟", "CARD", "doctor", password)
	researcher := s.person("xuming", "徐明", "CARD", "researcher", password)
	// NEUR's head, made by a second administrator, so that the first
	// administrator's requests may be approved by them.
	s.person("wangqiang", "王强", "", "admin", password)
	admin := s.login("admin", "Guanli#Mima2026")
	other := s.login("wangqiang", password)
	s.ok(201, nil, "POST", "/api/v1/users", other, map[string]any{"username": "chenjing", "display_name": "陈静",
		"department": "NEUR", "roles": []string{"researcher"}, "password": password})
	var heads struct{ Items []identity.User }
	s.ok(200, &heads, "GET", "/api/v1/users", admin, nil)
	var chenjing string
	for _, u := range heads.Items {
		if u.Username == "chenjing" {
			chenjing = u.ID
		}
	}
	var role struct{ Approval approvals.Approval }
	s.ok(202, &role, "POST", "/api/v1/users/"+chenjing+"/roles", other, map[string]string{"role": "dept_head", "reason": "任命"})
	s.ok(200, nil, "POST", "/api/v1/approvals/"+role.Approval.ID+"/approve", s.login("security", "Anquan#Mima2026"), map[string]string{"note": "同意"})
	head := s.login("chenjing", password)

	// A researcher moves at once (204); a doctor's move waits for NEUR's head (202).
	if st, _, out := s.do("POST", "/api/v1/users/"+researcher+"/department", admin, map[string]string{"department": "NEUR"}); st != 204 {
		t.Fatalf("researcher: %d %s", st, out)
	}
	var moved identity.User
	s.ok(200, &moved, "GET", "/api/v1/users/"+researcher, admin, nil)
	if moved.Department != "NEUR" {
		t.Fatalf("researcher in %q", moved.Department)
	}
	var req struct{ Approval approvals.Approval }
	s.ok(202, &req, "POST", "/api/v1/users/"+doctor+"/department", admin, map[string]string{"department": "NEUR", "reason": "支援神经内科"})
	if a := req.Approval; a.Kind != approvals.DepartmentChange || a.Approvers.DepartmentHead != "NEUR" || a.Reason != "支援神经内科" {
		t.Fatalf("%+v", a)
	}
	if st, _, _ := s.do("POST", "/api/v1/users/"+doctor+"/department", admin, map[string]string{"department": "NEUR"}); st != 409 {
		t.Fatalf("the same move twice: %d", st)
	}
	if st, _, _ := s.do("POST", "/api/v1/users/"+doctor+"/department", admin, map[string]string{"department": "ORTH"}); st != 422 {
		t.Fatalf("an unknown department: %d", st)
	}
	if st, _, _ := s.do("POST", "/api/v1/users/"+doctor+"/department", admin, map[string]any{"department": "NEUR", "x": 1}); st != 422 {
		t.Fatalf("an unknown field: %d", st)
	}
	if st, _, _ := s.do("POST", "/api/v1/users/"+doctor+"/department", head, map[string]string{"department": "NEUR"}); st != 403 {
		t.Fatalf("a head moved someone: %d", st)
	}
	s.ok(200, nil, "POST", "/api/v1/approvals/"+req.Approval.ID+"/approve", head, map[string]string{"note": "欢迎"})
	s.ok(200, &moved, "GET", "/api/v1/users/"+doctor, admin, nil)
	if moved.Department != "NEUR" {
		t.Fatalf("doctor in %q", moved.Department)
	}

	// Five wrong passwords lock the doctor out; the administrator unlocks.
	if st, _, _ := s.do("POST", "/api/v1/users/"+doctor+"/unlock", admin, nil); st != 409 {
		t.Fatalf("unlocking an unlocked user: %d", st)
	}
	for range 5 {
		s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "zhangwei", "password": "Wrong#Pass2026"})
	}
	if st, _, _ := s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "zhangwei", "password": password}); st != 423 {
		t.Fatalf("not locked out: %d", st)
	}
	s.ok(200, &moved, "GET", "/api/v1/users/"+doctor, admin, nil)
	if moved.LockedUntil == nil {
		t.Fatal("the user does not show the lockout")
	}
	if st, _, _ := s.do("POST", "/api/v1/users/"+doctor+"/unlock", head, nil); st != 403 {
		t.Fatalf("a head unlocked: %d", st)
	}
	if st, _, out := s.do("POST", "/api/v1/users/"+doctor+"/unlock", admin, nil); st != 204 {
		t.Fatalf("unlock: %d %s", st, out)
	}
	s.login("zhangwei", password)
}
