package identity

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Freeze is one freeze of an account.
type Freeze struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Username   string     `json:"username"`
	FrozenAt   time.Time  `json:"frozen_at"`
	Rule       string     `json:"rule"`
	AlertID    string     `json:"alert_id"`
	ReleasedAt *time.Time `json:"released_at,omitempty"`
	ReleasedBy string     `json:"released_by,omitempty"`
}

// FreezeAccount freezes the account of username on the word of detection
// (as medguard itself): every session ends, and every request — sign-in
// included — is answered 423 until a security officer releases it. It
// returns the freeze's id, and false if the account was frozen already or
// is not a user's (an API key, an unknown name).
func (s *Service) FreezeAccount(ctx context.Context, username, rule, alertID, requestID string) (string, bool, error) {
	if name, ok := strings.CutPrefix(username, "apikey:"); ok {
		return s.freezeKey(ctx, name, rule, alertID, requestID)
	}
	var userID string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM users WHERE username = $1 AND status = $2 AND frozen_at IS NULL`,
		username, Active).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, medguard.Wrap("identity.FreezeAccount", err)
	}
	now := s.clock.Now()
	id := medguard.NewID(now)
	call := &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local", RequestID: requestID}
	froze := false
	_, err = s.gate.Record(ctx, gate.Event{Call: call, Action: "account.freeze", TargetType: "user", TargetID: userID,
		Allowed: true, Rule: rule}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET frozen_at = $1, frozen_reason = $2 WHERE id = $3 AND frozen_at IS NULL`,
			medguard.Millis(now), rule, userID)
		if n, _ := rowsAffected(res, err); n == 0 {
			return err // frozen meanwhile (another server): nothing more to do
		}
		froze = true
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL`,
			medguard.Millis(now), userID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO account_freezes (id, user_id, frozen_at, rule, alert_id) VALUES ($1, $2, $3, $4, $5)`,
			id, userID, medguard.Millis(now), rule, alertID)
		return err
	})
	if err != nil || !froze {
		return "", false, err
	}
	return id, true, nil
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// IsFrozen reports whether the user's account is frozen now.
func (s *Service) IsFrozen(ctx context.Context, username string) (bool, error) {
	var frozen sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT frozen_at FROM users WHERE username = $1`, username).Scan(&frozen)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return frozen.Valid, medguard.Wrap("identity.IsFrozen", err)
}

// freezeKey freezes a system's API key on the word of detection: every
// request with it is answered 423 until a security officer releases it.
func (s *Service) freezeKey(ctx context.Context, name, rule, alertID, requestID string) (string, bool, error) {
	var keyID string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM api_keys WHERE name = $1 AND frozen_at IS NULL AND revoked_at IS NULL`,
		name).Scan(&keyID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, medguard.Wrap("identity.freezeKey", err)
	}
	now := s.clock.Now()
	call := &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local", RequestID: requestID}
	froze := false
	_, err = s.gate.Record(ctx, gate.Event{Call: call, Action: "apikey.freeze", TargetType: "api_key", TargetID: keyID,
		Allowed: true, Rule: rule}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET frozen_at = $1, frozen_reason = $2 WHERE id = $3 AND frozen_at IS NULL`,
			medguard.Millis(now), rule, keyID)
		n, err := rowsAffected(res, err)
		froze = n > 0
		return err
	})
	if err != nil || !froze {
		return "", false, err
	}
	return keyID, true, nil
}

// checkReleaseReason checks the reason given for lifting a freeze.
func checkReleaseReason(reason string) error {
	_, err := medguard.Text("reason", reason, 1000, true)
	return err
}

// ReleaseAccount lifts the freeze of a user's account (permission
// account.release), with a reason kept sealed with the freeze. The user
// signs in again: the freeze ended their sessions.
func (s *Service) ReleaseAccount(ctx context.Context, call *medguard.Call, userID, reason string) error {
	if err := checkReleaseReason(reason); err != nil {
		return err
	}
	reason = strings.TrimSpace(reason)
	now := s.clock.Now()
	u, err := s.lookupUser(ctx, userID)
	if medguard.IsKind(err, medguard.NotFound) {
		u, err = nil, nil
	}
	if err != nil {
		return err
	}
	res := policy.Resource{Type: "user", ID: userID, Missing: u == nil}
	if !medguard.ValidID(userID) {
		res.ID = ""
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AccountRelease, AuditAction: "account.release", Resource: res},
		func(policy.Decision) (audit.Mutation, error) {
			if u == nil {
				return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such user"}
			}
			k, err := s.keys.SystemKey(ctx, "freezes")
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE users SET frozen_at = NULL, frozen_reason = NULL WHERE id = $1 AND frozen_at IS NOT NULL`, userID)
				if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the account is not frozen"}); err != nil {
					return err
				}
				var freezeID string
				err = tx.QueryRowContext(ctx, `SELECT id FROM account_freezes WHERE user_id = $1 AND released_at IS NULL
					ORDER BY frozen_at DESC LIMIT 1`, userID).Scan(&freezeID)
				if errors.Is(err, sql.ErrNoRows) {
					return nil // frozen before freezes were recorded
				}
				if err != nil {
					return err
				}
				sealed := k.SealString(keys.Location{Table: "account_freezes", Row: freezeID, Column: "release_reason"}, reason)
				_, err = tx.ExecContext(ctx, `UPDATE account_freezes SET released_at = $1, released_by = $2, release_reason = $3
					WHERE user_id = $4 AND released_at IS NULL`, medguard.Millis(now), call.Actor.Name, sealed, userID)
				return err
			}, nil
		})
	return err
}

// Freezes lists the freezes of accounts, newest first; frozenOnly keeps
// those not yet released.
func (s *Service) Freezes(ctx context.Context, call *medguard.Call, frozenOnly bool) ([]Freeze, error) {
	var out []Freeze
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AlertRead, AuditAction: "account.freeze.list",
		Resource: policy.Resource{Type: "user"}}, func(policy.Decision) (audit.Mutation, error) {
		q := `SELECT f.id, f.user_id, u.username, f.frozen_at, f.rule, f.alert_id, f.released_at, COALESCE(f.released_by, '')
			FROM account_freezes f JOIN users u ON u.id = f.user_id`
		if frozenOnly {
			q += ` WHERE f.released_at IS NULL`
		}
		rows, err := s.db.QueryContext(ctx, q+` ORDER BY f.frozen_at DESC LIMIT 500`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var f Freeze
			var at int64
			var rel sql.NullInt64
			if err := rows.Scan(&f.ID, &f.UserID, &f.Username, &at, &f.Rule, &f.AlertID, &rel, &f.ReleasedBy); err != nil {
				return nil, err
			}
			f.FrozenAt = medguard.FromMillis(at)
			if rel.Valid {
				t := medguard.FromMillis(rel.Int64)
				f.ReleasedAt = &t
			}
			out = append(out, f)
		}
		return nil, rows.Err()
	})
	return out, err
}
