package vulns

import (
	"context"
	"database/sql"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// OverdueRule is the detection rule of the alerts raised for an open
// vulnerability past its due date: the alert's key is the
// vulnerability's id.
const OverdueRule = "vuln_overdue"

// OverdueVuln is an open vulnerability past its due date, announced once
// (again only if it is reopened after a fix).
type OverdueVuln struct {
	VulnID, AssetID, Severity string
	DueAt                     time.Time
}

// OnOverdue adds a hook told once of every vulnerability that becomes
// overdue (the detection engine raises an alert).
func (s *Service) OnOverdue(hook func(context.Context, OverdueVuln)) { s.onOverdue.Add(hook) }

// OnResolved adds a hook told of every vulnerability that leaves the open
// states — fixed, or closed by an approved exception (the detection
// engine resolves its overdue alert).
func (s *Service) OnResolved(hook func(ctx context.Context, vulnID string)) { s.onResolved.Add(hook) }

// CheckOverdue announces the open vulnerabilities that are overdue now and
// were not announced before: each is logged (vuln.overdue, as the system)
// and passed to the OnOverdue hooks, once — also when several servers
// check at the same time.
func (s *Service) CheckOverdue(ctx context.Context) ([]OverdueVuln, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	rows, err := s.db.QueryContext(ctx, `SELECT id, asset_id, severity, due_at FROM vulns WHERE status IN ($1, $2, $3)
		AND due_at <= $4 AND overdue_notified_at IS NULL ORDER BY due_at, id LIMIT 1000`, StatusNew, StatusConfirmed, StatusFixing,
		medguard.Millis(now))
	if err != nil {
		return nil, medguard.Wrap("vulns.CheckOverdue", err)
	}
	var due []OverdueVuln
	for rows.Next() {
		var o OverdueVuln
		var at int64
		if err := rows.Scan(&o.VulnID, &o.AssetID, &o.Severity, &at); err != nil {
			rows.Close()
			return nil, medguard.Wrap("vulns.CheckOverdue", err)
		}
		o.DueAt = medguard.FromMillis(at)
		due = append(due, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("vulns.CheckOverdue", err)
	}
	fresh, err := gate.Announce(ctx, s.gate, due, func(o OverdueVuln) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "vuln.overdue", TargetType: "vuln", TargetID: o.VulnID, Allowed: true,
			Rule: "allow.system.deadline:vuln_due"}
	}, func(ctx context.Context, tx *sql.Tx, o OverdueVuln) error {
		res, err := tx.ExecContext(ctx, `UPDATE vulns SET overdue_notified_at = $1 WHERE id = $2 AND overdue_notified_at IS NULL
			AND status IN ($3, $4, $5)`, medguard.Millis(now), o.VulnID, StatusNew, StatusConfirmed, StatusFixing)
		return storage.Affected(res, err, gate.ErrAnnounced)
	})
	s.onOverdue.Tell(ctx, fresh...)
	return fresh, err
}

// Run checks for overdue vulnerabilities at once and then every interval
// until ctx ends, reloading the suspensions in force as well, and passes
// failures to onError (may be nil).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		if err := s.Reload(ctx); err != nil {
			return err
		}
		_, err := s.CheckOverdue(ctx)
		return err
	}, onError)
}

// CadenceItem is an asset in use and its last scan.
type CadenceItem struct {
	AssetID       string `json:"asset_id"`
	Code          string `json:"code"`
	Name          string `json:"name"`
	Kind          string `json:"kind"`
	Department    string `json:"department"`
	RecordsSystem bool   `json:"records_system"`
	// LastScannedAt is when its last scan ran (absent: never scanned);
	// NextDueAt when the next is due. Late is true once it is due.
	LastScannedAt *time.Time `json:"last_scanned_at,omitempty"`
	NextDueAt     *time.Time `json:"next_due_at,omitempty"`
	Late          bool       `json:"late"`
	// Open counts its open vulnerabilities.
	Open int `json:"open"`
}

// Cadence lists every asset in use with its last scan, those not scanned
// within Config.ScanCadence (a week) marked late — all of them, or only
// the late ones (vuln.read).
func (s *Service) Cadence(ctx context.Context, call *medguard.Call, lateOnly bool) ([]CadenceItem, error) {
	out := []CadenceItem{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.VulnRead, AuditAction: "vuln.cadence",
		Resource: policy.Resource{Type: "asset"}}, func(policy.Decision) (audit.Mutation, error) {
		items, err := s.cadence(ctx)
		for _, it := range items {
			if !lateOnly || it.Late {
				out = append(out, it)
			}
		}
		return nil, err
	})
	return out, err
}

func (s *Service) cadence(ctx context.Context) ([]CadenceItem, error) {
	refs, err := s.assets.InUse(ctx)
	if err != nil {
		return nil, err
	}
	last := map[string]int64{}
	rows, err := s.db.QueryContext(ctx, `SELECT asset_id, max(scanned_at) FROM vuln_scans GROUP BY asset_id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return nil, err
		}
		last[id] = at
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	open := map[string]int{}
	rows, err = s.db.QueryContext(ctx, `SELECT asset_id, count(*) FROM vulns WHERE status IN ($1, $2, $3) GROUP BY asset_id`,
		StatusNew, StatusConfirmed, StatusFixing)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return nil, err
		}
		open[id] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := make([]CadenceItem, 0, len(refs))
	for _, r := range refs {
		it := CadenceItem{AssetID: r.ID, Code: r.Code, Name: r.Name, Kind: r.Kind, Department: r.Department, RecordsSystem: r.RecordsSystem,
			Open: open[r.ID], Late: true}
		if at, ok := last[r.ID]; ok {
			t, next := medguard.FromMillis(at), medguard.FromMillis(at).Add(s.cfg.ScanCadence)
			it.LastScannedAt, it.NextDueAt, it.Late = &t, &next, !now.Before(next)
		}
		out = append(out, it)
	}
	return out, nil
}

// Summary is the state of vulnerability management at a glance, for the
// dashboard.
type Summary struct {
	// Open and Overdue count the open vulnerabilities, and those past
	// their due date, by severity.
	Open    map[string]int `json:"open"`
	Overdue map[string]int `json:"overdue"`
	// Proposed counts the open ones a full scan proposed as fixed.
	Proposed int `json:"proposed"`
	// Unscanned counts the assets in use not scanned within the cadence.
	Unscanned int `json:"unscanned"`
	// Suspended are the operations suspended now.
	Suspended []policy.Permission `json:"suspended"`
}

// Summarise counts the open and overdue vulnerabilities by severity, the
// proposals, the assets not scanned within the cadence and the operations
// suspended (vuln.read).
func (s *Service) Summarise(ctx context.Context, call *medguard.Call) (*Summary, error) {
	sum := &Summary{Open: map[string]int{}, Overdue: map[string]int{}, Suspended: s.Suspended()}
	for _, sev := range Severities {
		sum.Open[sev], sum.Overdue[sev] = 0, 0
	}
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.VulnRead, AuditAction: "vuln.summary",
		Resource: policy.Resource{Type: "vuln"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT severity, due_at <= $1, proposed_fixed_at IS NOT NULL, count(*) FROM vulns
			WHERE status IN ($2, $3, $4) GROUP BY severity, due_at <= $1, proposed_fixed_at IS NOT NULL`,
			medguard.Millis(now), StatusNew, StatusConfirmed, StatusFixing)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var sev string
			var late, proposed bool
			var n int
			if err := rows.Scan(&sev, &late, &proposed, &n); err != nil {
				return nil, err
			}
			sum.Open[sev] += n
			if late {
				sum.Overdue[sev] += n
			}
			if proposed {
				sum.Proposed += n
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		items, err := s.cadence(ctx)
		for _, it := range items {
			if it.Late {
				sum.Unscanned++
			}
		}
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// PastDue lists the open vulnerabilities (new, confirmed, fixing) past
// their due date at now, announced or not — read without a gate passage,
// for the compliance checks, which show them only through their own
// audited passages.
func (s *Service) PastDue(ctx context.Context, now time.Time) ([]OverdueVuln, []string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, asset_id, severity, due_at, title FROM vulns WHERE status IN ($1, $2, $3)
		AND due_at <= $4 ORDER BY due_at, id LIMIT 1000`, StatusNew, StatusConfirmed, StatusFixing, medguard.Millis(now))
	if err != nil {
		return nil, nil, medguard.Wrap("vulns.PastDue", err)
	}
	defer rows.Close()
	var out []OverdueVuln
	var titles []string
	for rows.Next() {
		var o OverdueVuln
		var at int64
		var title string
		if err := rows.Scan(&o.VulnID, &o.AssetID, &o.Severity, &at, &title); err != nil {
			return nil, nil, medguard.Wrap("vulns.PastDue", err)
		}
		o.DueAt = medguard.FromMillis(at)
		out, titles = append(out, o), append(titles, title)
	}
	return out, titles, medguard.Wrap("vulns.PastDue", rows.Err())
}
