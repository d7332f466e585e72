package pgbackup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"medguard/internal/pgbackup"
	"medguard/internal/pgbackup/pgtest"
)

// TestRepo2OffSiteRule checks which second repositories count as
// off-site: an S3 store unless its endpoint is this machine's loopback, a
// directory not, and whatever the operator declared.
func TestRepo2OffSiteRule(t *testing.T) {
	for _, c := range []struct {
		r    pgbackup.Repo2
		want bool
	}{
		{pgbackup.Repo2{Type: "s3", Endpoint: "oss-cn-shanghai.aliyuncs.com"}, true},
		{pgbackup.Repo2{Type: "s3", Endpoint: "10.8.0.20"}, true},
		{pgbackup.Repo2{Type: "s3", Endpoint: "localhost"}, false},
		{pgbackup.Repo2{Type: "s3", Endpoint: "127.0.0.1"}, false},
		{pgbackup.Repo2{Type: "s3", Endpoint: "::1"}, false},
		{pgbackup.Repo2{Type: "s3", Endpoint: "localhost", OffSite: "y"}, true},
		{pgbackup.Repo2{Type: "s3", Endpoint: "oss-cn-shanghai.aliyuncs.com", OffSite: "n"}, false},
		{pgbackup.Repo2{Type: "posix", Path: "/mnt/nas/pgbackrest"}, false},
		{pgbackup.Repo2{Type: "posix", Path: "/mnt/nas/pgbackrest", OffSite: "y"}, true},
	} {
		if got := c.r.IsOffSite(); got != c.want {
			t.Errorf("%+v: off-site %v, want %v", c.r, got, c.want)
		}
	}
}

// TestTwoRepositories backs up into a directory (repo1) and a real
// S3-compatible store over TLS (repo2, versitygw with a self-signed
// certificate), each encrypted under its own passphrase: the backup lands
// in both, its objects are in the bucket, the manifests name their
// repository, verification reads the bucket (and finds a changed object),
// a drill restores from repo2 alone, and the schedule's 3-2-1 state is
// met with the S3 repository off-site.
func TestTwoRepositories(t *testing.T) {
	ctx := context.Background()
	var s3 *pgtest.S3
	s := newSiteWith(t, func(dir string, c *pgbackup.Config) {
		s3 = pgtest.StartS3(t, dir)
		c.Repo2 = &pgbackup.Repo2{Type: "s3", Path: "/hospital/pg", Bucket: s3.Bucket, Endpoint: s3.Endpoint, Port: s3.Port,
			Region: s3.Region, Key: s3.Key, KeySecret: s3.Secret, CAFile: s3.CAFile,
			CipherPass: "the off-site repository's own passphrase: 7be21f",
			// The store runs on this machine in the test: declared off-site
			// as an operator declares a store in another building.
			OffSite: "y"}
	})
	text, err := os.ReadFile(s.tool.Config.File)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"repo2-type=s3", "repo2-s3-uri-style=path", "repo2-storage-ca-file=" + s3.CAFile,
		"repo2-cipher-type=aes-256-cbc", "# medguard: repo2-off-site=y"} {
		if !strings.Contains(string(text), want+"\n") {
			t.Fatalf("the configuration lacks %q:\n%s", want, text)
		}
	}
	back, err := pgbackup.ReadConfig(s.tool.Config.File, "medguard")
	if err != nil || back.Repo2 == nil || *back.Repo2 != *s.tool.Config.Repo2 {
		t.Fatalf("read back: %v %+v", err, back.Repo2)
	}
	s.register(t, 0, 10)

	m1, err := pgbackup.CreateIn(ctx, s.tool, 1, s.app.DB, pgbackup.Full, s.signer, s.manifest)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := pgbackup.CreateIn(ctx, s.tool, 2, s.app.DB, pgbackup.Full, s.signer, s.manifest)
	if err != nil {
		t.Fatal(err)
	}
	if m1.Repo != 1 || m2.Repo != 2 || m1.Label == m2.Label || m2.Cipher != "aes-256-cbc" ||
		!strings.HasPrefix(m2.RepoTarget, "pgbackrest:s3://medguard-pg/hospital/pg?endpoint=localhost:") {
		t.Fatalf("manifests: repo %d %s, repo %d %s %s %s", m1.Repo, m1.Label, m2.Repo, m2.Label, m2.Cipher, m2.RepoTarget)
	}
	info, err := s.tool.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := info.Backup(m2.Label); !ok || b.Repo != 2 {
		t.Fatalf("pgbackrest info: %+v", info.Backups)
	}

	// What arrived in the bucket, read with minio-go: the backup's own
	// files and the WAL the manifest lists, byte for byte as signed.
	var keys []string
	for o := range s3.Client.ListObjects(ctx, s3.Bucket, minio.ListObjectsOptions{Prefix: "hospital/pg/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	has := func(k string) bool {
		for _, x := range keys {
			if x == k {
				return true
			}
		}
		return false
	}
	if !has("hospital/pg/backup/medguard/" + m2.Label + "/backup.manifest") {
		t.Fatalf("the bucket holds no backup.manifest of %s: %v", m2.Label, keys)
	}
	var victim pgbackup.File
	for _, f := range m2.Files {
		if !has("hospital/pg/" + f.Path) {
			t.Fatalf("%s is in the manifest but not in the bucket", f.Path)
		}
		if victim.Path == "" && strings.Contains(f.Path, "/pg_data/base/") && f.Size > 64 {
			victim = f
		}
	}
	if _, err := os.Stat(filepath.Join(s.tool.Config.Repo, "backup", "medguard", m2.Label)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("repo2's backup is in repo1's directory too: %v", err)
	}
	t.Logf("repo2 backup %s: %d objects in the bucket, %d files in its manifest", m2.Label, len(keys), len(m2.Files))

	rep, err := pgbackup.Verify(ctx, s.tool, s.manifest, m2.Label, s.verifier)
	if err != nil || rep.Repo != 2 || rep.Files != len(m2.Files) {
		t.Fatalf("verify of repo2's backup: %v %+v", err, rep)
	}
	if rep, err := pgbackup.Verify(ctx, s.tool, s.manifest, m1.Label, s.verifier); err != nil || rep.Repo != 1 {
		t.Fatalf("verify of repo1's backup: %v", err)
	}

	// A drill of the latest backup in repo2: restored from the bucket,
	// WAL fetched from repo2 only.
	s.register(t, 10, 13)
	if err := s.tool.Check(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := pgbackup.RunDrill(ctx, pgbackup.DrillOptions{Tool: s.tool, ManifestDir: s.manifest, VerifierKey: s.verifier,
		Signer: s.signer, KeyFile: s.keyFile(t), Repo: 2, PGBin: s.bin})
	if err != nil {
		t.Fatalf("drill from repo2: %v", err)
	}
	if !d.OK || d.Backup != m2.Label || d.Patient != 13 || d.Target != s.tool.Config.RepoTarget(2) {
		t.Fatalf("drill from repo2: %+v", d)
	}
	t.Logf("drill from repo2: RTO %s, steps %v", d.RTO, d.Steps)

	// The schedule reads both repositories: a good backup in each, so
	// three copies, two media, one off-site. Nothing is due (the periods
	// are long), so it only reads.
	sctx, cancel := context.WithCancel(ctx)
	sc := pgbackup.NewScheduler(pgbackup.Schedule{Tool: s.tool, ManifestDir: s.manifest, DB: s.app.DB, Signer: s.signer,
		VerifierKey: s.verifier, FullEvery: 24 * time.Hour, IncrementalEvery: 15 * time.Minute, Tick: time.Hour})
	done := make(chan struct{})
	go func() { sc.Run(sctx); close(done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		st := sc.Status()
		if len(st.Targets) == 2 && !st.Targets[0].LastBackup.IsZero() && !st.Targets[1].LastBackup.IsZero() {
			if st.State.Copies != 3 || st.State.Media != 2 || st.State.OffSite != 1 || !st.State.Met ||
				st.Targets[1].Media != "object-store" || !st.Targets[1].OffSite || st.Targets[0].OffSite {
				t.Fatalf("3-2-1 state %+v, targets %+v", st.State, st.Targets)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule did not read both repositories: %+v", st)
		}
		time.Sleep(50 * time.Millisecond) // polling the schedule, not timing it
	}
	cancel()
	<-done

	// One byte of an object in the bucket changed: verify names it.
	o, err := s3.Client.GetObject(ctx, s3.Bucket, "hospital/pg/"+victim.Path, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(o)
	o.Close()
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if _, err := s3.Client.PutObject(ctx, s3.Bucket, "hospital/pg/"+victim.Path, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = pgbackup.Verify(ctx, s.tool, s.manifest, m2.Label, s.verifier)
	var ve *pgbackup.VerifyError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "changed: "+victim.Path) {
		t.Fatalf("verify of a changed object: %v", err)
	}
}
