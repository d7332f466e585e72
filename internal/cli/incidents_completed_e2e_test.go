package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// alertsOf lists the alerts of a rule about a key.
func (s *server) alertsOf(token, rule, key string) []map[string]any {
	s.t.Helper()
	var out []map[string]any
	for _, it := range s.json(200, "GET", "/api/v1/alerts?limit=200&rule="+rule, token, nil)["items"].([]any) {
		if a := it.(map[string]any); a["key"] == key {
			out = append(out, a)
		}
	}
	return out
}

// uploadFile posts one file as multipart/form-data.
func (s *server) uploadFile(path, token, name, contentType string, content []byte) (int, []byte) {
	s.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	hdr.Set("Content-Type", contentType)
	part, _ := w.CreatePart(hdr)
	part.Write(content)
	w.Close()
	req, _ := http.NewRequest("POST", s.base+path, &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// Incidents and accountability, completed (issue 13), over HTTPS: a data
// leak is reported (the security office is notified), its grade confirmed
// with the leadership's commander (notified); the officer's step waits for
// a second officer's confirmation; a vendor's report is attached, sealed
// and hashed, and read back by the leadership; the incident closes. A
// violation is upheld and given its sanction within 5 working days; a
// second one of the same person is proposed the next grade and sanction.
func TestIncidentsCompletedOverHTTPS(t *testing.T) {
	t.Parallel()
	s := start(t)
	admin, security := s.admin(), s.security()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	ids := map[string]string{}
	for _, u := range [][4]string{{"zhouqiang", "周强", "", "security_officer"}, {"sunli", "孙丽", "", "security_officer"},
		{"liuhua", "刘华", "", "leadership"}, {"wuyan", "吴燕", "", "auditor"}, {"zhangwei", "张伟", "CARD", "doctor"}} {
		ids[u[0]] = s.staff(u[0], u[1], u[2], u[3], staffPassword)
	}
	so, sunli, leader, auditor := s.token("zhouqiang", staffPassword), s.token("sunli", staffPassword),
		s.token("liuhua", staffPassword), s.token("wuyan", staffPassword)

	in := s.json(201, "POST", "/api/v1/incidents", so, map[string]any{"type": "data_leak", "title": "出院患者名单外泄",
		"description": "外包运维人员导出出院患者名单并发送至外部邮箱。", "grade": 1, "criterion": "core_data_leak"})
	id := in["id"].(string)
	if in["type"] != "data_leak" || in["unconfirmed_steps"] != float64(0) {
		t.Fatalf("%v", in)
	}
	// Notified when reported: an alert for the security office.
	reported := s.alertsOf(security, "incident_reported", id)
	if len(reported) != 1 || reported[0]["status"] != "new" || strings.Contains(reported[0]["explanation"].(string), "外泄") {
		t.Fatalf("reported: %v", reported)
	}
	base := "/api/v1/incidents/" + id
	if e := s.problem(422, "POST", base+"/grade", so, map[string]any{"grade": 1, "criterion": "core_data_leak"}); e["field"] != "commander" {
		t.Fatalf("grade 1 without the leadership: %v", e)
	}
	in = s.json(200, "POST", base+"/grade", so, map[string]any{"grade": 1, "criterion": "core_data_leak", "commander": "liuhua"})
	if in["commander"] != "liuhua" {
		t.Fatalf("%v", in)
	}
	if c := s.alertsOf(security, "incident_commander", id); len(c) != 1 || !strings.HasSuffix(c[0]["explanation"].(string), "commander liuhua") {
		t.Fatalf("commander: %v", c)
	}
	if r := s.alertsOf(security, "incident_reported", id); r[0]["status"] != "acknowledged" {
		t.Errorf("the report's alert stays new once the grade is confirmed: %v", r)
	}

	// The officer's step; a second officer confirms it.
	in = s.json(201, "POST", base+"/updates", so, map[string]string{"kind": "authority_report", "text": "已书面上报市卫健委"})
	var step float64
	for _, u := range in["timeline"].([]any) {
		if m := u.(map[string]any); m["step"] == true {
			step = m["audit_index"].(float64)
		}
	}
	confirm := fmt.Sprintf("%s/steps/%d/confirm", base, int(step))
	rule(t, s.problem(403, "POST", confirm, so, nil), "deny.own_step")
	rule(t, s.problem(403, "POST", confirm, auditor, nil), "deny.no_permission")
	in = s.json(200, "POST", confirm, sunli, nil)
	if in["unconfirmed_steps"] != float64(0) {
		t.Fatalf("%v", in)
	}

	// A vendor's report, sealed and hashed into the evidence.
	report := []byte("%PDF-1.4\n% 厂商取证分析报告：导出行为发生于 11 月 20 日 02:14。\n%%EOF\n")
	st, out := s.uploadFile(base+"/files?kind=vendor_report", so, "厂商取证报告.pdf", "application/pdf", report)
	var f map[string]any
	json.Unmarshal(out, &f)
	sum := sha256.Sum256(report)
	if st != 201 || f["sha256"] != hex.EncodeToString(sum[:]) || f["content_type"] != "application/pdf" {
		t.Fatalf("upload %d %s", st, out)
	}
	if st, _ := s.uploadFile(base+"/files", leader, "x.pdf", "application/pdf", report); st != 403 {
		t.Errorf("the leadership uploads: %d", st)
	}
	st, hdr, got := s.do("GET", base+"/files/"+f["id"].(string), leader, nil)
	if st != 200 || !bytes.Equal(got, report) || hdr.Get("X-Content-SHA256") != f["sha256"] {
		t.Fatalf("download %d", st)
	}
	s.json(200, "POST", base+"/analysis", so, map[string]string{"what": "名单外泄", "when": "11 月 20 日", "where": "运维终端",
		"who": "外包运维人员", "why": "权限过大", "how": "导出后邮件发送"})
	in = s.json(200, "POST", base+"/close", so, map[string]string{"summary": "已收回权限并报案"})
	if in["status"] != "closed" || len(in["files"].([]any)) != 1 {
		t.Fatalf("%v", in)
	}
	if c := s.alertsOf(security, "incident_commander", id); c[0]["status"] != "acknowledged" {
		t.Errorf("the commander's alert stays new once closed")
	}

	// Accountability: the sanction and a repeat offence.
	c := s.json(201, "POST", "/api/v1/accountability", auditor, map[string]any{"subject_user_id": ids["zhangwei"],
		"criterion": "procedure_not_followed", "summary": "未按流程借阅纸质病历"})
	cid := c["id"].(string)
	if c["opinion_due_at"] == nil || c["proposal"].(map[string]any)["sanction"] != "warning_retraining" {
		t.Fatalf("%v", c)
	}
	s.json(200, "POST", "/api/v1/accountability/"+cid+"/decision", auditor, map[string]string{"outcome": "upheld", "text": "属实"})
	c = s.json(200, "POST", "/api/v1/accountability/"+cid+"/opinion", auditor, map[string]string{"sanction": "warning_retraining",
		"text": "警告，重新参加培训"})
	if c["sanction"] != "warning_retraining" || c["appeal_due_at"] == nil {
		t.Fatalf("%v", c)
	}
	c2 := s.json(201, "POST", "/api/v1/accountability", auditor, map[string]any{"subject_user_id": ids["zhangwei"],
		"criterion": "late_archiving", "summary": "出院病历归档延迟"})
	if p := c2["proposal"].(map[string]any); p["repeat"] != true || p["grade"] != float64(2) || p["sanction"] != "pay_1_month" {
		t.Fatalf("repeat proposal %v", p)
	}
}

// TestAnonymousReportLeavesNoTrace attacks the anonymous channel: a
// signed-in doctor reports through a reverse proxy from an address used
// for nothing else, sending their token, a request id and a user agent of
// their own, follows the report up and adds to it. Afterwards no file of
// the data directory (the database, its WAL and shared memory, keys,
// certificates), and no line of the server's log, holds that address,
// request id or user agent, the receipt code or the report's words; no row
// the report wrote or changed — in any table, the sessions' included —
// names the doctor (username, id, token); and the audit log's new entries
// name nobody.
func TestAnonymousReportLeavesNoTrace(t *testing.T) {
	t.Parallel()
	args := []string{"--trusted-proxies", "127.0.0.1/32"}
	dsn := ""
	if pg := os.Getenv(storagetest.PostgresEnv); pg != "" {
		dsn = storagetest.FreshSchema(t, pg)
		args = append(args, "--db", dsn)
	}
	s := start(t, args...)
	admin, security := s.admin(), s.security()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	uid := s.staff("zhaoxiaoyu", "赵晓雨", "CARD", "doctor", staffPassword)
	const (
		signedFrom = "10.20.30.40"
		reportFrom = "10.99.88.77"
		requestID  = "zhaoxiaoyu-request-1"
		agent      = "ZhaoxiaoyuBrowser/7.1"
		words      = "心内科某医生多次在凌晨查阅与诊疗无关的名人病历。"
		more       = "补充：时间集中在每周二夜班。"
	)
	// The doctor signs in from the ward (their sign-in is recorded, as
	// every sign-in is).
	st, _, out := s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "zhaoxiaoyu", "password": staffPassword},
		"X-Forwarded-For", signedFrom)
	var signIn map[string]any
	json.Unmarshal(out, &signIn)
	if st != 200 {
		t.Fatalf("sign-in %d %s", st, out)
	}
	token := signIn["token"].(string)

	db, err := storage.Open(context.Background(), dsn, s.dir)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			db.Close()
		}
	})
	before := dumpRows(t, db)
	var size int64
	if err := db.QueryRowContext(context.Background(), `SELECT size FROM audit_head WHERE id = 1`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	logLen := len(s.logs.String())

	// The report, its follow-up and an addition, and a refused request.
	hdrs := []string{"X-Forwarded-For", reportFrom, "X-Request-Id", requestID, "User-Agent", agent}
	st, _, out = s.do("POST", "/api/v1/anonymous/reports", token, map[string]string{"category": "unauthorized_access", "text": words}, hdrs...)
	var rc map[string]any
	json.Unmarshal(out, &rc)
	if st != 201 {
		t.Fatalf("report %d %s", st, out)
	}
	receipt := rc["receipt"].(string)
	for _, body := range []map[string]string{{"receipt": receipt}, {"receipt": receipt, "text": more}} {
		path := "/api/v1/anonymous/reports/status"
		if body["text"] != "" {
			path = "/api/v1/anonymous/reports/messages"
		}
		if st, _, out := s.do("POST", path, token, body, hdrs...); st/100 != 2 {
			t.Fatalf("%s %d %s", path, st, out)
		}
	}
	if st, _, _ := s.do("POST", "/api/v1/anonymous/reports", token, []byte("{"), hdrs...); st != 400 {
		t.Fatalf("a malformed report: %d", st)
	}
	after := dumpRows(t, db)
	newLog := s.logs.String()[logLen:]

	// Rows written or changed: none names the doctor.
	for row := range after {
		if before[row] {
			continue
		}
		for _, who := range []string{"zhaoxiaoyu", uid, token, reportFrom, requestID, agent} {
			if strings.Contains(row, who) {
				t.Errorf("a row written by the report holds %q: %.300s", who, row)
			}
		}
	}
	// The new audit entries name nobody, and one report is among them.
	resp := s.raw("GET", fmt.Sprintf("/api/v1/audit/entries?start=%d", size), security)
	filed := 0
	sc := bufio.NewScanner(bytes.NewReader(resp))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		json.Unmarshal(sc.Bytes(), &e)
		entry, _ := e["entry"].(map[string]any)
		if entry["actor"] == "zhaoxiaoyu" || entry["ip"] == reportFrom || entry["request_id"] == requestID {
			t.Errorf("entry %v names the reporter", e["index"])
		}
		if entry["action"] == "anonymous_report.file" && entry["outcome"] == "success" {
			filed++
			if entry["actor"] != "anonymous" || entry["ip"] != "" || entry["target_id"] != "" {
				t.Errorf("%v", entry)
			}
		}
	}
	if filed != 1 {
		t.Fatalf("%d filings in the log: %s", filed, resp)
	}
	// The server's log.
	for _, secret := range []string{reportFrom, requestID, agent, receipt, words, more} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("the server's log holds %q", secret)
		}
	}
	if strings.Contains(newLog, "zhaoxiaoyu") || strings.Contains(newLog, uid) {
		t.Errorf("the log after the report names the doctor:\n%s", newLog)
	}
	// Every file of the data directory, as it is and once the server has
	// stopped (the WAL checkpointed into the database).
	scan := func(when string) {
		filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			for _, secret := range []string{reportFrom, requestID, agent, receipt, strings.ReplaceAll(receipt, "-", ""), words, more} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s: %s holds %q", when, path, secret)
				}
			}
			return nil
		})
	}
	scan("running")
	db.Close()
	closed = true
	s.stop()
	s.stop = nil
	scan("stopped")
}

// raw makes a request and returns the body, which must answer 200.
func (s *server) raw(method, path, token string) []byte {
	s.t.Helper()
	st, _, out := s.do(method, path, token, nil)
	if st != 200 {
		s.t.Fatalf("%s %s: %d %s", method, path, st, out)
	}
	return out
}

// dumpRows reads every row of every table as text (bytes as they are),
// keyed by table and content: the rows a step writes or changes are those
// of the dump after it that were not in the one before. The audit log's
// bundles, tiles and head change as any entry is appended (a bundle holds
// many entries): its entries are checked through the API instead.
func dumpRows(t *testing.T, db *storage.DB) map[string]bool {
	t.Helper()
	ctx := context.Background()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if db.Dialect == storage.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	sort.Strings(tables)
	out := map[string]bool{}
	for _, table := range tables {
		if table == "audit_bundles" || table == "audit_tiles" || table == "audit_head" {
			continue
		}
		rs, err := db.QueryContext(ctx, `SELECT * FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString(table)
			for _, v := range vals {
				b.WriteString("|")
				if raw, ok := v.([]byte); ok {
					b.Write(raw)
				} else {
					fmt.Fprint(&b, v)
				}
			}
			out[b.String()] = true
		}
		rs.Close()
	}
	return out
}
