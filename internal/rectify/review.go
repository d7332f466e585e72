package rectify

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// MonthFigures is the progress of rectification in one month (月度整改评审),
// computed from the register: items opened, reported done and verified
// (closed) in the month, and, at the month's end (or now, for the month
// under way), those still open and those overdue — for the hospital, by
// department and by source.
type MonthFigures struct {
	Month string `json:"month"`
	// AsOf is when the open and overdue counts are taken: the month's end,
	// or now.
	AsOf         time.Time  `json:"as_of"`
	Total        MonthCount `json:"total"`
	ByDepartment []MonthRow `json:"by_department"`
	BySource     []MonthRow `json:"by_source"`
}

// MonthCount counts items for a month.
type MonthCount struct {
	Opened  int `json:"opened"`
	Done    int `json:"done"`
	Closed  int `json:"closed"`
	Open    int `json:"open"`
	Overdue int `json:"overdue"`
}

// MonthRow is one department's or one source's count ("" is the hospital
// as a whole, for items of no department).
type MonthRow struct {
	Key string `json:"key"`
	MonthCount
}

// Review is the security office's signed monthly review: who reviewed
// which month, when, and the figures as they stood then, with their
// SHA-256 (the audit entry of the review names the review).
type Review struct {
	ID            string       `json:"id"`
	Month         string       `json:"month"`
	ReviewedBy    string       `json:"reviewed_by"`
	ReviewedAt    time.Time    `json:"reviewed_at"`
	Figures       MonthFigures `json:"figures"`
	FiguresSHA256 string       `json:"figures_sha256"`
	Note          string       `json:"note,omitempty"`
}

// NewReview records a monthly review (the body of POST
// /api/v1/rectifications/reviews).
type NewReview struct {
	Month string `json:"month"`
	Note  string `json:"note,omitempty"`
}

var monthPattern = regexp.MustCompile(`^(20[0-9]{2})-(0[1-9]|1[0-2])$`)

// monthBounds returns a month's first instant and the next month's, in
// loc.
func monthBounds(month string, loc *time.Location) (time.Time, time.Time, error) {
	if !monthPattern.MatchString(month) {
		return time.Time{}, time.Time{}, medguard.InvalidField("month", "month must look like 2026-11")
	}
	t, err := time.ParseInLocation("2006-01", month, loc)
	if err != nil {
		return time.Time{}, time.Time{}, medguard.InvalidField("month", "month must look like 2026-11")
	}
	return t, t.AddDate(0, 1, 0), nil
}

// figures computes a month's figures from the register.
func (s *Service) monthFigures(ctx context.Context, month string, now time.Time) (*MonthFigures, error) {
	start, end, err := monthBounds(month, s.location())
	if err != nil {
		return nil, err
	}
	return s.periodFigures(ctx, month, start, end, now)
}

// PeriodCounts counts the items of [from, to) as a month's figures do:
// opened, done and verified in the period, open and overdue at its end (or
// now, if sooner). The posture reports read it (medguard's own read, as
// the reports' other figures: counts only).
func (s *Service) PeriodCounts(ctx context.Context, from, to time.Time) (MonthCount, error) {
	f, err := s.periodFigures(ctx, "", from, to, s.clock.Now())
	if err != nil {
		return MonthCount{}, err
	}
	return f.Total, nil
}

// periodFigures computes the figures of [start, end) as of end or now.
func (s *Service) periodFigures(ctx context.Context, month string, start, end, now time.Time) (*MonthFigures, error) {
	asOf := end
	if now.Before(end) {
		asOf = now
	}
	f := &MonthFigures{Month: month, AsOf: asOf.UTC().Truncate(time.Millisecond), ByDepartment: []MonthRow{}, BySource: []MonthRow{}}
	type row struct {
		kind, dept         string
		created, due       int64
		doneAt, verifiedAt sql.NullInt64
	}
	rows, err := s.db.QueryContext(ctx, `SELECT kind, department, created_at, due_at, done_at, verified_at FROM rectification_items
		WHERE created_at < $1`, medguard.Millis(end))
	if err != nil {
		return nil, medguard.Wrap("rectify.monthFigures", err)
	}
	var items []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.kind, &r.dept, &r.created, &r.due, &r.doneAt, &r.verifiedAt); err != nil {
			rows.Close()
			return nil, medguard.Wrap("rectify.monthFigures", err)
		}
		items = append(items, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("rectify.monthFigures", err)
	}
	// Done and verified in the month, from the history (an item reopened
	// since still counts where it was reported).
	erows, err := s.db.QueryContext(ctx, `SELECT e.item_id, e.kind FROM rectification_events e WHERE e.at >= $1 AND e.at < $2
		AND e.kind IN ('done', 'verified')`, medguard.Millis(start), medguard.Millis(end))
	if err != nil {
		return nil, medguard.Wrap("rectify.monthFigures", err)
	}
	var evItems []struct{ id, kind string }
	for erows.Next() {
		var id, kind string
		if err := erows.Scan(&id, &kind); err != nil {
			erows.Close()
			return nil, medguard.Wrap("rectify.monthFigures", err)
		}
		evItems = append(evItems, struct{ id, kind string }{id, kind})
	}
	erows.Close()
	if err := erows.Err(); err != nil {
		return nil, medguard.Wrap("rectify.monthFigures", err)
	}
	byDept, bySource := map[string]*MonthCount{}, map[string]*MonthCount{}
	count := func(dept, kind string, fn func(c *MonthCount)) {
		for _, m := range []struct {
			by  map[string]*MonthCount
			key string
		}{{byDept, dept}, {bySource, kind}} {
			c := m.by[m.key]
			if c == nil {
				c = &MonthCount{}
				m.by[m.key] = c
			}
			fn(c)
		}
		fn(&f.Total)
	}
	cut, from := medguard.Millis(asOf), medguard.Millis(start)
	for _, r := range items {
		if r.created >= from {
			count(r.dept, r.kind, func(c *MonthCount) { c.Opened++ })
		}
		if r.created >= cut {
			continue
		}
		closed := r.verifiedAt.Valid && r.verifiedAt.Int64 <= cut
		done := r.doneAt.Valid && r.doneAt.Int64 <= cut
		if !closed {
			count(r.dept, r.kind, func(c *MonthCount) { c.Open++ })
		}
		if !closed && !done && r.due <= cut {
			count(r.dept, r.kind, func(c *MonthCount) { c.Overdue++ })
		}
	}
	if len(evItems) > 0 {
		ids := map[string][2]string{}
		for _, e := range evItems {
			ids[e.id] = [2]string{}
		}
		irows, err := s.db.QueryContext(ctx, `SELECT id, kind, department FROM rectification_items WHERE created_at < $1`, medguard.Millis(end))
		if err != nil {
			return nil, medguard.Wrap("rectify.monthFigures", err)
		}
		for irows.Next() {
			var id, kind, dept string
			if err := irows.Scan(&id, &kind, &dept); err != nil {
				irows.Close()
				return nil, medguard.Wrap("rectify.monthFigures", err)
			}
			if _, ok := ids[id]; ok {
				ids[id] = [2]string{kind, dept}
			}
		}
		irows.Close()
		seen := map[string]bool{}
		for _, e := range evItems {
			if seen[e.id+e.kind] {
				continue
			}
			seen[e.id+e.kind] = true
			kd := ids[e.id]
			if e.kind == EventDone {
				count(kd[1], kd[0], func(c *MonthCount) { c.Done++ })
			} else {
				count(kd[1], kd[0], func(c *MonthCount) { c.Closed++ })
			}
		}
	}
	for k, c := range byDept {
		f.ByDepartment = append(f.ByDepartment, MonthRow{Key: k, MonthCount: *c})
	}
	for _, k := range Kinds {
		if c := bySource[k]; c != nil {
			f.BySource = append(f.BySource, MonthRow{Key: k, MonthCount: *c})
		}
	}
	slices.SortFunc(f.ByDepartment, func(a, b MonthRow) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return f, nil
}

// MonthlyProgress returns a month's figures (rectification.read), at any
// time; "" is the month under way, in the hospital's zone.
func (s *Service) MonthlyProgress(ctx context.Context, call *medguard.Call, month string) (*MonthFigures, error) {
	if month == "" {
		month = s.clock.Now().In(s.location()).Format("2006-01")
	}
	if _, _, err := monthBounds(month, s.location()); err != nil {
		return nil, err
	}
	var f *MonthFigures
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationRead, AuditAction: "rectification.monthly",
		Resource: policy.Resource{Type: "rectification"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		f, err = s.monthFigures(ctx, month, s.clock.Now())
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// RecordReview records the security office's monthly review
// (rectification.review): the figures as they stand now, signed by the
// reviewer (their audit entry names the review, whose figures carry their
// SHA-256).
func (s *Service) RecordReview(ctx context.Context, call *medguard.Call, in NewReview) (*Review, error) {
	if _, _, err := monthBounds(in.Month, s.location()); err != nil {
		return nil, err
	}
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, false); err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	start, _, _ := monthBounds(in.Month, s.location())
	if !now.After(start) {
		return nil, medguard.InvalidField("month", "the month has not begun")
	}
	rv := &Review{ID: medguard.NewID(now), Month: in.Month, ReviewedBy: call.Actor.Name, ReviewedAt: now, Note: in.Note}
	note, err := s.seal(ctx, "rectification_reviews", rv.ID, "note", in.Note)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationReview, AuditAction: "rectification.review",
		Resource: policy.Resource{Type: "rectification_review", ID: rv.ID}}, func(policy.Decision) (audit.Mutation, error) {
		f, err := s.monthFigures(ctx, in.Month, now)
		if err != nil {
			return nil, err
		}
		rv.Figures = *f
		raw, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(raw)
		rv.FiguresSHA256 = hex.EncodeToString(sum[:])
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO rectification_reviews (id, month, reviewed_by, reviewed_at, figures, note)
				VALUES ($1, $2, $3, $4, $5, $6)`, rv.ID, rv.Month, rv.ReviewedBy, medguard.Millis(now), string(raw), note)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return rv, nil
}

// ListReviews lists the monthly reviews, newest first (rectification.read).
func (s *Service) ListReviews(ctx context.Context, call *medguard.Call) ([]Review, error) {
	out := []Review{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationRead, AuditAction: "rectification.review_list",
		Resource: policy.Resource{Type: "rectification"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT id, month, reviewed_by, reviewed_at, figures, note FROM rectification_reviews
			ORDER BY reviewed_at DESC, id DESC LIMIT 240`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var rv Review
			var at int64
			var raw string
			var note []byte
			if err := rows.Scan(&rv.ID, &rv.Month, &rv.ReviewedBy, &at, &raw, &note); err != nil {
				return nil, err
			}
			rv.ReviewedAt = medguard.FromMillis(at)
			if err := json.Unmarshal([]byte(raw), &rv.Figures); err != nil {
				return nil, err
			}
			sum := sha256.Sum256([]byte(raw))
			rv.FiguresSHA256 = hex.EncodeToString(sum[:])
			if rv.Note, err = s.open(ctx, "rectification_reviews", rv.ID, "note", note); err != nil {
				return nil, err
			}
			out = append(out, rv)
		}
		return nil, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
