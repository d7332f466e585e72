package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"medguard/internal/cli"
	"medguard/internal/exports"
	"medguard/internal/testkit"
)

// Exports over HTTPS (SPEC §8, issue 12): a doctor exports one patient of
// the department at once and opens the file with the key shown; a records
// clerk's export of several patients waits for medical affairs (not the
// clerk, not a security officer when core records are in it), is built
// once, downloaded three times and then gone, and holds exactly the
// approved patients; the manifest and every download are in the audit
// log; the database holds no name or ID number in clear. Taking an export
// outside an approved request — running a bulk export, building one not
// yet approved, downloading someone else's — is refused and freezes.
func TestExportsOverHTTPS(t *testing.T) {
	if underRace {
		t.Skip("slow under the race detector (the scrubber, backups); CI runs it in the plain runs")
	}
	s := start(t)
	admin := s.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"MRD", "病案室"}, {"YWK", "医务科"}} {
		s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	for _, u := range [][4]string{{"zhangwei", "张建国", "CARD", "doctor"}, {"liuyang", "刘洋", "CARD", "dept_head"},
		{"lina", "李娜", "NEUR", "doctor"}, {"chenjing", "陈静", "MRD", "records_clerk"}, {"zhouli", "周丽", "YWK", "medical_affairs"}} {
		s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	doctor, head, neuro := s.token("zhangwei", staffPassword), s.token("liuyang", staffPassword), s.token("lina", staffPassword)
	clerk, affairs, security := s.token("chenjing", staffPassword), s.token("zhouli", staffPassword), s.security()

	type patient struct{ id, name, idNumber string }
	var card []patient
	for i, p := range [][3]string{{"王秀英", "110105195803070025", "13700001111"}, {"赵德明", "110101196505120038", "13800002222"},
		{"孙丽华", "110102197011230043", "13900003333"}} {
		birth := p[1][6:10] + "-" + p[1][10:12] + "-" + p[1][12:14]
		gender := map[bool]string{true: "male", false: "female"}[(p[1][16]-'0')%2 == 1]
		id := s.json(201, "POST", "/api/v1/patients", doctor, map[string]any{"name": p[0], "gender": gender,
			"birth_date": birth, "id_number": p[1], "phone": p[2], "address": "北京市东城区东四十条22号",
			"mrn": "MR2026000" + string(rune('1'+i))})["id"].(string)
		s.json(201, "POST", "/api/v1/patients/"+id+"/records", doctor, map[string]any{"type": "progress_note",
			"department": "CARD", "title": "病程记录", "text": p[0] + "胸闷较前好转，继续抗血小板治疗。"})
		s.json(201, "POST", "/api/v1/patients/"+id+"/records", doctor, map[string]any{"type": "lab_report",
			"department": "CARD", "title": "血常规", "text": "白细胞 6.2×10^9/L。"})
		card = append(card, patient{id, p[0], p[1]})
	}
	neuroPatient := s.json(201, "POST", "/api/v1/patients", neuro, map[string]any{"name": "钱学敏", "gender": "female",
		"birth_date": "1949-12-31", "id_number": "11010519491231002X", "phone": "13600004444",
		"address": "北京市西城区金融街1号", "mrn": "MR20269999"})["id"].(string)

	// 1. One patient of his department: at once, the key shown once; SM4-GCM.
	one := s.json(201, "POST", "/api/v1/exports", doctor, map[string]any{"patient_ids": []string{card[0].id},
		"format": "jsonl", "cipher": "sm4-gcm", "purpose": "treatment", "reason": "转诊需携带病历"})
	if one["status"] != "ready" || len(one["key"].(string)) != 32 || one["manifest"] == nil {
		t.Fatalf("one patient's export: %v", one)
	}
	if again := s.json(200, "GET", "/api/v1/exports/"+one["id"].(string), doctor, nil); again["key"] != nil {
		t.Fatalf("the key was shown twice: %v", again)
	}
	st, _, file := s.do("GET", "/api/v1/exports/"+one["id"].(string)+"/file", doctor, nil)
	if st != 200 {
		t.Fatalf("download: %d %s", st, file)
	}
	in, out := filepath.Join(t.TempDir(), "one.mgx"), filepath.Join(t.TempDir(), "one.jsonl")
	os.WriteFile(in, file, 0o600)
	if err := cli.Run(context.Background(), []string{"export", "decrypt", "--in", in, "--key", one["key"].(string), "--out", out},
		func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	plain, _ := os.ReadFile(out)
	if !strings.Contains(string(plain), card[0].name) || !strings.Contains(string(plain), card[0].idNumber) ||
		strings.Contains(string(plain), card[1].name) {
		t.Fatalf("the decrypted file: %s", plain)
	}
	wrong := strings.Repeat("0", 32)
	if err := cli.Run(context.Background(), []string{"export", "decrypt", "--in", in, "--key", wrong, "--out", out},
		func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("a wrong key opened the file")
	}
	// Not a patient of his: refused, no freeze.
	rule(t, s.problem(403, "POST", "/api/v1/exports", doctor, map[string]any{"patient_ids": []string{neuroPatient},
		"format": "csv", "purpose": "treatment", "reason": "会诊"}), "deny.no_relation")
	s.problem(422, "POST", "/api/v1/exports", doctor, map[string]any{"patient_ids": []string{card[0].id},
		"format": "xml", "purpose": "treatment", "reason": "格式"})

	// 2. The records clerk asks for three patients (core records among
	// them): a request; only medical affairs decides it.
	from := s.size()
	ask := s.json(202, "POST", "/api/v1/exports", clerk, map[string]any{"patient_ids": []string{card[0].id, card[1].id, neuroPatient},
		"format": "csv", "fields": []string{"name", "id_number", "title", "text"}, "purpose": "quality_control",
		"reason": "病案质控抽查"})
	exportID, approvalID := ask["id"].(string), ask["approval"].(map[string]any)["id"].(string)
	if ask["status"] != "pending" || ask["contains_core"] != true || ask["patients"].(float64) != 3 || ask["key"] != nil {
		t.Fatalf("the request: %v", ask)
	}
	s.problem(403, "POST", "/api/v1/approvals/"+approvalID+"/approve", clerk, map[string]string{"note": "自批"})
	rule(t, s.problem(403, "POST", "/api/v1/approvals/"+approvalID+"/approve", security, map[string]string{"note": "同意"}),
		"deny.not_an_eligible_approver")
	inbox := s.json(200, "GET", "/api/v1/approvals?status=pending", affairs, nil)["items"].([]any)
	if !slices.ContainsFunc(inbox, func(a any) bool { return a.(map[string]any)["id"] == approvalID }) {
		t.Fatalf("medical affairs' inbox lacks the request: %v", inbox)
	}
	s.approve(affairs, approvalID)
	built := s.json(201, "POST", "/api/v1/exports/"+exportID+"/file", clerk, nil)
	key := built["key"].(string)
	if len(key) != 64 || built["status"] != "ready" {
		t.Fatalf("built: %v", built)
	}
	s.problem(409, "POST", "/api/v1/exports/"+exportID+"/file", clerk, nil) // built once
	var got []byte
	for i := 0; i < 3; i++ {
		st, _, body := s.do("GET", "/api/v1/exports/"+exportID+"/file", clerk, nil)
		if st != 200 {
			t.Fatalf("download %d: %d %s", i+1, st, body)
		}
		got = body
	}
	s.problem(410, "GET", "/api/v1/exports/"+exportID+"/file", clerk, nil)
	h, content, err := exports.Decrypt(got, key)
	if err != nil || h.Cipher != exports.AES256GCM || h.ExportID != exportID {
		t.Fatalf("decrypt: %v %+v", err, h)
	}
	rows, err := csv.NewReader(bytes.NewReader(content)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	for _, r := range rows[1:] {
		inFile[r[0]] = true
	}
	want := []string{card[0].id, card[1].id, neuroPatient}
	if len(inFile) != 3 || !inFile[want[0]] || !inFile[want[1]] || !inFile[want[2]] ||
		!strings.Contains(string(content), "钱学敏") || strings.Contains(string(content), card[2].name) {
		t.Fatalf("the file holds %v: %s", inFile, content)
	}
	if rows[0][1] != "name" || slices.Contains(rows[0], "phone") {
		t.Fatalf("columns %v", rows[0])
	}

	// The manifest and every download are in the audit log; one entry per
	// patient, naming them by id only.
	var manifest, downloads, gone int
	patients := map[string]bool{}
	for _, e := range s.entries(from) {
		switch {
		case e["action"] == "export.manifest" && e["target_id"] == exportID:
			manifest++
		case e["action"] == "export.download" && e["target_id"] == exportID && e["outcome"] == "success":
			downloads++
		case e["action"] == "export.download" && e["target_id"] == exportID && e["outcome"] == "not_found":
			gone++
		case e["action"] == "record.export_approved" && e["actor"] == "chenjing" && e["decision"] == "allow":
			patients[e["patient_id"].(string)] = true
		}
	}
	if manifest != 1 || downloads != 3 || gone != 1 || len(patients) != 3 {
		t.Fatalf("audit: manifest %d, downloads %d, refused %d, patients %v", manifest, downloads, gone, patients)
	}
	m := s.json(200, "GET", "/api/v1/exports/"+exportID, affairs, nil)
	if m["status"] != "exhausted" || m["manifest"].(map[string]any)["patient_count"].(float64) != 3 ||
		m["manifest"].(map[string]any)["sha256"] == "" {
		t.Fatalf("the manifest as medical affairs sees it: %v", m)
	}

	// 3. Without core records a security officer may decide; building
	// before the decision is refused and freezes the head.
	lab := s.json(202, "POST", "/api/v1/exports", head, map[string]any{"patient_ids": []string{card[1].id, card[2].id},
		"record_types": []string{"lab_report"}, "format": "fhir", "purpose": "quality_control", "reason": "检验质控"})
	if lab["contains_core"] != false {
		t.Fatalf("lab export: %v", lab)
	}
	rule(t, s.problem(403, "POST", "/api/v1/exports/"+lab["id"].(string)+"/file", head, nil), "deny.export_not_approved")
	s.problem(423, "GET", "/api/v1/auth/me", head, nil)
	s.approve(security, lab["approval"].(map[string]any)["id"].(string))

	// 4. Someone else's export: refused, frozen.
	rule(t, s.problem(403, "GET", "/api/v1/exports/"+one["id"].(string)+"/file", neuro, nil), "deny.export_not_approved")
	s.problem(423, "GET", "/api/v1/auth/me", neuro, nil)

	// 5. The doctor's bulk export without approval: refused, frozen.
	rule(t, s.problem(403, "POST", "/api/v1/exports", doctor, map[string]any{"patient_ids": []string{card[0].id, card[1].id, card[2].id},
		"format": "jsonl", "purpose": "research", "reason": "科研", "run": true}), "deny.export_not_approved")
	s.problem(423, "GET", "/api/v1/auth/me", doctor, nil)
	s.problem(423, "GET", "/api/v1/patients/"+card[0].id, doctor, nil)
	frozen := map[string]bool{}
	for _, a := range s.json(200, "GET", "/api/v1/alerts", security, nil)["items"].([]any) {
		if a := a.(map[string]any); a["rule"] == "bulk_export" && a["frozen"] == true {
			frozen[a["username"].(string)] = true
		}
	}
	if !frozen["zhangwei"] || !frozen["liuyang"] || !frozen["lina"] || frozen["chenjing"] {
		t.Fatalf("bulk_export froze %v", frozen)
	}

	// No name or ID number in clear anywhere in the data directory.
	s.stop()
	s.stop = nil
	secrets := testkit.PHI("王秀英", "赵德明", "钱学敏", "110105195803070025", "11010519491231002X", "13700001111",
		"胸闷较前好转", "病案质控抽查")
	filepath.Walk(s.dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			testkit.AssertNoPHI(t, path, secrets)
		}
		return nil
	})
}
