package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard/internal/backup"
	"medguard/internal/pgbackup"
	"medguard/internal/storage"
	"medguard/internal/web"
)

// pgNoteSigner reads the audit log's signing key, which signs manifests
// and drill records: MEDGUARD_AUDIT_KEY or DATA/keys/audit-log.key.
func pgNoteSigner(data string, getenv func(string) string) (note.Signer, error) {
	skey := getenv("MEDGUARD_AUDIT_KEY")
	if skey == "" {
		b, err := os.ReadFile(filepath.Join(data, "keys", "audit-log.key"))
		if err != nil {
			return nil, fmt.Errorf("the audit log's signing key signs the drill records: %w", err)
		}
		skey = string(b)
	}
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("the audit log's signing key: %w", err)
	}
	return s, nil
}

func backupPGDrill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup-pg drill", stderr)
	var f pgFlags
	f.register(fs)
	latest := fs.Bool("latest", false, "drill the latest backup of --repo (default repository 1)")
	repoN := fs.Int("repo", 0, "with --latest: the repository to drill from (1 or 2; 2 is the second, e.g. off-site S3, repository)")
	scratch := fs.String("pg-data", "", "the scratch cluster's data directory (must not exist or be empty; removed afterwards; default a temporary one)")
	port := fs.Int("port", 0, "the scratch cluster's port (it listens on a private Unix socket only; default a free one)")
	pgBin := fs.String("pg-bin", "", "PostgreSQL's server binaries (default the newest /usr/lib/postgresql/*/bin)")
	dbName := fs.String("database", "medguard", "medguard's database in the cluster")
	keyFile := fs.String("key-file", "", "key file (default DATA/keys/medguard.keys; MEDGUARD_KEYS may hold its contents)")
	sample := fs.Int("sample", 20, "patients and records whose fields are decrypted")
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard backup-pg drill BACKUP|--latest [--pg-data SCRATCH] [--port N] [flags]\n\n"+backupPGHelp)
	}
	if err := parse(fs.FlagSet, backupArgLast(args), getenv); err != nil {
		return usageError{err}
	}
	if (fs.NArg() == 1) == *latest || fs.NArg() > 1 {
		return usageError{errors.New("backup-pg drill: give one BACKUP or --latest")}
	}
	t, dir, err := f.tool()
	if err != nil {
		return err
	}
	label := ""
	if fs.NArg() == 1 {
		label, dir = backupLabel(fs.Arg(0), dir)
	} else if *repoN != 0 {
		if err := checkRepo(t, *repoN); err != nil {
			return err
		}
	}
	vkey, err := verifierKey(f.verifier, f.data, getenv)
	if err != nil {
		return fmt.Errorf("the manifests are checked with the audit log's verifier key: %w", err)
	}
	signer, err := pgNoteSigner(f.data, getenv)
	if err != nil {
		return err
	}
	kf, err := loadKeyFile(*keyFile, f.data, getenv)
	if err != nil {
		return err
	}
	o := pgbackup.DrillOptions{Tool: t, ManifestDir: dir, VerifierKey: vkey, Signer: signer, Label: label, KeyFile: kf, Repo: *repoN,
		Port: *port, PGBin: *pgBin, Database: *dbName, Sample: *sample,
		Step: func(s backup.Step) { fmt.Fprintf(stdout, "  %-70s %s\n", s.Name, s.Took.Round(time.Millisecond)) }}
	if *scratch != "" {
		o.Scratch = absPath(*scratch)
	}
	from := "the repository its manifest names"
	if label == "" {
		from = strings.TrimPrefix(t.Config.RepoTarget(max(*repoN, 1)), "pgbackrest:")
	}
	fmt.Fprintf(stdout, "restore drill of %s from %s\n", map[bool]string{true: "the latest backup", false: label}[label == ""], from)
	d, err := pgbackup.RunDrill(ctx, o)
	record := filepath.Join(pgbackup.DrillDir(dir), d.ID+".drill")
	if err != nil {
		fmt.Fprintf(stdout, "DRILL FAILED (backup %s): %s\nrecorded as failed: %s\n", d.Backup, d.Problem, record)
		var ve *pgbackup.VerifyError
		var re *pgbackup.RepoVerifyError
		if errors.As(err, &ve) || errors.As(err, &re) {
			return &ExitError{Code: ExitTampered, Err: fmt.Errorf("backup %s does not verify: drill failed", d.Backup)}
		}
		return fmt.Errorf("the restore drill failed: %w", err)
	}
	fmt.Fprintf(stdout, "drill passed: backup %s restored from %s and checked; RTO %s (verify, restore, start until PostgreSQL answers, checks); "+
		"RPO %s (age of the newest write in the restored copy); %d patients, %d records, audit tree %d entries (root at the manifest's size matches), "+
		"%d patients and %d records of a sample decrypted with the key file (%d fields)\n",
		d.Backup, strings.TrimPrefix(d.Target, "pgbackrest:"), d.RTO.Round(time.Millisecond), d.RPO.Round(time.Second), d.Patient, d.Records, d.AuditSize,
		d.SamplePatients, d.SampleRecords, d.SampleFields)
	fmt.Fprintln(stdout, record)
	return nil
}

// backupPGFlags are serve's flags for a pgBackRest schedule; the periods
// are the --backup-* schedule flags the SQLite schedule uses.
type backupPGFlags struct {
	config, stanza, runAs, scratch, pgBin string
}

func registerBackupPGFlags(fs *flagSet) *backupPGFlags {
	b := &backupPGFlags{}
	runAs := ""
	if os.Geteuid() == 0 {
		runAs = "postgres"
	}
	fs.StringVar(&b.config, "backup-pg-config", "", "PostgreSQL database: schedule pgBackRest backups with this configuration (written by `medguard backup-pg init`); "+
		"periods from --backup-full-every, --backup-incremental-every and --backup-drill-every")
	fs.StringVar(&b.stanza, "backup-pg-stanza", "medguard", "pgBackRest stanza, with --backup-pg-config")
	fs.StringVar(&b.runAs, "backup-pg-run-as", runAs, "OS user pgbackrest and the drills' scratch clusters run as (PostgreSQL's), when medguard runs as root")
	fs.StringVar(&b.scratch, "backup-pg-drill-scratch", "", "scratch data directory of scheduled drills (must not exist or be empty; default a temporary one)")
	fs.StringVar(&b.pgBin, "backup-pg-bin", "", "PostgreSQL's server binaries for drills (default the newest /usr/lib/postgresql/*/bin)")
	return b
}

// startBackupsPG starts serve's pgBackRest schedule (nothing without
// --backup-pg-config): backups and drills on the one server of several
// that holds the schedule's advisory lock, health on all of them.
func startBackupsPG(ctx context.Context, app *App, b *backupFlags, p *backupPGFlags, getenv func(string) string, logger *slog.Logger) error {
	if p.config == "" {
		return nil
	}
	if app.DB.Dialect != storage.Postgres {
		return errors.New("--backup-pg-config: this installation runs on SQLite: use --backup-to")
	}
	if b.incrementalEvery <= 0 || b.incrementalEvery > 15*time.Minute {
		return errors.New("--backup-incremental-every must be more than 0 and at most 15m")
	}
	c, err := pgbackup.ReadConfig(p.config, p.stanza)
	if err != nil {
		return err
	}
	signer, err := pgNoteSigner(app.Config.DataDir, getenv)
	if err != nil {
		return err
	}
	kf, err := loadKeyFile(app.Config.KeyFile, app.Config.DataDir, getenv)
	if err != nil {
		return err
	}
	database := "medguard"
	if u, err := url.Parse(app.Config.DB); err == nil && strings.Trim(u.Path, "/") != "" {
		database = strings.Trim(u.Path, "/")
	}
	t := &pgbackup.Tool{Config: c, RunAs: p.runAs}
	s := pgbackup.Schedule{Tool: t, ManifestDir: pgbackup.DefaultManifestDir(c), DB: app.DB, Signer: signer,
		VerifierKey: app.Checkpoints.Signer().VerifierKey(), FullEvery: b.fullEvery, IncrementalEvery: b.incrementalEvery,
		DrillEvery: b.drills, Drill: pgbackup.DrillOptions{KeyFile: kf, Scratch: p.scratch, PGBin: p.pgBin, Database: database},
		Logger: logger, Record: app.recordBackup(logger), Alert: func(key, text string) {
			if err := app.Detect.RaiseNotice(context.Background(), "backup_health", key, text); err != nil {
				logger.Error("raising a backup alert failed", "error", err.Error())
			}
		}}
	sc := pgbackup.NewScheduler(s)
	app.Backups = sc
	backupGauges(app.Metrics, sc)
	go sc.Run(ctx)
	return nil
}

// backupGauges puts a backup schedule's health in /metrics: the gauges
// the SQLite schedule shows (servebackup.go), for any backup.Reporter.
func backupGauges(m *web.Metrics, r backup.Reporter) {
	if m == nil {
		return
	}
	b2f := func(b bool) float64 { return map[bool]float64{true: 1, false: 0}[b] }
	m.GaugeSet("medguard_backup_last_age_seconds", "Age of the last successful full backup per target.", "target", func() map[string]float64 {
		out := map[string]float64{}
		for _, t := range r.Status().Targets {
			out[t.URL] = -1
			if !t.LastBackup.IsZero() {
				out[t.URL] = time.Since(t.LastBackup).Seconds()
			}
		}
		return out
	})
	m.GaugeSet("medguard_backup_target_failing", "1 while the last backup to the target failed.", "target", func() map[string]float64 {
		out := map[string]float64{}
		for _, t := range r.Status().Targets {
			out[t.URL] = b2f(t.LastError != "")
		}
		return out
	})
	m.Gauge("medguard_backup_rpo_seconds", "Achieved RPO: how old the newest data every copy holds is (continuous stream).",
		func() float64 { return r.Status().RPO.Seconds() })
	m.Gauge("medguard_backup_321_met", "1 when backups meet 3-2-1 (3 copies, 2 media, 1 off-site).",
		func() float64 { return b2f(r.Status().State.Met) })
	m.Gauge("medguard_backup_last_drill_rto_seconds", "RTO measured by the last restore drill.", func() float64 {
		if d := r.Status().LastDrill; d != nil {
			return d.RTO.Seconds()
		}
		return -1
	})
	m.Gauge("medguard_backup_last_drill_ok", "1 if the last restore drill passed, 0 if it failed, -1 if none.", func() float64 {
		if d := r.Status().LastDrill; d != nil {
			return b2f(d.OK)
		}
		return -1
	})
}
