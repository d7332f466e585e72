// Package medguard holds the few types every part of medguard shares: error
// kinds, the clock, opaque identifiers and the authenticated actor.
//
// It must stay small and must not import any other medguard package; the
// capabilities (identity, policy, records, audit, …) live in internal/ and
// import this package, never the other way round.
package medguard

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

// Clock tells the time. Everything that depends on time (sessions, lockouts,
// TOTP, deadlines, retention) takes a Clock so that tests can set it.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock, in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// ClockFunc adapts a function to the Clock interface.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new opaque identifier: 48 bits of milliseconds since the
// Unix epoch followed by 80 random bits, in lower-case Crockford base32
// (26 characters). Identifiers sort by creation time, which keeps indexes
// compact and lets cursors page in creation order. They carry no patient data.
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("medguard: crypto/rand failed: " + err.Error())
	}
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of an identifier made by NewID.
// Handlers use it to reject malformed path parameters before any lookup.
func ValidID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') || c == 'i' || c == 'l' || c == 'o' || c == 'u' {
			return false
		}
	}
	return true
}

// Millis converts a time to milliseconds since the Unix epoch, the form in
// which medguard stores every instant in both databases.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts stored milliseconds back to a UTC time.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Every runs check at once and then every interval until ctx ends, passing
// its failures to onError (may be nil) while ctx lives: the shape of the
// deadline checks (overdue incidents, loans, deletion confirmations), so
// that what fell due while no server ran is seen as soon as one starts.
func Every(ctx context.Context, every time.Duration, check func(context.Context) error, onError func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := check(ctx); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
