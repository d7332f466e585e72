package console_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"medguard/internal/backup"
	"medguard/internal/backuphealth"
	"medguard/internal/cli"
	"medguard/internal/storage/storagetest"
)

// TestBackupPagesSpeakChinese: the demo hospital with a real backup
// schedule (a directory target, the schedule running beside the console)
// and a drill recorded — the backups page, the drill grid and the
// dashboard's tile, in Chinese, hold no raw identifier (the crawler's
// rules), for every role that may see them; the grid sorts.
func TestBackupPagesSpeakChinese(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("backups of a PostgreSQL installation are pgBackRest's (no SQLite schedule to run)")
	}
	app, sum := loadDemo(t, 20)
	ctx, cancel := context.WithCancel(context.Background())
	data := app.Config.DataDir
	identity := filepath.Join(t.TempDir(), "backup.identity")
	var out bytes.Buffer
	if err := cli.Run(ctx, []string{"backup", "keygen", "--data", data, "--identity-out", identity},
		func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out.String())
	}
	target, err := backup.OpenTarget(filepath.Join(t.TempDir(), "beifen"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rcpt, err := backup.ParseRecipient(filepath.Join(data, "keys", "backup.recipient"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := backup.LoadSigner(data, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(data, "keys", "medguard.keys")
	sc := backup.NewScheduler(backup.Schedule{DataDir: data, Targets: []backup.Target{target}, Recipient: rcpt, Signer: signer,
		FullEvery: 24 * time.Hour, IncrementalEvery: 15 * time.Minute, KeyFile: keyFile})
	done := make(chan struct{})
	go func() { defer close(done); sc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	app.BackupHealth.Watch(sc, backuphealth.Periods{Full: 24 * time.Hour, Incremental: 15 * time.Minute})
	for i := 0; sc.Status().Targets[0].LastBackup.IsZero(); i++ {
		if i > 1200 {
			t.Fatalf("no backup arrived: %+v", sc.Status())
		}
		time.Sleep(50 * time.Millisecond) // waiting for the schedule, not timing it
	}
	id, err := backup.LoadIdentity(identity)
	if err != nil {
		t.Fatal(err)
	}
	d, err := backup.RunDrill(ctx, backup.DrillOptions{Targets: []backup.Target{target}, Identity: id, KeyFile: keyFile, Signer: signer})
	if err != nil || !d.OK || d.Patient != 20 {
		t.Fatalf("drill: %+v %v", d, err)
	}

	h := app.Web.Handler()
	codeText := regexp.MustCompile(`(?s)<code[^>]*>.*?</code>`) // target addresses, as they are
	seen := 0
	for _, ex := range sum.Examples {
		switch ex.Role {
		case "it_engineer", "security_officer", "auditor", "admin":
		default:
			continue
		}
		token := signInDemo(t, app, ex.Username)
		for _, path := range []string{"/", "/backups", "/backups/drills", "/backups/drills?sort=rto&desc=1"} {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Accept-Language", "zh-CN")
			req.AddCookie(&http.Cookie{Name: "__Host-mg_session", Value: token})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			body := w.Body.String()
			if w.Code != 200 {
				t.Errorf("%s (%s) %s: %d", ex.Username, ex.Role, path, w.Code)
				continue
			}
			text := allowedWords.ReplaceAllString(visibleText(codeText.ReplaceAllString(body, " ")), " ")
			for _, r := range rawIdentifier {
				for _, m := range r.pattern.FindAllString(text, -1) {
					t.Errorf("%s (%s) %s shows %s: %q", ex.Username, ex.Role, path, r.what, m)
				}
			}
			switch path {
			case "/":
				if !strings.Contains(body, `id="tile-backups"`) || !strings.Contains(body, "最近演练") {
					t.Errorf("%s: the dashboard has no backup tile", ex.Role)
				}
			case "/backups":
				for _, want := range []string{"未满足 3-2-1", "磁盘", "病人 20 人", "校验备份", "通过"} {
					if !strings.Contains(body, want) {
						t.Errorf("%s: /backups lacks %q", ex.Role, want)
					}
				}
			default:
				if !strings.Contains(body, `id="drills"`) || !strings.Contains(body, "病人 20 人") {
					t.Errorf("%s: %s has no drill row", ex.Role, path)
				}
			}
		}
		seen++
	}
	if seen != 4 {
		t.Errorf("%d of the four roles that see backups are in the demo", seen)
	}
}
