package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"medguard/internal/cli"
	"medguard/internal/storage/storagetest"
)

// runCLI runs a medguard command and returns its output; it fails the test
// if the command fails.
func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("medguard %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// TestBackupCarriesDestructionsAndRestoresAsTheOriginal drives backups,
// destruction and restore through the real CLI and server (SQLite: the
// backups of PostgreSQL are pgBackRest's):
//   - a hospital whose records expired long ago is served with
//     --backup-to and a backup retention of 40 daily / 2 monthly, and the
//     destruction certificate promises backups expire 93 days after (the
//     longest that retention keeps one);
//   - a full backup is made with `backup create` while the server runs;
//   - a record is then destroyed (clerk asks, security officer approves),
//     and the server ships its ledger to the target;
//   - the data directory is deleted; the backup from BEFORE the
//     destruction is restored into a new directory with the key file kept
//     apart, and served: the destroyed record answers 410 (re-applied from
//     the ledger, audited record.destroy_reapply), the first start is
//     audited backup.restored naming the backup and its audit size, the
//     other records read exactly as before by the same users, and the
//     restored audit tree at the backup's size has the manifest's root.
func TestBackupCarriesDestructionsAndRestoresAsTheOriginal(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("medguard backup backs up SQLite data directories; PostgreSQL's are pgBackRest's (TestPGBackRest…)")
	}
	if testing.Short() {
		t.Skip("serves three times")
	}
	dir := t.TempDir()
	past := writeRetentionPast(t, dir, "")
	id := filepath.Join(t.TempDir(), "backup-identity.txt")
	runCLI(t, "backup", "keygen", "--data", dir, "--identity-out", id)
	target := t.TempDir()

	s := start(t, "--data", dir, "--backup-to", target, "--backup-continuous=false", "--backup-keep-daily", "40",
		"--backup-keep-monthly", "2", "--checkpoint-every", "100ms")
	s.staff("bingan.wang", "王病案", "", "records_clerk", "Bingan#Mima2026")
	clerk := s.token("bingan.wang", "Bingan#Mima2026")
	security := s.security()
	before := map[string]map[string]any{}
	for _, path := range []string{"/api/v1/records/" + past.recent, "/api/v1/records/" + past.stay,
		"/api/v1/records/" + past.expired, "/api/v1/patients/" + past.patient + "/records"} {
		before[path] = s.json(200, "GET", path, clerk, nil)
	}

	// A full backup beside the running server; its URL is the last line.
	// Sealed with SM4-GCM (国密): verify and restore below read it.
	out := runCLI(t, "backup", "create", "--data", dir, "--to", target, "--cipher", "SM4-GCM")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	backupURL := lines[len(lines)-1]
	m := regexp.MustCompile(`full backup (\S+): audit tree size (\d+)`).FindStringSubmatch(out)
	if m == nil || !strings.HasSuffix(backupURL, "/backups/"+m[1]) || !strings.Contains(out, "SM4-GCM") {
		t.Fatalf("backup create: %s", out)
	}
	backupID, backupSize := m[1], m[2]
	vout := runCLI(t, "backup", "verify", backupURL, "--backup-identity", id)
	rootB64 := regexp.MustCompile(`root (\S+),`).FindStringSubmatch(vout)
	if rootB64 == nil {
		t.Fatalf("backup verify: %s", vout)
	}
	manifestRoot, _ := base64.StdEncoding.DecodeString(rootB64[1])

	// The destruction, after the backup: four eyes.
	req := s.json(201, "POST", "/api/v1/retention/destructions", clerk,
		map[string]any{"record_ids": []string{past.expired}, "reason": "门诊病历保存期满，按规定销毁"})
	s.json(200, "POST", "/api/v1/approvals/"+req["id"].(string)+"/approve", security, map[string]string{"note": "核对无误，同意销毁"})
	s.problem(410, "GET", "/api/v1/records/"+past.expired, clerk, nil)
	_, _, body := s.do("GET", "/api/v1/retention/certificates/"+req["id"].(string), clerk, nil)
	var cert struct {
		Certificate struct {
			BackupRetentionDays int       `json:"backup_retention_days"`
			BackupsExpireBy     time.Time `json:"backups_expire_by"`
			DestroyedAt         time.Time `json:"destroyed_at"`
		} `json:"certificate"`
	}
	if err := json.Unmarshal(body, &cert); err != nil {
		t.Fatal(err)
	}
	if c := cert.Certificate; c.BackupRetentionDays != 93 || !c.BackupsExpireBy.Equal(c.DestroyedAt.Add(93*24*time.Hour)) {
		t.Errorf("certificate with --backup-keep-daily 40 --backup-keep-monthly 2: %+v", c)
	}
	// The server ships its grown ledger to the target at once.
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(target, "ledger", "destructions.log.age")); err == nil {
			break
		}
		if i > 600 {
			t.Fatal("the destruction ledger never reached the target")
		}
		time.Sleep(50 * time.Millisecond) // waiting for the schedule, not timing it
	}
	s.stop()
	s.stop = nil

	// The server is gone: its data directory with it. The key file was
	// kept apart.
	keyFile := filepath.Join(t.TempDir(), "medguard.keys")
	kb, err := os.ReadFile(filepath.Join(dir, "keys", "medguard.keys"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, kb, 0o600)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	newDir := filepath.Join(t.TempDir(), "restored")
	rout := runCLI(t, "backup", "restore", backupURL, "--data", newDir, "--backup-identity", id, "--key-file", keyFile)
	if !strings.Contains(rout, "destruction ledger") || !strings.Contains(rout, "audit tree size "+backupSize+" root "+rootB64[1]) {
		t.Fatalf("restore: %s", rout)
	}

	r := start(t, "--data", newDir, "--checkpoint-every", "100ms")
	r.book = s.book
	r.book.tokens = map[string]string{}
	clerk = r.token("bingan.wang", "Bingan#Mima2026")
	security = r.security()
	// The destruction made after the backup holds on the restored copy.
	if g := r.problem(410, "GET", "/api/v1/records/"+past.expired, clerk, nil); g["certificate"] != req["id"] {
		t.Errorf("the destroyed record on the restored copy: %v", g)
	}
	searchOne := func(action string) map[string]any {
		t.Helper()
		items := r.json(200, "GET", "/api/v1/audit/search?action="+action+"&limit=10", security, nil)["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("%s in the restored audit log: %v", action, items)
		}
		return items[0].(map[string]any)["entry"].(map[string]any)
	}
	if e := searchOne("record.destroy_reapply"); e["actor"] != "system" || e["target_id"] != req["id"] {
		t.Errorf("record.destroy_reapply: %v", e)
	}
	if e := searchOne("backup.restored"); e["actor"] != "system" || e["target_id"] != backupID+".size-"+backupSize {
		t.Errorf("backup.restored: %v", e)
	}
	// The same records, read by the same user, answer as before (but the
	// destroyed one, in the list too).
	for path, want := range before {
		if strings.HasSuffix(path, past.expired) {
			continue
		}
		got := r.json(200, "GET", path, clerk, nil)
		if strings.HasSuffix(path, "/records") {
			for _, list := range []map[string]any{got, want} {
				var keep []any
				for _, it := range list["items"].([]any) {
					if it.(map[string]any)["id"] != past.expired {
						keep = append(keep, it)
					}
				}
				list["items"] = keep
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s on the restored copy:\n got %v\nwant %v", path, got, want)
		}
	}
	// The restored audit tree, at the backup's size, has the manifest's
	// root: the server's newest checkpoint is consistent with it.
	_, _, vkey := r.do("GET", "/api/v1/audit/verifier-key", security, nil)
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		t.Fatal(err)
	}
	_, _, msg := r.do("GET", "/api/v1/audit/checkpoint", security, nil)
	head := (&auditor{t: t, verifier: v}).open(msg)
	size, _ := strconv.ParseUint(backupSize, 10, 64)
	var cons struct{ Hashes [][]byte }
	json.Unmarshal(r.body(200, "GET", "/api/v1/audit/proof/consistency?old="+backupSize+"&new="+strconv.FormatUint(head.size, 10), security), &cons)
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size, head.size, cons.Hashes, manifestRoot, head.root); err != nil {
		t.Errorf("the restored log at the backup's size (%d) does not have the manifest's root: %v", size, err)
	}
}

// TestBackupOnPostgresPointsToBackupPG: every backup command given a
// PostgreSQL database says to use `medguard backup-pg`.
func TestBackupOnPostgresPointsToBackupPG(t *testing.T) {
	for _, args := range [][]string{
		{"backup", "create", "--data", t.TempDir(), "--db", "postgres://medguard@db.example/medguard", "--to", t.TempDir()},
		{"backup", "restore", "/b/backups/X", "--data", t.TempDir(), "--db=postgres://db.example/m", "--backup-identity", "id"},
		{"backup", "drill", "--to", t.TempDir(), "--db", "postgresql://db.example/m", "--backup-identity", "id"},
	} {
		var out, errOut bytes.Buffer
		err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "medguard backup-pg") || !strings.Contains(err.Error(), "PostgreSQL") {
			t.Errorf("%v: %v", args[:2], err)
		}
	}
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), []string{"backup", "list", "--to", t.TempDir()},
		func(k string) string { return map[string]string{"MEDGUARD_DB": "postgres://db.example/m"}[k] }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "medguard backup-pg") {
		t.Errorf("backup list with MEDGUARD_DB: %v", err)
	}
	err = cli.Run(context.Background(), []string{"backup", "create", "--data", t.TempDir(), "--to", t.TempDir(), "--cipher", "DES"},
		func(string) string { return "" }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--cipher") || !strings.Contains(err.Error(), "SM4-GCM") {
		t.Errorf("backup create --cipher DES: %v", err)
	}
	err = cli.Run(context.Background(), []string{"backup", "create", "--data", t.TempDir(), "--to", t.TempDir()},
		func(string) string { return "" }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "no SQLite database") || !strings.Contains(err.Error(), "backup-pg") {
		t.Errorf("backup create of a directory without a database: %v", err)
	}
}
