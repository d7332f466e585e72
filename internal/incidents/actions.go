package incidents

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/keys"
	"medguard/internal/storage"
)

// States of a corrective action.
const (
	ActionOpen     = "open"
	ActionDone     = "done"
	ActionVerified = "verified"
)

// ActionStates lists the states of a corrective action.
var ActionStates = []string{ActionOpen, ActionDone, ActionVerified}

// Action is a corrective action (整改措施) of an incident.
type Action struct {
	ID          string    `json:"id"`
	IncidentID  string    `json:"incident_id"`
	Description string    `json:"description"`
	Owner       string    `json:"owner"`
	DueAt       time.Time `json:"due_at"`
	State       string    `json:"state"`
	// Overdue is set for an action not done by its due date.
	Overdue   bool      `json:"overdue"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedBy string    `json:"updated_by"`
	UpdatedAt time.Time `json:"updated_at"`
	// DoneBy is who marked it done; someone else verifies it (a second
	// person confirms every handling step).
	DoneBy string `json:"done_by,omitempty"`

	doneByID string
}

// NewAction is a corrective action to take.
type NewAction struct {
	Description string
	Owner       string // who is responsible: a username or a department code (OwnerPattern)
	DueAt       time.Time
}

var errNoAction = &medguard.Error{Kind: medguard.NotFound, Message: "no such corrective action"}

// OwnerPattern is what an action's owner may be: a username or a
// department code. The owner is stored in clear, like every other name of
// a member of staff here, so it must be an identifier and never free text
// that could name a patient; what is to be done goes in the (sealed)
// description.
var OwnerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// AddAction adds a corrective action to an open incident.
func (s *Service) AddAction(ctx context.Context, call *medguard.Call, id string, na NewAction) (*Action, error) {
	var a *Action
	_, err := s.change(ctx, call, id, "incident.action_add", func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		desc, err := medguard.Text("description", na.Description, MaxText, true)
		if err != nil {
			return nil, err
		}
		owner, err := medguard.Line("owner", na.Owner, 64, true)
		if err != nil {
			return nil, err
		}
		if !OwnerPattern.MatchString(owner) {
			return nil, medguard.InvalidField("owner", "owner must be a username or a department code (letters, digits, '.', '_' or '-')")
		}
		if na.DueAt.IsZero() || !na.DueAt.After(now) {
			return nil, medguard.InvalidField("due_at", "due_at is required and must be in the future")
		}
		a = &Action{ID: medguard.NewID(now), IncidentID: id, Description: desc, Owner: owner,
			DueAt: na.DueAt.UTC().Truncate(time.Millisecond), State: ActionOpen, CreatedBy: call.Actor.Name, CreatedAt: now,
			UpdatedBy: call.Actor.Name, UpdatedAt: now}
		sealed := k.SealString(loc("incident_actions", a.ID, "description"), desc)
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := stillOpen(ctx, tx, `UPDATE incidents SET status = status WHERE id = $1 AND status = 'open'`, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_actions (id, incident_id, description, owner, due_at, state,
				created_by, created_at, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $8)`,
				a.ID, id, sealed, owner, medguard.Millis(a.DueAt), ActionOpen, call.Actor.Name, medguard.Millis(now)); err != nil {
				return err
			}
			return addUpdate(ctx, tx, k, id, index, "action", "action "+a.ID+" owner "+owner, call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// SetActionState moves a corrective action: open → done → verified, or
// done back to open. A verified action stays verified. Verifying is the
// second person's confirmation: who marked the action done may not verify
// it (deny.own_step).
func (s *Service) SetActionState(ctx context.Context, call *medguard.Call, id, actionID, state string) (*Action, error) {
	var a *Action
	doneBy := ""
	if state == ActionVerified && medguard.ValidID(id) {
		if prior, err := s.loadAction(ctx, id, actionID, s.clock.Now()); err == nil && prior.State == ActionDone {
			doneBy = s.recorderID(ctx, call, prior.doneByID, prior.DoneBy)
		}
	}
	_, err := s.changeOf(ctx, call, id, "incident.action_state", doneBy, func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		var err error
		if a, err = s.loadAction(ctx, id, actionID, now); err != nil {
			return nil, err
		}
		allowed := map[string]map[string]bool{
			ActionOpen: {ActionDone: true},
			ActionDone: {ActionVerified: true, ActionOpen: true},
		}
		switch {
		case state != ActionOpen && state != ActionDone && state != ActionVerified:
			return nil, medguard.InvalidField("state", "state must be open, done or verified")
		case !allowed[a.State][state]:
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "action_state",
				Message: "a corrective action goes open → done → verified (or done back to open); this one is " + a.State}
		}
		from := a.State
		a.State, a.UpdatedBy, a.UpdatedAt = state, call.Actor.Name, now
		a.Overdue = state == ActionOpen && now.After(a.DueAt)
		doneID, doneName := a.doneByID, a.DoneBy
		switch state {
		case ActionDone:
			doneID, doneName = call.Actor.ID, call.Actor.Name
		case ActionOpen:
			doneID, doneName = "", ""
		}
		a.doneByID, a.DoneBy = doneID, doneName
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE incident_actions SET state = $1, updated_by = $2, updated_at = $3,
				done_by_id = $6, done_by = $7 WHERE id = $4 AND state = $5`, state, call.Actor.Name, medguard.Millis(now), actionID, from,
				storage.NullString(doneID), storage.NullString(doneName))
			if err := affectedConflict(res, err); err != nil {
				return err
			}
			return addUpdate(ctx, tx, k, id, index, "action_state", "action "+actionID+": "+from+" → "+state, call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func affectedConflict(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &medguard.Error{Kind: medguard.Conflict, Code: "action_state", Message: "the action was changed meanwhile"}
	}
	return nil
}

const actionColumns = `id, incident_id, description, owner, due_at, state, created_by, created_at, updated_by, updated_at,
	done_by_id, done_by`

func (s *Service) scanAction(ctx context.Context, sc interface{ Scan(...any) error }, now time.Time) (*Action, error) {
	var a Action
	var sealed []byte
	var due, created, updated int64
	var doneID, doneBy sql.NullString
	if err := sc.Scan(&a.ID, &a.IncidentID, &sealed, &a.Owner, &due, &a.State, &a.CreatedBy, &created, &a.UpdatedBy, &updated,
		&doneID, &doneBy); err != nil {
		return nil, err
	}
	a.doneByID, a.DoneBy = doneID.String, doneBy.String
	a.DueAt, a.CreatedAt, a.UpdatedAt = medguard.FromMillis(due), medguard.FromMillis(created), medguard.FromMillis(updated)
	a.Overdue = a.State == ActionOpen && now.After(a.DueAt)
	var err error
	a.Description, err = s.keys.OpenString(ctx, incidentOwner(a.IncidentID), loc("incident_actions", a.ID, "description"), sealed)
	return &a, err
}

func (s *Service) loadAction(ctx context.Context, incidentID, actionID string, now time.Time) (*Action, error) {
	if !medguard.ValidID(actionID) {
		return nil, errNoAction
	}
	a, err := s.scanAction(ctx, s.db.QueryRowContext(ctx, `SELECT `+actionColumns+` FROM incident_actions
		WHERE id = $1 AND incident_id = $2`, actionID, incidentID), now)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoAction
	}
	return a, medguard.Wrap("incidents.loadAction", err)
}

func (s *Service) actionsOf(ctx context.Context, incidentID string, now time.Time) ([]Action, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+actionColumns+` FROM incident_actions WHERE incident_id = $1 ORDER BY id`, incidentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Action{}
	for rows.Next() {
		a, err := s.scanAction(ctx, rows, now)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}
