package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"medguard/internal/audit"
	"medguard/internal/storage"
	"medguard/internal/trail"
)

const auditHelp = `usage: medguard audit <command> [flags]

commands:
  verify   recompute the whole audit tree from the stored entries and check it
           against the tree, every stored checkpoint and the checkpoints kept
           outside the database, and the search index against the entries;
           exit 0 only if the log is intact
  key      print the checkpoints' note verifier key, for auditors
  export   write entries as JSON lines, with the signed checkpoint they end at
  archive  move entries older than the retention period (at least 180 days)
           out of the database into signed files that verify still checks

Exit status of verify: 0 intact, 3 tampered (the first bad index is named),
1 could not check, 2 bad usage.
`

// ExitTampered is the exit status of "audit verify" for a tampered log.
const ExitTampered = 3

func auditCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditHelp)
		return usageError{errors.New("audit: no command given")}
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, args[1:], getenv, stdout, stderr)
	case "key":
		return auditKey(args[1:], getenv, stdout, stderr)
	case "export":
		return auditExport(ctx, args[1:], getenv, stdout, stderr)
	case "archive":
		return auditArchive(ctx, args[1:], getenv, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, auditHelp)
		return nil
	}
	fmt.Fprint(stderr, auditHelp)
	return usageError{fmt.Errorf("audit: unknown command %q", args[0])}
}

// openForAudit opens an installation's database read-mostly for the audit
// commands (no migrations: it may be a copy under examination).
func openForAudit(ctx context.Context, data, db string) (*storage.DB, error) {
	if db == "" {
		path := filepath.Join(data, "medguard.db")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no database at %s: %w", path, err)
		}
	}
	return storage.Open(ctx, db, data)
}

// verifierKey finds the checkpoints' verifier key: given, or derived from
// the signing key (MEDGUARD_AUDIT_KEY or DATA/keys/audit-log.key).
func verifierKey(given, data string, getenv func(string) string) (string, error) {
	if strings.HasPrefix(given, "@") {
		b, err := os.ReadFile(given[1:])
		if err != nil {
			return "", err
		}
		given = string(b)
	}
	if given = strings.TrimSpace(given); given != "" {
		return given, nil
	}
	signer, err := loadSigner(data, getenv)
	if err != nil {
		return "", err
	}
	return signer.VerifierKey(), nil
}

// loadSigner reads the log's signing key: MEDGUARD_AUDIT_KEY, or
// DATA/keys/audit-log.key.
func loadSigner(data string, getenv func(string) string) (*audit.Signer, error) {
	skey := getenv("MEDGUARD_AUDIT_KEY")
	if skey == "" {
		b, err := os.ReadFile(filepath.Join(data, "keys", "audit-log.key"))
		if err != nil {
			return nil, err
		}
		skey = string(b)
	}
	return audit.NewSigner(strings.TrimSpace(skey))
}

// readCheckpoints reads checkpoints from a file: the JSON lines of
// DATA/checkpoints.log, or one note as /api/v1/audit/checkpoint serves it.
func readCheckpoints(path string) ([]audit.Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return audit.ReadCheckpointFile(f)
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func auditVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("audit verify", stderr)
	data := fs.String("data", "medguard-data", "data directory (its database, checkpoints.log and keys/audit-log.key)")
	dsn := fs.String("db", "", "database, if not SQLite in --data: postgres://…")
	key := fs.String("verifier-key", "", "the checkpoints' note verifier key, or @FILE: an auditor's original key, or any later one; "+
		"the transition checkpoints of key rotations are followed (default: from the log's signing key)")
	var extra stringList
	fs.Var(&extra, "checkpoint", "a checkpoint kept earlier (a note file or checkpoints JSON lines); may be repeated")
	archiveDir := fs.String("archive", "", "directory of the files archived entries went to (default DATA/audit-archive)")
	fs.Usage = func() { usage(stderr, fs.FlagSet, "usage: medguard audit verify [flags]\n\n"+auditHelp) }
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	vkey, err := verifierKey(*key, *data, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "warning: no verifier key (%v): checkpoint signatures are not checked\n", err)
	}
	var outside []audit.Checkpoint
	if cps, err := readCheckpoints(filepath.Join(*data, "checkpoints.log")); err == nil {
		outside = append(outside, cps...)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, path := range extra {
		cps, err := readCheckpoints(path)
		if err != nil {
			return fmt.Errorf("--checkpoint %s: %w", path, err)
		}
		outside = append(outside, cps...)
	}
	if vkey == "" {
		for _, cp := range outside {
			if cp.Root == nil {
				return usageError{errors.New("a checkpoint note needs --verifier-key to be read")}
			}
		}
	}
	db, err := openForAudit(ctx, *data, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	opts := audit.VerifyOptions{VerifierKey: vkey, Checkpoints: outside}
	if *archiveDir == "" {
		*archiveDir = filepath.Join(*data, "audit-archive")
	}
	var te *audit.TamperError
	if _, err := os.Stat(*archiveDir); err == nil && vkey != "" {
		// Parts archived before a rotation of the log's key are signed by
		// the retired key: any key of the chain may have signed them.
		stored, err := audit.StoredCheckpoints(ctx, db)
		if err != nil {
			return err
		}
		chain, err := audit.FollowKeys(vkey, append(stored, outside...))
		if err != nil {
			fmt.Fprintf(stdout, "THE AUDIT LOG'S KEYS DO NOT VERIFY.\n%v\n", err)
			return &ExitError{Code: ExitTampered, Err: err}
		}
		opts.Archived, err = audit.OpenArchive(*archiveDir, chain.VerifierKeys()...)
		if errors.As(err, &te) {
			fmt.Fprintf(stdout, "THE AUDIT ARCHIVE DOES NOT VERIFY.\n%s\n", te.Reason)
			return &ExitError{Code: ExitTampered, Err: fmt.Errorf("audit archive tampered: %s", te.Reason)}
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "verifying the audit log in %s …\n", db.Where)
	// A large log takes minutes: say how far it got, at most every 5 s.
	began, lastSaid := time.Now(), time.Now()
	opts.Progress = func(done uint64) {
		if now := time.Now(); now.Sub(lastSaid) >= 5*time.Second {
			lastSaid = now
			fmt.Fprintf(stderr, "verified %d entries, %.0f entries/s\n", done, float64(done)/now.Sub(began).Seconds())
		}
	}
	rep, err := audit.Verify(ctx, db, opts)
	if errors.As(err, &te) {
		fmt.Fprintf(stdout, "THE AUDIT LOG DOES NOT VERIFY.\nfirst bad index: %d\n%s\n", te.Index, te.Reason)
		return &ExitError{Code: ExitTampered, Err: fmt.Errorf("audit log tampered at index %d", te.Index)}
	}
	if errors.Is(err, audit.ErrBadCheckpoint) {
		fmt.Fprintf(stdout, "A CHECKPOINT DOES NOT VERIFY.\n%v\n", err)
		return &ExitError{Code: ExitTampered, Err: err}
	}
	if err != nil {
		return err
	}
	if len(rep.Keys) > 1 {
		fmt.Fprintf(stdout, "the log's signing key was rotated; the chain of keys followed from %s:\n%s",
			audit.KeyName(vkey), rep.Keys)
	}
	// The key history kept beside the key must say what the transition
	// checkpoints say.
	if history, err := audit.ReadKeyHistory(auditKeyPaths(*data).history); err != nil {
		return err
	} else if len(rep.Keys) > 0 && (len(history) > 0 || len(rep.Keys) > 1) {
		if err := rep.Keys.CheckHistory(history); err != nil {
			fmt.Fprintf(stdout, "THE KEY HISTORY DOES NOT MATCH THE LOG.\n%v\n", err)
			return &ExitError{Code: ExitTampered, Err: err}
		}
	}
	root := "(empty)"
	if rep.Root != nil {
		root = base64.StdEncoding.EncodeToString(rep.Root)
	}
	fmt.Fprintf(stdout, "audit log intact: %d entries, root %s\n%d checkpoints matched (%d given from outside the database), %s (%.0f entries/s)\n",
		rep.Size, root, rep.Checkpoints, rep.External, rep.Took.Round(time.Millisecond), rep.Rate())
	if rep.Archived > 0 {
		fmt.Fprintf(stdout, "of which %d entries [0, %d) from the archive files in %s\n", rep.Archived, rep.Archived, *archiveDir)
	}
	return nil
}

func auditArchive(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("audit archive", stderr)
	data := fs.String("data", "medguard-data", "data directory (its database and keys/audit-log.key)")
	dsn := fs.String("db", "", "database, if not SQLite in --data: postgres://…")
	to := fs.String("to", "", "directory for the archive files (default DATA/audit-archive)")
	before := fs.String("before", "", "archive only entries written before this date (YYYY-MM-DD, or RFC 3339); "+
		"never entries younger than the retention period")
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard audit archive --before DATE [flags]\n\n"+
			"Moves the oldest audit entries — whole commits, each entry written before DATE and older than the\n"+
			"retention period — into signed files, after verifying the whole log. Keep the files: verify needs them.")
	}
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if *before == "" {
		return usageError{errors.New("--before is required: archive entries written before which date?")}
	}
	cut, err := time.ParseInLocation(time.DateOnly, *before, time.UTC)
	if err != nil {
		if cut, err = time.Parse(time.RFC3339, *before); err != nil {
			return usageError{fmt.Errorf("--before %q: not YYYY-MM-DD or RFC 3339", *before)}
		}
	}
	if *to == "" {
		*to = filepath.Join(*data, "audit-archive")
	}
	signer, err := loadSigner(*data, getenv)
	if err != nil {
		return fmt.Errorf("the log's signing key signs the archive: %w", err)
	}
	db, err := openForAudit(ctx, *data, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	days, err := audit.RetentionDays(ctx, db)
	if err != nil {
		return err
	}
	res, err := audit.Archive(ctx, db, audit.ArchiveOptions{Dir: *to, Before: cut, Now: time.Now(), Signer: signer})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "retention %d days: entries written before %s may be archived\n", days, res.Cutoff.UTC().Format(time.RFC3339))
	if res.End == res.First {
		fmt.Fprintf(stdout, "nothing to archive: the oldest entry in the database (%d) is not old enough\n", res.First)
		return nil
	}
	fmt.Fprintf(stdout, "archived entries %d to %d (newest written %s) to:\n", res.First, res.End-1, res.Newest.Format(time.RFC3339))
	for _, f := range res.Files {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	return nil
}

func auditKey(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("audit key", stderr)
	data := fs.String("data", "medguard-data", "data directory (keys/audit-log.key)")
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	k, err := verifierKey("", *data, getenv)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k)
	return nil
}

func auditExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("audit export", stderr)
	data := fs.String("data", "medguard-data", "data directory")
	dsn := fs.String("db", "", "database, if not SQLite in --data: postgres://…")
	start := fs.Uint64("start", 0, "first index")
	end := fs.Uint64("end", 0, "index after the last (default: the size of the latest signed checkpoint)")
	out := fs.String("out", "-", "file for the entries as JSON lines (- for standard output)")
	cpOut := fs.String("checkpoint-out", "", "file for the signed checkpoint the export ends at")
	fs.Usage = func() { usage(stderr, fs.FlagSet, "usage: medguard audit export [flags]") }
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	db, err := openForAudit(ctx, *data, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	cps, err := audit.StoredCheckpoints(ctx, db)
	if err != nil {
		return err
	}
	var cp *audit.Checkpoint
	if len(cps) > 0 {
		cp = &cps[len(cps)-1]
	}
	if *end == 0 {
		if cp == nil {
			return errors.New("the log has no signed checkpoint yet; give --end")
		}
		*end = cp.Size
	}
	w := stdout
	if *out != "-" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	for i := *start; i < *end; {
		got, err := audit.ReadEntries(ctx, db, i, *end)
		if err != nil {
			return err
		}
		if len(got) == 0 {
			return fmt.Errorf("the log ends at %d, before --end %d", i, *end)
		}
		for _, s := range got {
			if err := enc.Encode(trail.Entry{Index: s.Index, Leaf: s.Leaf, Entry: s.Entry.Fields()}); err != nil {
				return err
			}
			n++
		}
		i = got[len(got)-1].Index + 1
	}
	if *cpOut != "" {
		if cp == nil || cp.Size != *end {
			return fmt.Errorf("no signed checkpoint of size %d to write", *end)
		}
		if err := os.WriteFile(*cpOut, []byte(cp.Note), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "exported %d entries [%d, %d)\n", n, *start, *end)
	return nil
}
