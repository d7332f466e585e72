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
	// backup.drill, the backup's or drill's id, and the error if it failed.
	Record func(action, id string, err error)
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
	alerts Alerts
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
	sc := &Scheduler{s: s, last: map[string]time.Time{}, ledger: make(chan struct{}, 1)}
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
// and drills on its targets with — never a key read from a target.
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

// Run runs the schedule until ctx ends: the stream (if continuous), a
// full backup when one is due on a target, a sealed incremental every
// IncrementalEvery, retention after each full, and drills. A target that
// fails keeps the server serving: its error is shown and alerted, and it
// is retried every minute (the stream retries its segments in order).
func (sc *Scheduler) Run(ctx context.Context) {
	opt := CreateOptions{DataDir: sc.s.DataDir, Recipient: sc.s.Recipient, Signer: sc.s.Signer}
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
	if sc.s.Continuous {
		s, err := OpenStream(ctx, StreamOptions{DataDir: sc.s.DataDir, Targets: sc.s.Targets, Recipient: sc.s.Recipient, Logger: sc.s.Logger})
		if err != nil {
			sc.alert("backup_stream", "the continuous stream did not start: %v", err)
		} else {
			sc.mu.Lock()
			sc.stream = s
			sc.mu.Unlock()
			defer s.Close(context.Background())
		}
	}
	sc.lastIn = time.Now()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		sc.step(ctx, opt)
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

func (sc *Scheduler) step(ctx context.Context, opt CreateOptions) {
	now := time.Now()
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
		sc.last[t.URL()] = res.Manifest.CreatedAt
		if _, err := Prune(ctx, t, now, sc.s.KeepDaily, sc.s.KeepMonthly); err != nil {
			sc.s.Logger.Warn("backup: retention", "target", t.URL(), "error", err.Error())
		}
	}
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
