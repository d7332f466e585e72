package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
)

// An entry written long ago (days before now), by 李娜 of 病案科.
func oldEntry(i int, days int) *audit.Entry {
	e := entry(i)
	e.Time = time.Now().UTC().Add(-time.Duration(days)*24*time.Hour + time.Duration(i)*time.Second).Truncate(time.Millisecond)
	e.Actor, e.ActorDepartment = "lina", "病案科"
	return e
}

// appendBundles appends entries in batches of size each: one bundle per batch.
func appendBundles(t *testing.T, l *audit.Log, entries []*audit.Entry, size int) {
	t.Helper()
	for i := 0; i < len(entries); i += size {
		if _, err := l.AppendBatch(context.Background(), entries[i:min(i+size, len(entries))]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRetentionMayOnlyRise(t *testing.T) {
	tb := newTamperable(t, 5, 0)
	ctx := context.Background()
	if d, err := audit.RetentionDays(ctx, tb.db); err != nil || d != audit.MinRetentionDays {
		t.Fatalf("default retention %d %v", d, err)
	}
	for _, days := range []int{0, 90, 179} {
		if err := audit.SetRetention(ctx, tb.db, days, time.Now()); !medguard.IsKind(err, medguard.Invalid) {
			t.Fatalf("retention %d days accepted: %v", days, err)
		}
	}
	if err := audit.SetRetention(ctx, tb.db, 365, time.Now()); err != nil {
		t.Fatal(err)
	}
	err := audit.SetRetention(ctx, tb.db, 200, time.Now())
	if !medguard.IsKind(err, medguard.Invalid) || !strings.Contains(err.Error(), "365") {
		t.Fatalf("lowering accepted: %v", err)
	}
	// The database refuses it too, and refuses deleting entries not archived.
	for _, q := range []string{`UPDATE audit_retention SET days = 180`, `DELETE FROM audit_retention`,
		`DELETE FROM audit_bundles`, `DELETE FROM audit_index`,
		// Young entries, or out of order, or beyond the log: refused.
		`INSERT INTO audit_archives (first_idx, end_idx, newest_ms, archived_at, manifest) VALUES (0, 5, ` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `, 0, 'x')`,
		`INSERT INTO audit_archives (first_idx, end_idx, newest_ms, archived_at, manifest) VALUES (2, 5, 0, 0, 'x')`,
		`INSERT INTO audit_archives (first_idx, end_idx, newest_ms, archived_at, manifest) VALUES (0, 6, 0, 0, 'x')`} {
		if _, err := tb.db.ExecContext(ctx, q); err == nil {
			t.Fatalf("%s: accepted", q)
		}
	}
	if d, _ := audit.RetentionDays(ctx, tb.db); d != 365 {
		t.Fatalf("retention now %d", d)
	}
}

func TestArchiveKeepsTheLogVerifiable(t *testing.T) {
	tb := newTamperable(t, 0, 0)
	ctx := context.Background()
	var entries []*audit.Entry
	for i := 0; i < 300; i++ {
		entries = append(entries, oldEntry(i, 400))
	}
	for i := 300; i < 340; i++ {
		entries = append(entries, oldEntry(i, 10)) // younger than the retention period
	}
	appendBundles(t, tb.log, entries, 20)
	if _, err := tb.cps.Latest(ctx); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "archive")
	now := time.Now()

	// First run: only entries before entry 150's time (a whole-bundle prefix).
	res, err := audit.Archive(ctx, tb.db, audit.ArchiveOptions{Dir: dir, Before: entries[150].Time, Now: now, Signer: tb.signer})
	if err != nil {
		t.Fatal(err)
	}
	if res.First != 0 || res.End != 140 || len(res.Files) != 3 {
		t.Fatalf("first run archived [%d, %d) %v", res.First, res.End, res.Files)
	}
	// Second run: everything older than the retention period, not the young.
	res, err = audit.Archive(ctx, tb.db, audit.ArchiveOptions{Dir: dir, Before: now.Add(24 * time.Hour), Now: now, Signer: tb.signer})
	if err != nil {
		t.Fatal(err)
	}
	if res.First != 140 || res.End != 300 {
		t.Fatalf("second run archived [%d, %d)", res.First, res.End)
	}
	if res, err := audit.Archive(ctx, tb.db, audit.ArchiveOptions{Dir: dir, Now: now, Signer: tb.signer}); err != nil || res.End != res.First {
		t.Fatalf("third run: %+v %v", res, err)
	}
	for _, f := range []string{"audit-000000000000-000000000140.jsonl", "audit-000000000140-000000000300.manifest"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v", f, err)
		}
	}

	// Archived entries are gone from the database, saying where they went;
	// the rest are there, proofs for all of them are still served.
	if _, err := tb.log.Entries(ctx, 10, 20); !medguard.IsKind(err, medguard.NotFound) || !strings.Contains(err.Error(), "archived") {
		t.Fatalf("archived read: %v", err)
	}
	got, err := tb.log.Entries(ctx, 300, 340)
	if err != nil || len(got) != 40 || !bytes.Equal(got[0].Leaf, entries[300].Leaf()) {
		t.Fatalf("young entries: %d %v", len(got), err)
	}
	if hits, _, err := tb.log.Search(ctx, audit.Query{Actor: "lina"}); err != nil || len(hits) != 40 {
		t.Fatalf("search after archiving: %d %v", len(hits), err)
	}
	if _, err := tb.log.InclusionProof(ctx, 5, 340); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.log.Append(ctx, oldEntry(340, 0), nil); err != nil {
		t.Fatal(err)
	}

	// Verifying needs the archive, and passes with it.
	if _, err := tb.verify(t, true); !errors.As(err, new(*audit.ArchiveNeededError)) {
		t.Fatalf("verify without the archive: %v", err)
	}
	set, err := audit.OpenArchive(dir, tb.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, tb.db, audit.VerifyOptions{VerifierKey: tb.signer.VerifierKey(), Archived: set, Checkpoints: tb.external(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 341 || rep.Archived != 300 {
		t.Fatalf("report %+v", rep)
	}

	// A changed archive file, a lost part or a foreign manifest is caught.
	leaves := filepath.Join(dir, "audit-000000000140-000000000300.jsonl")
	orig, _ := os.ReadFile(leaves)
	changed := bytes.Replace(orig, []byte(`"lina"`), []byte(`"liua"`), 1)
	if bytes.Equal(changed, orig) {
		t.Fatal("test did not change the file")
	}
	os.WriteFile(leaves, changed, 0o600)
	set, _ = audit.OpenArchive(dir, tb.signer.VerifierKey())
	_, err = audit.Verify(ctx, tb.db, audit.VerifyOptions{VerifierKey: tb.signer.VerifierKey(), Archived: set})
	wantTamper(t, err, 140)
	os.WriteFile(leaves, orig, 0o600)

	manifest := filepath.Join(dir, "audit-000000000000-000000000140.manifest")
	m, _ := os.ReadFile(manifest)
	os.Remove(manifest)
	if _, err := audit.OpenArchive(dir, tb.signer.VerifierKey()); err == nil {
		t.Fatal("a missing part went unnoticed")
	}
	forged := bytes.Replace(m, []byte("entries 0 140"), []byte("entries 0 141"), 1)
	os.WriteFile(manifest, forged, 0o600)
	if _, err := audit.OpenArchive(dir, tb.signer.VerifierKey()); !errors.As(err, new(*audit.TamperError)) {
		t.Fatalf("a forged manifest: %v", err)
	}
}
