package backup

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"

	"medguard/internal/retention"
)

// Schedule is what `serve --backup-*` runs.
type Schedule struct {
	DataDir   string
	Targets   []Target
	Recipient age.Recipient
	Signer    *Signer
	// Cipher seals the backups and the stream: CipherAES (the default,
	// when empty) or CipherSM4.
	Cipher string
	// Continuous ships the WAL with Litestream (RPO: seconds).
	Continuous bool
	// FullEvery, IncrementalEvery and DrillEvery are the periods of full
	// backups (daily), sealed incremental ones (at most 15 min) and drills
	// (weekly). A drill runs here only with DrillIdentity (the server then
	// holds the key that reads its backups: prefer drills from another
	// machine); without it an overdue drill is alerted.
	FullEvery, IncrementalEvery, DrillEvery time.Duration
	DrillIdentity                           Identity
	KeyFile                                 string
	// KeepDaily and KeepMonthly are the retention (30 daily, 12 monthly).
	KeepDaily, KeepMonthly int
	Logger                 *slog.Logger
	// Record, if set, puts each backup and drill the schedule makes into
	// the audit log: action backup.full, backup.incremental or
	// backup.drill, the backup's or drill's id, and the error if it failed;
	// and what retention deletes: backup.prune with the backup's id, or
	// stream/GEN for a stream generation ("" with the error if it failed).
	Record func(action, id string, err error)
	// Now is the schedule's clock (time.Now if nil): when backups are due,
	// what retention keeps.
	Now func() time.Time
	// Alert, if set, raises an alert (key names the problem: a target's
	// lag, an overdue or failed drill).
	Alert func(key, explanation string)
}

// TargetStatus is a target's backup health.
type TargetStatus struct {
	URL        string    `json:"url"`
	Media      string    `json:"media"`
	OffSite    bool      `json:"off_site"`
	LastBackup time.Time `json:"last_backup"`
	LastError  string    `json:"last_error,omitempty"`
}

// Status is the backup health the server shows (/metrics, API).
type Status struct {
	Targets []TargetStatus `json:"targets"`
	// Shipped is the newest transaction the stream shipped; RPO is how
	// far behind the present the copies are (now − the newest data held
	// by every target).
	Shipped   time.Time     `json:"shipped"`
	RPO       time.Duration `json:"rpo_ns"`
	LastDrill *Drill        `json:"last_drill,omitempty"`
	State     State         `json:"state_321"`
}

// Scheduler runs a Schedule.
type Scheduler struct {
	s      Schedule
	stream *Stream
	mu     sync.Mutex
	status Status
	last   map[string]time.Time // last full per target
	lastIn time.Time
	// genStart is when the stream's generation started; pruneDue lists
	// the targets whose retention has not run since their last full.
	genStart  time.Time
	pruneDue  map[string]bool
	lastPrune time.Time
	started   bool
	alerts    Alerts
	// ledger is poked when the destruction ledger grows; ledgerSeen is
	// the ledger's size and time as last shipped.
	ledger     chan struct{}
	ledgerSeen string
}

// LedgerChanged tells the schedule the destruction ledger grew: it is
// shipped to every target at once (it never blocks).
func (sc *Scheduler) LedgerChanged() {
	select {
	case sc.ledger <- struct{}{}:
	default:
	}
}

// shipLedger ships the destruction ledger to every target if it changed
// since it was last shipped.
func (sc *Scheduler) shipLedger(ctx context.Context) {
	fi, err := os.Stat(filepath.Join(sc.s.DataDir, retention.LedgerFile))
	if err != nil {
		return
	}
	seen := fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
	if seen == sc.ledgerSeen {
		return
	}
	if err := ShipLedger(ctx, sc.s.DataDir, sc.s.Recipient, sc.s.Targets); err != nil {
		sc.alert("backup_ledger", "shipping the destruction ledger failed (retried every minute): %v", err)
		return
	}
	sc.ledgerSeen = seen
}

// NewScheduler prepares a schedule; Run runs it.
func NewScheduler(s Schedule) *Scheduler {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	sc := &Scheduler{s: s, last: map[string]time.Time{}, pruneDue: map[string]bool{}, ledger: make(chan struct{}, 1)}
	for _, t := range s.Targets {
		sc.status.Targets = append(sc.status.Targets, TargetStatus{URL: t.URL(), Media: t.Media(), OffSite: t.OffSite()})
	}
	return sc
}

// Status is the current backup health.
func (sc *Scheduler) Status() Status {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	st := sc.status
	st.Targets = append([]TargetStatus(nil), st.Targets...)
	if sc.stream != nil {
		st.Shipped, _ = sc.stream.Shipped()
	}
	newest := st.Shipped
	failing := map[string]bool{}
	for _, t := range st.Targets {
		if t.LastBackup.After(newest) && sc.stream == nil {
			newest = t.LastBackup
		}
		if t.LastError != "" {
			failing[t.URL] = true
		}
	}
	if !newest.IsZero() {
		st.RPO = time.Since(newest)
	}
	st.State = ComputeState(sc.s.Targets, failing)
	return st
}

func (sc *Scheduler) setTarget(url string, at time.Time, err error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for i := range sc.status.Targets {
		if sc.status.Targets[i].URL == url {
			if err != nil {
				sc.status.Targets[i].LastError = err.Error()
			} else {
				sc.status.Targets[i].LastBackup, sc.status.Targets[i].LastError = at, ""
			}
		}
	}
}

// verifierKey is the server's own key the schedule checks the manifests
// and drills on its targets with — never a key read from a target (the
// keys before it, if the audit log's key was rotated, are followed
// through the transition checkpoints, which the key co-signed).
func (sc *Scheduler) verifierKey() string {
	if sc.s.Signer == nil {
		return ""
	}
	return sc.s.Signer.VerifierKey()
}

func (sc *Scheduler) record(action, id string, err error) {
	if sc.s.Record != nil {
		sc.s.Record(action, id, err)
	}
}

func (sc *Scheduler) alert(key, format string, args ...any) {
	sc.alerts.Raise(sc.s.Logger, sc.s.Alert, key, format, args...)
}

func (sc *Scheduler) now() time.Time {
	if sc.s.Now != nil {
		return sc.s.Now()
	}
	return time.Now()
}

func (sc *Scheduler) createOptions() CreateOptions {
	// Backups carry the time they were made (the clock only decides
	// what is due and what retention keeps).
	return CreateOptions{DataDir: sc.s.DataDir, Recipient: sc.s.Recipient, Signer: sc.s.Signer, Cipher: sc.s.Cipher}
}

// Run runs the schedule until ctx ends: the stream (if continuous), a
// full backup when one is due on a target, a sealed incremental every
// IncrementalEvery, a new stream generation with every full backup,
// retention after each full, and drills. A target that fails keeps the
// server serving: its error is shown and alerted, and it is retried every
// minute (the stream retries its segments in order).
func (sc *Scheduler) Run(ctx context.Context) {
	defer sc.Stop()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		sc.Tick(ctx)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				waiting = false
			case <-sc.ledger:
				sc.shipLedger(ctx)
			}
		}
	}
}

// Tick runs what is due now; Run calls it every minute. The first call
// starts the schedule: the targets' last full backups are read and the
// stream is opened.
func (sc *Scheduler) Tick(ctx context.Context) {
	if !sc.started {
		sc.started = true
		sc.start(ctx)
	}
	sc.step(ctx)
}

// Stop ships what the stream holds and stops it.
func (sc *Scheduler) Stop() {
	sc.mu.Lock()
	s := sc.stream
	sc.mu.Unlock()
	if s != nil {
		s.Close(context.Background())
	}
}

func (sc *Scheduler) start(ctx context.Context) {
	// After a rotation of the audit log's key, the targets learn the
	// transition checkpoints at once: the backups signed before it are
	// listed (checked with this server's key, through the chain).
	if err := ShipTransitions(ctx, sc.s.DataDir, sc.s.Targets); err != nil {
		sc.s.Logger.Warn("backup: copying the audit log's key transitions to the targets", "err", err)
	}
	for _, t := range sc.s.Targets {
		if es, err := List(ctx, t, sc.verifierKey()); err == nil {
			for _, e := range es {
				if e.Manifest != nil && e.Manifest.Kind == Full {
					sc.last[t.URL()] = e.Manifest.CreatedAt
					sc.setTarget(t.URL(), e.Manifest.CreatedAt, nil)
				}
			}
		}
	}
	sc.openStream(ctx, false)
	sc.lastIn = sc.now()
}

// openStream opens the continuous stream (a new generation if asked).
func (sc *Scheduler) openStream(ctx context.Context, newGen bool) bool {
	if !sc.s.Continuous {
		return false
	}
	s, err := OpenStream(ctx, StreamOptions{DataDir: sc.s.DataDir, Targets: sc.s.Targets, Recipient: sc.s.Recipient,
		Logger: sc.s.Logger, NewGeneration: newGen, Now: sc.s.Now, Cipher: sc.s.Cipher})
	if err != nil {
		sc.alert("backup_stream", "the continuous stream did not start (retried every minute): %v", err)
		return false
	}
	start, ok := GenerationStart(s.Generation())
	if !ok || newGen {
		start = sc.now()
	}
	sc.mu.Lock()
	sc.stream = s
	sc.genStart = start
	sc.mu.Unlock()
	return true
}

// Sync ships every transaction committed before it was called (nothing
// without a stream).
func (sc *Scheduler) Sync(ctx context.Context) error {
	sc.mu.Lock()
	s := sc.stream
	sc.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Sync(ctx)
}

// Generation is the stream's current generation ("" without one).
func (sc *Scheduler) Generation() string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.stream == nil {
		return ""
	}
	return sc.stream.Generation()
}

func (sc *Scheduler) step(ctx context.Context) {
	opt := sc.createOptions()
	now := sc.now()
	if sc.s.Continuous && sc.stream == nil {
		sc.openStream(ctx, true)
	}
	madeFull := false
	for _, t := range sc.s.Targets {
		if now.Sub(sc.last[t.URL()]) < sc.s.FullEvery {
			continue
		}
		o := opt
		o.Targets = []Target{t}
		res, err := Create(ctx, o)
		sc.setTarget(t.URL(), now, err)
		id := ""
		if res != nil && res.Manifest != nil {
			id = res.Manifest.ID
		}
		sc.record("backup.full", id, err)
		if err != nil {
			sc.alert("backup_target:"+t.URL(), "full backup to %s failed (retried every minute): %v", t.URL(), err)
			continue
		}
		sc.last[t.URL()] = now
		sc.pruneDue[t.URL()] = true
		madeFull = true
	}
	// A new generation with every full backup (and at the latest one
	// full-backup period after the last one started): a generation never
	// spans more than that, so pruning can drop old ones whole.
	if sc.stream != nil && sc.s.FullEvery > 0 &&
		((madeFull && now.Sub(sc.genStart) >= sc.s.IncrementalEvery) || now.Sub(sc.genStart) >= sc.s.FullEvery) {
		sc.rotate(ctx, opt)
	}
	sc.prune(ctx, now)
	if sc.stream != nil && now.Sub(sc.lastIn) >= sc.s.IncrementalEvery {
		o := opt
		o.Targets = sc.s.Targets
		res, err := sc.stream.Seal(ctx, o)
		id := ""
		if res != nil && res.Manifest != nil {
			id = res.Manifest.ID
		}
		sc.record("backup.incremental", id, err)
		if err != nil {
			sc.alert("backup_stream", "sealing the stream failed: %v", err)
		} else {
			sc.lastIn = now
		}
	}
	if sc.stream != nil {
		if shipped, err := sc.stream.Shipped(); err != nil {
			sc.alert("backup_stream", "shipping the WAL is failing (last shipped %s): %v", shipped.Format(time.RFC3339), err)
		}
	}
	sc.shipLedger(ctx)
	sc.drill(ctx, now)
}

// rotate ends the stream's generation and starts a new one. The old one
// is shipped to its last committed transaction and stopped, then sealed
// whole (its last incremental backup, which restores any moment of it);
// the new one starts with a snapshot of the database taken when it first
// ships, after the old one stopped: every write is in one generation or
// the other (writes committed between the two are in the new one's
// snapshot), none is lost. The new generation is sealed in the same tick,
// so both sides of the boundary are restorable at once. If the old one
// cannot be sealed before it is stopped, it goes on shipping and the
// rotation is retried at the next tick.
func (sc *Scheduler) rotate(ctx context.Context, opt CreateOptions) {
	old := sc.stream
	o := opt
	o.Targets = sc.s.Targets
	res, err := old.Finish(ctx, o)
	id := ""
	if res != nil && res.Manifest != nil {
		id = res.Manifest.ID
	}
	sc.record("backup.incremental", id, err)
	if err != nil && !old.Closed() {
		sc.alert("backup_stream", "ending stream generation %s failed (retried every minute): %v", old.Generation(), err)
		return
	}
	if err != nil {
		sc.alert("backup_stream", "the last seal of stream generation %s failed: its newest writes are in the next generation's snapshot, but a restore --at a moment after its last seal gets the state at that seal: %v", old.Generation(), err)
	}
	sc.mu.Lock()
	sc.stream = nil
	sc.mu.Unlock()
	if sc.openStream(ctx, true) {
		sc.s.Logger.Info("backup: new stream generation", "old", old.Generation(), "new", sc.Generation())
		sc.lastIn = time.Time{}
	}
}

// PruneEvery is how often the retention runs on every target besides
// after each full backup: what it deletes is gone within that of its end.
const PruneEvery = time.Hour

// prune applies the retention to the targets whose full backup was made
// since it last ran there, and to all every PruneEvery: Prune (full and incremental backups, the
// per-backup rule), then PruneStream (stream generations). What it deletes
// is audited (backup.prune); a failure is audited, alerted, and retried at
// the next tick.
func (sc *Scheduler) prune(ctx context.Context, now time.Time) {
	var current []string
	if g := sc.Generation(); g != "" {
		current = append(current, g)
	}
	if g := CurrentGeneration(sc.s.DataDir); g != "" {
		current = append(current, g)
	}
	if now.Sub(sc.lastPrune) >= PruneEvery {
		sc.lastPrune = now
		for _, t := range sc.s.Targets {
			sc.pruneDue[t.URL()] = true
		}
	}
	for _, t := range sc.s.Targets {
		if !sc.pruneDue[t.URL()] {
			continue
		}
		deleted, err := Prune(ctx, t, now, sc.s.KeepDaily, sc.s.KeepMonthly)
		for _, id := range deleted {
			sc.record("backup.prune", id, nil)
		}
		if err == nil {
			var gens, seals []string
			gens, seals, err = PruneStream(ctx, t, now, sc.s.KeepDaily, sc.s.KeepMonthly, current...)
			for _, id := range seals {
				sc.record("backup.prune", id, nil)
			}
			for _, g := range gens {
				sc.record("backup.prune", streamDir+g, nil)
			}
		}
		if err != nil {
			sc.record("backup.prune", "", err)
			sc.alert("backup_prune:"+t.URL(), "deleting the backups and stream generations the retention keeps no longer failed on %s (retried every minute): %v", t.URL(), err)
			continue
		}
		delete(sc.pruneDue, t.URL())
	}
}

func (sc *Scheduler) drill(ctx context.Context, now time.Time) {
	if sc.s.DrillEvery <= 0 || len(sc.s.Targets) == 0 {
		return
	}
	ds, _ := ListDrills(ctx, sc.s.Targets[0], sc.verifierKey())
	var last *Drill
	if len(ds) > 0 {
		last = &ds[len(ds)-1]
	}
	sc.mu.Lock()
	sc.status.LastDrill = last
	sc.mu.Unlock()
	if last != nil && now.Sub(last.StartedAt) < sc.s.DrillEvery {
		return
	}
	if sc.s.DrillIdentity == nil {
		if last == nil || now.Sub(last.StartedAt) > sc.s.DrillEvery+24*time.Hour {
			sc.alert("backup_drill", "a restore drill is overdue: run `medguard backup drill` where the backup identity is kept")
		}
		return
	}
	d, err := RunDrill(ctx, DrillOptions{Targets: sc.s.Targets, Identity: sc.s.DrillIdentity, KeyFile: sc.s.KeyFile, Signer: sc.s.Signer})
	id := ""
	if d != nil {
		id = d.ID
	}
	sc.record("backup.drill", id, err)
	sc.mu.Lock()
	sc.status.LastDrill = d
	sc.mu.Unlock()
	if err != nil {
		sc.alert("backup_drill", "the restore drill failed: %v", err)
	}
}
