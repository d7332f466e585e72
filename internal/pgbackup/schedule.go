package pgbackup

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard/internal/backup"
	"medguard/internal/storage"
)

// ScheduleLock is the PostgreSQL advisory lock key the server that runs
// the schedule holds: of several servers on one database, one backs up.
const ScheduleLock int64 = 0x6d6700bac0 // "mg" … "bac0"

// Schedule is what `serve --backup-pg-config` runs.
type Schedule struct {
	Tool        *Tool
	ManifestDir string
	// DB is medguard's (live) database: its audit head and key versions
	// go into each manifest, and the advisory lock is taken on it.
	DB          *storage.DB
	Signer      note.Signer
	VerifierKey string
	// FullEvery and IncrementalEvery are the periods of full and
	// incremental backups; DrillEvery of restore drills (0: none run
	// here, and none is alerted as overdue).
	FullEvery, IncrementalEvery, DrillEvery time.Duration
	// Drill is the template of the scheduled drills (Tool, ManifestDir,
	// VerifierKey and Signer are filled in).
	Drill DrillOptions
	// Tick is how often the schedule looks at what is due (default 1 min).
	Tick   time.Duration
	Logger *slog.Logger
	// Record, if set, puts each backup and drill into the audit log (see
	// backup.Schedule's Record).
	Record func(action, id string, err error)
	// Alert raises an alert (key names the problem).
	Alert func(key, explanation string)
}

// Scheduler runs a Schedule and reports its health (backup.Reporter).
type Scheduler struct {
	s      Schedule
	mu     sync.Mutex
	status backup.Status
	leader bool
	alerts backup.Alerts
}

var _ backup.Reporter = (*Scheduler)(nil)

// NewScheduler prepares a schedule; Run runs it.
func NewScheduler(s Schedule) *Scheduler {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Tick <= 0 {
		s.Tick = time.Minute
	}
	sc := &Scheduler{s: s}
	sc.status.Targets = []backup.TargetStatus{{URL: s.Tool.Config.Target(), Media: "disk"}}
	sc.status.State = state(false)
	return sc
}

// state is the 3-2-1 state: the live database and the repository (one
// local directory, the same medium). pgBackRest's second repository and
// S3 repositories are not configured by medguard yet.
func state(repoFailing bool) backup.State {
	s := backup.State{Copies: 1, Media: 1}
	if !repoFailing {
		s.Copies++
	}
	s.Met = s.Copies >= 3 && s.Media >= 2 && s.OffSite >= 1
	return s
}

// Status is the current backup health: the repository's last backup and
// error, the achieved RPO (now − when the newest archived WAL segment
// reached the repository), the last drill and the 3-2-1 state.
func (sc *Scheduler) Status() backup.Status {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	st := sc.status
	st.Targets = append([]backup.TargetStatus(nil), st.Targets...)
	if !st.Shipped.IsZero() {
		st.RPO = time.Since(st.Shipped)
	}
	return st
}

// Leader reports whether this server holds the schedule's lock.
func (sc *Scheduler) Leader() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.leader
}

// Drills lists the signed drill records, checked with the server's own
// verifier key, oldest first.
func (sc *Scheduler) Drills(ctx context.Context) ([]backup.Drill, error) {
	return ListDrills(DrillDir(sc.s.ManifestDir), sc.s.VerifierKey)
}

func (sc *Scheduler) record(action, id string, err error) {
	if sc.s.Record != nil {
		sc.s.Record(action, id, err)
	}
}

func (sc *Scheduler) alert(key, format string, args ...any) {
	sc.alerts.Raise(sc.s.Logger, sc.s.Alert, key, format, args...)
}

// Run runs the schedule until ctx ends. Every Tick, every server refreshes
// the status from the repository; the one server that holds the advisory
// lock also takes the full or incremental backup that is due, and the
// drill. Failures keep the server serving: they are shown, alerted and
// retried at the next tick.
func (sc *Scheduler) Run(ctx context.Context) {
	var conn *sql.Conn
	defer func() {
		if conn != nil {
			conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, ScheduleLock)
			conn.Close()
		}
	}()
	tick := time.NewTicker(sc.s.Tick)
	defer tick.Stop()
	for {
		conn = sc.lead(ctx, conn)
		sc.step(ctx, conn != nil)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// lead takes (or keeps) the advisory lock on a connection of its own; it
// returns nil while another server holds it.
func (sc *Scheduler) lead(ctx context.Context, conn *sql.Conn) *sql.Conn {
	if conn != nil {
		if err := conn.PingContext(ctx); err == nil {
			return conn
		}
		conn.Close() // the session, and with it the lock, is gone
		conn = nil
	}
	c, err := sc.s.DB.Conn(ctx)
	if err != nil {
		sc.setLeader(false)
		return nil
	}
	var got bool
	if err := c.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, ScheduleLock).Scan(&got); err != nil || !got {
		c.Close()
		sc.setLeader(false)
		return nil
	}
	sc.setLeader(true)
	sc.s.Logger.Info("backup: this server runs the pgBackRest schedule", "repository", sc.s.Tool.Config.Repo)
	return c
}

func (sc *Scheduler) setLeader(v bool) {
	sc.mu.Lock()
	sc.leader = v
	sc.mu.Unlock()
}

func (sc *Scheduler) setError(err error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.status.Targets[0].LastError = ""
	if err != nil {
		sc.status.Targets[0].LastError = err.Error()
	}
	sc.status.State = state(err != nil)
}

// step does what is due now.
func (sc *Scheduler) step(ctx context.Context, leader bool) {
	info, err := sc.s.Tool.Info(ctx)
	if err == nil && leader {
		if typ, due := sc.due(info, time.Now()); due {
			var m *Manifest
			m, err = Create(ctx, sc.s.Tool, sc.s.DB, typ, sc.s.Signer, sc.s.ManifestDir)
			action, id := "backup.incremental", ""
			if typ == Full {
				action = "backup.full"
			}
			if m != nil {
				id = m.Label
			}
			sc.record(action, id, err)
			if err == nil {
				info, err = sc.s.Tool.Info(ctx)
			}
			if err != nil {
				err = fmt.Errorf("%s backup: %w", typ, err)
			}
		}
	}
	if err != nil {
		sc.setError(err)
		sc.alert("backup_target:"+sc.s.Tool.Config.Target(), "pgBackRest backup to %s failed (retried every %s): %v",
			sc.s.Tool.Config.Repo, sc.s.Tick, err)
	}
	if info != nil {
		sc.refresh(info, err)
	}
	sc.drill(ctx, leader)
}

// due says which backup is due: a full one when none is younger than
// FullEvery, else an incremental one when none is younger than
// IncrementalEvery.
func (sc *Scheduler) due(info *Info, now time.Time) (BackupType, bool) {
	var lastFull, last time.Time
	for _, b := range info.Backups {
		if b.Error {
			continue
		}
		if b.Type == Full && b.Stop.After(lastFull) {
			lastFull = b.Stop
		}
		if b.Stop.After(last) {
			last = b.Stop
		}
	}
	switch {
	case now.Sub(lastFull) >= sc.s.FullEvery:
		return Full, true
	case sc.s.IncrementalEvery > 0 && now.Sub(last) >= sc.s.IncrementalEvery:
		return Incremental, true
	}
	return "", false
}

// refresh reads the repository's state into the status: the newest
// backup and when the newest archived WAL segment arrived.
func (sc *Scheduler) refresh(info *Info, err error) {
	var last time.Time
	for _, b := range info.Backups {
		if !b.Error && b.Stop.After(last) {
			last = b.Stop
		}
	}
	shipped := sc.archivedAt(info)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.status.Targets[0].LastBackup = last
	if !shipped.IsZero() {
		sc.status.Shipped = shipped
	}
	if err == nil {
		sc.status.Targets[0].LastError = ""
		sc.status.State = state(false)
	}
}

// archivedAt is when the newest archived WAL segment (pgbackrest info's
// archive max) was written into the repository.
func (sc *Scheduler) archivedAt(info *Info) time.Time {
	if len(info.Archives) == 0 {
		return time.Time{}
	}
	a := info.Archives[len(info.Archives)-1]
	if len(a.Max) < 24 {
		return time.Time{}
	}
	c := sc.s.Tool.Config
	files, _ := filepath.Glob(filepath.Join(c.Repo, archiveDir(c.Stanza, a.ID), a.Max[:16], a.Max+"*"))
	var newest time.Time
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	return newest
}

// drill shows the last drill and, on the leader, runs one when due.
func (sc *Scheduler) drill(ctx context.Context, leader bool) {
	ds, _ := sc.Drills(ctx)
	var last *backup.Drill
	if len(ds) > 0 {
		last = &ds[len(ds)-1]
	}
	sc.mu.Lock()
	sc.status.LastDrill = last
	lastBackup := sc.status.Targets[0].LastBackup
	sc.mu.Unlock()
	if sc.s.DrillEvery <= 0 || !leader || lastBackup.IsZero() {
		return
	}
	if last != nil && time.Since(last.StartedAt) < sc.s.DrillEvery {
		return
	}
	o := sc.s.Drill
	o.Tool, o.ManifestDir, o.VerifierKey, o.Signer = sc.s.Tool, sc.s.ManifestDir, sc.s.VerifierKey, sc.s.Signer
	d, err := RunDrill(ctx, o)
	if d != nil {
		sc.record("backup.drill", d.ID, err)
	}
	sc.mu.Lock()
	sc.status.LastDrill = d
	sc.mu.Unlock()
	if err != nil {
		sc.alert("backup_drill", "the restore drill of %s failed: %v", d.Backup, err)
	}
}
