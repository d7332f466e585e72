// Package cli is medguard's command line: serve, demo, bench and the rest.
// Run is the whole program; main only calls it. App wires the capabilities
// together, once, for every command and for the end-to-end tests.
package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/assets"
	"medguard/internal/audit"
	"medguard/internal/backup"
	"medguard/internal/backuphealth"
	"medguard/internal/compliance"
	"medguard/internal/console"
	"medguard/internal/datause"
	"medguard/internal/deidjobs"
	"medguard/internal/detect"
	"medguard/internal/exports"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/inspections"
	"medguard/internal/keys"
	"medguard/internal/media"
	"medguard/internal/partners"
	"medguard/internal/plans"
	"medguard/internal/pulse"
	"medguard/internal/records"
	"medguard/internal/rectify"
	"medguard/internal/reports"
	"medguard/internal/retention"
	"medguard/internal/risks"
	"medguard/internal/siem"
	"medguard/internal/storage"
	"medguard/internal/trail"
	"medguard/internal/training"
	"medguard/internal/transport"
	"medguard/internal/vulns"
	"medguard/internal/web"
)

// Config is what App needs to open an installation.
type Config struct {
	DataDir string // default ./medguard-data
	DB      string // "" for SQLite in DataDir, or postgres://…
	// DBConnections, if positive, is the PostgreSQL pool the server opens
	// at start and keeps (storage.KeepConnections); 0 leaves the pool to
	// open connections as needed (tools).
	DBConnections int
	// KeyFile is the key file's path (default DATA/keys/medguard.keys);
	// Keys, if set, is the key file's contents from the environment.
	KeyFile string
	Keys    string
	Cipher  keys.Algorithm // for a new key file
	// LogOrigin names the audit log in its checkpoints when its signing
	// key is made (default "medguard/<hostname>"); AuditKey, if set, is
	// the signing key itself (MEDGUARD_AUDIT_KEY), instead of the file
	// DATA/keys/audit-log.key.
	LogOrigin string
	AuditKey  string
	// Notifier, if set, tells people of alerts (webhook, email).
	Notifier *detect.Notifier
	// SIEM, if set, is where the audit log is forwarded (RFC 5424 syslog).
	SIEM *siem.Config
	// AuditRetentionDays raises the audit log's retention period (at least
	// 180 days; it may be raised, never lowered); 0 keeps the recorded one.
	AuditRetentionDays int
	// Identity and Records tune the capabilities.
	Identity identity.Config
	Records  records.Config
	Web      web.Deps // only the tuning fields are used
	Clock    medguard.Clock
	Logger   *slog.Logger
	Metrics  bool
	// KEK says where the key-encryption keys are (key file, environment,
	// HSM); the zero value follows the key file.
	KEK KEKConfig
	// Vulns tunes vulnerability management: due dates by severity, the
	// scan cadence, the largest report.
	Vulns vulns.Config
	// Reports configures the posture reports (issue 14; reports.go).
	Reports ReportsConfig
}

// App is an open installation: the database, the keys, the audit log and
// every capability on top.
type App struct {
	Config  Config
	DB      *storage.DB
	KeyFile *keys.KeyFile
	Keys    *keys.Keyring
	Log     *audit.Log
	// Checkpoints signs the audit tree's checkpoints (DATA/checkpoints.log).
	Checkpoints *audit.Checkpoints
	Gate        *gate.Gate
	Identity    *identity.Service
	Records     *records.Service
	Approvals   *approvals.Service
	Trail       *trail.Service
	Incidents   *incidents.Service
	Detect      *detect.Service
	// Pulse reads the shared database's counters for the caches that must
	// notice what other servers changed (sessions, detection's catch-up).
	Pulse   *pulse.Pulse
	Metrics *web.Metrics
	Web     *web.Server
	// SIEM forwards the audit log to the hospital's SIEM (nil if none);
	// the server runs it.
	SIEM *siem.Forwarder
	// Transport is the register of the installation's network links and
	// whether each is encrypted, for /metrics, serve's warnings and the
	// compliance report (serve adds the API's link).
	Transport *transport.Register
	// KeyFileCreated is true when Open made a new key file.
	KeyFileCreated bool
	// Backups is serve's backup schedule (nil without --backup-to or
	// --backup-pg-config): the SQLite one or the pgBackRest one.
	Backups backup.Reporter
	// kekCloser closes the KEK source (an HSM's sessions), if it needs it.
	kekCloser io.Closer
	// BackupHealth is what the API and the console show of the backups;
	// serve makes it watch the schedule once it has started.
	BackupHealth *backuphealth.Service
	// Ledger is the destruction ledger (DATA/destructions.log).
	Ledger *retention.Ledger
	// DataUse is record-use requests, paper folders, copies and the
	// paper–electronic reconciliation (SPEC §8).
	DataUse *datause.Service
	// Partners is external partners (合作单位), their agreements and
	// deletion confirmations (SPEC §8).
	Partners *partners.Service
	// DeidJobs is de-identification jobs (SPEC §8): four-eyes requests
	// medical affairs decides, run by serve's worker.
	DeidJobs *deidjobs.Service
	// Exports is exports of patients' records (SPEC §8).
	Exports *exports.Service
	// Inspections is the daily inspection (巡查) and Media the removable
	// media register (issue 13).
	Inspections *inspections.Service
	Media       *media.Service
	// Training is the training register (培训考核, SPEC §10, issue 13),
	// which also closes record access to staff who owe training.
	Training *training.Service
	// Assets is the asset register (资产台账) and Vulns vulnerability
	// management (漏洞管理), whose suspensions the gate enforces (issue 13).
	Assets *assets.Service
	Vulns  *vulns.Service
	// Risks is the risk register and Plans the emergency plans and drills
	// (issue 13; risksplans.go).
	Risks *risks.Service
	Plans *plans.Service
	// Reports is the leadership's posture reports (issue 14; reports.go),
	// reportSources where their figures come from.
	Reports       *reports.Service
	reportSources reports.Sources
	// Rectify is the rectification register (整改) and the quarterly
	// compliance check (季度合规检查, issue 14; rectify.go).
	Rectify *rectify.Service
	// Compliance is the compliance checks (合规检查, issue 14;
	// compliance.go).
	Compliance *compliance.Service
}

// Schemas are every capability's tables, in dependency order.
func Schemas() []storage.Schema {
	return []storage.Schema{keys.Schema(), audit.Schema(), identity.Schema(), records.Schema(), approvals.Schema(), siem.Schema(), detect.Schema(),
		incidents.Schema(), datause.Schema(), partners.Schema(), deidjobs.Schema(), exports.Schema(),
		inspections.Schema(), media.Schema(), training.Schema(), assets.Schema(), vulns.Schema(), risks.Schema(), plans.Schema(),
		reports.Schema(), rectify.Schema(), compliance.Schema()}
}

// Open opens (creating if needed) the installation described by cfg.
func Open(ctx context.Context, cfg Config) (*App, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "medguard-data"
	}
	if cfg.Clock == nil {
		cfg.Clock = medguard.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Cipher == 0 {
		cfg.Cipher = keys.SM4GCM
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	a := &App{Config: cfg, Transport: &transport.Register{}}
	var err error
	if a.DB, err = storage.Open(ctx, cfg.DB, cfg.DataDir); err != nil {
		return nil, err
	}
	if err := a.DB.Migrate(ctx, Schemas()...); err != nil {
		a.DB.Close()
		return nil, err
	}
	if cfg.DBConnections > 0 {
		if err := a.DB.KeepConnections(ctx, cfg.DBConnections); err != nil {
			a.DB.Close()
			return nil, fmt.Errorf("%w (--db-connections %d: every server's count together must stay below PostgreSQL's max_connections)", err, cfg.DBConnections)
		}
	}
	if err := a.openKeys(ctx); err != nil {
		a.DB.Close()
		return nil, err
	}
	if cfg.Metrics {
		a.Metrics = web.NewMetrics(a.DB, func() *audit.Log { return a.Log })
		a.registerKeyMetrics()
		a.registerIndexKeyMetrics()
	}
	if err := a.registerLinks(ctx); err != nil {
		a.DB.Close()
		return nil, err
	}
	if cfg.SIEM != nil {
		if a.SIEM, err = siem.New(a.DB, *cfg.SIEM, siem.Options{Logger: cfg.Logger, Clock: cfg.Clock}); err != nil {
			a.DB.Close()
			return nil, err
		}
	}
	opts := audit.Options{OnBatch: func(n int, took time.Duration) {
		if a.Metrics != nil {
			a.Metrics.ObserveBatch(n, took)
		}
		if a.SIEM != nil {
			a.SIEM.Notify()
		}
	}}
	if a.Log, err = audit.Open(ctx, a.DB, opts); err != nil {
		a.DB.Close()
		return nil, err
	}
	if err := a.openCheckpoints(ctx); err != nil {
		a.Log.Close()
		a.DB.Close()
		return nil, err
	}
	if a.SIEM != nil {
		a.Checkpoints.OnCheckpoint(a.SIEM.Checkpoint)
		if a.Metrics != nil {
			a.registerSIEMMetrics()
		}
	}
	if cfg.AuditRetentionDays != 0 {
		if err := audit.SetRetention(ctx, a.DB, cfg.AuditRetentionDays, cfg.Clock.Now()); err != nil {
			a.Log.Close()
			a.DB.Close()
			return nil, fmt.Errorf("--audit-retention-days: %w", err)
		}
	}
	a.Gate = gate.New(a.Log, cfg.Clock)
	a.Identity = identity.New(a.DB, a.Gate, a.Keys, cfg.Identity)
	a.Records = records.New(a.DB, a.Gate, a.Keys, a.Identity, cfg.Records)
	a.Approvals = approvals.New(a.DB, a.Gate, a.Keys, a.Identity, a.Records)
	if a.Detect, err = detect.New(ctx, a.DB, a.Gate, a.Identity, cfg.Identity.Location, cfg.Logger); err != nil {
		a.Log.Close()
		a.DB.Close()
		return nil, err
	}
	a.Pulse = pulse.New(a.DB)
	a.Identity.UsePulse(a.Pulse)
	a.Detect.UsePulse(a.Pulse)
	a.Records.UsePulse(a.Pulse)
	a.Gate.Confirm = a.Pulse.Confirm
	if a.Metrics != nil {
		a.registerSharedMetrics()
	}
	if err := a.Approvals.SealClearText(ctx); err != nil {
		a.Log.Close()
		a.DB.Close()
		return nil, err
	}
	if err := a.noteRestore(ctx); err != nil {
		a.Log.Close()
		a.DB.Close()
		return nil, err
	}
	if err := a.openLedger(ctx); err != nil {
		a.Log.Close()
		a.DB.Close()
		return nil, err
	}
	if cfg.Notifier.Enabled() {
		cfg.Notifier.Logger = cfg.Logger
		a.Detect.Notify = cfg.Notifier.Notify
	}
	a.Trail = trail.New(a.Gate, a.Checkpoints, a.Identity, a.Records, cfg.Identity.Location)
	a.Incidents = incidents.New(a.DB, a.Gate, a.Checkpoints, a.Keys, a.Identity, a.Records)
	a.Records.SetIncidentHolds(a.Incidents) // the subjects of open incidents are under legal hold
	// A freeze opens a grade-2 incident (SPEC §7); an overdue deadline of an
	// incident raises an alert (SPEC §7).
	a.Detect.OnFreeze = func(ctx context.Context, al detect.Alert) {
		inc, err := a.Incidents.OpenForFreeze(ctx, al.Username, al.ID, al.Explanation)
		if err == nil {
			err = a.Detect.LinkIncident(ctx, al.ID, inc.ID)
		}
		if err != nil {
			cfg.Logger.Error("opening the incident of a freeze failed", "alert", al.ID, "error", err.Error())
		}
	}
	// A closed incident's overdue deadlines are no longer open alerts.
	a.Incidents.OnClose(func(ctx context.Context, inc incidents.Incident) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), detect.DeadlineOverdueRule, inc.ID, "incident_closed"); err != nil {
			cfg.Logger.Error("clearing the alerts of a closed incident failed", "incident", inc.ID, "error", err.Error())
		}
	})
	a.Incidents.OnOverdue(func(inc incidents.Incident, dl incidents.Deadline) {
		if err := a.Detect.RaiseNotice(context.Background(), detect.DeadlineOverdueRule, inc.ID,
			fmt.Sprintf("incident %s (grade %d): deadline %s was due %s", inc.ID, inc.Grade, dl.Name, dl.DueAt.UTC().Format(time.RFC3339))); err != nil {
			cfg.Logger.Error("raising the alert of an overdue deadline failed", "incident", inc.ID, "error", err.Error())
		}
	})
	if err := a.wireIncidents(ctx, cfg); err != nil {
		a.Log.Close()
		a.DB.Close()
		return nil, err
	}
	// Approved record-use requests open records (a relation of every
	// read); a paper folder lent past its due date raises an alert once.
	a.DataUse = datause.New(a.DB, a.Gate, a.Keys, a.Records, a.Identity, datause.Config{Location: cfg.Records.Location})
	a.Records.SetUseGrants(a.DataUse.GrantsOf)
	a.DataUse.OnOverdue(func(ctx context.Context, o datause.OverdueLoan) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), datause.OverdueRule, o.FolderID,
			fmt.Sprintf("paper folder %s (loan %s) lent to %s was due %s", o.Barcode, o.LoanID, o.Borrower,
				o.DueAt.UTC().Format(time.RFC3339))); err != nil {
			cfg.Logger.Error("raising the alert of an overdue paper folder failed", "folder", o.FolderID, "error", err.Error())
		}
	})
	// The daily paper–electronic reconciliation below 100 % raises an
	// alert; a day back at 100 % resolves the open ones.
	a.DataUse.OnReconciled(func(ctx context.Context, d datause.DailyReconciliation) {
		ctx = context.WithoutCancel(ctx)
		var err error
		if d.Rate < 100 {
			err = a.Detect.RaiseNotice(ctx, datause.ReconcileRule, datause.ReconcileKey,
				fmt.Sprintf("paper-electronic sync rate %.1f%% on %s: %d folders without an electronic copy, %d inpatients without a folder",
					d.Rate, d.Day, d.FoldersWithoutElectronic, d.PatientsWithoutFolder))
		} else {
			_, err = a.Detect.ResolveNotices(ctx, datause.ReconcileRule, datause.ReconcileKey, "sync_rate_restored")
		}
		if err != nil {
			cfg.Logger.Error("the alert of the daily reconciliation failed", "day", d.Day, "error", err.Error())
		}
	})
	// External partners: an agreement is a four-eyes request; a deletion
	// confirmation overdue raises an alert once, resolved when it is
	// recorded.
	a.Partners = partners.New(a.DB, a.Gate, a.Keys, a.Identity, partners.Config{})
	a.Approvals.Register(a.Partners.AgreementKind())
	a.Partners.OnOverdue(func(ctx context.Context, o partners.OverdueDeletion) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), partners.DeletionOverdueRule, o.AgreementID,
			fmt.Sprintf("deletion confirmation of agreement %s (partner %s) was due %s", o.AgreementID, o.OrgCode,
				o.DueAt.UTC().Format(time.RFC3339))); err != nil {
			cfg.Logger.Error("raising the alert of an overdue deletion confirmation failed", "agreement", o.AgreementID, "error", err.Error())
		}
	})
	a.Partners.OnConfirmed(func(ctx context.Context, c partners.DeletionConfirmation) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), partners.DeletionOverdueRule, c.AgreementID, "deletion_confirmed"); err != nil {
			cfg.Logger.Error("clearing the alert of a confirmed deletion failed", "agreement", c.AgreementID, "error", err.Error())
		}
	})
	d := cfg.Web
	d.DataUse = a.DataUse
	d.Partners = a.Partners
	// De-identification jobs register their kind of four-eyes request and
	// sign their manifests with the audit log's key.
	a.DeidJobs = deidjobs.New(a.DB, a.Gate, a.Keys, a.Records, a.Identity, a.Approvals, a.Checkpoints.Signer, deidjobs.Config{})
	d.DeidJobs = a.DeidJobs
	a.DeidJobs.SetAgreements(a.Partners)
	a.Partners.SetApprovalKinds(a.Approvals.KindsOf)
	// Exports of more than one patient are four-eyes requests (exports.bulk).
	a.Exports = exports.New(a.DB, a.Gate, a.Keys, a.Records, a.Approvals, exports.Config{})
	d.Exports = a.Exports
	if err := a.openTraining(ctx); err != nil {
		a.Log.Close()
		a.DB.Close()
		return nil, err
	}
	// Assets and vulnerabilities (issue 13): exceptions and early lifts of
	// suspensions are four-eyes requests; an overdue vulnerability raises
	// an alert once, resolved when it is fixed or closed; the operations a
	// critical vulnerability of the records system suspends are the gate's
	// restrictions, loaded before anything is served.
	a.Assets = assets.New(a.DB, a.Gate, a.Identity, assets.Config{Location: cfg.Identity.Location})
	a.Vulns = vulns.New(a.DB, a.Gate, a.Keys, a.Assets, cfg.Vulns)
	a.Approvals.Register(a.Vulns.VulnExceptionKind())
	a.Approvals.Register(a.Vulns.SuspensionLiftKind())
	a.Gate.Restrict(a.Vulns.Restrictions)
	if err := a.Vulns.Reload(ctx); err != nil {
		a.Log.Close()
		a.DB.Close()
		return nil, err
	}
	d.Training = a.Training
	a.Vulns.OnOverdue(func(ctx context.Context, o vulns.OverdueVuln) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), vulns.OverdueRule, o.VulnID,
			fmt.Sprintf("vulnerability %s (%s) of asset %s was due %s", o.VulnID, o.Severity, o.AssetID,
				o.DueAt.UTC().Format(time.RFC3339))); err != nil {
			cfg.Logger.Error("raising the alert of an overdue vulnerability failed", "vuln", o.VulnID, "error", err.Error())
		}
	})
	a.Vulns.OnResolved(func(ctx context.Context, id string) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), vulns.OverdueRule, id, "vuln_resolved"); err != nil {
			cfg.Logger.Error("clearing the alert of a resolved vulnerability failed", "vuln", id, "error", err.Error())
		}
	})
	d.Assets, d.Vulns = a.Assets, a.Vulns
	d.DB, d.Gate, d.Log, d.Identity, d.Records, d.Approvals, d.Trail = a.DB, a.Gate, a.Log, a.Identity, a.Records, a.Approvals, a.Trail
	d.Incidents = a.Incidents
	d.Detect = a.Detect
	d.Pulse = a.Pulse
	d.Keys = a.Keys
	d.Logger, d.Metrics = cfg.Logger, a.Metrics
	a.BackupHealth = backuphealth.New(a.Gate)
	d.Backups = a.BackupHealth
	a.wireInspections(&d)
	a.openRisksAndPlans(cfg, &d)
	a.openReports(cfg, &d)
	a.openRectify(cfg, &d)
	a.openCompliance(cfg, &d)
	a.wireCompliance(&d)
	a.Web = web.New(d)
	a.Web.Console = console.New(console.Deps{Identity: a.Identity, Records: a.Records, Approvals: a.Approvals, Trail: a.Trail,
		Detect: a.Detect, Incidents: a.Incidents, Checkpoints: a.Checkpoints, Clock: cfg.Clock, Logger: cfg.Logger,
		ClientIP: a.Web.ClientIP, AllowSignIn: a.Web.AllowSignIn, KeyStatus: a.KeyStatus, Backups: a.BackupHealth,
		DataUse: a.DataUse, Partners: a.Partners, DeidJobs: a.DeidJobs, Exports: a.Exports,
		Inspections: a.Inspections, Media: a.Media, Training: a.Training, Assets: a.Assets, Vulns: a.Vulns,
		Risks: a.Risks, Plans: a.Plans, Reports: a.Reports, Rectify: a.Rectify, Compliance: a.Compliance})
	return a, nil
}

// openTraining opens the training register and wires it: it closes
// record access to staff who owe training (a restriction of the gate,
// answered from its snapshot, read here before anything is served), an
// accountability case's decision orders retraining through it, the
// staff assessment counts the cases upheld, and overdue training and
// flagged assessments raise alerts (resolved once the training is done).
func (a *App) openTraining(ctx context.Context) error {
	logger := a.Config.Logger
	a.Training = training.New(a.DB, a.Gate, a.Keys, a.Identity, training.Config{Location: a.Config.Identity.Location})
	if err := a.Training.Load(ctx); err != nil {
		return fmt.Errorf("training register: %w", err)
	}
	a.Gate.Restrict(a.Training.Restrictions)
	a.Incidents.SetRetrainer(retrainer{a.Training})
	a.Training.SetConduct(a.Incidents)
	a.Training.OnOverdue(func(ctx context.Context, n training.OverdueNotice) {
		o := n.Obligation
		what := fmt.Sprintf("%s owes %s", n.Username, o.Kind)
		if o.CourseCode != "" {
			what += " (" + o.CourseCode + ")"
		}
		msg := fmt.Sprintf("%s, due %s", what, o.DueAt.UTC().Format(time.RFC3339))
		switch {
		case o.Gating:
			msg += ": record access closed (deny.training_required)"
		case o.GatesAt != nil:
			msg += ": record access closes " + o.GatesAt.UTC().Format(time.RFC3339)
		}
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), training.OverdueRule, n.UserID, msg); err != nil {
			logger.Error("raising the alert of overdue training failed", "user", n.UserID, "error", err.Error())
		}
	})
	a.Training.OnCleared(func(ctx context.Context, userID string) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), training.OverdueRule, userID, "training_done"); err != nil {
			logger.Error("clearing the alerts of done training failed", "user", userID, "error", err.Error())
		}
	})
	a.Training.OnFlagged(func(ctx context.Context, as training.Assessment) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), training.FlaggedRule, as.UserID,
			fmt.Sprintf("%s failed the staff assessment of %s (score %d) after failing the quarter before: proposed for removal from the post",
				as.Username, as.Quarter, as.Score)); err != nil {
			logger.Error("raising the alert of a flagged assessment failed", "user", as.UserID, "error", err.Error())
		}
	})
	a.Training.OnAssessmentDue(func(ctx context.Context, d training.AssessmentDue) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), training.AssessmentDueRule, d.Quarter,
			fmt.Sprintf("the staff assessment of %s was due %s and is not computed", d.Quarter, d.DueAt.UTC().Format(time.RFC3339))); err != nil {
			logger.Error("raising the alert of a staff assessment due failed", "quarter", d.Quarter, "error", err.Error())
		}
	})
	a.Training.OnAssessed(func(ctx context.Context, quarter string) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), training.AssessmentDueRule, quarter, "assessed"); err != nil {
			logger.Error("resolving the alert of a staff assessment due failed", "quarter", quarter, "error", err.Error())
		}
	})
	return nil
}

// registerSharedMetrics shows what sharing the database costs this server:
// detection's catch-ups (with several servers, each reads back and counts
// every entry the others write, so that a user's reads are counted
// together) and the reads of the counters that keep its memory honest.
func (a *App) registerSharedMetrics() {
	a.Metrics.Counter("medguard_detect_entries_read_total", "Audit entries this server read back from the log for detection: "+
		"those other servers wrote (each server counts every user's reads, wherever served), its own between theirs, and, after a start, those written before it.",
		func() float64 { return float64(a.Detect.CatchUps().Entries) })
	a.Metrics.Counter("medguard_detect_catchup_seconds_total", "Time this server spent reading those entries back and counting them.",
		func() float64 { return a.Detect.CatchUps().Took.Seconds() })
	a.Metrics.Counter("medguard_pulse_reads_total", "Reads of the shared database's counters (audit log size, identity epoch) this server made "+
		"on their own, each shared by every request waiting at that moment.",
		func() float64 { return float64(a.Pulse.Reads()) })
	a.Metrics.Counter("medguard_pulse_deferred_total", "Record reads whose sign-in this server judged by a session in memory, "+
		"confirmed by the counters read with the record itself.",
		func() float64 { d, _ := a.Pulse.Deferred(); return float64(d) })
	a.Metrics.Counter("medguard_pulse_stale_total", "Of those, the reads that found users, roles or sessions changed since "+
		"and were answered again from the start, their sign-in read from the database.",
		func() float64 { _, s := a.Pulse.Deferred(); return float64(s) })
}

// registerSIEMMetrics shows the SIEM forwarder's state in /metrics: how far
// behind the log it is, whether it is connected and forwarding here.
func (a *App) registerSIEMMetrics() {
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	a.Metrics.Gauge("medguard_siem_lag_entries", "Audit entries not yet delivered to the SIEM.",
		func() float64 { return float64(a.SIEM.Status().Lag) })
	a.Metrics.Gauge("medguard_siem_connected", "1 while a connection to the SIEM is open.",
		func() float64 { return flag(a.SIEM.Status().Connected) })
	a.Metrics.Gauge("medguard_siem_active", "1 while this server forwards to the SIEM (0: another does, or none yet).",
		func() float64 { return flag(a.SIEM.Status().Active) })
	a.Metrics.Gauge("medguard_siem_delivered_entries", "Audit entries this server delivered to the SIEM since it started.",
		func() float64 { return float64(a.SIEM.Status().Delivered) })
}

// openKeys loads the key file (or creates one for an empty database) and
// checks that it unwraps the database's data keys.
func (a *App) openKeys(ctx context.Context) error {
	cfg := a.Config
	var err error
	path := ""
	if cfg.Keys != "" {
		a.KeyFile, err = keys.ParseKeyFile([]byte(cfg.Keys))
	} else {
		path = cfg.KeyFile
		if path == "" {
			path = filepath.Join(cfg.DataDir, "keys", "medguard.keys")
		}
		a.KeyFile, err = keys.LoadKeyFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			var n int
			if err := a.DB.QueryRowContext(ctx, `SELECT count(*) FROM data_keys`).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("key file %s is missing, but the database holds data encrypted under one: "+
					"restore it from your key backup, copy it from another server, or set MEDGUARD_KEYS", path)
			}
			a.KeyFile, a.KeyFileCreated, err = keys.LoadOrCreateKeyFileFor(path, cfg.Cipher, cmp.Or(cfg.KEK.Source, keys.SourceFile), cfg.Clock.Now())
		}
	}
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	src, err := openKEKSource(cfg.KEK, a.KeyFile, path)
	if err != nil {
		return fmt.Errorf("KEK source: %w", err)
	}
	opened := false
	defer func() {
		if c, ok := src.(io.Closer); ok && !opened {
			c.Close() // an HSM's sessions, when the installation does not open
		}
	}()
	if len(src.Versions()) == 0 && src.Name() == keys.SourcePKCS11 {
		// A new installation on a new token: its first KEK is generated
		// inside the token.
		var n int
		if err := a.DB.QueryRowContext(ctx, `SELECT count(*) FROM data_keys`).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := src.NewVersion(0, cfg.Clock.Now()); err != nil {
				return fmt.Errorf("KEK source: %w", err)
			}
		}
	}
	a.Keys = keys.NewKeyringFrom(a.DB, a.KeyFile, src, cfg.Clock)
	a.Keys.UseKeyFile(path)
	if err := a.Keys.Check(ctx); err != nil {
		return err
	}
	if c, ok := src.(io.Closer); ok {
		a.kekCloser = c
	}
	opened = true
	return nil
}

// openCheckpoints loads the audit log's signing key and refuses one that
// did not sign the checkpoints already in the database (another server's
// key would make checkpoints auditors cannot verify).
func (a *App) openCheckpoints(ctx context.Context) error {
	var signer *audit.Signer
	var err error
	if a.Config.AuditKey != "" {
		signer, err = audit.NewSigner(strings.TrimSpace(a.Config.AuditKey))
	} else {
		origin := a.Config.LogOrigin
		if origin == "" {
			host, _ := os.Hostname()
			origin = "medguard/" + sanitizeOrigin(host)
		}
		signer, _, err = audit.LoadOrCreateSigner(filepath.Join(a.Config.DataDir, "keys", "audit-log.key"), origin)
	}
	if err != nil {
		return fmt.Errorf("audit log signing key: %w", err)
	}
	stored, err := audit.StoredCheckpoints(ctx, a.DB)
	if err != nil {
		return err
	}
	if n := len(stored); n > 0 {
		// Another installation's key, or one a rotation retired, is refused.
		if err := audit.CheckSigner(stored[n-1], signer); err != nil {
			return err
		}
	}
	a.Checkpoints = audit.NewCheckpoints(a.Log, signer, filepath.Join(a.Config.DataDir, "checkpoints.log"), a.Config.Clock)
	return nil
}

// openLedger gives the records service the destruction ledger
// (DATA/destructions.log, signed with the audit log's key) and re-applies
// it: a database restored from a backup older than the ledger shreds again,
// before anything is served, every record destroyed since.
func (a *App) openLedger(ctx context.Context) error {
	a.Ledger = retention.OpenLedger(filepath.Join(a.Config.DataDir, retention.LedgerFile), a.Checkpoints.Signer())
	a.Records.SetLedger(a.Ledger)
	n, err := a.Records.ReapplyDestructions(ctx)
	if err != nil {
		return fmt.Errorf("destruction ledger: %w", err)
	}
	if n > 0 {
		a.Config.Logger.Warn("re-applied destructions from the destruction ledger (a restored database?)", "destructions", n)
	}
	return nil
}

// sanitizeOrigin keeps a host name usable as a log origin.
func sanitizeOrigin(s string) string {
	out := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
	if out == "" {
		return "server"
	}
	return out
}

// Close commits what the audit log holds and closes the database.
func (a *App) Close() error {
	err := a.Log.Close()
	// A last checkpoint covers the last entries.
	if _, cerr := a.Checkpoints.Latest(context.Background()); cerr != nil && !medguard.IsKind(cerr, medguard.NotFound) {
		err = errors.Join(err, cerr)
	}
	if a.kekCloser != nil {
		err = errors.Join(err, a.kekCloser.Close())
	}
	return errors.Join(err, a.DB.Close())
}

// retrainer lets an accountability case's warning order retraining in
// the training register (incidents.Retrainer).
type retrainer struct{ t *training.Service }

func (r retrainer) OrderRetraining(ctx context.Context, call *medguard.Call, userID, caseID, reason string) error {
	_, err := r.t.OrderRetraining(ctx, call, userID, caseID, reason)
	return err
}
