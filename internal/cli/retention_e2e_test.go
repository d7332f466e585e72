package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/idnum"
	"medguard/internal/records"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// retentionPast is a small hospital whose records were written decades
// ago: opened on a clock set to 29 February 1996 (a leap day), then to
// 2015, as its staff would have, before the server starts on today's clock.
type retentionPast struct {
	patient   string
	expired   string // an outpatient note of 1996: retention ended in 2011
	inpatient string // a discharge summary of a 1996 stay: ended in 2026
	recent    string // an outpatient note of 2015, same patient: ends in 2030
	stay      string // an admission note of a 2000 stay: ends in 2030
}

func idNumber(t *testing.T, first17 string) string {
	t.Helper()
	c, err := idnum.CheckDigit(first17)
	if err != nil {
		t.Fatal(err)
	}
	return first17 + string(c)
}

func writeRetentionPast(t *testing.T, dir, dsn string) retentionPast {
	t.Helper()
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(1996, 2, 29, 8, 30, 0, 0, time.UTC))
	app, err := cli.Open(ctx, cli.Config{DataDir: dir, DB: dsn, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	admin := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: "admin",
		Roles: []string{"admin"}}, IP: "10.9.0.1"}
	if _, err := app.Identity.CreateDepartment(ctx, admin, "CARD", "心内科"); err != nil {
		t.Fatal(err)
	}
	doctor := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: "zhang.wei",
		Department: "CARD", Roles: []string{"doctor"}}, IP: "10.9.0.2", Purpose: "treatment"}
	p, err := app.Records.CreatePatient(ctx, doctor, records.NewPatient{Name: "王秀英", Gender: "female", BirthDate: "1950-03-02",
		IDNumber: idNumber(t, "11010519500302002"), Phone: "13800138000", Address: "北京市东城区东四十条", MRN: "BA1996-0229"})
	if err != nil {
		t.Fatal(err)
	}
	out := retentionPast{patient: p.ID}
	note := func(typ, title, text, admission string) string {
		r, err := app.Records.CreateRecord(ctx, doctor, p.ID, records.NewRecord{Type: typ, Department: "CARD", Title: title,
			Text: text, AdmissionID: admission})
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	out.expired = note("outpatient_note", "门诊病历：胸闷", "患者王秀英，胸闷三天，心电图未见异常。", "")
	a, err := app.Records.Admit(ctx, doctor, p.ID, "CARD", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	out.inpatient = note("discharge_summary", "出院小结", "冠心病，经治疗好转出院。", a.ID)
	clock.Advance(10 * 24 * time.Hour)
	if _, err := app.Records.Discharge(ctx, doctor, a.ID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Set(time.Date(2000, 6, 1, 9, 0, 0, 0, time.UTC))
	a2, err := app.Records.Admit(ctx, doctor, p.ID, "CARD", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	out.stay = note("admission_note", "入院记录", "再次入院，心绞痛发作。", a2.ID)
	clock.Advance(5 * 24 * time.Hour)
	if _, err := app.Records.Discharge(ctx, doctor, a2.ID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Set(time.Date(2015, 7, 1, 9, 0, 0, 0, time.UTC))
	out.recent = note("outpatient_note", "门诊复诊", "复诊：血压控制良好。", "")
	return out
}

// TestRetentionAndDestruction drives retention and destruction through the
// real server: the expired list, a refused early destruction (audited), a
// clerk's request that neither the clerk, another clerk nor the
// administrator can approve, a security officer's approval, the record gone
// everywhere (410 naming the certificate, lists, the console) while the
// patient's other records still open, the certificate verifying offline
// (and a tampered one failing), and a restore of the database from before
// the destruction shredding it again at start.
func TestRetentionAndDestruction(t *testing.T) {
	dir := t.TempDir()
	dsn := ""
	var db []string
	if pg := os.Getenv(storagetest.PostgresEnv); pg != "" {
		dsn = storagetest.FreshSchema(t, pg)
		db = []string{"--db", dsn}
	}
	past := writeRetentionPast(t, dir, dsn)
	// The database before any destruction, to restore later.
	before := snapshot(t, dir, dsn, past)

	s := start(t, append([]string{"--data", dir}, db...)...)
	admin := s.admin()
	s.staff("bingan.wang", "王病案", "", "records_clerk", "Bingan#Mima2026")
	s.staff("bingan.li", "李病案", "", "records_clerk", "Bingan#Mima2027")
	clerk := s.token("bingan.wang", "Bingan#Mima2026")
	clerk2 := s.token("bingan.li", "Bingan#Mima2027")
	security := s.security()

	// The expired list: the 1996 outpatient note (15 years) and the 1996
	// stay's discharge summary (30 years from discharge); not the 2000
	// stay nor the 2015 note.
	exp := s.json(200, "GET", "/api/v1/retention/expired", clerk, nil)
	got := map[string]map[string]any{}
	for _, it := range exp["items"].([]any) {
		m := it.(map[string]any)
		got[m["id"].(string)] = m
		if _, ok := m["patient_id"]; ok {
			t.Error("the expired list names the patient")
		}
	}
	if len(got) != 2 || got[past.expired] == nil || got[past.inpatient] == nil {
		t.Fatalf("expired: %v", exp)
	}
	if e := got[past.expired]; e["retention_ended"] != "2011-03-01T08:30:00Z" || e["class"] != "outpatient" {
		t.Errorf("a leap-day outpatient record: %v", e)
	}
	if e := got[past.inpatient]; e["class"] != "inpatient" || e["retention_years"] != float64(30) ||
		!strings.HasPrefix(e["retention_ended"].(string), "2026-03-10") {
		t.Errorf("an inpatient record counts from discharge: %v", e)
	}

	// Destruction before retention ends is refused, naming the field, and
	// the refusal is in the audit log.
	p := s.problem(422, "POST", "/api/v1/retention/destructions", clerk,
		map[string]any{"record_ids": []string{past.expired, past.recent}, "reason": "保存期满销毁"})
	if p["field"] != "payload.record_ids" || p["code"] != "retention_not_ended" || !strings.Contains(p["detail"].(string), past.recent) {
		t.Errorf("an early destruction: %v", p)
	}
	// Nobody but a records clerk asks; the administrator cannot.
	s.problem(403, "POST", "/api/v1/retention/destructions", admin,
		map[string]any{"record_ids": []string{past.expired}, "reason": "清理"})
	s.problem(403, "POST", "/api/v1/retention/destructions", security,
		map[string]any{"record_ids": []string{past.expired}, "reason": "清理"})

	req := s.json(201, "POST", "/api/v1/retention/destructions", clerk,
		map[string]any{"record_ids": []string{past.inpatient, past.expired}, "reason": "住院、门诊病历保存期满，按规定销毁"})
	id := req["id"].(string)
	if req["kind"] != "records.destroy" || req["status"] != "pending" {
		t.Fatalf("request: %v", req)
	}
	// The requester, another clerk and the administrator cannot approve.
	for _, tok := range []string{clerk, clerk2, admin} {
		s.problem(403, "POST", "/api/v1/approvals/"+id+"/approve", tok, map[string]string{"note": "同意"})
	}
	// Before the approval the record still opens.
	if r := s.json(200, "GET", "/api/v1/records/"+past.expired, clerk, nil); !strings.Contains(r["text"].(string), "胸闷") {
		t.Fatalf("before: %v", r)
	}
	s.json(200, "POST", "/api/v1/approvals/"+id+"/approve", security, map[string]string{"note": "核对无误，同意销毁"})

	// Gone: 410 naming the certificate, on the record, its versions and in
	// the patient's list; the patient's other records still open.
	for _, path := range []string{"/api/v1/records/" + past.expired, "/api/v1/records/" + past.inpatient,
		"/api/v1/records/" + past.expired + "/versions", "/api/v1/records/" + past.expired + "/versions/1"} {
		g := s.problem(410, "GET", path, clerk, nil)
		if g["certificate"] != id || g["type"] != "urn:medguard:problem:gone:destroyed" {
			t.Errorf("%s: %v", path, g)
		}
	}
	if r := s.json(200, "GET", "/api/v1/records/"+past.recent, clerk, nil); r["text"] != "复诊：血压控制良好。" {
		t.Errorf("the patient's other record: %v", r)
	}
	list := s.json(200, "GET", "/api/v1/patients/"+past.patient+"/records", clerk, nil)
	for _, it := range list["items"].([]any) {
		m := it.(map[string]any)
		destroyed, _ := m["destroyed"].(map[string]any)
		gone := m["id"] == past.expired || m["id"] == past.inpatient
		if gone != (destroyed != nil) || destroyed != nil && (destroyed["certificate"] != id || m["title"] != "") {
			t.Errorf("list item %v", m)
		}
	}
	if exp := s.json(200, "GET", "/api/v1/retention/expired", clerk, nil); len(exp["items"].([]any)) != 0 {
		t.Errorf("destroyed records still expired: %v", exp)
	}
	// A second destruction of the same record is a conflict.
	s.problem(409, "POST", "/api/v1/retention/destructions", clerk,
		map[string]any{"record_ids": []string{past.expired}, "reason": "再次销毁"})

	// The certificate: listed, downloaded, verified offline; tampered, refused.
	certs := s.json(200, "GET", "/api/v1/retention/certificates", security, nil)["items"].([]any)
	if len(certs) != 1 || certs[0].(map[string]any)["id"] != id || certs[0].(map[string]any)["approved_by"] != "security" {
		t.Fatalf("certificates: %v", certs)
	}
	st, h, body := s.do("GET", "/api/v1/retention/certificates/"+id, clerk, nil)
	if st != 200 || !strings.Contains(h.Get("Content-Disposition"), id) {
		t.Fatalf("download: %d %s", st, body)
	}
	for _, phi := range []string{"王秀英", "胸闷", "13800138000", "BA1996"} {
		if bytes.Contains(body, []byte(phi)) {
			t.Errorf("the certificate holds %q", phi)
		}
	}
	var signed struct {
		Certificate struct {
			Records         []map[string]any `json:"records"`
			KeysShredded    []string         `json:"keys_shredded"`
			RequestedBy     string           `json:"requested_by"`
			ApprovedBy      string           `json:"approved_by"`
			BackupsExpireBy time.Time        `json:"backups_expire_by"`
			DestroyedAt     time.Time        `json:"destroyed_at"`
		} `json:"certificate"`
	}
	if err := json.Unmarshal(body, &signed); err != nil {
		t.Fatal(err)
	}
	c := signed.Certificate
	// SQLite: the longest serve's default backup retention keeps a backup
	// (30 daily, 12 monthly: 13 months of 31 days); PostgreSQL: the default.
	keptFor := 13 * 31 * 24 * time.Hour
	if dsn != "" {
		keptFor = 365 * 24 * time.Hour
	}
	if len(c.Records) != 2 || len(c.KeysShredded) != 2 || c.RequestedBy != "bingan.wang" || c.ApprovedBy != "security" ||
		!c.BackupsExpireBy.Equal(c.DestroyedAt.Add(keptFor)) {
		t.Errorf("certificate: %+v", c)
	}
	file := filepath.Join(t.TempDir(), "cert.json")
	os.WriteFile(file, body, 0o600)
	var out, errOut bytes.Buffer
	if err := cli.Run(context.Background(), []string{"retention", "verify-certificate", file, "--data", dir},
		func(string) string { return "" }, &out, &errOut); err != nil || !strings.Contains(out.String(), "verifies") {
		t.Fatalf("verify: %v\n%s%s", err, out.String(), errOut.String())
	}
	tampered := filepath.Join(t.TempDir(), "cert.json")
	os.WriteFile(tampered, bytes.Replace(body, []byte(`"approved_by":"security"`), []byte(`"approved_by":"bingan.li"`), 1), 0o600)
	if err := cli.Run(context.Background(), []string{"retention", "verify-certificate", tampered, "--data", dir},
		func(string) string { return "" }, &out, &errOut); err == nil || cli.ExitCode(err) != 1 {
		t.Errorf("a tampered certificate verifies: %v", err)
	}

	// The refusals and the run are in the audit log.
	audit := func(action string) []map[string]any {
		var out []map[string]any
		for _, it := range s.json(200, "GET", "/api/v1/audit/search?action="+action+"&limit=200", security, nil)["items"].([]any) {
			out = append(out, it.(map[string]any))
		}
		return out
	}
	outcomes := map[string]int{}
	for _, e := range audit("approval.request") {
		entry := e["entry"].(map[string]any)
		if entry["actor"] == "bingan.wang" || entry["actor"] == "admin" || entry["actor"] == "security" {
			outcomes[entry["actor"].(string)+":"+entry["outcome"].(string)]++
		}
	}
	if outcomes["bingan.wang:invalid"] != 1 || outcomes["admin:denied"] != 1 || outcomes["security:denied"] != 1 ||
		outcomes["bingan.wang:success"] < 1 {
		t.Errorf("the requests in the audit log: %v", outcomes)
	}
	if runs := audit("record.destroy"); len(runs) != 1 {
		t.Errorf("the run in the audit log: %v", runs)
	}

	// The console: the record page answers 410 naming the certificate.
	consoleGone(t, s, "bingan.wang", "Bingan#Mima2026", past.expired, id)
	s.stop()
	s.stop = nil

	// A restore of the database from before the destruction, beside the
	// same data directory's ledger: at start the ledger shreds it again.
	restore(t, dir, dsn, before)
	ctx := context.Background()
	app, err := cli.Open(ctx, cli.Config{DataDir: dir, DB: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	clerkCall := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(time.Now()), Name: "bingan.wang",
		Roles: []string{"records_clerk"}}, IP: "10.9.0.3"}
	if _, err := app.Records.GetRecord(ctx, clerkCall, past.expired); !medguard.IsKind(err, medguard.Gone) {
		t.Fatalf("after the restore the record reads: %v", err)
	}
	if r, err := app.Records.GetRecord(ctx, clerkCall, past.recent); err != nil || r.Text != "复诊：血压控制良好。" {
		t.Fatalf("after the restore, the other record: %v", err)
	}
	var shredded int
	app.DB.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE owner IN ($1, $2) AND wrapped IS NULL`,
		"record:"+past.expired, "record:"+past.inpatient).Scan(&shredded)
	if shredded != 2 {
		t.Errorf("keys shredded after the restore: %d", shredded)
	}
	var reapplied int
	app.DB.QueryRowContext(ctx, `SELECT count(*) FROM audit_index WHERE action = 'record.destroy_reapply'`).Scan(&reapplied)
	if reapplied != 1 {
		t.Errorf("the re-application is not in the audit log: %d", reapplied)
	}
}

// dbSnapshot is the database as it was: the SQLite files, or (PostgreSQL,
// whose files a test cannot copy) the rows a destruction changes.
type dbSnapshot struct {
	files map[string][]byte
	keys  map[string][]byte
	rows  map[string][3][]byte
}

func snapshot(t *testing.T, dir, dsn string, past retentionPast) dbSnapshot {
	t.Helper()
	snap := dbSnapshot{files: map[string][]byte{}, keys: map[string][]byte{}, rows: map[string][3][]byte{}}
	if dsn == "" {
		for _, name := range []string{"medguard.db", "medguard.db-wal", "medguard.db-shm"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				snap.files[name] = b
			}
		}
		if snap.files["medguard.db"] == nil {
			t.Fatal("no database file")
		}
		return snap
	}
	app, err := cli.Open(context.Background(), cli.Config{DataDir: dir, DB: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for _, id := range []string{past.expired, past.inpatient} {
		var k []byte
		var r [3][]byte
		app.DB.QueryRowContext(context.Background(), `SELECT wrapped FROM data_keys WHERE owner = $1`, "record:"+id).Scan(&k)
		app.DB.QueryRowContext(context.Background(), `SELECT title, body, fields FROM record_versions WHERE record_id = $1`, id).Scan(&r[0], &r[1], &r[2])
		snap.keys[id], snap.rows[id] = k, r
	}
	return snap
}

func restore(t *testing.T, dir, dsn string, snap dbSnapshot) {
	t.Helper()
	if dsn == "" {
		for _, name := range []string{"medguard.db", "medguard.db-wal", "medguard.db-shm"} {
			os.Remove(filepath.Join(dir, name))
			if b, ok := snap.files[name]; ok {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		return
	}
	// PostgreSQL: put the rows back as an older backup holds them.
	sdb, err := storage.Open(context.Background(), dsn, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	for id, k := range snap.keys {
		r := snap.rows[id]
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE data_keys SET wrapped = $1, destroyed_at = NULL WHERE owner = $2`, []any{k, "record:" + id}},
			{`UPDATE record_versions SET title = $1, body = $2, fields = $3 WHERE record_id = $4`, []any{r[0], r[1], r[2], id}},
			{`UPDATE records SET destroyed_at = NULL, destruction_id = NULL WHERE id = $1`, []any{id}},
			{`DELETE FROM destructions`, nil},
		} {
			if _, err := sdb.ExecContext(context.Background(), q.sql, q.args...); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// consoleGone signs in to the console and opens a destroyed record's page.
func consoleGone(t *testing.T, s *server, username, password, recordID, certificate string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: s.client.Transport, Jar: jar}
	fetch := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var resp *http.Response
		var err error
		req, _ := http.NewRequest(method, s.base+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Accept-Language", "zh-CN")
		if resp, err = browser.Do(req); err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, login := fetch("GET", "/login", nil)
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(login)
	if m == nil {
		t.Fatal("no CSRF token on /login")
	}
	fetch("POST", "/login", url.Values{"csrf_token": {m[1]}, "username": {username}, "password": {password},
		"totp": {s.code(username)}})
	st, page := fetch("GET", "/records/"+recordID, nil)
	if st != http.StatusGone || !strings.Contains(page, certificate) || strings.Contains(page, "胸闷") {
		t.Errorf("the console's record page: %d\n%s", st, page)
	}
}
