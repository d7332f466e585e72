package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard/internal/cli"
	"medguard/internal/deidjobs"
	"medguard/internal/testkit"
)

// A de-identification job over HTTPS (SPEC §8, issue 12, "Done when"): a
// researcher asks for an extract of the cardiology notes; neither the
// researcher nor a security officer may approve it, medical affairs does;
// medguard reads the patients under the job's approval (each a
// deid.read_source entry whose rule names the job); the researcher
// downloads it three times and the fourth is refused (410); another
// researcher is refused (403, logged); the manifest's signature verifies
// (API and CLI); no planted name, ID number or phone is in the output;
// the audit log holds the approval, the reads and every download.
func TestDeidJobOverHTTPS(t *testing.T) {
	if underRace {
		t.Skip("slow under the race detector (the scrubber, backups); CI runs it in the plain runs")
	}
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"RES", "科研处"}, {"MED", "医务科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	ids := map[string]string{}
	for _, u := range [][4]string{{"zhangwei", "张建国", "CARD", "doctor"}, {"zhaolei", "赵磊", "RES", "researcher"},
		{"qianli", "钱丽", "RES", "researcher"}, {"sunmei", "孙梅", "MED", "medical_affairs"}} {
		ids[u[0]] = s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	doctor := s.token("zhangwei", staffPassword)
	researcher, other := s.token("zhaolei", staffPassword), s.token("qianli", staffPassword)
	medical := s.token("sunmei", staffPassword)

	type planted struct{ name, id, phone, address, street, mrn string }
	people := []planted{
		{"王秀英", "110105195803070025", "13700001111", "北京市东城区东四十条22号", "东四十条22号", "MR20260101"},
		{"李建华", "110101196205120036", "13911112222", "北京市朝阳区建国路88号", "建国路88号", "MR20260102"},
		{"欧阳明华", "440305197001010019", "13822223333", "广东省深圳市南山区科技园路1号", "科技园路1号", "MR20260103"},
		{"陈桂兰", "330106194503150026", "13633334444", "浙江省杭州市西湖区文三路90号", "文三路90号", "MR20260104"},
		{"刘志强", "320102198807070050", "13544445555", "江苏省南京市玄武区中山路18号", "中山路18号", "MR20260105"},
		{"杨淑珍", "110108193001010047", "13455556666", "北京市海淀区中关村大街27号", "中关村大街27号", "MR20260106"},
	}
	genders := []string{"female", "male", "male", "female", "male", "female"}
	for i, p := range people {
		birth := p.id[6:10] + "-" + p.id[10:12] + "-" + p.id[12:14]
		pid := s.json(201, "POST", "/api/v1/patients", doctor, map[string]any{"name": p.name, "gender": genders[i],
			"birth_date": birth, "id_number": p.id, "phone": p.phone, "address": p.address, "mrn": p.mrn})["id"].(string)
		s.json(201, "POST", "/api/v1/patients/"+pid+"/records", doctor, map[string]any{"type": "progress_note", "department": "CARD",
			"title": "病程记录", "fields": map[string]string{"诊断": "冠状动脉粥样硬化性心脏病"},
			"text": "患者" + p.name + "，身份证号" + p.id + "，联系电话" + p.phone + "，住址" + p.address + "，病案号" + p.mrn +
				"。胸闷较前好转，继续阿司匹林抗血小板治疗，家属" + p.name[:3] + "某陪同。"})
	}

	// The researcher asks (deid.run): pending, a four-eyes request.
	ask := map[string]any{"purpose": "research", "reason": "冠心病二级预防队列研究",
		"scope": map[string]any{"department": "CARD", "record_types": []string{"progress_note"}},
		"fields": map[string]string{"name": "mask", "id_number": "mask", "phone": "mask", "address": "district",
			"birth_date": "shift", "age": "group", "gender": "keep", "record_date": "shift", "diagnosis": "scrub", "text": "scrub"},
		"k": 2, "quasi_identifiers": []string{"age", "gender"}, "suppress": 0, "max_downloads": 3,
		"expires_at": time.Now().Add(7 * 24 * time.Hour).UTC().Format(time.RFC3339)}
	if p := s.problem(422, "POST", "/api/v1/deid/jobs", researcher, map[string]any{"purpose": "research",
		"scope": map[string]any{"record_types": []string{"hiv_test"}}, "fields": map[string]string{"gender": "keep"}}); p["field"] != "payload.scope.record_types" {
		t.Fatalf("a job over HIV tests: %v", p)
	}
	if p := s.problem(422, "POST", "/api/v1/deid/jobs", researcher, map[string]any{"purpose": "research",
		"scope": map[string]any{"department": "CARD"}, "fields": map[string]string{"name": "keep"}}); p["field"] != "payload.fields.name" {
		t.Fatalf("a job keeping names: %v", p)
	}
	rule(t, s.problem(403, "POST", "/api/v1/deid/jobs", doctor, ask), "deny.no_permission")
	from := s.size()
	job := s.json(201, "POST", "/api/v1/deid/jobs", researcher, ask)
	jobID, approvalID := job["id"].(string), job["approval_id"].(string)
	if job["status"] != "pending" || job["recipient_id"] != ids["zhaolei"] {
		t.Fatalf("job %v", job)
	}

	// Four eyes: not the researcher, not a security officer; medical affairs
	// sees it in the approvals inbox and approves.
	rule(t, s.problem(403, "POST", "/api/v1/approvals/"+approvalID+"/approve", researcher, map[string]string{"note": "自批"}),
		"deny.no_permission")
	rule(t, s.problem(403, "POST", "/api/v1/approvals/"+approvalID+"/approve", s.security(), map[string]string{"note": "同意"}),
		"deny.not_an_eligible_approver")
	inbox := s.json(200, "GET", "/api/v1/approvals", medical, nil)["items"].([]any)
	if len(inbox) != 1 || inbox[0].(map[string]any)["id"] != approvalID {
		t.Fatalf("medical affairs' inbox: %v", inbox)
	}
	s.approve(medical, approvalID)

	// The job runs in the background.
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
	if done["status"] != "done" || done["available"] != true || done["downloads_left"].(float64) != 3 {
		t.Fatalf("job %v", done)
	}
	m := done["manifest"].(map[string]any)["manifest"].(map[string]any)
	anon := m["anonymity"].(map[string]any)
	if m["approved_by"] != "sunmei" || m["requested_by"] != "zhaolei" || m["patients_read"].(float64) != 6 ||
		anon["k_reached"].(float64) < 2 || m["fields"].(map[string]any)["name"] != "mask" {
		t.Fatalf("manifest %v", m)
	}

	// The manifest verifies, through the API's file and the CLI.
	manifest := s.body(200, "GET", "/api/v1/deid/jobs/"+jobID+"/manifest", researcher)
	vkey := strings.TrimSpace(string(s.body(200, "GET", "/api/v1/audit/verifier-key", s.security())))
	if _, err := deidjobs.VerifyManifest(manifest, ""); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "manifest.json")
	os.WriteFile(file, manifest, 0o600)
	var out testkit.Buffer
	if err := cli.Run(context.Background(), []string{"deid", "verify-manifest", file}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("verify-manifest: %v\n%s", err, &out)
	}
	if _, err := deidjobs.VerifyManifest(bytes.Replace(manifest, []byte(`"k_reached": `), []byte(`"k_reached": 9`), 1), ""); err == nil {
		t.Fatal("a changed manifest verified")
	}
	_ = vkey

	// Another researcher may not download it.
	rule(t, s.problem(403, "GET", "/api/v1/deid/jobs/"+jobID+"/output", other, nil), "deny.not_recipient")

	// The recipient downloads it three times; the fourth is refused.
	var outputs [][]byte
	for _, f := range []string{"csv", "jsonl", "csv"} {
		outputs = append(outputs, s.body(200, "GET", "/api/v1/deid/jobs/"+jobID+"/output?format="+f, researcher))
	}
	if p := s.problem(410, "GET", "/api/v1/deid/jobs/"+jobID+"/output", researcher, nil); !strings.Contains(p["type"].(string), "gone") {
		t.Fatalf("fourth download: %v", p)
	}

	// No direct identifier in the output; the masked forms are there.
	all := string(bytes.Join(outputs, []byte("\n")))
	for _, p := range people {
		for _, v := range []string{p.name, p.id, p.phone, p.street, p.mrn, p.address} {
			if strings.Contains(all, v) {
				t.Errorf("the output holds %q", v)
			}
		}
	}
	if !strings.Contains(all, "110105********0025") || !strings.Contains(all, "137****1111") || !strings.Contains(all, "欧阳**") {
		t.Errorf("masked identifiers missing from the output:\n%s", outputs[0])
	}
	if !strings.Contains(all, "冠状动脉粥样硬化性心脏病") || !strings.Contains(all, "阿司匹林") {
		t.Errorf("clinical content lost:\n%s", outputs[0])
	}

	// The audit log: the request, the approval, the job's reads (rule
	// naming the job), the output, each download and each refusal.
	count := map[string]int{}
	for _, e := range s.entries(from) {
		a, r := e["action"].(string), e["rule"].(string)
		switch {
		case a == "deid.read_source" && r == "allow.deid_job:"+jobID && e["actor"] == "system" && e["patient_id"] != "":
			count["read"]++
		case a == "deid.download" && e["actor"] == "zhaolei" && e["outcome"] == "success":
			count["download"]++
		case a == "deid.download" && e["actor"] == "zhaolei" && e["outcome"] != "success":
			count["download_refused"]++
		case a == "deid.download" && e["actor"] == "qianli" && r == "deny.not_recipient":
			count["other_refused"]++
		case a == "approval.approve" && e["actor"] == "sunmei" && e["outcome"] == "success":
			count["approve"]++
		case a == "deid.approve" && r == "allow.four_eyes:"+approvalID:
			count["run"]++
		case a == "deid.run" && r == "allow.deid_job:"+jobID:
			count["job"]++
		case a == "deid.output" && r == "allow.deid_job:"+jobID:
			count["output"]++
		case a == "approval.request" && e["actor"] == "zhaolei" && e["outcome"] == "success":
			count["request"]++
		}
	}
	want := map[string]int{"read": 6, "download": 3, "download_refused": 1, "other_refused": 1, "approve": 1, "run": 1, "job": 1,
		"output": 1, "request": 1}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("audit %s: %d entries, want %d (%v)", k, count[k], n, count)
		}
	}

	// The job's reads froze nobody and raised no alert.
	if alerts := s.json(200, "GET", "/api/v1/alerts", s.security(), nil)["items"].([]any); len(alerts) != 0 {
		t.Errorf("alerts after the job: %v", alerts)
	}
	// The list shows it to the researcher and to medical affairs, not to another researcher.
	if js := s.json(200, "GET", "/api/v1/deid/jobs", medical, nil)["items"].([]any); len(js) != 1 {
		t.Errorf("medical affairs' list: %v", js)
	}
	if js := s.json(200, "GET", "/api/v1/deid/jobs", other, nil)["items"].([]any); len(js) != 0 {
		t.Errorf("another researcher's list: %v", js)
	}
	s.problem(403, "GET", "/api/v1/deid/jobs/"+jobID, other, nil)
}
