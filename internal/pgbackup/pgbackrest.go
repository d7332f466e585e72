// Package pgbackup backs up medguard's PostgreSQL database by driving
// pgBackRest (base backups and continuous WAL archiving), and adds what
// medguard needs on top: a signed manifest per backup that ties it to the
// audit tree (size and root when the backup began) and to the KEK versions
// its data keys are wrapped under, with the SHA-256 of every repository
// file the backup consists of; verification of those manifests together
// with "pgbackrest verify"; point-in-time restores into a new data
// directory; restore drills into a throw-away scratch cluster, recorded as
// signed records beside the manifests; and serve's schedule (full and
// incremental backups, drills, health as a backup.Reporter) run by the one
// server of several that holds a PostgreSQL advisory lock.
//
// It must not implement physical backup, WAL shipping, compression or
// repository encryption itself: pgBackRest does all of that. It never
// reconfigures or restarts a running PostgreSQL server; it writes
// pgBackRest's configuration and tells the operator which two lines
// postgresql.conf needs. It reads medguard's live tables only to record
// the audit head, the counts and the key versions in use, never to change
// them; it decrypts patient data only in a drill's scratch copy, through
// package records, and keeps none of it. It does not handle the embedded
// SQLite database (package backup does).
package pgbackup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is a pgBackRest configuration for one stanza (one PostgreSQL
// cluster) with a repository in a local directory (repo1) and optionally a
// second one (repo2) on an S3-compatible store or in another directory, as
// Configure writes it and ReadConfig reads it back.
type Config struct {
	// File is the configuration file's path (pgbackrest.conf).
	File string
	// Stanza names the cluster in the repository (default "medguard").
	Stanza string
	// PGData is the cluster's data directory (pg1-path), PGPort its port
	// (pg1-port, default 5432), PGSocket its Unix socket directory
	// (pg1-socket-path) and PGUser the database role pgBackRest connects
	// as (pg1-user, default "postgres").
	PGData   string
	PGPort   int
	PGSocket string
	PGUser   string
	// Repo is the repository's directory (repo1-path): another disk.
	Repo string
	// RetentionFull and RetentionDiff are how many full and differential
	// backups the repository keeps (repo1-retention-full, -diff); older
	// ones, and the WAL only they need, are expired after each backup.
	RetentionFull int
	RetentionDiff int
	// CipherPass, if set, encrypts the repository with pgBackRest's
	// aes-256-cbc cipher under this passphrase (repo1-cipher-pass). It must
	// not be the data KEK.
	CipherPass string
	// LogPath and LockPath are pgBackRest's log and lock directories
	// (default REPO/../pgbackrest-log and REPO/../pgbackrest-lock).
	LogPath  string
	LockPath string
	// ProcessMax is how many processes compress and copy (default 1).
	ProcessMax int
	// Repo2, if not nil, is a second repository: pgBackRest archives every
	// WAL segment into both, and each backup is taken into one of them.
	Repo2 *Repo2
}

// Repo2 is the second repository (pgBackRest's repo2-* options).
type Repo2 struct {
	// Type is "s3" (an S3-compatible object store) or "posix" (a
	// directory, say a mounted share).
	Type string
	// Path is the directory (posix), or the path inside the bucket (s3,
	// default /pgbackrest).
	Path string
	// Bucket, Endpoint (host name, without the port: pgBackRest checks
	// it against the certificate's DNS names), Port (repo2-storage-port,
	// default 443) and Region (default us-east-1) say where the store is;
	// Key and KeySecret are its access keys. The URI style is always
	// "path" (bucket in the path, as S3-compatible stores expect).
	Bucket, Endpoint, Region string
	Port                     int
	Key, KeySecret           string
	// CAFile is the certificate authority the store's TLS certificate is
	// checked against (repo2-storage-ca-file; default the system's).
	// pgBackRest speaks only TLS to S3. NoVerifyTLS turns the check off
	// (repo2-storage-verify-tls=n): only for a test store.
	CAFile      string
	NoVerifyTLS bool
	// CipherPass encrypts this repository (aes-256-cbc) under its own
	// passphrase (repo2-cipher-pass).
	CipherPass string
	// RetentionFull is how many full backups it keeps (default: repo1's).
	RetentionFull int
	// OffSite says whether the repository is off-site: "y" or "n" as the
	// operator declared it, "" for the rule an S3 target of the SQLite
	// backups follows (an S3 store is off-site unless its endpoint is this
	// machine's loopback; a directory is not). It is medguard's, kept as a
	// comment line pgBackRest ignores.
	OffSite string
}

// IsOffSite applies the off-site rule.
func (r *Repo2) IsOffSite() bool {
	switch r.OffSite {
	case "y":
		return true
	case "n":
		return false
	}
	if r.Type != "s3" {
		return false
	}
	h := strings.Trim(r.Endpoint, "[]")
	if ip := net.ParseIP(h); ip != nil {
		return !ip.IsLoopback()
	}
	return h != "localhost" && !strings.HasSuffix(h, ".localhost")
}

// Media is the repository's kind of medium: "disk" or "object-store".
func (r *Repo2) Media() string {
	if r.Type == "s3" {
		return "object-store"
	}
	return "disk"
}

// Repos are the configured repositories' numbers: 1, and 2 if Repo2 is set.
func (c Config) Repos() []int {
	if c.Repo2 != nil {
		return []int{1, 2}
	}
	return []int{1}
}

// RepoTarget names repository n as a backup target (what the status, the
// metrics and the drills show): "pgbackrest:DIR" for a directory,
// "pgbackrest:s3://BUCKET/PATH?endpoint=HOST:PORT&region=R" for S3 (no
// keys).
func (c Config) RepoTarget(n int) string {
	if n != 2 || c.Repo2 == nil {
		return c.Target()
	}
	r := c.Repo2
	if r.Type != "s3" {
		return "pgbackrest:" + r.Path
	}
	return fmt.Sprintf("pgbackrest:s3://%s%s?endpoint=%s&region=%s", r.Bucket, r.Path,
		net.JoinHostPort(r.Endpoint, strconv.Itoa(r.Port)), r.Region)
}

func (c *Config) defaults() {
	if c.Stanza == "" {
		c.Stanza = "medguard"
	}
	if c.PGPort == 0 {
		c.PGPort = 5432
	}
	if c.PGUser == "" {
		c.PGUser = "postgres"
	}
	if c.RetentionFull == 0 {
		c.RetentionFull = 2
	}
	if c.LogPath == "" && c.Repo != "" {
		c.LogPath = filepath.Join(filepath.Dir(filepath.Clean(c.Repo)), "pgbackrest-log")
	}
	if c.LockPath == "" && c.Repo != "" {
		c.LockPath = filepath.Join(filepath.Dir(filepath.Clean(c.Repo)), "pgbackrest-lock")
	}
	if c.ProcessMax == 0 {
		c.ProcessMax = 1
	}
	if r := c.Repo2; r != nil {
		if r.Type == "" {
			r.Type = "s3"
		}
		if r.Type == "s3" {
			if r.Path == "" {
				r.Path = "/pgbackrest"
			}
			if r.Port == 0 {
				r.Port = 443
			}
			if r.Region == "" {
				r.Region = "us-east-1"
			}
		}
		if r.RetentionFull == 0 {
			r.RetentionFull = c.RetentionFull
		}
	}
}

// Text is the configuration file's contents.
func (c Config) Text() string {
	c.defaults()
	var b strings.Builder
	b.WriteString("# pgBackRest configuration written by medguard (package pgbackup).\n[global]\n")
	fmt.Fprintf(&b, "repo1-path=%s\n", c.Repo)
	fmt.Fprintf(&b, "repo1-retention-full=%d\n", c.RetentionFull)
	if c.RetentionDiff > 0 {
		fmt.Fprintf(&b, "repo1-retention-diff=%d\n", c.RetentionDiff)
	}
	if c.CipherPass != "" {
		b.WriteString("repo1-cipher-type=aes-256-cbc\n")
		fmt.Fprintf(&b, "repo1-cipher-pass=%s\n", c.CipherPass)
	}
	if r := c.Repo2; r != nil {
		fmt.Fprintf(&b, "repo2-type=%s\nrepo2-path=%s\nrepo2-retention-full=%d\n", r.Type, r.Path, r.RetentionFull)
		if r.Type == "s3" {
			fmt.Fprintf(&b, "repo2-s3-bucket=%s\nrepo2-s3-endpoint=%s\nrepo2-storage-port=%d\nrepo2-s3-region=%s\n",
				r.Bucket, r.Endpoint, r.Port, r.Region)
			fmt.Fprintf(&b, "repo2-s3-key=%s\nrepo2-s3-key-secret=%s\nrepo2-s3-uri-style=path\n", r.Key, r.KeySecret)
			if r.CAFile != "" {
				fmt.Fprintf(&b, "repo2-storage-ca-file=%s\n", r.CAFile)
			}
			if r.NoVerifyTLS {
				b.WriteString("repo2-storage-verify-tls=n\n")
			}
		}
		if r.CipherPass != "" {
			b.WriteString("repo2-cipher-type=aes-256-cbc\n")
			fmt.Fprintf(&b, "repo2-cipher-pass=%s\n", r.CipherPass)
		}
		if r.OffSite != "" {
			fmt.Fprintf(&b, "# medguard: repo2-off-site=%s\n", r.OffSite)
		}
	}
	fmt.Fprintf(&b, "log-path=%s\nlock-path=%s\n", c.LogPath, c.LockPath)
	b.WriteString("log-level-console=warn\nlog-level-file=info\n")
	b.WriteString("start-fast=y\ncompress-type=gz\n")
	fmt.Fprintf(&b, "process-max=%d\n", c.ProcessMax)
	fmt.Fprintf(&b, "\n[%s]\npg1-path=%s\npg1-port=%d\npg1-user=%s\n", c.Stanza, c.PGData, c.PGPort, c.PGUser)
	if c.PGSocket != "" {
		fmt.Fprintf(&b, "pg1-socket-path=%s\n", c.PGSocket)
	}
	return b.String()
}

func (c Config) check() error {
	switch {
	case c.File == "":
		return errors.New("pgbackup: the configuration needs a file path")
	case c.PGData == "" || !filepath.IsAbs(c.PGData):
		return errors.New("pgbackup: the PostgreSQL data directory must be an absolute path")
	case c.Repo == "" || !filepath.IsAbs(c.Repo):
		return errors.New("pgbackup: the repository must be an absolute path")
	case strings.ContainsAny(c.PGData+c.Repo+c.PGSocket+c.CipherPass+c.Stanza, "\n\r"):
		return errors.New("pgbackup: configuration values must be one line each")
	}
	if r := c.Repo2; r != nil {
		switch {
		case r.Type != "s3" && r.Type != "posix":
			return fmt.Errorf("pgbackup: repo2 type %q: want s3 or posix", r.Type)
		case !filepath.IsAbs(r.Path):
			return errors.New("pgbackup: repo2's path must be absolute")
		case r.Type == "posix" && filepath.Clean(r.Path) == filepath.Clean(c.Repo):
			return errors.New("pgbackup: repo2 must be another directory than repo1")
		case r.Type == "s3" && (r.Bucket == "" || r.Endpoint == ""):
			return errors.New("pgbackup: an S3 repo2 needs a bucket and an endpoint")
		case r.Type == "s3" && (r.Key == "" || r.KeySecret == ""):
			return errors.New("pgbackup: an S3 repo2 needs its access key and secret key")
		case r.Type == "s3" && strings.Contains(r.Endpoint, ":") && net.ParseIP(r.Endpoint) == nil:
			return errors.New("pgbackup: repo2's endpoint is a host name; give its port apart")
		case r.OffSite != "" && r.OffSite != "y" && r.OffSite != "n":
			return fmt.Errorf("pgbackup: repo2 off-site %q: want y, n or empty", r.OffSite)
		case strings.ContainsAny(r.Path+r.Bucket+r.Endpoint+r.Region+r.Key+r.KeySecret+r.CAFile+r.CipherPass, "\n\r"):
			return errors.New("pgbackup: configuration values must be one line each")
		}
	}
	return nil
}

// Configure writes the configuration file (mode 0600, owned by runAs when
// that is set and medguard runs as root) and creates the repository, log
// and lock directories for the same owner. pgBackRest runs as the
// PostgreSQL server's OS user: archive_command runs inside the server.
func Configure(c Config, runAs string) (Config, error) {
	c.defaults()
	if err := c.check(); err != nil {
		return c, err
	}
	uid, gid, err := lookupOwner(runAs)
	if err != nil {
		return c, err
	}
	// The configuration's directory must be traversable by pgBackRest's
	// user; the file itself is 0600 and that user's.
	if err := os.MkdirAll(filepath.Dir(c.File), 0o755); err != nil {
		return c, fmt.Errorf("pgbackup: %w", err)
	}
	dirs := []string{c.Repo, c.LogPath, c.LockPath}
	if c.Repo2 != nil && c.Repo2.Type == "posix" {
		dirs = append(dirs, c.Repo2.Path)
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return c, fmt.Errorf("pgbackup: %w", err)
		}
		if uid >= 0 {
			if err := os.Chown(dir, uid, gid); err != nil {
				return c, fmt.Errorf("pgbackup: %w", err)
			}
		}
	}
	tmp := c.File + ".tmp"
	if err := os.WriteFile(tmp, []byte(c.Text()), 0o600); err != nil {
		return c, fmt.Errorf("pgbackup: %w", err)
	}
	if uid >= 0 {
		if err := os.Chown(tmp, uid, gid); err != nil {
			return c, fmt.Errorf("pgbackup: %w", err)
		}
	}
	if err := os.Rename(tmp, c.File); err != nil {
		return c, fmt.Errorf("pgbackup: %w", err)
	}
	return c, nil
}

// ReadConfig reads a configuration file Configure wrote (or one written by
// hand in the same shape: [global] and one stanza section).
func ReadConfig(path, stanza string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("pgbackup: %w", err)
	}
	c := Config{File: path, Stanza: stanza}
	repo2 := func() *Repo2 {
		if c.Repo2 == nil {
			c.Repo2 = &Repo2{}
		}
		return c.Repo2
	}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "# medguard: repo2-off-site="); ok {
			repo2().OffSite = strings.TrimSpace(v)
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if c.Stanza == "" && section != "global" {
				c.Stanza = section
			}
			continue
		}
		if section != "global" && section != c.Stanza {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		atoi := func() int { n, _ := strconv.Atoi(v); return n }
		switch k {
		case "repo1-path":
			c.Repo = v
		case "repo1-retention-full":
			c.RetentionFull = atoi()
		case "repo1-retention-diff":
			c.RetentionDiff = atoi()
		case "repo1-cipher-pass":
			c.CipherPass = v
		case "repo2-type":
			repo2().Type = v
		case "repo2-path":
			repo2().Path = v
		case "repo2-retention-full":
			repo2().RetentionFull = atoi()
		case "repo2-s3-bucket":
			repo2().Bucket = v
		case "repo2-s3-endpoint":
			repo2().Endpoint = v
		case "repo2-storage-port":
			repo2().Port = atoi()
		case "repo2-s3-region":
			repo2().Region = v
		case "repo2-s3-key":
			repo2().Key = v
		case "repo2-s3-key-secret":
			repo2().KeySecret = v
		case "repo2-storage-ca-file":
			repo2().CAFile = v
		case "repo2-storage-verify-tls":
			repo2().NoVerifyTLS = v == "n"
		case "repo2-cipher-pass":
			repo2().CipherPass = v
		case "log-path":
			c.LogPath = v
		case "lock-path":
			c.LockPath = v
		case "process-max":
			c.ProcessMax = atoi()
		case "pg1-path":
			c.PGData = v
		case "pg1-port":
			c.PGPort = atoi()
		case "pg1-socket-path":
			c.PGSocket = v
		case "pg1-user":
			c.PGUser = v
		}
	}
	if c.Repo2 != nil && c.Repo2.Path == "" && c.Repo2.Bucket == "" {
		c.Repo2 = nil // only a declaration, no repository
	}
	c.defaults()
	if c.Repo == "" || c.PGData == "" {
		return c, fmt.Errorf("pgbackup: %s has no repo1-path or no pg1-path for stanza %q", path, c.Stanza)
	}
	return c, nil
}

// lookupOwner returns the uid and gid of the OS user name, or -1 when no
// user is named or medguard does not run as root (it cannot chown then).
func lookupOwner(name string) (int, int, error) {
	if name == "" || os.Geteuid() != 0 {
		return -1, -1, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return -1, -1, fmt.Errorf("pgbackup: OS user %q: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// Tool runs the pgbackrest binary for one configuration.
type Tool struct {
	Config Config
	// RunAs is the OS user pgbackrest runs as (the PostgreSQL server's,
	// usually "postgres") when medguard runs as root; empty runs it as
	// medguard's own user.
	RunAs string
	// Binary is the pgbackrest executable (default "pgbackrest" on PATH).
	Binary string
}

// ArchiveCommand is the archive_command postgresql.conf needs, so that the
// server pushes every WAL segment into the repository as it fills (or
// after archive_timeout seconds).
func (t *Tool) ArchiveCommand() string {
	return fmt.Sprintf("%s --config=%s --stanza=%s archive-push %%p", t.binary(), t.Config.File, t.Config.Stanza)
}

func (t *Tool) binary() string {
	if t.Binary != "" {
		return t.Binary
	}
	return "pgbackrest"
}

// restoreCommand is the restore_command a copy restored from repo into
// dataDir uses: archive-get from that repository only.
func (t *Tool) restoreCommand(repo int, dataDir string) string {
	return fmt.Sprintf("%s --config=%s --stanza=%s --repo=%d --pg1-path=%s archive-get %%f \"%%p\"",
		t.binary(), t.Config.File, t.Config.Stanza, repo, dataDir)
}

// CommandError is a pgbackrest command that failed, with what it said.
type CommandError struct {
	Command string
	Code    int
	Output  string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("pgbackrest %s failed (exit %d): %s", e.Command, e.Code, strings.TrimSpace(e.Output))
}

// run runs "pgbackrest --config=… --stanza=… ARGS…" and returns stdout.
func (t *Tool) run(ctx context.Context, command string, args ...string) ([]byte, error) {
	argv := append([]string{"--config=" + t.Config.File, "--stanza=" + t.Config.Stanza}, args...)
	argv = append(argv, command)
	name := t.binary()
	if t.RunAs != "" && os.Geteuid() == 0 {
		argv = append([]string{"-u", t.RunAs, "--", name}, argv...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Dir = "/"
	if err := cmd.Run(); err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			return nil, fmt.Errorf("pgbackup: running %s: %w", t.binary(), err)
		}
		out := stderr.String()
		if out == "" {
			out = stdout.String()
		}
		return nil, &CommandError{Command: command, Code: code, Output: out}
	}
	return stdout.Bytes(), nil
}

// StanzaCreate creates the stanza in the repository (once, after the
// server runs with archive_command set).
func (t *Tool) StanzaCreate(ctx context.Context) error {
	_, err := t.run(ctx, "stanza-create")
	return err
}

// Check checks the configuration end to end: it connects to the server,
// forces a WAL switch and waits until that segment reached the repository.
func (t *Tool) Check(ctx context.Context) error {
	_, err := t.run(ctx, "check")
	return err
}

// BackupType is a pgBackRest backup type.
type BackupType string

// The backup types: a full copy, the changes since the last full, the
// changes since the last backup of any type.
const (
	Full         BackupType = "full"
	Differential BackupType = "diff"
	Incremental  BackupType = "incr"
)

// ParseBackupType accepts full, diff and incr.
func ParseBackupType(s string) (BackupType, error) {
	switch BackupType(s) {
	case Full, Differential, Incremental:
		return BackupType(s), nil
	}
	return "", fmt.Errorf("pgbackup: backup type %q: want full, diff or incr", s)
}

// Backup runs a backup of the given type into repo1 and returns its label.
func (t *Tool) Backup(ctx context.Context, typ BackupType) (string, error) {
	return t.BackupTo(ctx, 1, typ)
}

// BackupTo runs a backup of the given type into repository repo (1 or 2)
// and returns its label. An incremental or differential backup builds on
// that repository's own earlier backups.
func (t *Tool) BackupTo(ctx context.Context, repo int, typ BackupType) (string, error) {
	before, err := t.Info(ctx)
	if err != nil {
		return "", err
	}
	if _, err := t.run(ctx, "backup", "--type="+string(typ), "--repo="+strconv.Itoa(repoOr1(repo))); err != nil {
		return "", err
	}
	after, err := t.Info(ctx)
	if err != nil {
		return "", err
	}
	known := map[string]bool{}
	for _, b := range before.Backups {
		known[fmt.Sprint(b.Repo, b.Label)] = true
	}
	for i := len(after.Backups) - 1; i >= 0; i-- {
		if b := after.Backups[i]; b.Repo == repoOr1(repo) && !known[fmt.Sprint(b.Repo, b.Label)] {
			return b.Label, nil
		}
	}
	return "", errors.New("pgbackup: pgbackrest backup succeeded but no new backup is listed")
}

// repoOr1 is the repository number, 0 meaning repo1 (manifests written
// before there was a second repository say none).
func repoOr1(n int) int {
	if n == 0 {
		return 1
	}
	return n
}

// Info is what "pgbackrest info" says of the stanza.
type Info struct {
	Stanza  string
	Status  string // "ok", or pgBackRest's message
	Cipher  string
	Backups []BackupInfo
	// Archives are the WAL archive ranges per database history id.
	Archives []ArchiveInfo
	// Databases map a backup's database id to the archive id directory
	// ("15-1": the version and the id).
	Databases map[int]string
	// Repos are the repositories' own status and cipher, by number.
	Repos map[int]RepoInfo
}

// RepoInfo is what pgbackrest info says of one repository.
type RepoInfo struct {
	Cipher string
	Status string
}

// BackupInfo is one backup in the repository.
type BackupInfo struct {
	Label     string
	Type      BackupType
	Prior     string   // the backup an incr/diff builds on
	Reference []string // every earlier backup whose files it uses
	Start     time.Time
	Stop      time.Time
	StartLSN  string
	StopLSN   string
	// WALStart and WALStop are the first and last WAL segments needed to
	// make the backup consistent.
	WALStart string
	WALStop  string
	// Size is the database size, RepoSize what the backup's own files take
	// in the repository (compressed, encrypted).
	Size      int64
	RepoSize  int64
	Error     bool
	ArchiveID string
	// Repo is the repository holding the backup (1 or 2).
	Repo int
}

// ArchiveInfo is a range of archived WAL in one repository.
type ArchiveInfo struct {
	ID       string
	Min, Max string
	Repo     int
}

// infoJSON is pgBackRest's "info --output=json" (one element per stanza).
type infoJSON []struct {
	Name   string `json:"name"`
	Cipher string `json:"cipher"`
	Status struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
	DB []struct {
		ID      int    `json:"id"`
		Version string `json:"version"`
	} `json:"db"`
	Repo []struct {
		Key    int    `json:"key"`
		Cipher string `json:"cipher"`
		Status struct {
			Message string `json:"message"`
		} `json:"status"`
	} `json:"repo"`
	Archive []struct {
		ID       string `json:"id"`
		Min      string `json:"min"`
		Max      string `json:"max"`
		Database struct {
			RepoKey int `json:"repo-key"`
		} `json:"database"`
	} `json:"archive"`
	Backup []struct {
		Label   string          `json:"label"`
		Type    string          `json:"type"`
		Prior   string          `json:"prior"`
		RefRaw  json.RawMessage `json:"reference"`
		Error   bool            `json:"error"`
		Archive struct {
			Start string `json:"start"`
			Stop  string `json:"stop"`
		} `json:"archive"`
		Database struct {
			ID      int `json:"id"`
			RepoKey int `json:"repo-key"`
		} `json:"database"`
		Info struct {
			Size       int64 `json:"size"`
			Repository struct {
				Delta int64 `json:"delta"`
			} `json:"repository"`
		} `json:"info"`
		LSN struct {
			Start string `json:"start"`
			Stop  string `json:"stop"`
		} `json:"lsn"`
		Timestamp struct {
			Start int64 `json:"start"`
			Stop  int64 `json:"stop"`
		} `json:"timestamp"`
	} `json:"backup"`
}

// ParseInfo parses "pgbackrest info --output=json" for one stanza.
func ParseInfo(data []byte, stanza string) (*Info, error) {
	var all infoJSON
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, fmt.Errorf("pgbackup: pgbackrest info: %w", err)
	}
	for _, s := range all {
		if s.Name != stanza {
			continue
		}
		in := &Info{Stanza: s.Name, Status: s.Status.Message, Cipher: s.Cipher, Databases: map[int]string{}, Repos: map[int]RepoInfo{}}
		for _, d := range s.DB {
			in.Databases[d.ID] = fmt.Sprintf("%s-%d", d.Version, d.ID)
		}
		for _, r := range s.Repo {
			in.Repos[r.Key] = RepoInfo{Cipher: r.Cipher, Status: r.Status.Message}
		}
		for _, a := range s.Archive {
			in.Archives = append(in.Archives, ArchiveInfo{ID: a.ID, Min: a.Min, Max: a.Max, Repo: repoOr1(a.Database.RepoKey)})
		}
		for _, b := range s.Backup {
			var ref []string
			if len(b.RefRaw) > 0 && string(b.RefRaw) != "null" {
				if err := json.Unmarshal(b.RefRaw, &ref); err != nil {
					return nil, fmt.Errorf("pgbackup: pgbackrest info: reference of %s: %w", b.Label, err)
				}
			}
			typ, err := ParseBackupType(b.Type)
			if err != nil {
				return nil, err
			}
			in.Backups = append(in.Backups, BackupInfo{
				Label: b.Label, Type: typ, Prior: b.Prior, Reference: ref,
				Start: time.Unix(b.Timestamp.Start, 0).UTC(), Stop: time.Unix(b.Timestamp.Stop, 0).UTC(),
				StartLSN: b.LSN.Start, StopLSN: b.LSN.Stop, WALStart: b.Archive.Start, WALStop: b.Archive.Stop,
				Size: b.Info.Size, RepoSize: b.Info.Repository.Delta, Error: b.Error,
				ArchiveID: in.Databases[b.Database.ID], Repo: repoOr1(b.Database.RepoKey),
			})
		}
		sort.SliceStable(in.Backups, func(i, j int) bool { return in.Backups[i].Label < in.Backups[j].Label })
		return in, nil
	}
	return nil, fmt.Errorf("pgbackup: pgbackrest info lists no stanza %q", stanza)
}

// Info runs "pgbackrest info --output=json".
func (t *Tool) Info(ctx context.Context) (*Info, error) {
	out, err := t.run(ctx, "info", "--output=json")
	if err != nil {
		return nil, err
	}
	return ParseInfo(out, t.Config.Stanza)
}

// Backup returns the backup with the given label from info (in any
// repository; labels are unique).
func (in *Info) Backup(label string) (BackupInfo, bool) {
	for _, b := range in.Backups {
		if b.Label == label {
			return b, true
		}
	}
	return BackupInfo{}, false
}

// CipherOf is repository repo's cipher ("none" or "aes-256-cbc").
func (in *Info) CipherOf(repo int) string {
	if r, ok := in.Repos[repoOr1(repo)]; ok && r.Cipher != "" {
		return r.Cipher
	}
	return in.Cipher
}

// Latest is the newest good backup in repository repo (0: any).
func (in *Info) Latest(repo int) (BackupInfo, bool) {
	for i := len(in.Backups) - 1; i >= 0; i-- {
		if b := in.Backups[i]; !b.Error && (repo == 0 || b.Repo == repo) {
			return b, true
		}
	}
	return BackupInfo{}, false
}

// RepoVerifyError is "pgbackrest verify" finding a problem: its report.
type RepoVerifyError struct{ Report string }

func (e *RepoVerifyError) Error() string {
	return "pgbackrest verify found damage in the repository:\n" + strings.TrimSpace(e.Report)
}

// Verify runs "pgbackrest verify" on repo1; see VerifyRepo.
func (t *Tool) Verify(ctx context.Context) (string, error) { return t.VerifyRepo(ctx, 1) }

// VerifyRepo runs "pgbackrest verify" on repository repo, which decrypts
// and checks every backup file and archived WAL segment there against
// pgBackRest's own checksums. Its exit status is 0 even when it finds
// damage, so its report is read: a *RepoVerifyError says what it found.
func (t *Tool) VerifyRepo(ctx context.Context, repo int) (string, error) {
	out, err := t.run(ctx, "verify", "--output=text", "--verbose", "--repo="+strconv.Itoa(repoOr1(repo)))
	if err != nil {
		return "", err
	}
	report := string(out)
	ok := false
	for _, line := range strings.Split(report, "\n") {
		switch strings.TrimSpace(line) {
		case "status: ok":
			ok = true
		case "status: error":
			return report, &RepoVerifyError{Report: report}
		}
	}
	if !ok {
		return report, &RepoVerifyError{Report: "no status in pgbackrest verify's report: " + report}
	}
	return report, nil
}

// RestoreOptions say what to restore and where.
type RestoreOptions struct {
	// DataDir is the new cluster's data directory; it must not exist or be
	// empty (a restore never overwrites a cluster).
	DataDir string
	// Set is the backup label to restore (default: the one pgBackRest
	// picks: the latest, or for a time target the latest before it).
	Set string
	// Target, if not zero, stops recovery at this time (--type=time);
	// otherwise recovery replays all archived WAL.
	Target time.Time
	// Port, if not zero, is written into the restored cluster's
	// postgresql.auto.conf, with archive_mode=off so that a restored copy
	// (a drill) never pushes WAL into the production repository.
	Port int
	// Socket, if set, is the restored cluster's unix_socket_directories.
	Socket string
	// Repo is the repository to restore from (0: pgBackRest's choice, the
	// first that holds the set). With 2, the recovery's restore_command
	// fetches WAL from repo2 too, so that nothing comes from repo1.
	Repo int
}

// Restore restores a backup into a new data directory and leaves recovery
// settings so that PostgreSQL, started on it, replays WAL from the
// repository up to the target and then promotes itself.
func (t *Tool) Restore(ctx context.Context, o RestoreOptions) error {
	if o.DataDir == "" || !filepath.IsAbs(o.DataDir) {
		return errors.New("pgbackup: restore needs an absolute new data directory")
	}
	if entries, err := os.ReadDir(o.DataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("pgbackup: %s is not empty: a restore goes into a new directory", o.DataDir)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("pgbackup: %w", err)
	}
	uid, gid, err := lookupOwner(t.RunAs)
	if err != nil {
		return err
	}
	if uid >= 0 {
		if err := os.Chown(o.DataDir, uid, gid); err != nil {
			return fmt.Errorf("pgbackup: %w", err)
		}
	}
	args := []string{"--pg1-path=" + o.DataDir}
	if o.Repo != 0 {
		args = append(args, "--repo="+strconv.Itoa(o.Repo))
	}
	if o.Repo > 1 {
		args = append(args, "--recovery-option=restore_command="+t.restoreCommand(o.Repo, o.DataDir))
	}
	if o.Set != "" {
		args = append(args, "--set="+o.Set)
	}
	if !o.Target.IsZero() {
		args = append(args, "--type=time", "--target="+o.Target.UTC().Format("2006-01-02 15:04:05.000000")+"+00",
			"--target-action=promote")
	}
	if _, err := t.run(ctx, "restore", args...); err != nil {
		return err
	}
	if o.Port == 0 && o.Socket == "" {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(o.DataDir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("pgbackup: %w", err)
	}
	fmt.Fprintf(f, "\n# set by medguard's restore: a restored copy listens elsewhere and archives nothing\narchive_mode = 'off'\n")
	if o.Port != 0 {
		fmt.Fprintf(f, "port = %d\n", o.Port)
	}
	if o.Socket != "" {
		fmt.Fprintf(f, "unix_socket_directories = '%s'\n", strings.ReplaceAll(o.Socket, "'", "''"))
	}
	return f.Close()
}
