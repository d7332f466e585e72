package incidents

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/keys"
	"medguard/internal/storage"
)

// Handling steps (处置步骤) and their confirmation by a second person.
//
// A step is a timeline update that says something was done: the emergency
// meeting held, the emergency plan started, the health authority told or
// given the report, the risk isolated, a leak's cause analysed, the fault
// fixed (every update kind but progress). Whoever records it, someone else
// who manages incidents confirms it (the policy's deny.own_step refuses the
// recorder); until then it is shown unconfirmed, and the incident does not
// close. The deadline a step meets is met when the step is recorded — the
// time it says the thing was done — the confirmation vouching for it.
// A corrective action is confirmed the same way: whoever marked it done,
// someone else verifies it; and every action is verified before closing.

// StepKinds are the update kinds that are handling steps.
var StepKinds = []string{UpdateMeetingHeld, UpdatePlanStarted, UpdateAuthorityNotified, UpdateAuthorityReport,
	UpdateRiskIsolated, UpdateCauseAnalysed, UpdateFixed}

// isStep reports whether a timeline line of kind, written by by, is a
// handling step a second person confirms (medguard's own lines are not).
func isStep(kind, by string) bool {
	_, ok := updateColumns[kind]
	return ok && by != System.Actor.Name
}

// unconfirmed counts the steps of a timeline not yet confirmed.
func unconfirmed(tl []Update) int {
	n := 0
	for _, u := range tl {
		if u.Step && u.ConfirmedAt == nil {
			n++
		}
	}
	return n
}

var errNoStep = &medguard.Error{Kind: medguard.NotFound, Message: "no such handling step"}

// ConfirmStep confirms a handling step of an open incident — the timeline
// line at audit index step — as a second person: not who recorded it
// (deny.own_step). A step is confirmed once.
func (s *Service) ConfirmStep(ctx context.Context, call *medguard.Call, id string, step uint64) (*Incident, error) {
	u, err := s.stepOf(ctx, id, step)
	if err != nil && !errors.Is(err, errNoStep) {
		return nil, err
	}
	recordedBy := ""
	if u != nil {
		recordedBy = s.recorderID(ctx, call, u.byID, u.By)
	}
	return s.changeOf(ctx, call, id, "incident.step_confirm", recordedBy, func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		switch {
		case u == nil:
			return nil, errNoStep
		case !u.Step:
			return nil, medguard.InvalidField("step", "timeline line %d is not a handling step", step)
		case u.ConfirmedAt != nil:
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "step_confirmed", Message: "the step was confirmed already"}
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := stillOpen(ctx, tx, `UPDATE incidents SET status = status WHERE id = $1 AND status = 'open'`, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_step_confirmations (incident_id, step_index, confirmed_by_id,
				confirmed_by, confirmed_at, audit_index) VALUES ($1, $2, $3, $4, $5, $6)`, id, int64(step), call.Actor.ID,
				call.Actor.Name, medguard.Millis(now), int64(index)); err != nil {
				if storage.IsConflict(storage.MapError(err)) {
					return &medguard.Error{Kind: medguard.Conflict, Code: "step_confirmed", Message: "the step was confirmed meanwhile"}
				}
				return err
			}
			return addUpdate(ctx, tx, k, id, index, "step_confirmed", "#"+strconv.FormatUint(step, 10)+" "+u.Kind,
				call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
}

// stepOf reads one timeline line of an incident.
func (s *Service) stepOf(ctx context.Context, id string, index uint64) (*Update, error) {
	if !medguard.ValidID(id) {
		return nil, errNoStep
	}
	tl, err := s.timeline(ctx, id)
	if err != nil {
		return nil, medguard.Wrap("incidents.stepOf", err)
	}
	for i := range tl {
		if tl[i].AuditIndex == index {
			return &tl[i], nil
		}
	}
	return nil, errNoStep
}

// recorderID is the user id of who recorded a step or marked an action
// done, for the policy to compare with the caller's. Lines written before
// ids were kept name their author only: the author is looked up, and an
// author by the caller's own name is the caller.
func (s *Service) recorderID(ctx context.Context, call *medguard.Call, byID, by string) string {
	switch {
	case byID != "":
		return byID
	case by == "" || by == System.Actor.Name:
		return ""
	case by == call.Actor.Name:
		return call.Actor.ID
	}
	if u, err := s.users.UserByUsername(ctx, by); err == nil {
		return u.ID
	}
	return ""
}
