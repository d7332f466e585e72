package cli_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"medguard/internal/storage/storagetest"
)

// TestLegalHold drives legal holds (诉讼保全 / 封存) through the real server:
// a destruction request already pending when a security officer holds the
// patient's records cannot be approved, and a new one is refused (409 naming
// the hold, audited); the worklist marks the records as held; the holder
// cannot lift the hold alone — a clerk asks, the officer who placed it may
// not approve, a second officer does; then the pending destruction runs. An
// open incident whose evidence names the patient holds the patient's other
// expired record in its turn.
func TestLegalHold(t *testing.T) {
	dir := t.TempDir()
	var db []string
	if pg := os.Getenv(storagetest.PostgresEnv); pg != "" {
		db = []string{"--db", storagetest.FreshSchema(t, pg)}
	}
	dsn := ""
	if len(db) > 0 {
		dsn = db[1]
	}
	past := writeRetentionPast(t, dir, dsn)
	s := start(t, append([]string{"--data", dir}, db...)...)
	admin := s.admin()
	s.staff("bingan.wang", "王病案", "", "records_clerk", "Bingan#Mima2026")
	s.staff("anquan.zhao", "赵安全", "", "security_officer", "Anquan#Mima2026")
	clerk := s.token("bingan.wang", "Bingan#Mima2026")
	security := s.security()
	security2 := s.token("anquan.zhao", "Anquan#Mima2026")

	// A destruction already waiting for its approval.
	pending := s.json(201, "POST", "/api/v1/retention/destructions", clerk,
		map[string]any{"record_ids": []string{past.expired}, "reason": "门诊病历保存期满，按规定销毁"})["id"].(string)

	// Placing a hold: refused to the administrator (no retention.hold) and
	// for bad input, naming the field; then placed by a security officer.
	s.problem(403, "POST", "/api/v1/retention/holds", admin,
		map[string]any{"patient_id": past.patient, "reason": "医疗纠纷", "reference": "京卫纠〔2026〕17号"})
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"reason": "医疗纠纷", "reference": "京卫纠〔2026〕17号"}, "patient_id"},
		{map[string]any{"patient_id": past.patient, "record_ids": []string{past.expired}, "reason": "医疗纠纷", "reference": "x"}, "patient_id"},
		{map[string]any{"patient_id": "p-nobody-000000", "reason": "医疗纠纷", "reference": "x"}, "patient_id"},
		{map[string]any{"patient_id": past.patient, "reference": "京卫纠〔2026〕17号"}, "reason"},
		{map[string]any{"patient_id": past.patient, "reason": "医疗纠纷"}, "reference"},
		{map[string]any{"patient_id": past.patient, "reason": "医疗纠纷\u001b[2J", "reference": "京卫纠〔2026〕17号"}, "reason"},
		{map[string]any{"patient_id": past.patient, "reason": "医疗纠纷", "reference": "京卫纠\n〔2026〕17号"}, "reference"},
		{map[string]any{"record_ids": []string{"rec-nonexistent01"}, "reason": "医疗纠纷", "reference": "x"}, "record_ids"},
	} {
		if p := s.problem(422, "POST", "/api/v1/retention/holds", security, c.body); p["field"] != c.field {
			t.Errorf("hold %v: %v, want field %s", c.body, p, c.field)
		}
	}
	hold := s.json(201, "POST", "/api/v1/retention/holds", security, map[string]any{"patient_id": past.patient,
		"reason": "患者王秀英家属就1996年门诊诊疗提起医疗纠纷，病历封存", "reference": "（2026）京0101民初1234号"})
	holdID := hold["id"].(string)
	if hold["active"] != true || hold["placed_by"] != "security" || hold["source"] != "placed" {
		t.Fatalf("hold: %v", hold)
	}
	holds := s.json(200, "GET", "/api/v1/retention/holds", clerk, nil)["items"].([]any)
	if len(holds) != 1 || holds[0].(map[string]any)["reference"] != "（2026）京0101民初1234号" {
		t.Fatalf("holds: %v", holds)
	}

	// The worklist marks both expired records as held.
	for _, it := range s.json(200, "GET", "/api/v1/retention/expired", clerk, nil)["items"].([]any) {
		if m := it.(map[string]any); m["held_by"] != holdID {
			t.Errorf("expired record not marked held: %v", m)
		}
	}
	// A new destruction is refused, naming the hold; the pending one cannot
	// be approved. Both refusals are in the audit log.
	from := s.size()
	p := s.problem(409, "POST", "/api/v1/retention/destructions", clerk,
		map[string]any{"record_ids": []string{past.inpatient}, "reason": "住院病历保存期满"})
	if p["code"] != "legal_hold" || p["hold"] != holdID || !strings.Contains(p["detail"].(string), past.inpatient) {
		t.Errorf("destruction of a held record: %v", p)
	}
	if p := s.problem(409, "POST", "/api/v1/approvals/"+pending+"/approve", security, map[string]string{"note": "同意"}); p["code"] != "legal_hold" || p["hold"] != holdID {
		t.Errorf("approving a held destruction: %v", p)
	}
	var refusedRequest, refusedApproval bool
	for _, e := range s.entries(from) {
		switch {
		case e["action"] == "approval.request" && e["actor"] == "bingan.wang" && e["outcome"] == "conflict":
			refusedRequest = true
		case e["action"] == "approval.approve" && e["target_id"] == pending && e["outcome"] == "conflict":
			refusedApproval = true
		}
	}
	if !refusedRequest || !refusedApproval {
		t.Errorf("refusals audited: request %v, approval %v", refusedRequest, refusedApproval)
	}
	if r := s.json(200, "GET", "/api/v1/records/"+past.expired, clerk, nil); !strings.Contains(r["text"].(string), "胸闷") {
		t.Fatalf("the held record: %v", r)
	}

	// Lifting needs a second person: asked by the clerk; neither the clerk
	// nor the officer who placed the hold may approve; another officer does.
	lift := s.json(202, "POST", "/api/v1/retention/holds/"+holdID+"/lift", clerk, map[string]string{"reason": "纠纷已调解结案"})
	liftID := lift["id"].(string)
	if lift["kind"] != "retention.hold_lift" || lift["status"] != "pending" {
		t.Fatalf("lift: %v", lift)
	}
	s.problem(403, "POST", "/api/v1/approvals/"+liftID+"/approve", clerk, map[string]string{"note": "同意"})
	// The inbox offers the lift to the other officer, not to the placer.
	for _, c := range []struct {
		token string
		offer bool
	}{{security, false}, {security2, true}} {
		_, _, page := s.consolePage("/approvals", c.token, "zh-CN")
		if offered := strings.Contains(page, `action="/approvals/`+liftID+`/approve"`); offered != c.offer {
			t.Errorf("the inbox offers the lift: %v, want %v", offered, c.offer)
		}
	}
	if p := s.problem(403, "POST", "/api/v1/approvals/"+liftID+"/approve", security, map[string]string{"note": "同意"}); p["rule"] != "deny.own_hold" {
		t.Errorf("the placer approving the lift: %v", p)
	}
	s.problem(409, "POST", "/api/v1/approvals/"+pending+"/approve", security, map[string]string{"note": "同意"})
	s.approve(security2, liftID)
	if hs := s.json(200, "GET", "/api/v1/retention/holds", clerk, nil)["items"].([]any); len(hs) != 0 {
		t.Errorf("active holds after the lift: %v", hs)
	}
	lifted := s.json(200, "GET", "/api/v1/retention/holds?status=lifted", clerk, nil)["items"].([]any)
	if len(lifted) != 1 || lifted[0].(map[string]any)["lifted_by"] != "anquan.zhao" || lifted[0].(map[string]any)["lift_approval"] != liftID {
		t.Errorf("lifted: %v", lifted)
	}
	s.problem(409, "POST", "/api/v1/retention/holds/"+holdID+"/lift", clerk, map[string]string{"reason": "再次解除"})

	// After the lift the pending destruction runs.
	s.approve(security, pending)
	if g := s.problem(410, "GET", "/api/v1/records/"+past.expired, clerk, nil); g["certificate"] != pending {
		t.Errorf("destroyed after the lift: %v", g)
	}

	// An open incident whose evidence names the patient holds the patient's
	// other expired record.
	_, h, _ := s.do("GET", "/api/v1/records/"+past.inpatient, clerk, nil)
	index, err := strconv.ParseUint(h.Get("X-Audit-Index"), 10, 64)
	if err != nil {
		t.Fatalf("X-Audit-Index %q", h.Get("X-Audit-Index"))
	}
	inc := s.json(201, "POST", "/api/v1/incidents", security, map[string]any{"title": "住院病历疑似被违规调阅",
		"description": "王秀英住院病历被非经治人员调阅", "grade": 3, "criterion": "single_record"})
	incID := inc["id"].(string)
	st, _, body := s.do("POST", "/api/v1/incidents/"+incID+"/evidence", security, map[string]any{"indexes": []uint64{index}})
	if st != 200 && st != 201 {
		t.Fatalf("evidence: %d %s", st, body)
	}
	p = s.problem(409, "POST", "/api/v1/retention/destructions", clerk,
		map[string]any{"record_ids": []string{past.inpatient}, "reason": "住院病历保存期满"})
	if p["code"] != "legal_hold" || p["hold"] != "incident "+incID {
		t.Errorf("destruction of a record of an open incident: %v", p)
	}
	found := false
	for _, it := range s.json(200, "GET", "/api/v1/retention/holds", security, nil)["items"].([]any) {
		m := it.(map[string]any)
		if m["source"] == "incident" && m["incident_id"] == incID && m["patient_id"] == past.patient {
			found = true
		}
	}
	if !found {
		t.Error("the incident's hold is not listed")
	}
	for _, it := range s.json(200, "GET", "/api/v1/retention/expired", clerk, nil)["items"].([]any) {
		if m := it.(map[string]any); m["id"] == past.inpatient && m["held_by"] != "incident "+incID {
			t.Errorf("the incident's record not marked held: %v", m)
		}
	}
}
