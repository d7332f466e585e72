package backup

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Reporter is what the API, the console and /metrics show of an
// installation's backups: the schedule's health and the drill history.
// serve's SQLite schedule (Scheduler) provides it; a PostgreSQL
// installation's pgBackRest schedule provides the same.
type Reporter interface {
	// Status is the current health: every target's last backup and error,
	// the achieved RPO, the last drill and the 3-2-1 state.
	Status() Status
	// Drills lists the recorded restore drills, oldest first.
	Drills(ctx context.Context) ([]Drill, error)
}

// Drills lists the drills recorded on the schedule's targets, checked
// against the server's own verifier key (never a key read from the
// target), oldest first; a drill recorded on several targets is listed
// once.
func (sc *Scheduler) Drills(ctx context.Context) ([]Drill, error) {
	vkey := sc.verifierKey()
	seen := map[string]bool{}
	var out []Drill
	var firstErr error
	for _, t := range sc.s.Targets {
		ds, err := ListDrills(ctx, t, vkey)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, d := range ds {
			if !seen[d.ID] {
				seen[d.ID] = true
				out = append(out, d)
			}
		}
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out, nil
}

// Alerts rate-limits a schedule's alerts: every problem is logged, and
// raised at most once an hour per key (a target's lag, an overdue or
// failed drill). The zero value is ready to use.
type Alerts struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// Raise logs the problem and, unless the same key was raised within the
// hour, passes it to raise (nil: log only).
func (a *Alerts) Raise(logger *slog.Logger, raise func(key, explanation string), key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logger.Error("backup: "+msg, "key", key)
	a.mu.Lock()
	if a.last == nil {
		a.last = map[string]time.Time{}
	}
	recent := time.Since(a.last[key]) < time.Hour
	if !recent {
		a.last[key] = time.Now()
	}
	a.mu.Unlock()
	if raise != nil && !recent {
		raise(key, msg)
	}
}
