package inspections

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Date is a day of the hospital's calendar, whatever its zone: its year,
// month and day at midnight UTC, so that adding days never meets a
// daylight-saving change. Where a day begins and ends is a matter of the
// zone (Start, End).
type Date struct{ t time.Time }

// DateOf returns the hospital day that holds instant t in zone.
func DateOf(t time.Time, zone *time.Location) Date {
	y, m, d := t.In(zone).Date()
	return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// ParseDate reads a day written YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		return Date{}, fmt.Errorf("inspections: %q is not a date (YYYY-MM-DD)", truncate(s, 32))
	}
	return Date{t}, nil
}

// String writes the day YYYY-MM-DD.
func (d Date) String() string { return d.t.Format(time.DateOnly) }

// AddDays returns the day n days later (earlier for n < 0).
func (d Date) AddDays(n int) Date { return Date{d.t.AddDate(0, 0, n)} }

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.t.Before(e.t) }

// Sub returns the number of days from e to d.
func (d Date) Sub(e Date) int { return int(d.t.Sub(e.t) / (24 * time.Hour)) }

// Start returns the instant the day begins in zone.
func (d Date) Start(zone *time.Location) time.Time {
	y, m, dd := d.t.Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, zone)
}

// End returns the instant the day ends in zone: the start of the next day
// (23 or 25 hours after its start on a daylight-saving change).
func (d Date) End(zone *time.Location) time.Time { return d.AddDays(1).Start(zone) }

// Monday returns the Monday of the day's ISO week.
func (d Date) Monday() Date { return d.AddDays(-((int(d.t.Weekday()) + 6) % 7)) }

// ISOWeek names the day's ISO 8601 week, "2026-W09" (its year may differ
// from the day's: 1 January 2027 is in 2026-W53).
func (d Date) ISOWeek() string {
	y, w := d.t.ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// dayOf returns the hospital day holding instant t.
func (s *Service) dayOf(t time.Time) Date { return DateOf(t, s.cfg.Zone) }

// firstDay is the day of the first inspection ever recorded — inspections
// are expected every day from then on — or false when none was.
func (s *Service) firstDay(ctx context.Context) (Date, bool, error) {
	var day sql.NullString
	if err := s.db.QueryRowContext(ctx, `SELECT min(day) FROM inspections`).Scan(&day); err != nil {
		return Date{}, false, medguard.Wrap("inspections.firstDay", err)
	}
	if !day.Valid {
		return Date{}, false, nil
	}
	d, err := ParseDate(day.String)
	return d, err == nil, medguard.Wrap("inspections.firstDay", err)
}

// between reads the inspections of the days from to to (inclusive), by day.
func (s *Service) between(ctx context.Context, from, to Date) (map[string]*Inspection, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+inspectionColumns+` FROM inspections WHERE day >= $1 AND day <= $2 ORDER BY day`,
		from.String(), to.String())
	if err != nil {
		return nil, medguard.Wrap("inspections.between", err)
	}
	defer rows.Close()
	out := map[string]*Inspection{}
	for rows.Next() {
		in, err := s.scan(ctx, rows)
		if err != nil {
			return nil, medguard.Wrap("inspections.between", err)
		}
		out[in.Day] = in
	}
	return out, medguard.Wrap("inspections.between", rows.Err())
}

// The states of a hospital day: its inspection signed by both, waiting for
// the reviewer, none though the day ended (missed), or none yet today
// (due).
const (
	DaySigned         = Signed
	DayAwaitingReview = AwaitingReview
	DayMissed         = "missed"
	DayDue            = "due"
)

// DayStatuses lists the states of a day; OutOfRangeFilter also filters
// the days whose inspection has a reading out of range.
var DayStatuses = []string{DaySigned, DayAwaitingReview, DayMissed, DayDue}

// OutOfRangeFilter keeps the days whose inspection has a reading out of
// range.
const OutOfRangeFilter = "out_of_range"

// Day is one hospital day of the inspection history.
type Day struct {
	Day        string      `json:"day"`
	Status     string      `json:"status"`
	Inspection *Inspection `json:"inspection"`
}

// DayQuery selects days of the history: From and To (YYYY-MM-DD,
// inclusive; default the 31 days to today, none after today), a status
// (or OutOfRangeFilter), the days before Before (the cursor), Limit at a
// time (default 31, at most MaxDays).
type DayQuery struct {
	From, To string
	Status   string
	Before   string
	Limit    int
}

// MaxDays is the longest span of days one query covers.
const MaxDays = 400

// span reads a from–to query of days: defaults, order, at most max days,
// nothing after today.
func span(from, to string, today Date, defaultDays, max int) (Date, Date, error) {
	end := today
	if to != "" {
		d, err := ParseDate(to)
		if err != nil {
			return Date{}, Date{}, medguard.InvalidField("to", "to must be a date (YYYY-MM-DD)")
		}
		end = d
	}
	if today.Before(end) {
		end = today
	}
	start := end.AddDays(-(defaultDays - 1))
	if from != "" {
		d, err := ParseDate(from)
		if err != nil {
			return Date{}, Date{}, medguard.InvalidField("from", "from must be a date (YYYY-MM-DD)")
		}
		start = d
	}
	switch {
	case end.Before(start):
		return Date{}, Date{}, medguard.InvalidField("from", "from must not be after to")
	case end.Sub(start) >= max:
		return Date{}, Date{}, medguard.InvalidField("from", "a query covers at most %d days", max)
	}
	return start, end, nil
}

// Days lists the hospital days of the history, newest first, each with
// its state and inspection (inspection.read): days are expected from the
// day of the first inspection ever recorded, and today is always listed.
// next is the cursor of the following page ("" at the end).
func (s *Service) Days(ctx context.Context, call *medguard.Call, q DayQuery) ([]Day, string, error) {
	if q.Status != "" && q.Status != OutOfRangeFilter && !slices.Contains(DayStatuses, q.Status) {
		return nil, "", medguard.InvalidField("status", "status must be one of %s, %s", strings.Join(DayStatuses, ", "), OutOfRangeFilter)
	}
	if q.Limit <= 0 {
		q.Limit = 31
	}
	q.Limit = min(q.Limit, MaxDays)
	now := s.clock.Now()
	today := s.dayOf(now)
	from, to, err := span(q.From, q.To, today, 31, MaxDays)
	if err != nil {
		return nil, "", err
	}
	if q.Before != "" {
		b, err := ParseDate(q.Before)
		if err != nil {
			return nil, "", medguard.InvalidField("cursor", "the cursor is not a day")
		}
		if b.AddDays(-1).Before(to) {
			to = b.AddDays(-1)
		}
	}
	out := []Day{}
	next := ""
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.InspectionRead, AuditAction: "inspection.list",
		Resource: policy.Resource{Type: "inspection"}}, func(policy.Decision) (audit.Mutation, error) {
		if to.Before(from) {
			return nil, nil
		}
		first, started, err := s.firstDay(ctx)
		if err != nil {
			return nil, err
		}
		done, err := s.between(ctx, from, to)
		if err != nil {
			return nil, err
		}
		for d := to; !d.Before(from); d = d.AddDays(-1) {
			in := done[d.String()]
			day := Day{Day: d.String(), Inspection: in}
			switch {
			case in != nil:
				day.Status = in.Status
			case d == today:
				day.Status = DayDue
			case started && !d.Before(first):
				day.Status = DayMissed
			default:
				continue // before inspections began
			}
			keep := q.Status == "" || q.Status == day.Status || q.Status == OutOfRangeFilter && in != nil && in.OutOfRange > 0
			if !keep {
				continue
			}
			if len(out) == q.Limit {
				next = out[len(out)-1].Day
				break
			}
			out = append(out, day)
		}
		return nil, nil
	})
	if err != nil {
		return nil, "", medguard.Wrap("inspections.Days", err)
	}
	return out, next, nil
}

// Today is the day's inspection as the inspector meets it: the checklist
// in force with its ranges, what medguard reads now for its own items,
// and the inspection if it was recorded.
type Today struct {
	Day string `json:"day"`
	// DueAt is the end of the day: a day without an inspection then is
	// missed.
	DueAt time.Time `json:"due_at"`
	// Status is DayDue, DayAwaitingReview or DaySigned.
	Status   string   `json:"status"`
	Template Template `json:"template"`
	// System are medguard's readings now of the items it fills in itself
	// (Source "inspector" for one it cannot read: the inspector fills it
	// in).
	System     []Reading   `json:"system"`
	Inspection *Inspection `json:"inspection"`
	// Missed counts the days of the last seven, before today, that ended
	// without an inspection.
	Missed int `json:"missed_last_7_days"`
}

// Today returns today's inspection and its form (inspection.read).
func (s *Service) Today(ctx context.Context, call *medguard.Call) (*Today, error) {
	now := s.clock.Now()
	today := s.dayOf(now)
	var t *Today
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.InspectionRead, AuditAction: "inspection.today",
		Resource: policy.Resource{Type: "inspection"}}, func(policy.Decision) (audit.Mutation, error) {
		tpl, err := s.current(ctx)
		if err != nil {
			return nil, err
		}
		t = &Today{Day: today.String(), DueAt: today.End(s.cfg.Zone), Status: DayDue, Template: *tpl, System: []Reading{}}
		for _, it := range tpl.Items {
			if it.System {
				t.System = append(t.System, s.systemReading(ctx, it))
			}
		}
		done, err := s.between(ctx, today.AddDays(-7), today)
		if err != nil {
			return nil, err
		}
		if in := done[today.String()]; in != nil {
			t.Inspection, t.Status = in, in.Status
		}
		first, started, err := s.firstDay(ctx)
		if err != nil {
			return nil, err
		}
		for d := today.AddDays(-7); d.Before(today); d = d.AddDays(1) {
			if started && !d.Before(first) && done[d.String()] == nil {
				t.Missed++
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, medguard.Wrap("inspections.Today", err)
	}
	return t, nil
}

// Week is one ISO week of the weekly summary (周汇总).
type Week struct {
	// Week names it ("2026-W09"); From and To are its Monday and Sunday.
	Week string `json:"week"`
	From string `json:"from"`
	To   string `json:"to"`
	// Days counts its days on which an inspection was expected (from the
	// first inspection on, up to today); Inspected those with one; Missed
	// those that ended without one.
	Days      int `json:"days"`
	Inspected int `json:"inspected"`
	Missed    int `json:"missed"`
	// OutOfRange counts the readings out of range of its inspections;
	// Unsigned the inspections still waiting for the reviewer.
	OutOfRange int `json:"out_of_range"`
	Unsigned   int `json:"unsigned"`
}

// MaxWeeks is the most weeks one summary covers.
const MaxWeeks = 106

// Weeks summarises the inspections per ISO week, newest first
// (inspection.read): the weeks holding from and to (YYYY-MM-DD; default
// the last twelve weeks to this one).
func (s *Service) Weeks(ctx context.Context, call *medguard.Call, from, to string) ([]Week, error) {
	today := s.dayOf(s.clock.Now())
	start, end, err := span(from, to, today, 7*12-6+int(today.Sub(today.Monday())), MaxWeeks*7)
	if err != nil {
		return nil, err
	}
	start, end = start.Monday(), end.Monday().AddDays(6)
	out := []Week{}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.InspectionRead, AuditAction: "inspection.weeks",
		Resource: policy.Resource{Type: "inspection"}}, func(policy.Decision) (audit.Mutation, error) {
		first, started, err := s.firstDay(ctx)
		if err != nil {
			return nil, err
		}
		done, err := s.between(ctx, start, end)
		if err != nil {
			return nil, err
		}
		for mon := end.Monday(); !mon.Before(start); mon = mon.AddDays(-7) {
			w := Week{Week: mon.ISOWeek(), From: mon.String(), To: mon.AddDays(6).String()}
			for d := mon; d.Before(mon.AddDays(7)) && !today.Before(d); d = d.AddDays(1) {
				in := done[d.String()]
				switch {
				case in != nil:
					w.Days++
					w.Inspected++
					w.OutOfRange += in.OutOfRange
					if in.Status == AwaitingReview {
						w.Unsigned++
					}
				case d == today:
					w.Days++ // due, not missed yet
				case started && !d.Before(first):
					w.Days++
					w.Missed++
				}
			}
			out = append(out, w)
		}
		return nil, nil
	})
	if err != nil {
		return nil, medguard.Wrap("inspections.Weeks", err)
	}
	return out, nil
}

// MissedRule is the detection rule of the alerts raised for a hospital
// day that ended without an inspection: the alert's key is the day.
const MissedRule = "inspection_missed"

// OutOfRangeRule is the detection rule of the alerts raised for a reading
// out of its range (or a check not in order): the alert's key is the
// item's key, so that a later reading back in range resolves it.
const OutOfRangeRule = "inspection_out_of_range"

// MissedDay is a hospital day that ended without an inspection, announced
// once.
type MissedDay struct {
	ID    string
	Day   string
	DueAt time.Time
}

// CheckMissed announces the hospital days, from the first inspection ever
// recorded (and at most Config.MissedLookback days back), that ended
// without an inspection and were not announced before: each is logged
// (inspection.missed, as the system) and passed to the OnMissed hooks,
// once — also when several servers check at the same time (the day is
// claimed in the database).
func (s *Service) CheckMissed(ctx context.Context) ([]MissedDay, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	today := s.dayOf(now)
	first, started, err := s.firstDay(ctx)
	if err != nil || !started {
		return nil, err
	}
	from := today.AddDays(-s.cfg.MissedLookback)
	if from.Before(first) {
		from = first
	}
	seen := map[string]bool{}
	for _, q := range []string{`SELECT day FROM inspections WHERE day >= $1 AND day < $2`,
		`SELECT day FROM inspection_missed WHERE day >= $1 AND day < $2`} {
		rows, err := s.db.QueryContext(ctx, q, from.String(), today.String())
		if err != nil {
			return nil, medguard.Wrap("inspections.CheckMissed", err)
		}
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return nil, medguard.Wrap("inspections.CheckMissed", err)
			}
			seen[d] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, medguard.Wrap("inspections.CheckMissed", err)
		}
	}
	var due []MissedDay
	for d := from; d.Before(today); d = d.AddDays(1) {
		if !seen[d.String()] {
			due = append(due, MissedDay{ID: medguard.NewID(now), Day: d.String(), DueAt: d.End(s.cfg.Zone)})
		}
	}
	fresh, err := gate.Announce(ctx, s.gate, due, func(m MissedDay) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "inspection.missed", TargetType: "inspection_day", TargetID: m.ID,
			Allowed: true, Rule: "allow.system.deadline:inspection_daily"}
	}, func(ctx context.Context, tx *sql.Tx, m MissedDay) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO inspection_missed (day, id, noticed_at) VALUES ($1, $2, $3)`,
			m.Day, m.ID, medguard.Millis(now))
		if storage.IsConflict(err) {
			return gate.ErrAnnounced
		}
		return err
	})
	s.onMissed.Tell(ctx, fresh...)
	return fresh, err
}

// Run checks for missed days at once and then every interval until ctx
// ends, passing failures to onError (may be nil).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		_, err := s.CheckMissed(ctx)
		return err
	}, onError)
}

// EndedDays returns the statuses of the last n hospital days that have
// ended (today excluded), since inspections began, newest first — read
// without a gate passage, for the compliance checks, which show them only
// through their own audited passages. Only the days, their status and the
// signers' names are set (no readings, no notes).
func (s *Service) EndedDays(ctx context.Context, n int) ([]Day, error) {
	today := s.dayOf(s.clock.Now())
	first, started, err := s.firstDay(ctx)
	if err != nil || !started || n <= 0 {
		return nil, medguard.Wrap("inspections.EndedDays", err)
	}
	to, from := today.AddDays(-1), today.AddDays(-n)
	if from.Before(first) {
		from = first
	}
	if to.Before(from) {
		return nil, nil
	}
	done, err := s.between(ctx, from, to)
	if err != nil {
		return nil, medguard.Wrap("inspections.EndedDays", err)
	}
	var out []Day
	for d := to; !d.Before(from); d = d.AddDays(-1) {
		day := Day{Day: d.String(), Status: DayMissed}
		if in := done[d.String()]; in != nil {
			day.Status = in.Status
			day.Inspection = &Inspection{ID: in.ID, Day: in.Day, Inspector: in.Inspector, Reviewer: in.Reviewer, Status: in.Status}
		}
		out = append(out, day)
	}
	return out, nil
}
