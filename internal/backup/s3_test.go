package backup_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard/internal/backup"
)

// startVersityGW starts a real S3-compatible server (versitygw, posix
// backend in a temporary directory) and returns a target URL on it. With
// MEDGUARD_TEST_S3=1 (CI) a missing versitygw fails the test.
func startVersityGW(t *testing.T) (string, func(string) string) {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		if gobin := filepath.Join(os.Getenv("HOME"), "go", "bin", "versitygw"); fileExists(gobin) {
			bin, err = gobin, nil
		}
	}
	if err != nil {
		if os.Getenv("MEDGUARD_TEST_S3") == "1" {
			t.Fatal("MEDGUARD_TEST_S3=1 but versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		}
		t.Skip("versitygw not installed; set MEDGUARD_TEST_S3=1 to require it")
	}
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "medguard"), 0o700)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--access", "medguardtest", "--secret", "medguard-test-secret", "--port", addr, "posix", root)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			t.Fatal("versitygw did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	env := map[string]string{"MEDGUARD_BACKUP_S3_ACCESS_KEY": "medguardtest", "MEDGUARD_BACKUP_S3_SECRET_KEY": "medguard-test-secret"}
	return fmt.Sprintf("s3://medguard/hospital?endpoint=%s&insecure=1", addr), func(k string) string { return env[k] }
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestS3AndDirectoryAtOnce writes a backup to a directory and a real S3
// server at once, checks what arrived on the S3 side, and restores from it.
func TestS3AndDirectoryAtOnce(t *testing.T) {
	f := newFixture(t)
	url, getenv := startVersityGW(t)
	s3, err := backup.OpenTarget(url, getenv)
	if err != nil {
		t.Fatal(err)
	}
	dir := dirTarget(t)
	res := f.create(t, dir, s3)
	if !strings.HasPrefix(res.URLs[1], "s3://medguard/hospital") {
		t.Fatalf("URL %s", res.URLs[1])
	}
	ctx := context.Background()
	objs, err := s3.List(ctx, "backups/"+res.Manifest.ID+"/")
	if err != nil || len(objs) != len(res.Manifest.Pieces)+1 {
		t.Fatalf("S3 holds %v (%v), want %d pieces and the manifest", objs, err, len(res.Manifest.Pieces))
	}
	tspec, id, err := backup.SplitBackupURL(res.URLs[1])
	if err != nil || id != res.Manifest.ID {
		t.Fatalf("split %s: %s %s %v", res.URLs[1], tspec, id, err)
	}
	if _, err := backup.Verify(ctx, s3, id, backup.VerifyOptions{Identity: f.identity}); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, s3, id, backup.RestoreOptions{DataDir: filepath.Join(t.TempDir(), "r"), Identity: f.identity}); err != nil {
		t.Fatal(err)
	}
	st := backup.ComputeState([]backup.Target{dir, s3}, nil)
	if st.Copies != 3 || st.Media != 2 {
		t.Fatalf("3-2-1 %+v", st)
	}
}
