package identity

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
)

// Principal is the result of authenticating a request's bearer token.
type Principal struct {
	Actor medguard.Actor
	// Scope is ScopeFull, or ScopeMFAEnrollment for a session good only for
	// enrolling a second factor. API keys always have ScopeFull.
	Scope     string
	ExpiresAt time.Time
}

// touchEvery is how stale a session's last-seen time may get before a
// request refreshes it. Idle expiry is measured from the stored value, so a
// session may end up to this much before its idle timeout.
const touchEvery = 30 * time.Second

func errSession(code, msg string) error {
	return &medguard.Error{Kind: medguard.Unauthenticated, Code: code, Message: msg}
}

// Authenticate resolves a bearer token — a session token ("mgs_…") or an API
// key ("mgk_…") — to the actor making the request. Every call re-reads the
// user's status, or checks that nothing changed since it was read (see
// sessioncache.go), so deactivation and freezing take effect on the next
// request, on every server.
func (s *Service) Authenticate(ctx context.Context, token, ip, requestID string) (*Principal, error) {
	if strings.HasPrefix(token, "mgk_") {
		return s.authenticateKey(ctx, token)
	}
	if !strings.HasPrefix(token, "mgs_") || len(token) > 100 {
		return nil, errSession("invalid_token", "not signed in")
	}
	now := s.clock.Now()
	hash := hashToken(token)
	row, err := s.lookupSession(ctx, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errSession("invalid_token", "not signed in")
	}
	if err != nil {
		return nil, medguard.Wrap("identity.Authenticate", err)
	}
	if row.cached && now.Sub(medguard.FromMillis(row.lastSeen)) >= s.cfg.IdleTimeout {
		// Memory may be behind a request another server answered: only
		// the stored last-seen time may end a session as idle.
		if row, err = s.readSession(ctx, hash); errors.Is(err, sql.ErrNoRows) {
			return nil, errSession("invalid_token", "not signed in")
		} else if err != nil {
			return nil, medguard.Wrap("identity.Authenticate", err)
		}
		s.rememberSeen(hash, row.lastSeen)
	}
	p, scope, status, roles := row.p, row.scope, row.status, row.roles
	expires, lastSeen, ended, frozen := row.expires, row.lastSeen, row.ended, row.frozen
	p.Actor.Kind, p.Scope, p.ExpiresAt = medguard.UserActor, scope, medguard.FromMillis(expires)
	switch {
	case frozen.Valid && status == Active:
		// A freeze ended the sessions too; saying so is the clear answer.
		return nil, ErrFrozen
	case ended.Valid:
		return nil, errSession("session_ended", "the session has ended; sign in again")
	case status != Active:
		return nil, errSession("session_ended", "the session has ended; sign in again")
	case !now.Before(medguard.FromMillis(expires)):
		return nil, s.endSession(ctx, &p, ip, requestID, now, "expired", "the session reached its maximum lifetime; sign in again")
	case now.Sub(medguard.FromMillis(lastSeen)) >= s.cfg.IdleTimeout:
		return nil, s.endSession(ctx, &p, ip, requestID, now, "idle", "the session timed out after inactivity; sign in again")
	}
	p.Actor.Roles = splitSorted(roles)
	if now.Sub(medguard.FromMillis(lastSeen)) >= touchEvery {
		if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1`,
			medguard.Millis(now), p.Actor.SessionID); err != nil {
			return nil, medguard.Wrap("identity.Authenticate", err)
		}
		s.rememberSeen(hash, medguard.Millis(now))
	}
	return &p, nil
}

// endSession ends a session that ran out and logs why.
func (s *Service) endSession(ctx context.Context, p *Principal, ip, requestID string, now time.Time, reason, msg string) error {
	call := &medguard.Call{Actor: p.Actor, IP: ip, RequestID: requestID}
	_, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "auth.session_end", TargetType: "session",
		TargetID: p.Actor.SessionID, Allowed: true, Rule: "session." + reason, Outcome: audit.Success},
		func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL`,
				medguard.Millis(now), reason, p.Actor.SessionID)
			return err
		})
	if err != nil {
		return err
	}
	return errSession("session_"+reason, msg)
}

// ErrKeyFrozen is the answer to a request with a key that detection froze.
var ErrKeyFrozen = &medguard.Error{Kind: medguard.Locked, Code: "key_frozen",
	Message: "this API key is frozen after suspicious activity; a security officer must release it"}

// splitSorted splits a comma-joined list and sorts it.
func splitSorted(list string) []string {
	out := []string{}
	for _, x := range strings.Split(list, ",") {
		if x != "" {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Service) authenticateKey(ctx context.Context, token string) (*Principal, error) {
	id, secret, ok := strings.Cut(strings.TrimPrefix(token, "mgk_"), "_")
	if !ok || !medguard.ValidID(id) {
		return nil, errSession("invalid_token", "not signed in")
	}
	var (
		p                     Principal
		hash                  []byte
		scopes, status, owner string
		revoked               sql.NullInt64
		lastUse, frozen       sql.NullInt64
	)
	// The key, and whether the person who made it is still here: a key
	// stops when its owner leaves (离职).
	err := s.db.QueryRowContext(ctx, `SELECT k.name, k.secret_hash, k.scopes, k.revoked_at, k.last_used_at,
		COALESCE(k.department_id, ''), COALESCE(d.code, ''), k.status, k.frozen_at, COALESCE(u.status, '')
		FROM api_keys k LEFT JOIN departments d ON d.id = k.department_id LEFT JOIN users u ON u.id = k.created_by
		WHERE k.id = $1`, id).
		Scan(&p.Actor.Name, &hash, &scopes, &revoked, &lastUse, &p.Actor.DepartmentID, &p.Actor.Department, &status, &frozen, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		hashToken(secret) // same work as a real check
		return nil, errSession("invalid_token", "not signed in")
	}
	if err != nil {
		return nil, medguard.Wrap("identity.Authenticate", err)
	}
	if subtle.ConstantTimeCompare(hashToken(secret), hash) != 1 || revoked.Valid {
		return nil, errSession("invalid_token", "not signed in")
	}
	switch {
	case frozen.Valid:
		return nil, ErrKeyFrozen
	case status != KeyActive:
		return nil, errSession("key_pending", "this API key waits for its four-eyes approval")
	case owner != Active:
		return nil, errSession("key_owner_departed", "the member of staff who made this API key has left; a new key is needed")
	}
	now := s.clock.Now()
	if !lastUse.Valid || now.Sub(medguard.FromMillis(lastUse.Int64)) >= time.Minute {
		if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, medguard.Millis(now), id); err != nil {
			return nil, medguard.Wrap("identity.Authenticate", err)
		}
	}
	p.Actor.Kind, p.Actor.ID, p.Scope = medguard.APIKeyActor, id, ScopeFull
	p.Actor.Name = "apikey:" + p.Actor.Name
	p.Actor.Scopes = strings.Fields(scopes)
	return &p, nil
}
