package pgbackup

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path"
	"strings"
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
	// shipped is when each repository's newest WAL segment arrived.
	shipped map[int]time.Time
	leader  bool
	alerts  backup.Alerts
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
	c := s.Tool.Config
	for _, n := range c.Repos() {
		t := backup.TargetStatus{URL: c.RepoTarget(n), Media: "disk"}
		if n == 2 {
			t.Media, t.OffSite = c.Repo2.Media(), c.Repo2.IsOffSite()
		}
		sc.status.Targets = append(sc.status.Targets, t)
	}
	sc.status.State = State321(sc.status.Targets)
	return sc
}

// State321 is the 3-2-1 state of a PostgreSQL installation from its
// repositories' status: the live database is one copy on disk; each
// repository holding a good backup (one is listed and its last backup did
// not fail) is another copy, on its medium (a directory is "disk", S3 an
// "object-store"), and off-site if its target is.
func State321(targets []backup.TargetStatus) backup.State {
	s := backup.State{Copies: 1}
	media := map[string]bool{"disk": true} // the live database
	for _, t := range targets {
		if t.LastBackup.IsZero() || t.LastError != "" {
			continue
		}
		s.Copies++
		media[t.Media] = true
		if t.OffSite {
			s.OffSite++
		}
	}
	s.Media = len(media)
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
// verifier key (and the keys before it, through the transition
// checkpoints beside the manifests), oldest first.
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
	shipped := false
	for {
		conn = sc.lead(ctx, conn)
		if conn != nil && !shipped {
			// After a rotation of the audit log's key, the manifests and
			// drills signed before it are listed with the new key at once.
			shipped = true
			if err := ShipTransitions(ctx, sc.s.DB, sc.s.ManifestDir); err != nil {
				sc.s.Logger.Warn("pgbackup: copying the audit log's key transitions beside the manifests", "err", err)
			}
		}
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
	sc.s.Logger.Info("backup: this server runs the pgBackRest schedule", "repositories", len(sc.s.Tool.Config.Repos()))
	return c
}

func (sc *Scheduler) setLeader(v bool) {
	sc.mu.Lock()
	sc.leader = v
	sc.mu.Unlock()
}

// setError sets repository i's (0-based) error and the 3-2-1 state.
func (sc *Scheduler) setError(i int, err error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.status.Targets[i].LastError = ""
	if err != nil {
		sc.status.Targets[i].LastError = err.Error()
	}
	sc.status.State = State321(sc.status.Targets)
}

// step does what is due now: for each repository, the backup that is due
// there (each repository gets its own full and incremental backups, with
// their own manifests), then the drill.
func (sc *Scheduler) step(ctx context.Context, leader bool) {
	info, err := sc.s.Tool.Info(ctx)
	c := sc.s.Tool.Config
	for i, repo := range c.Repos() {
		rerr := err
		if rerr == nil && leader {
			if typ, due := sc.due(info, repo, time.Now()); due {
				var m *Manifest
				m, rerr = CreateIn(ctx, sc.s.Tool, repo, sc.s.DB, typ, sc.s.Signer, sc.s.ManifestDir)
				action, id := "backup.incremental", ""
				if typ == Full {
					action = "backup.full"
				}
				if m != nil {
					id = m.Label
				}
				sc.record(action, id, rerr)
				if rerr == nil {
					var again *Info
					if again, rerr = sc.s.Tool.Info(ctx); rerr == nil {
						info = again
					}
				}
				if rerr != nil {
					rerr = fmt.Errorf("%s backup: %w", typ, rerr)
				}
			}
		}
		if rerr != nil {
			sc.alert("backup_target:"+c.RepoTarget(repo), "pgBackRest backup to repository %d (%s) failed (retried every %s): %v",
				repo, c.RepoTarget(repo), sc.s.Tick, rerr)
		}
		if info != nil {
			sc.refresh(ctx, i, repo, info, rerr)
		} else {
			sc.setError(i, rerr)
		}
	}
	sc.drill(ctx, leader)
}

// due says which backup is due in repository repo: a full one when none
// is younger than FullEvery, else an incremental one when none is younger
// than IncrementalEvery.
func (sc *Scheduler) due(info *Info, repo int, now time.Time) (BackupType, bool) {
	var lastFull, last time.Time
	for _, b := range info.Backups {
		if b.Error || b.Repo != repo {
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

// refresh reads repository repo's state into target i of the status: its
// newest backup and error, and the RPO: the shipped time is the oldest of
// the repositories' newest archived WAL segments (what every copy holds).
func (sc *Scheduler) refresh(ctx context.Context, i, repo int, info *Info, err error) {
	var last time.Time
	for _, b := range info.Backups {
		if !b.Error && b.Repo == repo && b.Stop.After(last) {
			last = b.Stop
		}
	}
	shipped := sc.archivedAt(ctx, repo, info)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.shipped == nil {
		sc.shipped = map[int]time.Time{}
	}
	sc.status.Targets[i].LastBackup = last
	sc.status.Targets[i].LastError = ""
	if err != nil {
		sc.status.Targets[i].LastError = err.Error()
	}
	if !shipped.IsZero() {
		sc.shipped[repo] = shipped
	}
	var oldest time.Time
	for _, n := range sc.s.Tool.Config.Repos() {
		if t := sc.shipped[n]; oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if !oldest.IsZero() {
		sc.status.Shipped = oldest
	}
	sc.status.State = State321(sc.status.Targets)
}

// archivedAt is when the newest archived WAL segment of repository repo
// (pgbackrest info's archive max there) was written into it.
func (sc *Scheduler) archivedAt(ctx context.Context, repo int, info *Info) time.Time {
	var a *ArchiveInfo
	for i := range info.Archives {
		if info.Archives[i].Repo == repo {
			a = &info.Archives[i]
		}
	}
	if a == nil || len(a.Max) < 24 {
		return time.Time{}
	}
	st, err := openStore(sc.s.Tool.Config, repo)
	if err != nil {
		return time.Time{}
	}
	files, _ := st.list(ctx, path.Join(archiveDir(sc.s.Tool.Config.Stanza, a.ID), a.Max[:16]))
	var newest time.Time
	for _, f := range files {
		if strings.HasPrefix(path.Base(f.Path), a.Max) && f.ModTime.After(newest) {
			newest = f.ModTime
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
	var lastBackup time.Time
	for _, t := range sc.status.Targets {
		if t.LastBackup.After(lastBackup) {
			lastBackup = t.LastBackup
		}
	}
	sc.mu.Unlock()
	if sc.s.DrillEvery <= 0 || !leader || lastBackup.IsZero() {
		return
	}
	if last != nil && time.Since(last.StartedAt) < sc.s.DrillEvery {
		return
	}
	o := sc.s.Drill
	o.Tool, o.ManifestDir, o.VerifierKey, o.Signer = sc.s.Tool, sc.s.ManifestDir, sc.s.VerifierKey, sc.s.Signer
	// With two repositories the drills take turns: each drills the one
	// the last drill did not, so the off-site copy is restored too.
	if c := sc.s.Tool.Config; o.Repo == 0 && len(c.Repos()) > 1 && last != nil && last.Target == c.RepoTarget(1) {
		o.Repo = 2
	}
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
