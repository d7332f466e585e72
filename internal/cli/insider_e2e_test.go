package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The attacks of a hostile insider on the running server (issue 9), each
// driven over HTTPS the way it was first made, and a walk of every route
// by each insider that might reach patient data alone.

const staffPassword = "Yiyuan#Ceshi2026"

// hospital is a small hospital: cardiology, neurology, psychiatry and the
// records office, with a psychiatric patient whose records the Mental
// Health Law protects.
type hospital struct {
	*server
	ids map[string]string // users' ids by username
	// 孙晓梅, a patient of psychiatry only: her psychiatric note, her
	// psychiatric admission note, an attachment and her admission.
	patient, psychNote, psychAdmissionNote, attachment, admission string
	// 陈明, a patient of cardiology, with a progress note.
	cardPatient, cardNote string
	// What must never reach anyone outside psychiatry; and her
	// demographics, which must never reach anyone unseen.
	restricted, demographics []string
}

func newHospital(t *testing.T, args ...string) *hospital {
	t.Helper()
	h := &hospital{server: start(t, args...), ids: map[string]string{}}
	admin := h.admin()
	for _, d := range [][2]string{{"CARD", "心内科"}, {"NEUR", "神经内科"}, {"PSYC", "精神科"}, {"MRD", "病案室"}} {
		h.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": d[0], "name": d[1]})
	}
	for _, u := range [][4]string{
		{"zhangwei", "张建国", "CARD", "doctor"}, {"liuyang", "刘洋", "CARD", "dept_head"},
		{"lina", "李娜", "NEUR", "doctor"}, {"wangfang", "王芳", "PSYC", "doctor"},
		{"chenjing", "陈静", "MRD", "records_clerk"}, {"zhaolei", "赵磊", "", "researcher"},
	} {
		h.ids[u[0]] = h.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	h.ids["admin"] = h.json(200, "GET", "/api/v1/auth/me", admin, nil)["id"].(string)
	h.ids["security"] = h.json(200, "GET", "/api/v1/auth/me", h.security(), nil)["id"].(string)

	psych := h.token("wangfang", staffPassword)
	h.patient = h.json(201, "POST", "/api/v1/patients", psych, map[string]any{"name": "孙晓梅", "gender": "female",
		"birth_date": "1949-12-31", "id_number": "11010519491231002X", "phone": "13811112222",
		"address": "上海市徐汇区宛平南路600号"})["id"].(string)
	h.admission = h.json(201, "POST", "/api/v1/patients/"+h.patient+"/admissions", psych, map[string]any{"department": "PSYC",
		"admitted_at": time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)})["id"].(string)
	h.psychNote = h.json(201, "POST", "/api/v1/patients/"+h.patient+"/records", psych, map[string]any{"type": "psychiatric_note",
		"department": "PSYC", "title": "幻听随访记录", "text": "患者自述持续幻听两月，伴被害妄想。"})["id"].(string)
	h.psychAdmissionNote = h.json(201, "POST", "/api/v1/patients/"+h.patient+"/records", psych, map[string]any{"type": "admission_note",
		"department": "PSYC", "title": "入院记录", "text": "因情绪低落伴自杀念头一月入院，精神检查：意识清。"})["id"].(string)
	st, out := h.upload(psych, h.psychAdmissionNote, "精神检查.pdf", []byte("%PDF-1.4\n精神检查量表 汉密尔顿抑郁量表 得分31\n"))
	if st != 201 {
		t.Fatalf("attachment: %d %s", st, out)
	}
	var a map[string]any
	json.Unmarshal(out, &a)
	h.attachment = a["id"].(string)

	card := h.token("zhangwei", staffPassword)
	h.cardPatient = h.json(201, "POST", "/api/v1/patients", card, map[string]any{"name": "陈明", "gender": "male",
		"phone": "13933334444"})["id"].(string)
	h.cardNote = h.json(201, "POST", "/api/v1/patients/"+h.cardPatient+"/records", card, map[string]any{"type": "progress_note",
		"department": "CARD", "title": "病程记录", "text": "胸闷较前好转。"})["id"].(string)
	h.restricted = []string{"幻听", "被害妄想", "自杀念头", "汉密尔顿"}
	h.demographics = []string{"孙晓梅", "11010519491231002X", "13811112222", "宛平南路"}
	return h
}

// upload posts a file to a record's attachments as token.
func (s *server) upload(token, recordID, name string, content []byte) (int, []byte) {
	s.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(content)
	mw.Close()
	req, _ := http.NewRequest("POST", s.base+"/api/v1/records/"+recordID+"/attachments", &b)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// approve approves a four-eyes request as token and returns the answer.
func (s *server) approve(token, id string) map[string]any {
	s.t.Helper()
	return s.json(200, "POST", "/api/v1/approvals/"+id+"/approve", token, map[string]string{"note": "同意"})
}

// size is the audit log's size now: one past the entry of a request
// made for the purpose.
func (s *server) size() uint64 {
	s.t.Helper()
	_, h, _ := s.do("GET", "/api/v1/auth/me", s.security(), nil)
	i, err := strconv.ParseUint(h.Get("X-Audit-Index"), 10, 64)
	if err != nil {
		s.t.Fatalf("X-Audit-Index %q", h.Get("X-Audit-Index"))
	}
	return i + 1
}

// entries returns the audit entries from index from on, as the security
// administrator reads them (each with its "index").
func (s *server) entries(from uint64) []map[string]any {
	s.t.Helper()
	var out []map[string]any
	for {
		st, _, body := s.do("GET", fmt.Sprintf("/api/v1/audit/entries?start=%d&end=%d", from, from+1000), s.security(), nil)
		if st != 200 {
			s.t.Fatalf("audit entries: %d %s", st, body)
		}
		n := 0
		for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var e struct {
				Index float64        `json:"index"`
				Entry map[string]any `json:"entry"`
			}
			if err := json.Unmarshal(line, &e); err != nil {
				s.t.Fatal(err)
			}
			e.Entry["index"] = e.Index
			out = append(out, e.Entry)
			n++
		}
		if n < 1000 {
			return out
		}
		from += 1000
	}
}

// rule asserts a problem names the policy rule that refused it.
func rule(t *testing.T, p map[string]any, want string) {
	t.Helper()
	if p["rule"] != want {
		t.Fatalf("refused by %v, want %s: %v", p["rule"], want, p)
	}
}

// 1 (a): an API key that reads patient data waits for a security
// officer; once approved it still never opens restricted records, and it
// stops working when the person who made it leaves.
func TestInsiderAPIKeys(t *testing.T) {
	h := newHospital(t)
	admin, security := h.admin(), h.security()
	ask := h.json(202, "POST", "/api/v1/api-keys", admin, map[string]any{"name": "psyc-his",
		"scopes": []string{"record.read", "patient.read"}, "department": "PSYC", "reason": "精神科信息系统对接"})
	key := ask["key"].(map[string]any)
	token := key["key"].(string)
	if key["status"] != "pending" || !strings.HasPrefix(token, "mgk_") {
		t.Fatalf("pending key %v", key)
	}
	// Pending: the key opens nothing, not even with the admin's own
	// approval.
	h.problem(401, "GET", "/api/v1/records/"+h.psychNote, token, nil)
	approval := ask["approval"].(map[string]any)["id"].(string)
	h.problem(403, "POST", "/api/v1/approvals/"+approval+"/approve", admin, map[string]string{"note": "自己批准"})
	if got := h.approve(security, approval); got["status"] != "approved" {
		t.Fatalf("approval %v", got)
	}
	// Approved, the key reads what its department may, but no restricted
	// record, not even its own department's: the Mental Health Law's
	// records open to people, not to integrations.
	for _, id := range []string{h.psychNote, h.psychAdmissionNote} {
		p := h.problem(403, "GET", "/api/v1/records/"+id, token, nil)
		if p["rule"] != "deny.restricted_record_type" && p["rule"] != "deny.no_relation" {
			t.Fatalf("restricted record through a key: %v", p)
		}
	}
	h.problem(403, "GET", "/api/v1/attachments/"+h.attachment, token, nil)

	// A second administrator makes a key for cardiology; it works until
	// they leave the hospital, and not a request after.
	h.ids["admin2"] = h.staff("admin2", "周敏", "", "admin", "Guanli#Erhao2026")
	admin2 := h.token("admin2", "Guanli#Erhao2026")
	ask = h.json(202, "POST", "/api/v1/api-keys", admin2, map[string]any{"name": "card-his",
		"scopes": []string{"record.read", "patient.read"}, "department": "CARD"})
	h.approve(security, ask["approval"].(map[string]any)["id"].(string))
	card := ask["key"].(map[string]any)["key"].(string)
	h.json(200, "GET", "/api/v1/records/"+h.cardNote, card, nil)
	h.json(200, "POST", "/api/v1/users/"+h.ids["admin2"]+"/deactivate", admin, nil)
	h.problem(401, "GET", "/api/v1/records/"+h.cardNote, card, nil)
	h.problem(401, "GET", "/api/v1/records/"+h.cardNote, admin2, nil)
}

// 1 (b), (c), and the administrator's own sign-in: no role for oneself,
// no credentials of another that one person alone knows, a second factor
// for the administrator too.
func TestInsiderAdministrator(t *testing.T) {
	h := newHospital(t, "--lockout-threshold", "20")
	admin, security := h.admin(), h.security()
	// The administrator's password alone opens nothing.
	p := h.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": adminPassword})
	if p["code"] != "totp_required" {
		t.Fatalf("admin without a code: %v", p)
	}
	// (b) No role for oneself, not even one that opens no privilege, and
	// no request for one.
	rule(t, h.problem(403, "POST", "/api/v1/users/"+h.ids["admin"]+"/roles", admin, map[string]string{"role": "records_clerk"}),
		"deny.own_account")
	rule(t, h.problem(403, "POST", "/api/v1/users/"+h.ids["admin"]+"/roles", admin, map[string]string{"role": "researcher"}),
		"deny.own_account")
	h.problem(403, "POST", "/api/v1/approvals", admin, map[string]any{"kind": "role.grant",
		"payload": map[string]string{"user_id": h.ids["admin"], "role": "records_clerk"}, "reason": "病案质控"})
	h.problem(403, "GET", "/api/v1/patients", admin, nil)
	h.problem(403, "GET", "/api/v1/patients/"+h.cardPatient, admin, nil)

	// (c) A doctor's password: the administrator may not choose it, and
	// the half they are given opens nothing without the approver's half.
	if p := h.problem(422, "POST", "/api/v1/users/"+h.ids["zhangwei"]+"/password", admin,
		map[string]string{"password": "Zhidao#Mima2026"}); p["field"] != "password" {
		t.Fatalf("chosen password: %v", p)
	}
	ask := h.json(202, "POST", "/api/v1/users/"+h.ids["zhangwei"]+"/password", admin, map[string]string{"reason": "医生忘记密码"})
	approval := ask["approval"].(map[string]any)
	adminHalf := approval["secret"].(string)
	if adminHalf == "" || approval["status"] != "pending" {
		t.Fatalf("reset request %v", approval)
	}
	// Until approved the old password works; the half alone never does.
	h.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "zhangwei", "password": adminHalf})
	h.problem(403, "POST", "/api/v1/approvals/"+approval["id"].(string)+"/approve", admin, map[string]string{"note": "自己批准"})
	done := h.approve(security, approval["id"].(string))
	securityHalf, _ := done["secret"].(string)
	if securityHalf == "" || securityHalf == adminHalf {
		t.Fatalf("approved reset %v", done)
	}
	// The secret is shown once: reading the request again does not show it.
	if again := h.json(200, "GET", "/api/v1/approvals/"+approval["id"].(string), security, nil); again["secret"] != nil {
		t.Fatalf("the approver's half shown twice: %v", again)
	}
	for _, pw := range []string{adminHalf, securityHalf, adminHalf + securityHalf, securityHalf + "-" + adminHalf, staffPassword} {
		h.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "zhangwei", "password": pw})
	}
	// Together (the doctor, given both halves) they sign in to a session
	// that can only choose a new password and enrol a new second factor.
	in := h.login("zhangwei", adminHalf+"-"+securityHalf, "")
	if in["password_change_required"] != true {
		t.Fatalf("sign-in after reset %v", in)
	}
	h.problem(401, "GET", "/api/v1/patients/"+h.cardPatient, in["token"].(string), nil)
	h.problem(409, "POST", "/api/v1/auth/totp", in["token"].(string), nil)

	// A second factor's reset for an account whose password the
	// administrator set (and therefore knows) is refused outright: the
	// two together would be the account.
	h.ids["xiaoli"] = h.staff("xiaoli", "肖丽", "CARD", "nurse", staffPassword)
	h.token("xiaoli", staffPassword)
	p = h.problem(409, "POST", "/api/v1/users/"+h.ids["xiaoli"]+"/totp/reset", admin, nil)
	if !strings.Contains(p["detail"].(string), "password") {
		t.Fatalf("TOTP reset: %v", p)
	}
}

// 2: a puppet — an account the administrator made — never approves what
// the administrator asks, and nobody approves their own elevation.
func TestInsiderPuppet(t *testing.T) {
	h := newHospital(t)
	admin, security := h.admin(), h.security()
	// The administrator makes a department head (the security
	// administrator, seeing a head for cardiology, approves).
	h.ids["puppet"] = h.staff("puppet", "傀儡", "CARD", "dept_head", staffPassword)
	puppet := h.token("puppet", staffPassword)

	// The puppet asks for privilege for itself: refused outright (a head
	// manages no accounts, and nobody their own).
	for _, role := range []string{"security_officer", "admin"} {
		h.problem(403, "POST", "/api/v1/approvals", puppet, map[string]any{"kind": "role.grant",
			"payload": map[string]string{"user_id": h.ids["puppet"], "role": role}, "reason": "工作需要"})
	}
	// The administrator asks for it; the puppet may not decide.
	for _, role := range []string{"security_officer", "admin"} {
		ask := h.json(202, "POST", "/api/v1/users/"+h.ids["puppet"]+"/roles", admin, map[string]string{"role": role, "reason": "工作需要"})
		id := ask["approval"].(map[string]any)["id"].(string)
		h.problem(403, "POST", "/api/v1/approvals/"+id+"/approve", puppet, map[string]string{"note": "同意"})
		h.json(200, "POST", "/api/v1/approvals/"+id+"/refuse", security, map[string]string{"note": "不符合三权分立"})
	}
	// A second administrator asked for by the first: the puppet may not
	// approve it either, even as a department head.
	so := h.json(201, "POST", "/api/v1/users", admin, map[string]any{"username": "admin3", "display_name": "第三管理员",
		"roles": []string{"admin"}, "password": "Guanli#Sanhao2026"})
	h.problem(403, "POST", "/api/v1/approvals/"+so["pending_approvals"].([]any)[0].(map[string]any)["id"].(string)+"/approve",
		puppet, map[string]string{"note": "同意"})
	// A doctor for the puppet's own department, asked for by the
	// administrator who made the puppet: the puppet is not a second person.
	doc := h.json(201, "POST", "/api/v1/users", admin, map[string]any{"username": "xiaozhang", "display_name": "小张",
		"department": "CARD", "roles": []string{"doctor"}, "password": staffPassword})
	id := doc["pending_approvals"].([]any)[0].(map[string]any)["id"].(string)
	rule(t, h.problem(403, "POST", "/api/v1/approvals/"+id+"/approve", puppet, map[string]string{"note": "同意"}),
		"deny.approver_changed_by_requester")
	if me := h.json(200, "GET", "/api/v1/auth/me", puppet, nil); len(me["roles"].([]any)) != 1 {
		t.Fatalf("the puppet's roles changed: %v", me)
	}
	// The real approver can.
	h.approve(security, id)
}

// waitAlert waits for detection to raise an alert of rule naming user.
func (s *server) waitAlert(ruleName, username string) map[string]any {
	s.t.Helper()
	for i := 0; i < 200; i++ {
		for _, a := range s.json(200, "GET", "/api/v1/alerts", s.security(), nil)["items"].([]any) {
			if a := a.(map[string]any); a["rule"] == ruleName && a["username"] == username {
				return a
			}
		}
		time.Sleep(50 * time.Millisecond) // polling the asynchronous detector, not timing anything
	}
	s.t.Fatalf("no %s alert for %s", ruleName, username)
	return nil
}

// 3: a clinician who writes for a patient of another department gains a
// relation that is logged and alerted, never their own care-team
// membership, and never the restricted records.
func TestInsiderNewRelation(t *testing.T) {
	h := newHospital(t)
	head := h.token("liuyang", staffPassword)
	from := h.size()
	// Refused the psychiatric note, with and without breaking the glass.
	h.problem(403, "GET", "/api/v1/records/"+h.psychNote, head, nil)
	rule(t, h.problem(403, "GET", "/api/v1/records/"+h.psychNote, head, nil, "X-Break-Glass-Reason", url.PathEscape("急诊会诊")),
		"deny.restricted_record_type")
	// The psychiatric admission note is restricted by its department.
	rule(t, h.problem(403, "GET", "/api/v1/records/"+h.psychAdmissionNote, head, nil, "X-Break-Glass-Reason",
		url.PathEscape("急诊会诊"), "X-Purpose-Of-Use", "emergency"), "deny.restricted_record_type")
	// Writing a record for her, naming cardiology, is allowed — as a new
	// relation, in the log under its own rule.
	rec := h.json(201, "POST", "/api/v1/patients/"+h.patient+"/records", head, map[string]any{"type": "consultation_note",
		"department": "CARD", "title": "会诊记录", "text": "心电图未见明显异常。"})
	// Nobody adds themselves to a care team.
	rule(t, h.problem(403, "POST", "/api/v1/patients/"+h.patient+"/care-team", head, map[string]string{"user_id": h.ids["liuyang"]}),
		"deny.own_relation")
	// And the relation opens her cardiology record, never psychiatry's.
	h.json(200, "GET", "/api/v1/records/"+rec["id"].(string), head, nil)
	for _, id := range []string{h.psychNote, h.psychAdmissionNote} {
		h.problem(403, "GET", "/api/v1/records/"+id, head, nil)
	}
	h.problem(403, "GET", "/api/v1/attachments/"+h.attachment, head, nil)
	// Her record list shows cardiology's record only.
	list := h.json(200, "GET", "/api/v1/patients/"+h.patient+"/records", head, nil)["items"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != rec["id"] {
		t.Fatalf("records listed to cardiology: %v", list)
	}
	// A member of another department joins a care team only through a
	// security officer.
	ask := h.json(202, "POST", "/api/v1/patients/"+h.cardPatient+"/care-team", head, map[string]string{"user_id": h.ids["lina"],
		"reason": "神经内科会诊"})
	if ask["approval"].(map[string]any)["kind"] != "careteam.add" {
		t.Fatalf("care team request %v", ask)
	}
	newRelation := 0
	for _, e := range h.entries(from) {
		if e["rule"] == "allow.new_relation" && e["actor"] == "liuyang" && e["patient_id"] == h.patient {
			newRelation++
		}
	}
	if newRelation != 1 {
		t.Fatalf("%d new-relation entries for the head's record", newRelation)
	}

	// A neurology doctor admits cardiology's patients into neurology and
	// edits their phones: each a new relation; the third raises an alert.
	lina := h.token("lina", staffPassword)
	zhang := h.token("zhangwei", staffPassword)
	patients := []string{h.cardPatient}
	for _, name := range []string{"周杰", "吴娟"} {
		patients = append(patients, h.json(201, "POST", "/api/v1/patients", zhang, map[string]any{"name": name, "gender": "female",
			"phone": "13700001111"})["id"].(string))
	}
	for i, id := range patients {
		h.problem(403, "PATCH", "/api/v1/patients/"+id, lina, map[string]string{"phone": "13600000000"})
		h.json(201, "POST", "/api/v1/patients/"+id+"/admissions", lina, map[string]any{"department": "NEUR",
			"admitted_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
		h.json(200, "PATCH", "/api/v1/patients/"+id, lina, map[string]string{"phone": "1360000000" + strconv.Itoa(i)})
	}
	if a := h.waitAlert("new_relation", "lina"); a["count"].(float64) != 3 {
		t.Fatalf("alert %v", a)
	}
	// An admission in neurology does not open psychiatry either.
	h.json(201, "POST", "/api/v1/patients/"+h.patient+"/admissions", lina, map[string]any{"department": "NEUR",
		"admitted_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	for _, id := range []string{h.psychNote, h.psychAdmissionNote} {
		h.problem(403, "GET", "/api/v1/records/"+id, lina, nil)
	}
}

// 4: every disclosure counts: a clerk listing a department's patients and
// a doctor reading demographics, attachments and record lists are frozen
// past the threshold like a reader of records.
func TestInsiderBulkDisclosure(t *testing.T) {
	h := newHospital(t)
	zhang := h.token("zhangwei", staffPassword)
	var patients, attachments []string
	for i := 0; i < 60; i++ {
		id := h.json(201, "POST", "/api/v1/patients", zhang, map[string]any{"name": fmt.Sprintf("测试%02d号", i), "gender": "male",
			"address": fmt.Sprintf("北京市西城区西直门南大街%d号", i+1)})["id"].(string)
		rid := h.json(201, "POST", "/api/v1/patients/"+id+"/records", zhang, map[string]any{"type": "lab_report",
			"department": "CARD", "title": "血常规", "text": "白细胞计数正常。"})["id"].(string)
		st, out := h.upload(zhang, rid, "血常规.png", append([]byte("\x89PNG\r\n\x1a\n"), byte(i)))
		if st != 201 {
			t.Fatalf("upload: %d %s", st, out)
		}
		var a map[string]any
		json.Unmarshal(out, &a)
		patients, attachments = append(patients, id), append(attachments, a["id"].(string))
	}
	// The clerk's one page of 200 names 61 patients of cardiology (陈明
	// and these sixty): refused with the freeze, nothing listed.
	clerk := h.token("chenjing", staffPassword)
	p := h.problem(423, "GET", "/api/v1/patients?department=CARD&limit=200", clerk, nil)
	if !strings.Contains(p["type"].(string), "frozen") {
		t.Fatalf("clerk: %v", p)
	}
	if a := h.waitAlert("bulk_read_user", "chenjing"); a["frozen"] != true {
		t.Fatalf("alert %v", a)
	}
	// Pages of 25 are no way round: the third page is refused.
	h.json(200, "POST", "/api/v1/users/"+h.ids["chenjing"]+"/release", h.security(), map[string]string{"reason": "病案质控抽查，已核实"})
	clerk = h.relogin("chenjing", staffPassword)
	cursor := ""
	for page := 1; ; page++ {
		st, _, body := h.do("GET", "/api/v1/patients?department=CARD&limit=25&cursor="+cursor, clerk, nil)
		if page == 3 {
			if st != 423 {
				t.Fatalf("third page of 25: %d", st)
			}
			break
		}
		var pg map[string]any
		if st != 200 || json.Unmarshal(body, &pg) != nil || len(pg["items"].([]any)) != 25 {
			t.Fatalf("page %d: %d %s", page, st, body)
		}
		cursor = pg["next"].(string)
	}

	// A doctor of cardiology reading demographics, attachments and record
	// lists, one patient at a time, mixed: frozen at the 51st patient.
	for name, read := range map[string]func(i int) string{
		"demographics": func(i int) string { return "/api/v1/patients/" + patients[i] },
		"attachments":  func(i int) string { return "/api/v1/attachments/" + attachments[i] },
		"record lists": func(i int) string { return "/api/v1/patients/" + patients[i] + "/records" },
	} {
		t.Run(name, func(t *testing.T) {
			user := map[string]string{"demographics": "zhangwei", "attachments": "liuyang", "record lists": "doc3"}[name]
			if user == "doc3" {
				if _, ok := h.ids[user]; !ok {
					h.ids[user] = h.staff(user, "孙医生", "CARD", "doctor", staffPassword)
				}
			}
			tok := h.token(user, staffPassword)
			for i := range patients {
				st, _, body := h.do("GET", read(i), tok, nil)
				if st == 423 {
					if i != 50 {
						t.Fatalf("%s frozen at %d", name, i+1)
					}
					return
				}
				if st != 200 {
					t.Fatalf("%s %d: %d %s", name, i+1, st, body)
				}
			}
			t.Fatalf("%s: 60 patients read, never frozen", name)
		})
	}
}

// endless is a request body that never ends until closed.
type endless struct {
	once sync.Once
	done chan struct{}
}

func newEndless() *endless { return &endless{done: make(chan struct{})} }

func (e *endless) Read(p []byte) (int, error) {
	select {
	case <-e.done:
		return 0, io.EOF
	default:
	}
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func (e *endless) Close() error { e.once.Do(func() { close(e.done) }); return nil }

// 5: the rest of the attack, each as it was made.
func TestInsiderTheRest(t *testing.T) {
	h := newHospital(t, "--signin-rate", "600", "--signin-burst", "100")
	zhang := h.token("zhangwei", staffPassword)

	t.Run("lockout is checked before the password", func(t *testing.T) {
		// 24 wrong passwords at once: five are checked, the rest refused
		// as locked, and the right one after them is refused too.
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		for i := 0; i < 24; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _, _ := h.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "lina", "password": fmt.Sprintf("Cuowu#Mima%04d", i)})
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if statuses[401] != 5 || statuses[423] != 19 {
			t.Fatalf("24 parallel wrong passwords: %v", statuses)
		}
		h.problem(423, "POST", "/api/v1/auth/login", "", map[string]string{"username": "lina", "password": staffPassword, "totp": h.code("lina")})
	})

	t.Run("no body is read before the decision", func(t *testing.T) {
		// A researcher (no right to write) and a neurologist (not of the
		// record's department) send bodies that never end: both are
		// refused at once. Were the body read first, the request would
		// never be answered.
		h.token("zhaolei", staffPassword)
		for _, c := range []struct{ user, record string }{{"zhaolei", h.cardNote}, {"lina2", h.cardNote}} {
			if c.user == "lina2" {
				h.ids[c.user] = h.staff(c.user, "李娜二", "NEUR", "doctor", staffPassword)
			}
			body := newEndless()
			req, _ := http.NewRequest("POST", h.base+"/api/v1/records/"+c.record+"/attachments", body)
			req.Header.Set("Authorization", "Bearer "+h.token(c.user, staffPassword))
			req.Header.Set("Content-Type", "multipart/form-data; boundary=xxxx")
			resp, err := h.client.Do(req)
			body.Close()
			if err != nil {
				t.Fatalf("%s: %v", c.user, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Fatalf("%s: %d", c.user, resp.StatusCode)
			}
		}
	})

	t.Run("only well-formed ids are logged", func(t *testing.T) {
		from := h.size()
		long := strings.Repeat("张伟110105194912310021", 1500) // 54 KB in the request line
		// Longer than the server's 64 KB of head, net/http refuses it
		// before any handler: nothing is stored at all.
		if st, _, _ := h.do("GET", "/api/v1/patients/"+url.PathEscape(long+long), zhang, nil); st != 431 {
			t.Fatalf("a 108 KB id: %d", st)
		}
		for i, id := range []string{"张伟110105194912310021", long, "../../etc/passwd"} {
			st, _, _ := h.do("GET", "/api/v1/patients/"+url.PathEscape(id), zhang, nil, "X-Request-Id", fmt.Sprintf("bad-id-%d", i))
			if st < 400 || st >= 500 {
				t.Fatalf("%q: %d", id[:10], st)
			}
		}
		seen := 0
		for _, e := range h.entries(from) {
			raw, _ := json.Marshal(e)
			if bytes.Contains(raw, []byte("110105194912310021")) || bytes.Contains(raw, []byte("passwd")) {
				t.Fatalf("a path's id in the log: %.200s", raw)
			}
			if strings.HasPrefix(fmt.Sprint(e["request_id"]), "bad-id-") {
				seen++
				if e["target_id"] != "" || e["decision"] == "allow" && e["outcome"] == "success" {
					t.Fatalf("entry %v", e)
				}
			}
		}
		if seen != 3 {
			t.Fatalf("%d of 3 bad-id requests logged", seen)
		}
	})

	t.Run("search shows only departments one may see", func(t *testing.T) {
		for user, want := range map[string]string{"zhangwei": "", "wangfang": "PSYC"} {
			items := h.json(200, "POST", "/api/v1/patients/search", h.token(user, staffPassword),
				map[string]string{"id_number": "11010519491231002X"})["items"].([]any)
			if len(items) != 1 {
				t.Fatalf("%s: %v", user, items)
			}
			deps := fmt.Sprint(items[0].(map[string]any)["departments"])
			if strings.Contains(deps, "PSYC") != (want == "PSYC") {
				t.Fatalf("%s sees departments %s", user, deps)
			}
		}
	})

	t.Run("every refused request is in the log", func(t *testing.T) {
		from := h.size()
		cases := []struct {
			method, path, token string
			body                any
		}{
			{"GET", "/api/v1/departments", "", nil},
			{"GET", "/api/v1/departments", "mgs_forged-session-token", nil},
			{"GET", "/api/v1/departments", "mgk_06h4j9khpaef1743afn74xhkkm_forged", nil},
			{"POST", "/api/v1/auth/login", "", []byte(`{"username":`)},
			{"POST", "/api/v1/auth/login", "", []byte(`{"username":"lina","password":"x","role":"admin"}`)},
			{"POST", "/api/v1/auth/login", "", map[string]string{"username": strings.Repeat("王", 65), "password": "Cuowu#Mima2026"}},
			{"GET", "/api/v1/no-such-thing", zhang, nil},
			{"DELETE", "/api/v1/departments", zhang, nil},
			{"GET", "/api/v1/audit/entries", zhang, nil},
		}
		for i, c := range cases {
			st, _, _ := h.do(c.method, c.path, c.token, c.body, "X-Request-Id", fmt.Sprintf("refused-%d", i))
			if st < 400 {
				t.Fatalf("case %d: %d", i, st)
			}
		}
		logged := map[string]map[string]any{}
		for _, e := range h.entries(from) {
			if id := fmt.Sprint(e["request_id"]); strings.HasPrefix(id, "refused-") {
				logged[id] = e
			}
		}
		for i := range cases {
			e := logged[fmt.Sprintf("refused-%d", i)]
			if e == nil || e["outcome"] == "success" {
				t.Errorf("case %d (%s %s): entry %v", i, cases[i].method, cases[i].path, e)
			}
		}
		if e := logged["refused-6"]; e != nil && e["actor"] != "zhangwei" {
			t.Errorf("a signed-in 404 under %v", e["actor"])
		}
	})
}

// An unauthenticated flood cannot grow the log without bound: beyond a
// budget per address its refusals are answered 429 and summarised in
// entries that say how many, from where — and every one is accounted for.
func TestInsiderFloodIsSummarised(t *testing.T) {
	s := start(t, "--refusal-summary-every", "200ms")
	security := s.security()
	const flood = 300
	got := map[int]int{}
	for i := 0; i < flood; i++ {
		st, _, _ := s.do("GET", "/api/v1/departments", "mgs_forged", nil, "X-Request-Id", fmt.Sprintf("flood-%d", i))
		got[st]++
	}
	if got[401] == 0 || got[429] == 0 || got[401]+got[429] != flood {
		t.Fatalf("flood answered %v", got)
	}
	// Even a signed-in request from the flooding address waits.
	extra := 0
	for {
		st, _, _ := s.do("GET", "/api/v1/auth/me", security, nil)
		if st == 200 {
			break
		}
		if st != 429 {
			t.Fatalf("after the flood: %d", st)
		}
		extra++
		time.Sleep(100 * time.Millisecond) // waiting for the address's budget to refill, not timing anything
	}
	// Every refusal is accounted for: one by one within the budget, the
	// rest counted in summaries.
	for tries := 0; ; tries++ {
		one, summarised, summaries := 0, 0, 0
		for _, e := range s.entries(0) {
			if strings.HasPrefix(fmt.Sprint(e["request_id"]), "flood-") {
				one++
			}
			if e["action"] == "request.refused" {
				summaries++
				summarised += int(e["count"].(float64))
				if e["ip"] != "127.0.0.1" || e["outcome"] != "rate_limited" {
					t.Fatalf("summary %v", e)
				}
			}
		}
		if one+summarised == flood+extra {
			if one > 25 || summaries == 0 {
				t.Fatalf("%d refusals logged one by one, %d summaries", one, summaries)
			}
			break
		}
		if tries > 100 {
			t.Fatalf("%d logged + %d summarised, want %d", one, summarised, flood+extra)
		}
		time.Sleep(100 * time.Millisecond) // polling for the next summary, not timing anything
	}
	if !strings.Contains(s.logs.String(), "refused requests summarised") {
		t.Fatal("no summary in the server's log")
	}
}

// One insider alone: an administrator, a department head, a head the
// administrator made, and an API key two people approved for psychiatry
// each walk every route of the API (from its OpenAPI document, so that a
// new route is walked too) against the psychiatric patient — every id in
// the path hers, her records', her attachment's or the walker's own, the
// bodies an attacker would send — then approve whatever they are shown to
// decide, and use any key they were handed. Nothing they are answered may
// hold her restricted records; her demographics may reach a member of
// staff only after a logged new relation; and in the end her restricted
// records are still closed to each.
func TestOneInsiderAlone(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	for _, actor := range []string{"admin", "liuyang", "puppet", "psyc-his"} {
		t.Run(actor, func(t *testing.T) { walkAlone(t, newHospital(t), actor) })
	}
}

// walk is a tour of every route of the API, from its OpenAPI document,
// against the psychiatric patient: every id in a path hers, her records',
// her attachment's, her admission's or the walker's own (and, for
// accounts, the psychiatrist's), with the bodies an attacker would send.
type walk struct {
	h                 *hospital
	token, self, dept string
	routes            [][2]string // method, pattern: reads first
	bodies            map[string]any
	queries           map[string]string
}

func (h *hospital) walk(token, self, dept string) *walk {
	h.t.Helper()
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	_, _, raw := h.do("GET", "/api/v1/openapi.json", "", nil)
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Paths) < 50 {
		h.t.Fatalf("openapi: %v, %d paths", err, len(doc.Paths))
	}
	w := &walk{h: h, token: token, self: self, dept: dept}
	for pattern, ops := range doc.Paths {
		for m := range ops {
			m = strings.ToUpper(m)
			if slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, m) && !strings.HasPrefix(pattern, "/api/v1/auth/") {
				w.routes = append(w.routes, [2]string{m, pattern})
			}
		}
	}
	// Reads first, then writes: what a write opened shows in the reads of
	// a second round.
	sort.Slice(w.routes, func(i, j int) bool {
		a, b := w.routes[i], w.routes[j]
		if (a[0] == "GET") != (b[0] == "GET") {
			return a[0] == "GET"
		}
		return a[1]+a[0] < b[1]+b[0]
	})
	w.routes = append(w.routes, [2]string{"GET", "/api/v1/auth/me"})
	w.bodies = map[string]any{
		"POST /api/v1/users": map[string]any{"username": "walk-" + self[len(self)-6:], "display_name": "走查",
			"department": "PSYC", "roles": []string{"doctor"}, "password": staffPassword},
		"POST /api/v1/users/{id}/roles":      map[string]string{"role": "doctor", "reason": "走查"},
		"POST /api/v1/users/{id}/password":   map[string]string{"reason": "走查"},
		"POST /api/v1/users/{id}/release":    map[string]string{"reason": "走查"},
		"PUT /api/v1/users/{id}/certificate": map[string]string{"certificate": "", "reason": "走查"},
		"POST /api/v1/api-keys": map[string]any{"name": "walk-" + self[len(self)-6:], "department": "PSYC",
			"scopes": []string{"record.read", "patient.read"}},
		"POST /api/v1/approvals": map[string]any{"kind": "access.grant", "reason": "会诊",
			"payload": map[string]string{"patient_id": h.patient, "grantee_id": self, "department": "PSYC"}},
		"POST /api/v1/patients/{id}/care-team": map[string]string{"user_id": self, "reason": "走查"},
		"POST /api/v1/grants":                  map[string]string{"patient_id": h.patient, "grantee_id": self, "department": "PSYC", "reason": "会诊"},
		"POST /api/v1/patients/{id}/records": map[string]any{"type": "progress_note", "department": dept,
			"title": "病程记录", "text": "走查记录。"},
		"POST /api/v1/patients/{id}/admissions": map[string]string{"department": dept,
			"admitted_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)},
		"PATCH /api/v1/patients/{id}":               map[string]string{"phone": "13500000000"},
		"PATCH /api/v1/records/{id}":                map[string]string{"title": "改写"},
		"PUT /api/v1/departments/{code}/restricted": map[string]any{"restricted": false, "reason": "走查"},
		"PUT /api/v1/detection/rules/{name}":        map[string]any{"name": "bulk_read_user", "enabled": false},
		"POST /api/v1/patients/search":              map[string]string{"id_number": "11010519491231002X"},
		"POST /api/v1/approvals/{id}/approve":       map[string]string{"note": "同意"},
		"POST /api/v1/use-requests": map[string]any{"patient_id": h.patient, "record_ids": []string{h.psychNote},
			"purpose": "care_coordination", "reason": "走查", "until": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)},
		"POST /api/v1/use-requests/{id}/approve": map[string]string{"note": "同意"},
		"POST /api/v1/folders":                   map[string]string{"barcode": "WALK-" + self[len(self)-6:], "patient_id": h.patient, "location": "走查架"},
		"POST /api/v1/partners":                  map[string]string{"name": "走查合作单位", "org_code": "WALK-" + self[len(self)-6:], "contact_name": "走查"},
		"POST /api/v1/partners/{id}/accounts":    map[string]string{"user_id": self},
		"POST /api/v1/partners/{id}/agreements": map[string]any{"title": "走查课题", "purposes": []string{"research"},
			"dataset_kinds": []string{"deid_output"}, "expires_at": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
			"confidentiality": "走查", "reason": "走查"},
		"POST /api/v1/agreements/{id}/extend": map[string]string{"expires_at": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
			"reason": "走查"},
		"POST /api/v1/agreements/{id}/deletion-confirmation": map[string]string{"representative": "走查", "statement": "走查"},
		"POST /api/v1/deid/jobs": map[string]any{"purpose": "research", "patient_ids": []string{h.patient},
			"fields": map[string]string{"gender": "keep", "name": "mask", "text": "scrub"}, "recipient": self},
		"POST /api/v1/exports": map[string]any{"patient_ids": []string{h.patient}, "format": "jsonl", "purpose": "treatment",
			"reason": "走查"},
		"POST /api/v1/reports": map[string]string{"kind": "monthly"},
	}
	w.queries = map[string]string{"GET /api/v1/patients": "?department=PSYC&limit=200",
		"GET /api/v1/audit/search": "?patient=" + h.patient, "GET /api/v1/audit/entries": "?start=0&end=1000"}
	return w
}

var pathParam = regexp.MustCompile(`\{[a-z_]+\}`)

// each calls fn with every route's request, twice over, then with the
// approval of every request the walker is shown to decide.
func (w *walk) each(fn func(method, pattern, path string, body any)) {
	h := w.h
	for round := 0; round < 2; round++ {
		for _, rt := range w.routes {
			method, pattern := rt[0], rt[1]
			if pattern == "/api/v1/approvals/{id}/approve" {
				continue // below, with the requests the walker is shown
			}
			users := []string{w.self, h.ids["wangfang"]}
			if !strings.Contains(pattern, "/users/{id}") || method == "DELETE" || strings.HasSuffix(pattern, "/deactivate") {
				users = users[:1] // never another's account removed: the walk would end the hospital
			}
			for _, user := range users {
				path := strings.NewReplacer("/patients/{id}", "/patients/"+h.patient, "/records/{id}", "/records/"+h.psychNote,
					"/attachments/{id}", "/attachments/"+h.attachment, "/admissions/{id}", "/admissions/"+h.admission,
					"/users/{id}", "/users/"+user, "{user_id}", w.self, "{code}", "PSYC", "{name}", "bulk_read_user",
					"{role}", "doctor", "{version}", "1").Replace(pattern)
				path = pathParam.ReplaceAllString(path, "06h4j9khpaef1743afn74xhkkm")
				var body any
				if method != "GET" && method != "DELETE" {
					if body = w.bodies[method+" "+pattern]; body == nil {
						body = map[string]any{}
					}
				}
				fn(method, pattern, path+w.queries[method+" "+pattern], body)
			}
		}
	}
	st, _, out := h.do("GET", "/api/v1/approvals?status=pending", w.token, nil)
	if st == 200 {
		var list struct{ Items []map[string]any }
		json.Unmarshal(out, &list)
		for _, a := range list.Items {
			fn("POST", "/api/v1/approvals/{id}/approve", "/api/v1/approvals/"+a["id"].(string)+"/approve",
				w.bodies["POST /api/v1/approvals/{id}/approve"])
		}
	}
}

// walkAlone walks every route as actor, alone, in a hospital of its own.
func walkAlone(t *testing.T, h *hospital, actor string) {
	admin, security := h.admin(), h.security()
	var token, dept string
	switch actor {
	case "admin":
		token = admin
	case "liuyang":
		dept = "CARD"
	case "puppet":
		h.ids["puppet"] = h.staff("puppet", "傀儡", "CARD", "dept_head", staffPassword)
		dept = "CARD"
	case "psyc-his":
		ask := h.json(202, "POST", "/api/v1/api-keys", admin, map[string]any{"name": "psyc-his", "department": "PSYC",
			"scopes": []string{"patient.read", "patient.search", "patient.create", "patient.update", "record.read", "record.list",
				"record.write", "admission.manage", "directory.read", "scope.all_departments"}})
		a := ask["approval"].(map[string]any)
		h.approve(security, a["id"].(string))
		token, dept = ask["key"].(map[string]any)["key"].(string), "PSYC"
		h.ids[actor] = ask["key"].(map[string]any)["id"].(string)
	}
	if token == "" {
		token = h.token(actor, staffPassword)
	}
	if dept == "" {
		dept = "PSYC"
	}
	var firstDisclosure float64 = -1
	var keys []string
	statuses := map[int]int{}
	h.walk(token, h.ids[actor], dept).each(func(method, _, path string, body any) {
		st, hdr, out := h.do(method, path, token, body)
		statuses[st]++
		if st >= 500 {
			t.Fatalf("%s %s: %d", method, path, st)
		}
		answer := string(out) + fmt.Sprint(hdr)
		for _, secret := range h.restricted {
			if strings.Contains(answer, secret) {
				t.Fatalf("%s %s answered %d with %q: %.300s", method, path, st, secret, out)
			}
		}
		for _, secret := range h.demographics {
			if strings.Contains(answer, secret) && firstDisclosure < 0 {
				firstDisclosure, _ = strconv.ParseFloat(hdr.Get("X-Audit-Index"), 64)
			}
		}
		keys = append(keys, regexp.MustCompile(`mgk_[A-Za-z0-9_-]+`).FindAllString(string(out), -1)...)
	})
	// Use every key one was handed.
	for _, k := range append(keys, token) {
		for _, path := range []string{"/api/v1/records/" + h.psychNote, "/api/v1/records/" + h.psychAdmissionNote,
			"/api/v1/attachments/" + h.attachment} {
			if st, _, _ := h.do("GET", path, k, nil); st == 200 {
				t.Fatalf("%s opened %s with %.12s…", actor, path, k)
			}
		}
	}
	t.Logf("%s: answers %v", actor, statuses)
	if n := statuses[200] + statuses[201] + statuses[202]; n < 10 || statuses[403]+statuses[401] < 30 {
		t.Fatalf("the walk went nowhere: %v", statuses)
	}
	if actor == "liuyang" && firstDisclosure < 0 {
		// The head writes for her (a new relation) and then reads her.
		t.Fatal("the walk never took the new-relation path")
	}
	if strings.HasPrefix(token, "mgk_") || firstDisclosure < 0 {
		return
	}
	// Her demographics reached a member of staff: only after a new
	// relation, in the log before the answer.
	for _, e := range h.entries(0) {
		if e["actor"] == actor && e["rule"] == "allow.new_relation" && e["patient_id"] == h.patient &&
			e["index"].(float64) < firstDisclosure {
			return
		}
	}
	t.Fatalf("%s saw her demographics (entry %v) with no new relation logged before", actor, firstDisclosure)
}

// Every disclosure counts: each route, walked by those who may see her —
// her psychiatrist, the records office, the security administrator, an
// approved key — whose answer shows any of her data must have logged an
// entry, naming her, of an action the distinct-patient rule counts. A new
// route that shows patient data and is counted by no rule fails here.
func TestEveryDisclosureCounts(t *testing.T) {
	h := newHospital(t)
	var counted []string
	for _, r := range h.json(200, "GET", "/api/v1/detection/rules", h.security(), nil)["items"].([]any) {
		if r := r.(map[string]any); r["name"] == "bulk_read_user" {
			for _, a := range r["actions"].([]any) {
				counted = append(counted, a.(string))
			}
		}
	}
	if len(counted) < 5 {
		t.Fatalf("bulk_read_user counts %v", counted)
	}
	ask := h.json(202, "POST", "/api/v1/api-keys", h.admin(), map[string]any{"name": "his", "department": "PSYC",
		"scopes": []string{"patient.read", "patient.search", "record.read", "record.list", "scope.all_departments"}})
	h.approve(h.security(), ask["approval"].(map[string]any)["id"].(string))
	key := ask["key"].(map[string]any)
	shown := map[string]bool{}
	n := 0
	secrets := append(append([]string{"孙*"}, h.restricted...), h.demographics...) // a search shows her name masked
	for _, who := range []struct{ name, token, dept string }{
		{"wangfang", h.token("wangfang", staffPassword), "PSYC"}, {"chenjing", h.token("chenjing", staffPassword), "MRD"},
		{"security", h.security(), ""}, {"his", key["key"].(string), "PSYC"},
	} {
		self := h.ids[who.name]
		if self == "" {
			self = key["id"].(string)
		}
		h.walk(who.token, self, who.dept).each(func(method, pattern, path string, body any) {
			n++
			id := fmt.Sprintf("disclose-%d", n)
			st, hdr, out := h.do(method, path, who.token, body, "X-Request-Id", id)
			answer := string(out) + fmt.Sprint(hdr)
			if !slices.ContainsFunc(secrets, func(s string) bool { return strings.Contains(answer, s) }) {
				return
			}
			shown[method+" "+pattern] = true
			last, _ := strconv.ParseUint(hdr.Get("X-Audit-Index"), 10, 64)
			for _, e := range h.entries(last - min(last, 20)) {
				if e["request_id"] == id && e["patient_id"] == h.patient && slices.Contains(counted, e["action"].(string)) {
					return
				}
			}
			t.Errorf("%s: %s %s (%d) shows her data, and no entry of it is counted", who.name, method, pattern, st)
		})
	}
	// The walk saw the disclosures there are, so that it cannot pass by
	// seeing none.
	for _, r := range []string{"GET /api/v1/patients/{id}", "GET /api/v1/records/{id}", "GET /api/v1/attachments/{id}",
		"GET /api/v1/patients", "POST /api/v1/patients/search", "GET /api/v1/patients/{id}/records"} {
		if !shown[r] {
			t.Errorf("%s never showed her data", r)
		}
	}
	t.Logf("routes that showed her data: %v", slices.Sorted(maps.Keys(shown)))
}
