package training

import (
	"context"
	"time"
)

// CoverageAt counts, as of an instant, the members of staff who owed
// training then (active now and on the staff by then) and those of them
// whose standing was current — judged on the attempts, signatures and
// orders recorded by then: a figure for the posture reports
// (internal/reports), which are themselves gated and audited.
func (s *Service) CoverageAt(ctx context.Context, at time.Time) (staff, current int, err error) {
	snap, err := s.current(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range snap.staff {
		if !m.Active || !staffMember(m.Roles) || m.CreatedAt.After(at) {
			continue
		}
		staff++
		if st := evaluate(&snap.rules, snap.facts[m.ID].asOf(at), m.Roles, at); status(st) == StatusCurrent {
			current++
		}
	}
	return staff, current, nil
}

// asOf returns the facts recorded by at (f may be nil).
func (f *facts) asOf(at time.Time) *facts {
	if f == nil {
		return nil
	}
	out := &facts{createdAt: f.createdAt}
	for _, a := range f.attempts {
		if !a.at.After(at) {
			out.attempts = append(out.attempts, a)
		}
	}
	for _, sg := range f.signatures {
		if !sg.at.After(at) {
			out.signatures = append(out.signatures, sg)
		}
	}
	for _, o := range f.orders {
		if !o.at.After(at) {
			if !o.end.IsZero() && o.end.After(at) {
				o.end = time.Time{}
			}
			out.orders = append(out.orders, o)
		}
	}
	return out
}
