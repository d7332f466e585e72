package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/backup"
	"medguard/internal/gate"
	"medguard/internal/storage"
)

// backupFlags are serve's --backup-* flags.
type backupFlags struct {
	to                                  stringList
	recipient, drillIdentity, cipher    string
	continuous                          bool
	fullEvery, incrementalEvery, drills time.Duration
	keepDaily, keepMonthly              int
}

func registerBackupFlags(fs *flagSet) *backupFlags {
	b := &backupFlags{}
	fs.Var(&b.to, "backup-to", "back up to this target: a directory (another disk) or s3://BUCKET/PREFIX?endpoint=HOST:PORT (repeatable; both at once for 3-2-1)")
	fs.StringVar(&b.recipient, "backup-recipient", "", "age recipient backups are encrypted to (default DATA/keys/backup.recipient, from `medguard backup keygen`)")
	fs.StringVar(&b.cipher, "backup-cipher", "AES-256-GCM", "cipher of the backups and the stream: AES-256-GCM (DARE) or SM4-GCM (国密, STREAM)")
	fs.BoolVar(&b.continuous, "backup-continuous", true, "ship the write-ahead log continuously (Litestream): RPO of seconds")
	fs.DurationVar(&b.fullEvery, "backup-full-every", 24*time.Hour, "how often a full backup is made on each target")
	fs.DurationVar(&b.incrementalEvery, "backup-incremental-every", 15*time.Minute, "how often the shipped stream is sealed by a signed incremental backup (at most 15m)")
	fs.DurationVar(&b.drills, "backup-drill-every", 7*24*time.Hour, "how often a restore drill is due (alerted when overdue; run here only with --backup-drill-identity)")
	fs.StringVar(&b.drillIdentity, "backup-drill-identity", "", "backup identity file for drills run by the server (the server can then read its backups: prefer drills from another machine)")
	fs.IntVar(&b.keepDaily, "backup-keep-daily", 30, "days of daily full backups kept")
	fs.IntVar(&b.keepMonthly, "backup-keep-monthly", 12, "months of monthly full backups kept")
	return b
}

// retention is the longest a backup is kept under --backup-keep-daily
// and --backup-keep-monthly: what destruction certificates promise
// (backups_expire_by = destruction + this). With the continuous stream, a
// generation holds what was in the database when it started and is pruned
// once its newest data is older than backup.RetentionLimit; it spans at
// most one full-backup period, which is added.
func (b *backupFlags) retention() time.Duration {
	r := backup.RetentionLimit(b.keepDaily, b.keepMonthly)
	if b.continuous && len(b.to) > 0 {
		r += b.fullEvery
	}
	return r
}

// checkRestoreMarker refuses a data directory a restore has not finished.
func checkRestoreMarker(data string) error {
	if _, err := os.Stat(filepath.Join(data, backup.RestoringMarker)); err == nil {
		return fmt.Errorf("a restore into %s did not finish: run the same `medguard backup restore` again (it starts over), then serve", data)
	}
	return nil
}

// startBackups starts the backup schedule of serve (nothing without
// --backup-to) and shows its health in /metrics.
func startBackups(ctx context.Context, app *App, b *backupFlags, getenv func(string) string, logger *slog.Logger) error {
	if len(b.to) == 0 {
		return nil
	}
	if app.DB.Dialect != storage.SQLite {
		return errors.New("--backup-to: this installation's data is on PostgreSQL; --backup-to backs up an embedded SQLite data directory only. " +
			"Back PostgreSQL up with pgBackRest through `medguard backup-pg` (see `medguard backup-pg help` and docs/backup.md)")
	}
	if b.incrementalEvery <= 0 || b.incrementalEvery > 15*time.Minute {
		return errors.New("--backup-incremental-every must be more than 0 and at most 15m")
	}
	targets, err := openTargets(b.to, getenv)
	if err != nil {
		return err
	}
	if b.continuous {
		// Litestream reads the WAL and resets it once shipped.
		app.DB.ShareWAL()
	}
	rspec, err := backupRecipient(b.recipient, app.Config.DataDir)
	if err != nil {
		return err
	}
	rcpt, err := backup.ParseRecipient(rspec)
	if err != nil {
		return err
	}
	signer, err := backup.LoadSigner(app.Config.DataDir, getenv("MEDGUARD_AUDIT_KEY"))
	if err != nil {
		return err
	}
	sealWith, err := backup.CipherNamed(b.cipher)
	if err != nil {
		return usageError{fmt.Errorf("--backup-cipher: %w", err)}
	}
	s := backup.Schedule{DataDir: app.Config.DataDir, Targets: targets, Recipient: rcpt, Signer: signer, Continuous: b.continuous,
		Cipher:    sealWith,
		FullEvery: b.fullEvery, IncrementalEvery: b.incrementalEvery, DrillEvery: b.drills, KeepDaily: b.keepDaily,
		KeepMonthly: b.keepMonthly, Logger: logger, KeyFile: app.Config.KeyFile,
		Record: app.recordBackup(logger),
		Alert: func(key, text string) {
			if err := app.Detect.RaiseNotice(context.Background(), "backup_health", key, text); err != nil {
				logger.Error("raising a backup alert failed", "error", err.Error())
			}
		}}
	if s.KeyFile == "" {
		s.KeyFile = filepath.Join(app.Config.DataDir, "keys", "medguard.keys")
	}
	if b.drillIdentity != "" {
		if s.DrillIdentity, err = backup.LoadIdentity(b.drillIdentity); err != nil {
			return err
		}
	}
	sc := backup.NewScheduler(s)
	app.Backups = sc
	if app.Ledger != nil {
		app.Ledger.OnAppend(sc.LedgerChanged)
	}
	if app.Metrics != nil {
		app.Metrics.GaugeSet("medguard_backup_last_age_seconds", "Age of the last successful full backup per target.", "target", func() map[string]float64 {
			out := map[string]float64{}
			for _, t := range sc.Status().Targets {
				if !t.LastBackup.IsZero() {
					out[t.URL] = time.Since(t.LastBackup).Seconds()
				} else {
					out[t.URL] = -1
				}
			}
			return out
		})
		app.Metrics.GaugeSet("medguard_backup_target_failing", "1 while the last backup to the target failed.", "target", func() map[string]float64 {
			out := map[string]float64{}
			for _, t := range sc.Status().Targets {
				out[t.URL] = map[bool]float64{true: 1, false: 0}[t.LastError != ""]
			}
			return out
		})
		app.Metrics.Gauge("medguard_backup_rpo_seconds", "Achieved RPO: how old the newest data every copy holds is (continuous stream).",
			func() float64 { return sc.Status().RPO.Seconds() })
		app.Metrics.Gauge("medguard_backup_321_met", "1 when backups meet 3-2-1 (3 copies, 2 media, 1 off-site).",
			func() float64 { return map[bool]float64{true: 1, false: 0}[sc.Status().State.Met] })
		app.Metrics.Gauge("medguard_backup_last_drill_rto_seconds", "RTO measured by the last restore drill.", func() float64 {
			if d := sc.Status().LastDrill; d != nil {
				return d.RTO.Seconds()
			}
			return -1
		})
		app.Metrics.Gauge("medguard_backup_last_drill_ok", "1 if the last restore drill passed, 0 if it failed, -1 if none.", func() float64 {
			if d := sc.Status().LastDrill; d != nil {
				return map[bool]float64{true: 1, false: 0}[d.OK]
			}
			return -1
		})
	}
	go sc.Run(ctx)
	return nil
}

// recordBackup returns the schedules' Record hook: every backup and drill
// the server makes goes into the audit log as the system's (action
// backup.full, backup.incremental or backup.drill; the target is the
// backup's or drill's id; a failure is logged with outcome error), so that
// the log itself is the evidence of what was copied, and when.
func (a *App) recordBackup(logger *slog.Logger) func(action, id string, err error) {
	system := &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}
	return func(action, id string, err error) {
		ev := gate.Event{Call: system, Action: action, TargetType: "backup", TargetID: id, Allowed: true, Rule: "allow.backup_schedule"}
		if err != nil {
			ev.Outcome = audit.Failed
		}
		if _, rerr := a.Gate.Record(context.Background(), ev, nil); rerr != nil {
			logger.Error("recording a backup in the audit log failed", "action", action, "error", rerr.Error())
		}
	}
}

// noteRestore records, at the first start of a data directory that
// `medguard backup restore` made, which backup it came from: an audit
// entry backup.restored (actor system) whose target is the backup's id
// and the audit tree size its manifest names ("ID.size-N"), written
// before anything else (the re-applied destructions come after it). The
// note is then removed; a crash in between logs the restore twice, never
// zero times.
func (a *App) noteRestore(ctx context.Context) error {
	r, err := backup.ReadRestored(a.Config.DataDir)
	if err != nil || r == nil {
		return err
	}
	system := &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}
	if _, err := a.Gate.Record(ctx, gate.Event{Call: system, Action: "backup.restored", TargetType: "backup",
		TargetID: fmt.Sprintf("%s.size-%d", r.Backup, r.AuditSize), Allowed: true, Rule: "allow.backup_restore"}, nil); err != nil {
		return fmt.Errorf("recording the restore in the audit log: %w", err)
	}
	a.Config.Logger.Warn("first start of a restored data directory", "backup", r.Backup, "kind", r.Kind,
		"audit_size", r.AuditSize, "data_as_of", r.DataAsOf.Format(time.RFC3339))
	return os.Remove(filepath.Join(a.Config.DataDir, backup.RestoredFile))
}
