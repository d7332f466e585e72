package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"medguard/internal/storage/storagetest"
)

// The continuity journeys (issue 11) in headless Chromium, over HTTPS
// against the real server with a backup schedule to a directory: the
// information engineer (信息科工程师) reads the root key's version and
// where it is kept, watches the first backup arrive and reads the restore
// drill; the security officer reads the retention worklist, places a
// legal hold (诉讼保全) through the form and sees it listed, the held
// records marked not destroyable — in Chinese, and the keys page in
// English.
func TestConsoleContinuityJourneys(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	chromium := chromiumPath(t)
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("serve refuses --backup-to on PostgreSQL (pgBackRest backs it up); the holds are tested on PostgreSQL by TestLegalHold")
	}
	data, target := t.TempDir(), filepath.Join(t.TempDir(), "beifen")
	identity := filepath.Join(t.TempDir(), "backup.identity")
	past := writeRetentionPast(t, data, "")
	runCLI(t, "backup", "keygen", "--data", data, "--identity-out", identity)
	s := start(t, "--data", data, "--backup-to", target, "--backup-continuous=false")
	s.json(201, "POST", "/api/v1/departments", s.admin(), map[string]string{"code": "INFO", "name": "信息科"})
	s.staff("zhaolei", "赵磊", "INFO", "it_engineer", "Xinxi#Ke2026")

	// The information engineer, in Chinese.
	eng := openBrowser(t, s, chromium, "zh-CN", 1000, 3*time.Minute)
	eng.signIn("zhaolei", "Xinxi#Ke2026")
	eng.run("the keys page", chromedp.Navigate(s.base+"/keys"), chromedp.WaitVisible(chromedp.ID("keys-facts")))
	if src := eng.get("key source", chromedp.Text(chromedp.ID("keys-source"))); !strings.Contains(src, "密钥文件") {
		t.Errorf("/keys source: %q", src)
	}
	if v := eng.get("active version", chromedp.Text(chromedp.ID("keys-active"))); !strings.Contains(v, "第 1 版") {
		t.Errorf("/keys active version: %q", v)
	}
	if rows := eng.get("versions", chromedp.Text(chromedp.ID("kek-versions"))); !strings.Contains(rows, "第 1 版") {
		t.Errorf("/keys versions: %q", rows)
	}

	// The first full backup arrives at the directory (the page is read
	// again until the schedule, running beside the server, has made it).
	var targets string
	for i := 0; ; i++ {
		eng.run("the backups page", chromedp.Navigate(s.base+"/backups"), chromedp.WaitVisible(chromedp.ID("targets")))
		targets = eng.get("targets", chromedp.Text(chromedp.ID("targets")))
		if !strings.Contains(targets, "尚无备份") {
			break
		}
		if i > 300 {
			t.Fatalf("no backup arrived on /backups: %q\n%s", targets, s.logs)
		}
		time.Sleep(100 * time.Millisecond) // waiting for the schedule, not timing it
	}
	if !strings.Contains(targets, target) || !strings.Contains(targets, "磁盘") {
		t.Errorf("/backups targets: %q", targets)
	}
	if h := eng.get("heading", chromedp.Text(chromedp.CSS("h1"))); !strings.Contains(h, "备份与恢复演练") {
		t.Errorf("/backups heading: %q", h)
	}
	if st := eng.get("3-2-1", chromedp.Text(chromedp.ID("state-321"))); !strings.Contains(st, "未满足 3-2-1") {
		t.Errorf("/backups 3-2-1: %q", st)
	}

	// A restore drill, where the backup identity is kept; the drills page
	// shows it.
	runCLI(t, "backup", "drill", "--data", data, "--to", target, "--backup-identity", identity)
	eng.run("the drills page", chromedp.Click(chromedp.ID("to-drills")), chromedp.WaitVisible(chromedp.ID("drills-h")))
	drills := eng.get("drills", chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"核验审计日志", "通过"} {
		if !strings.Contains(drills, want) {
			t.Errorf("/backups/drills lacks %q: %q", want, drills)
		}
	}
	eng.run("back to the backups page", chromedp.Click(chromedp.ID("to-backups")), chromedp.WaitVisible(chromedp.ID("last-drill")))
	if rto := eng.get("last drill RTO", chromedp.Text(chromedp.ID("last-drill-rto"))); rto == "" {
		t.Error("/backups shows no RTO for the last drill")
	}

	// The security officer, in Chinese: the retention worklist, a hold
	// placed through the form, listed, the records marked.
	officer := openBrowser(t, s, chromium, "zh-CN", 1400, 3*time.Minute)
	officer.signIn("security", securityPassword)
	officer.run("the retention page", chromedp.Navigate(s.base+"/retention"), chromedp.WaitVisible(chromedp.ID("expired-h")))
	work := officer.get("worklist", chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"保存期满待处理的病历", past.expired, past.inpatient, "门诊病历", "住院病历", "目前没有封存。"} {
		if !strings.Contains(work, want) {
			t.Errorf("/retention lacks %q", want)
		}
	}
	if strings.Contains(work, past.recent) {
		t.Error("/retention lists a record whose retention has not ended")
	}
	officer.run("placing a hold",
		chromedp.SendKeys(chromedp.ID("hold-patient"), past.patient),
		chromedp.SendKeys(chromedp.ID("hold-reference"), "（2026）京0101民初1234号"),
		chromedp.SendKeys(chromedp.ID("hold-reason"), "患者家属提起医疗纠纷诉讼，病历封存"),
		chromedp.Click(chromedp.ID("place-hold")),
		chromedp.WaitVisible(chromedp.ID("holds")),
	)
	page := officer.get("after the hold", chromedp.Text(chromedp.CSS("main")))
	holds := officer.get("holds", chromedp.Text(chromedp.ID("holds")))
	for _, want := range []string{"（2026）京0101民初1234号", "患者家属提起医疗纠纷诉讼，病历封存", past.patient, "患者全部病历", "security"} {
		if !strings.Contains(holds, want) {
			t.Errorf("the holds list lacks %q: %q", want, holds)
		}
	}
	if n := strings.Count(page, "封存中，不可销毁"); n != 2 {
		t.Errorf("%d records marked not destroyable, want 2: %q", n, page)
	}
	if !strings.Contains(page, "已封存") {
		t.Error("no message that the hold was placed")
	}

	// The keys page in English, after switching the language.
	officer.run("the keys page in English", chromedp.Navigate(s.base+"/lang/en?next=/keys"), chromedp.WaitVisible(chromedp.ID("keys-facts")))
	if src := officer.get("key source", chromedp.Text(chromedp.ID("keys-source"))); !strings.Contains(src, "Key file") {
		t.Errorf("/keys in English, source: %q", src)
	}
	if v := officer.get("active version", chromedp.Text(chromedp.ID("keys-active"))); !strings.Contains(v, "Version 1") {
		t.Errorf("/keys in English, active: %q", v)
	}
	officer.run("the retention page in English", chromedp.Navigate(s.base+"/retention"), chromedp.WaitVisible(chromedp.ID("holds")))
	if en := officer.get("retention in English", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(en, "Legal holds") ||
		strings.Count(en, "Held: not destroyable") != 2 {
		t.Errorf("/retention in English: %q", en)
	}
}
