package backup_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"medguard/internal/backup"
	"medguard/internal/cli"
	"medguard/internal/testkit"
)

const childEnv = "MEDGUARD_BACKUP_CHILD_ARGS"

// TestBackupChild is not a test: it is the medguard process the kill -9
// tests kill.
func TestBackupChild(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("run by the kill -9 tests")
	}
	var args []string
	json.Unmarshal([]byte(raw), &args)
	if err := cli.Run(context.Background(), args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// runKilled runs medguard with args in a child process and kills it (-9)
// after delay; it returns true if the child had finished by then.
func runKilled(t *testing.T, delay time.Duration, args ...string) bool {
	t.Helper()
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestBackupChild$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child %v: %v", args, err)
		}
		return true
	case <-time.After(delay):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return false
	}
}

// TestKillDuringBackupAndRestore kills `backup create` and `backup
// restore` at several moments: nothing half-made is accepted (a backup
// without its manifest is listed incomplete and refused; a half-restored
// directory is refused by serve), and the next run completes.
func TestKillDuringBackupAndRestore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	idFile := filepath.Join(t.TempDir(), "id.txt")
	// The fixture's identity as a file for the child.
	id, rcpt, _ := backup.NewIdentity()
	os.WriteFile(idFile, []byte(id+"\n"), 0o600)
	dest := t.TempDir()
	killed := 0
	for _, d := range []time.Duration{5 * time.Millisecond, 50 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond} {
		if !runKilled(t, d, "backup", "create", "--data", f.data, "--to", dest, "--backup-recipient", rcpt) {
			killed++
		}
		tg, _ := backup.OpenTarget(dest, nil)
		entries, err := backup.List(ctx, tg, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			_, verr := backup.Verify(ctx, tg, e.ID, backup.VerifyOptions{})
			if (e.Manifest == nil) != (verr != nil) {
				t.Fatalf("%s: listed %+v, verify %v", e.ID, e.Problem, verr)
			}
		}
	}
	if killed == 0 {
		t.Log("no backup was killed half-way on this machine (each finished first)")
	}
	var out testkit.Buffer
	if err := cli.Run(ctx, []string{"backup", "create", "--data", f.data, "--to", dest, "--backup-recipient", rcpt}, os.Getenv, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	url := lines[len(lines)-1]
	if !strings.HasPrefix(url, dest+"/backups/") {
		t.Fatalf("last line %q", url)
	}

	newDir := filepath.Join(t.TempDir(), "restored")
	for _, d := range []time.Duration{20 * time.Millisecond, 200 * time.Millisecond} {
		if runKilled(t, d, "backup", "restore", url, "--data", newDir, "--backup-identity", idFile) {
			// It finished before the kill: the run below restores
			// into another directory.
			newDir = filepath.Join(t.TempDir(), "restored")
			break
		}
		if _, err := os.Stat(filepath.Join(newDir, "medguard.db")); err == nil {
			if _, err := os.Stat(filepath.Join(newDir, backup.RestoringMarker)); err != nil {
				// The marker goes last: a kill that lands after that, before
				// the process exits, finds a finished restore. It must then
				// be whole: its note written and its log verifying.
				if _, err := os.Stat(filepath.Join(newDir, backup.RestoredFile)); err != nil {
					t.Fatal("a killed restore left a database with neither its marker nor its note")
				}
				var vout testkit.Buffer
				if err := cli.Run(ctx, []string{"audit", "verify", "--data", newDir}, os.Getenv, &vout, &vout); err != nil {
					t.Fatalf("a restore that removed its marker does not verify: %v\n%s", err, vout.String())
				}
				newDir = filepath.Join(t.TempDir(), "restored")
				break
			}
			err := cli.Run(ctx, []string{"serve", "--data", newDir, "--listen", "127.0.0.1:0"}, os.Getenv, &out, &out)
			if err == nil || !strings.Contains(err.Error(), "did not finish") {
				t.Fatalf("serve on a half-restored directory: %v", err)
			}
		}
	}
	out = testkit.Buffer{}
	if err := cli.Run(ctx, []string{"backup", "restore", url, "--data", newDir, "--backup-identity", idFile}, os.Getenv, &out, &out); err != nil {
		t.Fatalf("restore after a kill: %v\n%s", err, out.String())
	}
	for _, step := range []string{"verify", "data", "check (integrity, indexes)", "audit verify"} {
		if !strings.Contains(out.String(), step) {
			t.Fatalf("restore printed no %q timing:\n%s", step, out.String())
		}
	}
}
