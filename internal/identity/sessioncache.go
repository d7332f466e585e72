package identity

import (
	"context"
	"database/sql"
	"sync"

	"medguard/internal/pulse"
)

// Who a session belongs to is read from the database on every request
// unless the service has a pulse (UsePulse): then the answer is kept in
// memory, tagged with the identity epoch of a reading taken after the
// request began, and trusted only while the epoch is unchanged. The epoch is
// raised by the database's own triggers in the transaction of any change to
// users, roles, departments, API keys or a session's end (migration 0004),
// so a deactivation, freeze or role change committed on any server before a
// request makes that request read the database again. What only grows —
// a session's last-seen time — may be older in memory than in the
// database; it is only ever used to end a session as idle after reading
// the database again.

// Freshness tells whether what a server keeps in memory may be out of date.
// Defer lets a request that allows it (pulse.Later) be judged by memory
// first and confirmed by its first reading.
type Freshness interface {
	Read(ctx context.Context) (pulse.Reading, error)
	Defer(ctx context.Context, epoch int64) bool
}

// UsePulse lets the service keep sessions in memory, checked against the
// identity epoch that p reads.
func (s *Service) UsePulse(p Freshness) {
	s.sessions.mu.Lock()
	s.sessions.pulse = p
	s.sessions.mu.Unlock()
}

// sessionRow is a session with what its user is made of, as stored.
type sessionRow struct {
	p                          Principal
	scope, status, roles       string
	created, lastSeen, expires int64
	ended, frozen              sql.NullInt64
	cached                     bool // from memory
}

// maxCachedSessions bounds the memory of the cache; when full it starts
// again empty (sessions are read again, nothing else is lost).
const maxCachedSessions = 50_000

type sessionCache struct {
	mu    sync.Mutex
	pulse Freshness
	epoch int64
	rows  map[string]sessionRow // by token hash
}

// lookupSession returns the session of a token hash with its user, from
// memory when the identity epoch allows, else from the database.
func (s *Service) lookupSession(ctx context.Context, hash []byte) (sessionRow, error) {
	c := &s.sessions
	c.mu.Lock()
	p := c.pulse
	epoch := c.epoch
	row, ok := c.rows[string(hash)]
	c.mu.Unlock()
	if p == nil {
		return s.readSession(ctx, hash)
	}
	if ok && p.Defer(ctx, epoch) {
		// Judged now by memory at epoch; the request's first reading
		// must show that epoch before anything is decided (pulse.Defer).
		row.cached = true
		return row, nil
	}
	r, err := p.Read(ctx)
	if err != nil {
		return sessionRow{}, err
	}
	key := string(hash)
	c.mu.Lock()
	if c.epoch != r.IdentityEpoch || len(c.rows) >= maxCachedSessions {
		c.epoch, c.rows = r.IdentityEpoch, map[string]sessionRow{}
	}
	row, ok = c.rows[key]
	c.mu.Unlock()
	if ok {
		row.cached = true
		return row, nil
	}
	row, err = s.readSession(ctx, hash)
	if err != nil {
		return row, err
	}
	// The row read now is at least as new as the epoch read before it: a
	// change committed in between only makes the next request read again.
	c.mu.Lock()
	if c.epoch == r.IdentityEpoch {
		c.rows[key] = row
	}
	c.mu.Unlock()
	return row, nil
}

// rememberSeen moves the last-seen time of a session kept in memory
// forward to what is stored.
func (s *Service) rememberSeen(hash []byte, lastSeen int64) {
	c := &s.sessions
	c.mu.Lock()
	if row, ok := c.rows[string(hash)]; ok && row.lastSeen < lastSeen {
		row.lastSeen = lastSeen
		c.rows[string(hash)] = row
	}
	c.mu.Unlock()
}

// readSession reads a session, its user, the department and the roles in
// one query.
func (s *Service) readSession(ctx context.Context, hash []byte) (sessionRow, error) {
	var r sessionRow
	err := s.db.QueryRowContext(ctx, `SELECT s.id, s.scope, s.created_at, s.last_seen_at, s.expires_at, s.ended_at,
		u.id, u.username, u.status, u.frozen_at, COALESCE(u.department_id, ''), COALESCE(d.code, ''),
		COALESCE((SELECT `+s.db.StringAgg("r.role")+` FROM user_roles r WHERE r.user_id = u.id), '')
		FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN departments d ON d.id = u.department_id
		WHERE s.token_hash = $1`, hash).Scan(&r.p.Actor.SessionID, &r.scope, &r.created, &r.lastSeen, &r.expires, &r.ended,
		&r.p.Actor.ID, &r.p.Actor.Name, &r.status, &r.frozen, &r.p.Actor.DepartmentID, &r.p.Actor.Department, &r.roles)
	return r, err
}
