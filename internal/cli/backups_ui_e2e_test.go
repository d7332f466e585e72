package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard/internal/storage/storagetest"
)

// The backups surface as the information engineer (信息科工程师) and the
// security office use it: serve runs a real backup schedule to a
// directory, a restore drill is run with `medguard backup drill` where the
// backup identity is kept, and both are seen in the API and the console;
// a doctor is refused (403, audited); a server without a schedule answers
// configured:false.

// consolePage gets a console page with the session token as the cookie.
func (s *server) consolePage(path, token, lang string) (int, http.Header, string) {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.base+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Cookie", "__Host-mg_session="+token)
	req.Header.Set("Accept-Language", lang)
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestBackupsSurface(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("serve refuses --backup-to on PostgreSQL (pgBackRest backs it up); TestBackupsNotConfigured covers PostgreSQL")
	}
	data, target := t.TempDir(), filepath.Join(t.TempDir(), "beifen")
	identity := filepath.Join(t.TempDir(), "backup.identity")
	runCLI(t, "backup", "keygen", "--data", data, "--identity-out", identity)
	s := start(t, "--data", data, "--backup-to", target, "--backup-continuous=false")

	s.json(201, "POST", "/api/v1/departments", s.admin(), map[string]string{"code": "INFO", "name": "信息科"})
	s.json(201, "POST", "/api/v1/departments", s.admin(), map[string]string{"code": "CARD", "name": "心内科"})
	s.staff("zhaolei", "赵磊", "INFO", "it_engineer", "Xinxi#Ke2026")
	s.staff("wangyi", "王医", "CARD", "doctor", "Yisheng#Ke2026")
	eng, doctor := s.token("zhaolei", "Xinxi#Ke2026"), s.token("wangyi", "Yisheng#Ke2026")

	// The schedule's first full backup arrives (polled: the schedule runs
	// beside the server).
	var h map[string]any
	for i := 0; ; i++ {
		h = s.json(200, "GET", "/api/v1/backups", eng, nil)
		if ts, _ := h["targets"].([]any); len(ts) == 1 && ts[0].(map[string]any)["last_backup"] != nil {
			break
		}
		if i > 600 {
			t.Fatalf("no backup arrived: %v\n%s", h, s.logs)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the schedule, not timing it
	}
	if h["configured"] != true || h["last_drill"] != nil {
		t.Fatalf("before the drill: %v", h)
	}
	tg := h["targets"].([]any)[0].(map[string]any)
	if tg["url"] != target || tg["media"] != "disk" || tg["off_site"] != false || tg["late"] != false || tg["last_error"] != nil {
		t.Errorf("target: %v", tg)
	}
	st := h["state_321"].(map[string]any)
	if st["copies"] != float64(2) || st["media"] != float64(1) || st["off_site"] != float64(0) || st["met"] != false {
		t.Errorf("one directory target is not 3-2-1: %v", st)
	}
	if h["rpo_goal_seconds"] != float64(900) || h["rto_goal_seconds"] != float64(14400) {
		t.Errorf("goals: %v", h)
	}

	// The drill, where the identity is kept.
	out := runCLI(t, "backup", "drill", "--data", data, "--to", target, "--backup-identity", identity)
	t.Logf("backup drill:\n%s", out)

	h = s.json(200, "GET", "/api/v1/backups", eng, nil)
	ld, _ := h["last_drill"].(map[string]any)
	if ld == nil || ld["ok"] != true || ld["rto_met"] != true || len(ld["steps"].([]any)) < 4 || ld["target"] != target {
		t.Fatalf("last drill: %v", h["last_drill"])
	}
	ds := s.json(200, "GET", "/api/v1/backups/drills", s.security(), nil)
	items := ds["items"].([]any)
	if len(items) != 1 || ds["next"] != nil {
		t.Fatalf("drills: %v", ds)
	}
	d := items[0].(map[string]any)
	for _, k := range []string{"id", "started_at", "backup", "target", "rto_seconds", "rpo_seconds", "patients", "records",
		"audit_size", "sample_patients", "sample_records", "sample_fields", "ok", "steps"} {
		if _, ok := d[k]; !ok {
			t.Errorf("drill lacks %q: %v", k, d)
		}
	}
	if d["id"] != ld["id"] || d["audit_size"].(float64) < 1 {
		t.Errorf("drill: %v", d)
	}
	s.problem(422, "GET", "/api/v1/backups/drills?limit=0", eng, nil)

	// A doctor is refused, and the refusal is in the audit log.
	p := s.problem(403, "GET", "/api/v1/backups", doctor, nil)
	if !strings.Contains(p["type"].(string), "forbidden") {
		t.Errorf("problem: %v", p)
	}
	s.problem(403, "GET", "/api/v1/backups/drills", doctor, nil)
	for _, c := range []struct{ action, actor, decision string }{
		{"backup.status", "wangyi", "deny"}, {"backup.drills", "wangyi", "deny"},
		{"backup.status", "zhaolei", "allow"}, {"backup.drills", "security", "allow"},
		// The schedule's backups are in the log too, as the system's.
		{"backup.full", "system", "allow"},
	} {
		_, _, body := s.do("GET", "/api/v1/audit/search?action="+c.action+"&actor="+c.actor, s.security(), nil)
		if !strings.Contains(string(body), `"decision":"`+c.decision+`"`) {
			t.Errorf("audit: no %s %s by %s: %s", c.decision, c.action, c.actor, body)
		}
	}

	// The console: the backups page, the drill grid with its CSV, the
	// dashboard tile; none for the doctor.
	code, _, page := s.consolePage("/backups", eng, "zh-CN")
	for _, want := range []string{"备份与恢复演练", target, "磁盘", "未满足 3-2-1", "现有副本 2 份（需三份）", "通过", "校验备份", "恢复时间目标"} {
		if code != 200 || !strings.Contains(page, want) {
			t.Errorf("/backups (%d) lacks %q", code, want)
		}
	}
	code, _, page = s.consolePage("/backups/drills", eng, "zh-CN")
	if code != 200 || !strings.Contains(page, `id="drills"`) || !strings.Contains(page, "核验审计日志") || !strings.Contains(page, "病人 ") {
		t.Errorf("/backups/drills (%d): %s", code, page)
	}
	code, hdr, csvText := s.consolePage("/backups/drills?format=csv", eng, "en")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.Contains(csvText, "Restore time (RTO)") ||
		!strings.Contains(csvText, "passed") {
		t.Errorf("CSV (%d %s): %s", code, hdr.Get("Content-Type"), csvText)
	}
	code, _, page = s.consolePage("/", s.security(), "zh-CN")
	if code != 200 || !strings.Contains(page, `id="tile-backups"`) || !strings.Contains(page, "未满足 3-2-1") || !strings.Contains(page, "最近演练") {
		t.Errorf("dashboard (%d) lacks the backup tile", code)
	}
	if code, _, _ := s.consolePage("/backups", doctor, "zh-CN"); code != 403 {
		t.Errorf("a doctor's /backups: %d, want 403", code)
	}
	if _, _, page := s.consolePage("/", doctor, "zh-CN"); strings.Contains(page, `href="/backups"`) {
		t.Error("the doctor's pages link to /backups")
	}
}

// TestBackupsNotConfigured: without --backup-to (and on PostgreSQL, where
// serve runs no schedule) the answer is configured:false, not an error.
func TestBackupsNotConfigured(t *testing.T) {
	s := start(t)
	h := s.json(200, "GET", "/api/v1/backups", s.security(), nil)
	if h["configured"] != false || len(h["targets"].([]any)) != 0 || h["last_drill"] != nil {
		t.Errorf("without a schedule: %v", h)
	}
	ds := s.json(200, "GET", "/api/v1/backups/drills", s.admin(), nil)
	if len(ds["items"].([]any)) != 0 || ds["next"] != nil {
		t.Errorf("drills without a schedule: %v", ds)
	}
	var raw map[string]json.RawMessage
	_, _, b := s.do("GET", "/api/v1/backups", s.admin(), nil)
	json.Unmarshal(b, &raw)
	if string(raw["targets"]) != "[]" {
		t.Errorf("targets = %s, want []", raw["targets"])
	}
	code, _, page := s.consolePage("/backups", s.security(), "zh-CN")
	if code != 200 || !strings.Contains(page, "本服务器没有配置定时备份") {
		t.Errorf("/backups without a schedule (%d)", code)
	}
}
