package gate

import (
	"context"
	"database/sql"
	"errors"

	"medguard/internal/audit"
)

// ErrAnnounced is what an Announce claim returns (through
// storage.Affected, say) when another server announced the item first.
var ErrAnnounced = errors.New("gate: announced by another server")

// Announce logs each due item once — a deadline that passed: an overdue
// loan, a deletion confirmation not received — as the event ev(item),
// whose transaction runs claim: an update that marks the item announced
// and returns ErrAnnounced when it already was (several servers check at
// the same time). It returns the items it announced, also when it stops at
// an error, so that the caller passes them on (alerts) in any case.
func Announce[T any](ctx context.Context, g *Gate, due []T, ev func(T) Event,
	claim func(ctx context.Context, tx *sql.Tx, item T) error) ([]T, error) {
	var fresh []T
	for _, it := range due {
		_, err := g.Record(ctx, ev(it), audit.Mutation(func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			return claim(ctx, tx, it)
		}))
		switch {
		case errors.Is(err, ErrAnnounced):
			continue
		case err != nil:
			return fresh, err
		}
		fresh = append(fresh, it)
	}
	return fresh, nil
}
