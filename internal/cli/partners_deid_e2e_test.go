package cli_test

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A partner's researcher and the de-identification jobs and exports, over
// HTTPS (SPEC §8, issue 12, across internal/partners, internal/deidjobs and
// internal/exports): a researcher linked to an external partner asks for a
// de-identification job — refused while no agreement is live (403, in the
// audit log), still refused while the agreement waits for its second pair
// of eyes, allowed once a security officer approves it; medical affairs
// approves the job, the worker runs it and the signed manifest names the
// agreement. The researcher may never ask for an export (no record.export)
// nor download a doctor's, and the partner's inspection lists those
// attempts as refused and outside the scope.
func TestPartnerResearcherDeidJobsAndExports(t *testing.T) {
	if underRace {
		t.Skip("slow under the race detector (the scrubber, backups); CI runs it in the plain runs")
	}
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"YWK", "医务科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	ids := map[string]string{}
	for _, u := range [][4]string{{"zhangwei", "张建国", "CARD", "doctor"}, {"wangli", "王丽", "YWK", "medical_affairs"},
		{"zhouqiang", "周强", "", "security_officer"}, {"sunli", "孙丽", "", "auditor"}, {"liuyang", "刘洋", "", "researcher"}, {"lina", "李娜", "NEUR", "doctor"}} {
		ids[u[0]] = s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	doctor, affairs := s.token("zhangwei", staffPassword), s.token("wangli", staffPassword)
	officer, auditor := s.token("zhouqiang", staffPassword), s.token("sunli", staffPassword)
	researcher := s.token("liuyang", staffPassword)

	var patients []string
	for i, p := range [][3]string{{"王秀英", "110105195803070025", "13700001111"}, {"李建华", "110101196205120036", "13911112222"},
		{"陈桂兰", "330106194503150026", "13633334444"}, {"刘志强", "320102198807070050", "13544445555"}} {
		birth := p[1][6:10] + "-" + p[1][10:12] + "-" + p[1][12:14]
		gender := map[bool]string{true: "male", false: "female"}[(p[1][16]-'0')%2 == 1]
		pid := s.json(201, "POST", "/api/v1/patients", doctor, map[string]any{"name": p[0], "gender": gender, "birth_date": birth,
			"id_number": p[1], "phone": p[2], "address": "北京市东城区东四十条22号", "mrn": "MR2026020" + string(rune('1'+i))})["id"].(string)
		s.json(201, "POST", "/api/v1/patients/"+pid+"/records", doctor, map[string]any{"type": "progress_note", "department": "CARD",
			"title": "病程记录", "text": "患者" + p[0] + "胸闷较前好转，继续阿司匹林抗血小板治疗。"})
		patients = append(patients, pid)
	}
	neurologist := s.token("lina", staffPassword)
	nid := s.json(201, "POST", "/api/v1/patients", neurologist, map[string]any{"name": "钱学敏", "gender": "female", "birth_date": "1949-12-31",
		"id_number": "11010519491231002X", "mrn": "MR20269999"})["id"].(string)
	s.json(201, "POST", "/api/v1/patients/"+nid+"/records", neurologist, map[string]any{"type": "progress_note", "department": "NEUR",
		"title": "会诊记录", "text": "头晕三天。"})

	// The partner and its researcher, linked by medical affairs.
	pid := s.json(201, "POST", "/api/v1/partners", affairs, map[string]string{"name": "北京协和医学院 合作课题组",
		"org_code": "12100000400000624D", "contact_name": "张晓明", "contact_phone": "010-69156114"})["id"].(string)
	s.json(201, "POST", "/api/v1/partners/"+pid+"/accounts", affairs, map[string]string{"user_id": ids["liuyang"]})

	ask := map[string]any{"purpose": "research", "reason": "冠心病队列随访研究",
		"scope":  map[string]any{"department": "CARD", "record_types": []string{"progress_note"}},
		"fields": map[string]string{"name": "mask", "gender": "keep", "age": "group", "text": "scrub"},
		"k":      2, "quasi_identifiers": []string{"gender"}, "max_downloads": 2}

	// No agreement: refused, and logged.
	from := s.size()
	rule(t, s.problem(403, "POST", "/api/v1/deid/jobs", researcher, ask), "deny.no_partner_agreement")

	// An agreement asked by medical affairs: not in force until a security
	// officer approves it — neither the requester nor the researcher may.
	agreement := s.json(202, "POST", "/api/v1/partners/"+pid+"/agreements", affairs, map[string]any{"title": "冠心病队列随访研究",
		"purposes": []string{"research"}, "dataset_kinds": []string{"deid_output"}, "min_k": 2, "departments": []string{"CARD"},
		"expires_at":      time.Now().Add(180 * 24 * time.Hour).UTC().Format(time.RFC3339),
		"confidentiality": "保密协议 PUMC-2026-017 第5条", "document_sha256": strings.Repeat("ab", 32), "reason": "科研合作，伦理批件 2026-伦审-031"})
	aid := agreement["id"].(string)
	rule(t, s.problem(403, "POST", "/api/v1/deid/jobs", researcher, ask), "deny.no_partner_agreement")
	rule(t, s.problem(403, "POST", "/api/v1/approvals/"+aid+"/approve", affairs, map[string]string{"note": "自批"}), "deny.own_request")
	rule(t, s.problem(403, "POST", "/api/v1/approvals/"+aid+"/approve", researcher, map[string]string{"note": "同意"}), "deny.no_permission")
	s.approve(officer, aid)
	// The approvals list filters by status (the status was bound to the
	// wrong parameter: nothing approved was ever listed, and PostgreSQL
	// refused the pending list).
	approved := s.json(200, "GET", "/api/v1/approvals?status=approved", officer, nil)["items"].([]any)
	if !slices.ContainsFunc(approved, func(a any) bool { return a.(map[string]any)["id"] == aid }) {
		t.Fatalf("the approved agreement is not listed as approved: %v", approved)
	}

	// In force: a purpose outside it is still refused; within it the job
	// is filed, naming the agreement.
	other := map[string]any{}
	for k, v := range ask {
		other[k] = v
	}
	other["purpose"] = "operations"
	rule(t, s.problem(403, "POST", "/api/v1/deid/jobs", researcher, other), "deny.outside_partner_agreement")
	// Medical affairs never decides an agreement, not even another's.
	ext := s.json(202, "POST", "/api/v1/agreements/"+aid+"/extend", officer, map[string]string{"reason": "课题延期一年",
		"expires_at": time.Now().Add(400 * 24 * time.Hour).UTC().Format(time.RFC3339)})
	s.problem(403, "POST", "/api/v1/approvals/"+ext["id"].(string)+"/approve", affairs, map[string]string{"note": "同意"})
	// A job over a department outside the agreement.
	neuro := map[string]any{}
	for k, v := range ask {
		neuro[k] = v
	}
	neuro["scope"] = map[string]any{"department": "NEUR"}
	rule(t, s.problem(403, "POST", "/api/v1/deid/jobs", researcher, neuro), "deny.outside_partner_agreement")
	// A job over every department, and one promising no k-anonymity.
	whole := map[string]any{}
	for k, v := range ask {
		whole[k] = v
	}
	whole["scope"] = map[string]any{"record_types": []string{"progress_note"}}
	rule(t, s.problem(403, "POST", "/api/v1/deid/jobs", researcher, whole), "deny.outside_partner_agreement")
	noK := map[string]any{}
	for k, v := range ask {
		noK[k] = v
	}
	delete(noK, "k")
	delete(noK, "quasi_identifiers")
	rule(t, s.problem(403, "POST", "/api/v1/deid/jobs", researcher, noK), "deny.outside_partner_agreement")
	job := s.json(201, "POST", "/api/v1/deid/jobs", researcher, ask)
	jobID, approvalID := job["id"].(string), job["approval_id"].(string)
	if job["status"] != "pending" || job["agreement_id"] != aid || job["recipient_id"] != ids["liuyang"] {
		t.Fatalf("the partner's job: %v", job)
	}
	rule(t, s.problem(403, "POST", "/api/v1/approvals/"+approvalID+"/approve", officer, map[string]string{"note": "同意"}),
		"deny.not_an_eligible_approver")
	s.approve(affairs, approvalID)
	var done map[string]any
	for i := 0; ; i++ {
		done = s.json(200, "GET", "/api/v1/deid/jobs/"+jobID, researcher, nil)
		if done["status"] == "done" || done["status"] == "failed" {
			break
		}
		if i > 600 {
			t.Fatalf("the job never finished: %v", done)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the worker, not timing it
	}
	if done["status"] != "done" {
		t.Fatalf("the job: %v", done)
	}
	m := done["manifest"].(map[string]any)["manifest"].(map[string]any)
	if m["agreement_id"] != aid || m["requested_by"] != "liuyang" || m["approved_by"] != "wangli" || m["patients_read"] != float64(4) {
		t.Fatalf("the manifest: %v", m)
	}
	if raw := string(s.body(200, "GET", "/api/v1/deid/jobs/"+jobID+"/manifest", researcher)); !strings.Contains(raw, aid) {
		t.Fatalf("the signed manifest file does not name the agreement: %s", raw)
	}
	out := string(s.body(200, "GET", "/api/v1/deid/jobs/"+jobID+"/output?format=csv", researcher))
	for _, v := range []string{"王秀英", "110105195803070025", "13700001111", "东四十条"} {
		if strings.Contains(out, v) {
			t.Errorf("the partner's output holds %q", v)
		}
	}

	// Exports: never the researcher's — neither asking nor downloading a
	// doctor's file.
	exp := s.json(201, "POST", "/api/v1/exports", doctor, map[string]any{"patient_ids": []string{patients[0]}, "format": "jsonl",
		"purpose": "treatment", "reason": "转诊需携带病历"})
	rule(t, s.problem(403, "POST", "/api/v1/exports", researcher, map[string]any{"patient_ids": []string{patients[0]},
		"format": "csv", "purpose": "research", "reason": "课题需要"}), "deny.no_permission")
	rule(t, s.problem(403, "GET", "/api/v1/exports/"+exp["id"].(string)+"/file", researcher, nil), "deny.no_permission")
	rule(t, s.problem(403, "GET", "/api/v1/exports", researcher, nil), "deny.no_permission")

	// The audit log holds each refusal (a refused job's request is the
	// approval.request entry, outcome denied), the agreement's approval
	// and the job.
	count := map[string]int{}
	for _, e := range s.entries(from) {
		a, r, actor := e["action"].(string), e["rule"].(string), e["actor"]
		switch {
		case actor == "liuyang" && a == "approval.request" && e["outcome"] == "denied":
			// Logged as denied by the partner rule that refused it.
			if e["decision"] != "deny" || (r != "deny.no_partner_agreement" && r != "deny.outside_partner_agreement") {
				t.Errorf("a refused job request logged as %v by %q", e["decision"], r)
			}
			count["job_refused"]++
		case actor == "liuyang" && a == "approval.request" && e["outcome"] == "success" && e["target_id"] == approvalID:
			count["job_asked"]++
		case actor == "liuyang" && strings.HasPrefix(a, "export.") && r == "deny.no_permission":
			count["export"]++
		case a == "deid.run" && r == "allow.deid_job:"+jobID:
			count["job"]++
		case a == "approval.approve" && actor == "zhouqiang" && e["target_id"] == aid && e["outcome"] == "success":
			count["agreement"]++
		}
	}
	// Refused: twice without an agreement, then a purpose, a department,
	// the whole archive and no k outside it.
	for k, n := range map[string]int{"job_refused": 6, "job_asked": 1, "export": 3, "job": 1, "agreement": 1} {
		if count[k] != n {
			t.Errorf("audit %s: %d entries, want %d (%v)", k, count[k], n, count)
		}
	}

	// The inspection of the partner: the export attempts are refused and
	// outside the scope; the first refused job had no agreement at all.
	act := s.json(200, "GET", "/api/v1/partners/"+pid+"/activity?months=3", auditor, nil)
	flagged := map[string]int{}
	for _, raw := range act["entries"].([]any) {
		e := raw.(map[string]any)
		var flags []string
		for _, f := range e["flags"].([]any) {
			flags = append(flags, f.(string))
		}
		switch a := e["action"].(string); {
		case strings.HasPrefix(a, "export.") && slices.Contains(flags, "outside_scope") && slices.Contains(flags, "refused"):
			flagged["export"]++
		case a == "approval.request" && slices.Contains(flags, "refused"):
			flagged["job_refused"]++
			if slices.Contains(flags, "no_agreement") {
				flagged["no_agreement"]++
			}
		case a == "approval.request":
			// The job asked within the agreement is within the scope.
			flagged["job_asked"]++
			if len(flags) != 0 {
				t.Errorf("the job asked within the agreement is flagged %v", flags)
			}
		}
	}
	if flagged["export"] != 3 || flagged["job_refused"] != 6 || flagged["no_agreement"] < 1 || flagged["job_asked"] != 1 {
		t.Errorf("the inspection flags %v, want 3 exports, 6 refused jobs, one at least without agreement: %v", flagged, act["entries"])
	}
}
