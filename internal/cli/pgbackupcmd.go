package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard"
	"medguard/internal/keys"
	"medguard/internal/pgbackup"
	"medguard/internal/storage"
)

const backupPGHelp = `usage: medguard backup-pg <command> [flags]

Backups of a PostgreSQL database with pgBackRest (base backups and WAL
archiving), each with a manifest signed by the audit log's key that ties
it to the audit tree and the key versions it needs.

commands:
  init     write pgBackRest's configuration (an encrypted repository, and
           optionally a second one: --repo2-s3-bucket … for S3, or
           --repo2-path for another directory) and print the
           postgresql.conf lines that archive WAL into them
  check    create the stanza if needed and check archiving end to end
  create   take a backup (--type full, diff or incr) into every repository
           (or --repo N) and sign its manifest; the manifests' paths are
           the last lines printed
  verify   check a backup's signature, the SHA-256 of every repository file
           it consists of (and of the backups it builds on), then run
           pgbackrest verify over the repository
  restore  verify, then restore into a new data directory (--pg-data),
           optionally as of a time (--at); with --port, start the restored
           cluster there and check its audit log and key file
  list     list the signed manifests and pgBackRest's view of the backups,
           repository by repository
  drill    restore drill: verify, restore BACKUP (or --latest) into a
           scratch cluster, check it (counts, audit root, a sample of
           fields decrypted), measure RTO and RPO, remove it, and record
           the drill, signed, beside the manifests (a failed one too)

BACKUP is a backup label (20250101-020000F) or a manifest's path.
Exit status of verify and restore: 0 verified, 3 tampered or signed by
another key (the file or the signature is named), 1 could not check.
`

func backupPGCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, backupPGHelp)
		return usageError{errors.New("backup-pg: no command given")}
	}
	switch args[0] {
	case "init":
		return backupPGInit(args[1:], getenv, stdout, stderr)
	case "check":
		return backupPGCheck(ctx, args[1:], getenv, stdout, stderr)
	case "create":
		return backupPGCreate(ctx, args[1:], getenv, stdout, stderr)
	case "verify":
		return backupPGVerify(ctx, args[1:], getenv, stdout, stderr)
	case "restore":
		return backupPGRestore(ctx, args[1:], getenv, stdout, stderr)
	case "list":
		return backupPGList(ctx, args[1:], getenv, stdout, stderr)
	case "drill":
		return backupPGDrill(ctx, args[1:], getenv, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, backupPGHelp)
		return nil
	}
	fmt.Fprint(stderr, backupPGHelp)
	return usageError{fmt.Errorf("backup-pg: unknown command %q", args[0])}
}

// pgFlags are the flags every backup-pg command shares.
type pgFlags struct {
	config, stanza, runAs, manifests, data, verifier string
}

func (f *pgFlags) register(fs *flagSet) {
	runAs := ""
	if os.Geteuid() == 0 {
		runAs = "postgres"
	}
	fs.StringVar(&f.config, "pgbackrest-config", "/etc/pgbackrest/medguard.conf", "pgBackRest configuration file (backup-pg init writes it)")
	fs.StringVar(&f.stanza, "stanza", "medguard", "pgBackRest stanza: the cluster's name in the repository")
	fs.StringVar(&f.runAs, "run-as", runAs, "OS user pgbackrest runs as (PostgreSQL's), when medguard runs as root")
	fs.StringVar(&f.manifests, "manifests", "", "directory of medguard's signed manifests (default REPO/medguard/STANZA)")
	fs.StringVar(&f.data, "data", "medguard-data", "data directory: keys/audit-log.key signs and checks the manifests, keys/medguard.keys")
	fs.StringVar(&f.verifier, "verifier-key", "", "the audit log's note verifier key, or @FILE (default: from the log's signing key)")
}

// tool reads the configuration and returns the pgbackrest runner and the
// manifests' directory.
func (f *pgFlags) tool() (*pgbackup.Tool, string, error) {
	c, err := pgbackup.ReadConfig(f.config, f.stanza)
	if err != nil {
		return nil, "", err
	}
	dir := f.manifests
	if dir == "" {
		dir = pgbackup.DefaultManifestDir(c)
	}
	return &pgbackup.Tool{Config: c, RunAs: f.runAs}, dir, nil
}

func backupPGInit(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup-pg init", stderr)
	var f pgFlags
	f.register(fs)
	pgData := fs.String("pg-data", "", "the PostgreSQL cluster's data directory (required)")
	pgPort := fs.Int("pg-port", 5432, "the cluster's port")
	pgSocket := fs.String("pg-socket", "/var/run/postgresql", "the cluster's Unix socket directory")
	pgUser := fs.String("pg-user", "postgres", "the database role pgBackRest connects as (a superuser or one with pg_backup rights)")
	repo := fs.String("repo", "", "the repository directory, on another disk (required)")
	full := fs.Int("retention-full", 2, "full backups the repository keeps")
	diff := fs.Int("retention-diff", 0, "differential backups the repository keeps (0: pgBackRest's default)")
	passFile := fs.String("cipher-pass-file", "", "file holding the repository's passphrase (aes-256-cbc); not the data KEK. Without it a new random one is written to this file's default, CONFIG.pass")
	r2 := registerRepo2Flags(fs)
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard backup-pg init --pg-data DIR --repo DIR [flags]\n\n"+backupPGHelp)
	}
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if *pgData == "" || *repo == "" {
		return usageError{errors.New("backup-pg init: --pg-data and --repo are required")}
	}
	pass, err := cipherPass(*passFile, f.config)
	if err != nil {
		return err
	}
	repo2, err := r2.repo2(f.config)
	if err != nil {
		return err
	}
	c, err := pgbackup.Configure(pgbackup.Config{File: f.config, Stanza: f.stanza, PGData: absPath(*pgData), PGPort: *pgPort,
		PGSocket: *pgSocket, PGUser: *pgUser, Repo: absPath(*repo), RetentionFull: *full, RetentionDiff: *diff, CipherPass: pass,
		Repo2: repo2}, f.runAs)
	if err != nil {
		return err
	}
	t := &pgbackup.Tool{Config: c, RunAs: f.runAs}
	fmt.Fprintf(stdout, "wrote %s (stanza %s, repository %s, encrypted with aes-256-cbc)\n", c.File, c.Stanza, c.Repo)
	if c.Repo2 != nil {
		fmt.Fprintf(stdout, "second repository: %s (%s%s, encrypted with aes-256-cbc under its own passphrase)\n",
			c.RepoTarget(2), c.Repo2.Media(), map[bool]string{true: ", off-site", false: ", not off-site"}[c.Repo2.IsOffSite()])
	}
	fmt.Fprintf(stdout, "add to postgresql.conf, restart PostgreSQL, then run \"medguard backup-pg check\":\n")
	fmt.Fprintf(stdout, "wal_level = replica\narchive_mode = on\narchive_timeout = 60\narchive_command = '%s'\n", t.ArchiveCommand())
	return nil
}

// repo2Flags are init's flags for a second repository.
type repo2Flags struct {
	path, bucket, endpoint, region, key, secret, caFile, passFile, offSite string
	port, retention                                                        int
	noVerify                                                               bool
}

func registerRepo2Flags(fs *flagSet) *repo2Flags {
	r := &repo2Flags{}
	fs.StringVar(&r.bucket, "repo2-s3-bucket", "", "a second repository on an S3-compatible store: its bucket (with --repo2-s3-endpoint; keys from --repo2-s3-key and --repo2-s3-key-secret, best through their environment twins)")
	fs.StringVar(&r.endpoint, "repo2-s3-endpoint", "", "the S3 store's host name (pgBackRest checks it against the TLS certificate's DNS names), optionally HOST:PORT")
	fs.StringVar(&r.region, "repo2-s3-region", "us-east-1", "the S3 store's region")
	fs.StringVar(&r.key, "repo2-s3-key", "", "the S3 store's access key")
	fs.StringVar(&r.secret, "repo2-s3-key-secret", "", "the S3 store's secret key (prefer MEDGUARD_REPO2_S3_KEY_SECRET)")
	fs.StringVar(&r.caFile, "repo2-s3-ca-file", "", "certificate authority of the S3 store's TLS certificate (default the system's)")
	fs.BoolVar(&r.noVerify, "repo2-s3-no-verify-tls", false, "do not check the S3 store's TLS certificate (a test store only)")
	fs.StringVar(&r.path, "repo2-path", "", "with --repo2-s3-bucket: the path in the bucket (default /pgbackrest); without: a second repository in this directory (another disk or a mounted share)")
	fs.IntVar(&r.retention, "repo2-retention-full", 0, "full backups the second repository keeps (default --retention-full)")
	fs.StringVar(&r.passFile, "repo2-cipher-pass-file", "", "file holding the second repository's own passphrase (default a new random one in CONFIG.repo2.pass)")
	fs.StringVar(&r.offSite, "repo2-off-site", "", "y or n: whether the second repository is off-site, for the 3-2-1 state (default: S3 yes unless its endpoint is this machine, a directory no)")
	return r
}

// repo2 is the second repository the flags ask for, or nil.
func (r *repo2Flags) repo2(config string) (*pgbackup.Repo2, error) {
	if r.bucket == "" && r.path == "" {
		return nil, nil
	}
	out := &pgbackup.Repo2{Type: "posix", Path: r.path, RetentionFull: r.retention, OffSite: r.offSite}
	if r.bucket != "" {
		out.Type, out.Bucket, out.Region, out.Key, out.KeySecret, out.NoVerifyTLS = "s3", r.bucket, r.region, r.key, r.secret, r.noVerify
		out.Endpoint = r.endpoint
		if h, p, err := net.SplitHostPort(r.endpoint); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, usageError{fmt.Errorf("--repo2-s3-endpoint %q: the port is not a number", r.endpoint)}
			}
			out.Endpoint, out.Port = h, n
		}
		if r.caFile != "" {
			out.CAFile = absPath(r.caFile)
		}
	} else {
		out.Path = absPath(r.path)
	}
	if r.offSite != "" && r.offSite != "y" && r.offSite != "n" {
		return nil, usageError{fmt.Errorf("--repo2-off-site %q: want y or n", r.offSite)}
	}
	var err error
	if r.passFile != "" {
		out.CipherPass, err = cipherPass(r.passFile, "")
	} else {
		out.CipherPass, err = cipherPass("", config+".repo2")
	}
	return out, err
}

// cipherPass reads the repository passphrase from file, or makes a new
// random one and keeps it in CONFIG.pass (0600) for the operator to copy
// somewhere safe: without it the repository cannot be read.
func cipherPass(file, config string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		p := strings.TrimSpace(string(b))
		if len(p) < 20 {
			return "", errors.New("backup-pg init: the passphrase in --cipher-pass-file must be at least 20 characters")
		}
		return p, nil
	}
	path := config + ".pass"
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return p, os.WriteFile(path, []byte(p+"\n"), 0o600)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func backupPGCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup-pg check", stderr)
	var f pgFlags
	f.register(fs)
	fs.Usage = func() { usage(stderr, fs.FlagSet, "usage: medguard backup-pg check [flags]\n\n"+backupPGHelp) }
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	t, _, err := f.tool()
	if err != nil {
		return err
	}
	if err := t.StanzaCreate(ctx); err != nil {
		return err
	}
	began := time.Now()
	if err := t.Check(ctx); err != nil {
		return err
	}
	var where []string
	for _, n := range t.Config.Repos() {
		where = append(where, strings.TrimPrefix(t.Config.RepoTarget(n), "pgbackrest:"))
	}
	fmt.Fprintf(stdout, "pgBackRest stanza %s: archiving works (a WAL segment reached %s in %s)\n",
		t.Config.Stanza, strings.Join(where, " and "), time.Since(began).Round(time.Millisecond))
	return nil
}

func backupPGCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup-pg create", stderr)
	var f pgFlags
	f.register(fs)
	dsn := fs.String("db", "", "medguard's database: postgres://… (required; its audit head and key versions go in the manifest)")
	typ := fs.String("type", "full", "full, diff or incr")
	repoN := fs.Int("repo", 0, "back up into this repository only (1 or 2; default every configured one, each with its own manifest)")
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard backup-pg create --db postgres://… [flags]\n\n"+backupPGHelp)
	}
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	bt, err := pgbackup.ParseBackupType(*typ)
	if err != nil {
		return usageError{err}
	}
	if !strings.HasPrefix(*dsn, "postgres://") && !strings.HasPrefix(*dsn, "postgresql://") {
		return usageError{errors.New("backup-pg create: --db must name medguard's PostgreSQL database (for SQLite, use medguard backup)")}
	}
	t, dir, err := f.tool()
	if err != nil {
		return err
	}
	skey := getenv("MEDGUARD_AUDIT_KEY")
	if skey == "" {
		b, err := os.ReadFile(filepath.Join(f.data, "keys", "audit-log.key"))
		if err != nil {
			return fmt.Errorf("the audit log's signing key signs the manifest: %w", err)
		}
		skey = string(b)
	}
	signer, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return fmt.Errorf("the audit log's signing key: %w", err)
	}
	db, err := storage.Open(ctx, *dsn, f.data)
	if err != nil {
		return err
	}
	defer db.Close()
	repos := t.Config.Repos()
	if *repoN != 0 {
		if err := checkRepo(t, *repoN); err != nil {
			return err
		}
		repos = []int{*repoN}
	}
	var paths []string
	for _, n := range repos {
		began := time.Now()
		m, err := pgbackup.CreateIn(ctx, t, n, db, bt, signer, dir)
		if err != nil {
			return fmt.Errorf("repository %d (%s): %w", n, t.Config.RepoTarget(n), err)
		}
		var size int64
		for _, file := range m.Files {
			size += file.Size
		}
		fmt.Fprintf(stdout, "backup %s (%s) of %s into repository %d (%s) in %s: %d repository files, %s; WAL %s–%s; audit tree size %d root %s; KEK versions %s\n",
			m.Label, m.Type, db.Where, n, strings.TrimPrefix(m.RepoTarget, "pgbackrest:"), time.Since(began).Round(time.Millisecond), len(m.Files), byteSize(size),
			m.WALStart, m.WALStop, m.State.AuditSize, m.Root(), kekList(m.State.KEKVersions))
		paths = append(paths, pgbackup.ManifestPath(dir, m.Label))
	}
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	return nil
}

// checkRepo refuses a repository number the configuration lacks.
func checkRepo(t *pgbackup.Tool, n int) error {
	for _, r := range t.Config.Repos() {
		if r == n {
			return nil
		}
	}
	return usageError{fmt.Errorf("--repo %d: %s configures repositories %v", n, t.Config.File, t.Config.Repos())}
}

func kekList(ks []pgbackup.KEKUse) string {
	if len(ks) == 0 {
		return "(none)"
	}
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("v%d %s (%d data keys)", k.Version, k.Algorithm, k.DataKeys))
	}
	return strings.Join(parts, ", ")
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// backupArgLast moves a leading BACKUP argument after the flags, so that
// "backup-pg verify BACKUP --flag …" parses as the usage line shows it.
func backupArgLast(args []string) []string {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return append(append([]string(nil), args[1:]...), args[0])
	}
	return args
}

// backupLabel accepts a label or a manifest's path.
func backupLabel(arg, dir string) (label, mdir string) {
	if strings.HasSuffix(arg, ".manifest") {
		return strings.TrimSuffix(filepath.Base(arg), ".manifest"), filepath.Dir(arg)
	}
	return arg, dir
}

// verifyPG verifies a backup and prints what was checked; a tampered one
// is an exit status 3.
func verifyPG(ctx context.Context, f *pgFlags, arg string, getenv func(string) string, stdout io.Writer) (*pgbackup.Tool, *pgbackup.Report, error) {
	t, dir, err := f.tool()
	if err != nil {
		return nil, nil, err
	}
	vkey, err := verifierKey(f.verifier, f.data, getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("the manifests are checked with the audit log's verifier key: %w", err)
	}
	label, dir := backupLabel(arg, dir)
	began := time.Now()
	rep, err := pgbackup.Verify(ctx, t, dir, label, vkey)
	var ve *pgbackup.VerifyError
	var re *pgbackup.RepoVerifyError
	if errors.As(err, &ve) || errors.As(err, &re) {
		fmt.Fprintf(stdout, "BACKUP %s DOES NOT VERIFY.\n%v\n", label, err)
		return nil, nil, &ExitError{Code: ExitTampered, Err: fmt.Errorf("backup %s does not verify", label)}
	}
	if err != nil {
		return nil, nil, err
	}
	var chain []string
	for _, m := range rep.Chain {
		chain = append(chain, m.Label)
	}
	m := rep.Chain[0]
	fmt.Fprintf(stdout, "backup %s verified in %s: manifests signed by %s (%s), %d files (%s) in repository %d (%s) match their SHA-256, pgbackrest verify: ok\n",
		label, time.Since(began).Round(time.Millisecond), m.Signer, strings.Join(chain, " ← "), rep.Files, byteSize(rep.Bytes),
		rep.Repo, strings.TrimPrefix(t.Config.RepoTarget(rep.Repo), "pgbackrest:"))
	fmt.Fprintf(stdout, "audit tree at the backup: size %d, root %s; needs KEK versions %s\n", m.State.AuditSize, m.Root(), kekList(m.State.KEKVersions))
	return t, rep, nil
}

func backupPGVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup-pg verify", stderr)
	var f pgFlags
	f.register(fs)
	latest := fs.Bool("latest", false, "verify the latest backup of every repository (or of --repo N) instead of a named one")
	repoN := fs.Int("repo", 0, "with --latest: only this repository (1 or 2)")
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard backup-pg verify BACKUP|--latest [--repo N] [flags]\n\n"+backupPGHelp)
	}
	if err := parse(fs.FlagSet, backupArgLast(args), getenv); err != nil {
		return usageError{err}
	}
	if (fs.NArg() == 1) == *latest || fs.NArg() > 1 {
		return usageError{errors.New("backup-pg verify: give one BACKUP (a label or a manifest's path) or --latest")}
	}
	if !*latest {
		_, _, err := verifyPG(ctx, &f, fs.Arg(0), getenv, stdout)
		return err
	}
	labels, err := latestLabels(ctx, &f, *repoN)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range labels {
		if _, _, err := verifyPG(ctx, &f, l, getenv, stdout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// latestLabels are the labels of the newest good backup in each
// repository (or in repository only, when not 0).
func latestLabels(ctx context.Context, f *pgFlags, only int) ([]string, error) {
	t, _, err := f.tool()
	if err != nil {
		return nil, err
	}
	repos := t.Config.Repos()
	if only != 0 {
		if err := checkRepo(t, only); err != nil {
			return nil, err
		}
		repos = []int{only}
	}
	info, err := t.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range repos {
		b, ok := info.Latest(n)
		if !ok {
			return nil, fmt.Errorf("no backup in repository %d (%s)", n, t.Config.RepoTarget(n))
		}
		out = append(out, b.Label)
	}
	return out, nil
}

func backupPGRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup-pg restore", stderr)
	var f pgFlags
	f.register(fs)
	pgData := fs.String("pg-data", "", "the new cluster's data directory (required; must not exist or be empty)")
	at := fs.String("at", "", "restore as of this time (RFC 3339, e.g. 2025-03-01T14:30:00+08:00); default: all archived WAL")
	port := fs.Int("port", 0, "start the restored cluster on this port (archive_mode off) and check it")
	pgBin := fs.String("pg-bin", "", "PostgreSQL's server binaries, for --port (default the newest /usr/lib/postgresql/*/bin)")
	dbName := fs.String("database", "medguard", "medguard's database in the restored cluster, for --port")
	keyFile := fs.String("key-file", "", "key file (default DATA/keys/medguard.keys; MEDGUARD_KEYS may hold its contents)")
	latest := fs.Bool("latest", false, "restore the latest backup of --repo (default repository 1) instead of a named one")
	repoN := fs.Int("repo", 0, "the repository to restore from (1 or 2): with --latest its latest backup; a named backup must be in it (its manifest says where)")
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard backup-pg restore BACKUP|--latest --pg-data NEWDIR [--repo N] [--at TIME] [--port N] [flags]\n\n"+backupPGHelp)
	}
	if err := parse(fs.FlagSet, backupArgLast(args), getenv); err != nil {
		return usageError{err}
	}
	if (fs.NArg() == 1) == *latest || fs.NArg() > 1 || *pgData == "" {
		return usageError{errors.New("backup-pg restore: give one BACKUP (or --latest) and --pg-data NEWDIR")}
	}
	arg := fs.Arg(0)
	if *latest {
		labels, err := latestLabels(ctx, &f, max(*repoN, 1))
		if err != nil {
			return err
		}
		arg = labels[0]
	}
	var target time.Time
	if *at != "" {
		var err error
		if target, err = time.Parse(time.RFC3339, *at); err != nil {
			return usageError{fmt.Errorf("--at: %w", err)}
		}
	}
	newDir := absPath(*pgData)
	if entries, err := os.ReadDir(newDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("backup-pg restore: %s is not empty: a restore goes into a new directory", newDir)
	}
	kf, err := loadKeyFile(*keyFile, f.data, getenv)
	if err != nil {
		return err
	}
	// Nothing is written before the backup and the chain it builds on
	// verify, and before the key file is known to hold every KEK version
	// the backup's data keys need.
	stepStart := time.Now()
	t, rep, err := verifyPG(ctx, &f, arg, getenv, stdout)
	if err != nil {
		return err
	}
	m := rep.Chain[0]
	if *repoN != 0 && *repoN != rep.Repo {
		return usageError{fmt.Errorf("backup-pg restore: backup %s is in repository %d, not %d", m.Label, rep.Repo, *repoN)}
	}
	for _, k := range m.State.KEKVersions {
		if _, ok := kf.KEKVersion(k.Version); !ok {
			return fmt.Errorf("backup-pg restore: backup %s needs KEK version %d, which the key file lacks: restore refused", m.Label, k.Version)
		}
	}
	timings := [][2]string{{"verify", time.Since(stepStart).Round(time.Millisecond).String()}}
	// The named backup is restored, then WAL replayed up to --at: a time
	// before the backup ended needs an earlier backup.
	if !target.IsZero() && target.Before(m.Stop) {
		return fmt.Errorf("backup-pg restore: --at %s is before backup %s ended (%s): choose an earlier backup",
			target.Format(time.RFC3339), m.Label, m.Stop.Format(time.RFC3339))
	}
	set := m.Label
	stepStart = time.Now()
	if err := t.Restore(ctx, pgbackup.RestoreOptions{DataDir: newDir, Set: set, Target: target, Port: *port, Repo: rep.Repo}); err != nil {
		return err
	}
	timings = append(timings, [2]string{"pgbackrest restore", time.Since(stepStart).Round(time.Millisecond).String()})
	if *port == 0 {
		printTimings(stdout, timings)
		fmt.Fprintf(stdout, "restored backup %s from repository %d into %s; start PostgreSQL on it (it replays WAL%s, then promotes), then run \"medguard audit verify --db …\"\n",
			m.Label, rep.Repo, newDir, atSuffix(target))
		return nil
	}
	bin := *pgBin
	if bin == "" {
		if bin, err = pgbackup.NewestPGBin(); err != nil {
			return err
		}
	}
	stepStart = time.Now()
	cmd := []string{filepath.Join(bin, "pg_ctl"), "-D", newDir, "-l", newDir + ".log", "-w", "-t", "3600", "start"}
	if err := runAs(ctx, f.runAs, cmd...); err != nil {
		return fmt.Errorf("starting the restored cluster (log %s.log): %w", newDir, err)
	}
	dsn := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", t.Config.PGUser, *port, *dbName)
	db, err := waitPromoted(ctx, dsn, f.data)
	if err != nil {
		return err
	}
	defer db.Close()
	timings = append(timings, [2]string{"WAL replay until the cluster answers", time.Since(stepStart).Round(time.Millisecond).String()})
	stepStart = time.Now()
	audited, err := pgbackup.CheckRestored(ctx, db, m)
	if err != nil {
		return &ExitError{Code: ExitTampered, Err: err}
	}
	if err := keys.NewKeyring(db, kf, medguard.SystemClock{}).Check(ctx); err != nil {
		return fmt.Errorf("the restored database: %w", err)
	}
	timings = append(timings, [2]string{"audit verify and key check", time.Since(stepStart).Round(time.Millisecond).String()})
	printTimings(stdout, timings)
	fmt.Fprintf(stdout, "restored cluster on port %d (data %s): audit log intact, %d entries, root at the backup's size %d matches the manifest; the key file opens its data keys\n",
		*port, newDir, audited.Size, m.State.AuditSize)
	fmt.Fprintf(stdout, "stop it with: pg_ctl -D %s stop\n", newDir)
	return nil
}

func atSuffix(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " up to " + t.Format(time.RFC3339)
}

func printTimings(w io.Writer, timings [][2]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range timings {
		fmt.Fprintf(tw, "  %s\t%s\n", s[0], s[1])
	}
	tw.Flush()
}

// loadKeyFile reads the key file a restore checks the backup against.
func loadKeyFile(path, data string, getenv func(string) string) (*keys.KeyFile, error) {
	if v := getenv("MEDGUARD_KEYS"); v != "" && path == "" {
		return keys.ParseKeyFile([]byte(v))
	}
	if path == "" {
		path = filepath.Join(data, "keys", "medguard.keys")
	}
	kf, err := keys.LoadKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("the key file the restored data needs: %w", err)
	}
	return kf, nil
}

// runAs runs a command as the PostgreSQL user (when medguard is root).
func runAs(ctx context.Context, user string, argv ...string) error {
	if user != "" && os.Geteuid() == 0 {
		argv = append([]string{"runuser", "-u", user, "--"}, argv...)
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// waitPromoted waits until the restored cluster answers out of recovery.
func waitPromoted(ctx context.Context, dsn, data string) (*storage.DB, error) {
	deadline := time.Now().Add(time.Hour)
	for {
		db, err := storage.Open(ctx, dsn, data)
		if err == nil {
			var inRecovery bool
			if err = db.QueryRowContext(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err == nil && !inRecovery {
				return db, nil
			}
			db.Close()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the restored cluster did not come out of recovery: %v", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func backupPGList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup-pg list", stderr)
	var f pgFlags
	f.register(fs)
	fs.Usage = func() { usage(stderr, fs.FlagSet, "usage: medguard backup-pg list [flags]\n\n"+backupPGHelp) }
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	t, dir, err := f.tool()
	if err != nil {
		return err
	}
	vkey, err := verifierKey(f.verifier, f.data, getenv)
	if err != nil {
		return fmt.Errorf("the manifests are checked with the audit log's verifier key: %w", err)
	}
	listed, err := pgbackup.List(dir, vkey)
	if err != nil {
		return err
	}
	info, err := t.Info(ctx)
	if err != nil {
		return err
	}
	inRepo := map[string]pgbackup.BackupInfo{}
	for _, b := range info.Backups {
		inRepo[b.Label] = b
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tTYPE\tREPO\tSTARTED\tTOOK\tREPO SIZE\tAUDIT SIZE\tMANIFEST\tIN REPOSITORY")
	seen := map[string]bool{}
	for _, l := range listed {
		seen[l.Label] = true
		b, ok := inRepo[l.Label]
		where := "yes"
		if !ok {
			where = "no (expired)"
		}
		if l.Err != nil {
			fmt.Fprintf(tw, "%s\t\t\t\t\t\t\tDOES NOT VERIFY: %v\t%s\n", l.Label, l.Err, where)
			continue
		}
		m := l.Manifest
		n := m.Repo
		if n == 0 {
			n = 1
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\tsigned by %s\t%s\n", m.Label, m.Type, n, m.Start.Local().Format("2006-01-02 15:04:05"),
			m.Stop.Sub(m.Start), byteSize(b.RepoSize), m.State.AuditSize, m.Signer, where)
	}
	for _, b := range info.Backups {
		if !seen[b.Label] {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t\tNONE (not taken by medguard)\tyes\n", b.Label, b.Type, b.Repo,
				b.Start.Local().Format("2006-01-02 15:04:05"), b.Stop.Sub(b.Start), byteSize(b.RepoSize))
		}
	}
	tw.Flush()
	for _, n := range t.Config.Repos() {
		count := 0
		for _, b := range info.Backups {
			if b.Repo == n {
				count++
			}
		}
		r := info.Repos[n]
		fmt.Fprintf(stdout, "repository %d: %s, %s, %s, %d backups, status %s", n, strings.TrimPrefix(t.Config.RepoTarget(n), "pgbackrest:"),
			repoMedia(t.Config, n), r.Cipher, count, r.Status)
		for _, a := range info.Archives {
			if a.Repo == n {
				fmt.Fprintf(stdout, "; WAL archive %s: %s … %s", a.ID, a.Min, a.Max)
			}
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

// repoMedia says what medium repository n is and whether it is off-site.
func repoMedia(c pgbackup.Config, n int) string {
	if n != 2 || c.Repo2 == nil {
		return "disk, on site"
	}
	return c.Repo2.Media() + map[bool]string{true: ", off-site", false: ", on site"}[c.Repo2.IsOffSite()]
}
