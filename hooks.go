package medguard

import (
	"context"
	"slices"
	"sync"
)

// Hooks are the functions told of one kind of event — a deadline
// announced, an item done — added while the App is wired and called in
// the order they were added. The zero value is ready; it is safe for
// concurrent use (a hook added while others are told is told the next
// event).
type Hooks[T any] struct {
	mu  sync.Mutex
	fns []func(context.Context, T)
}

// Add adds a hook.
func (h *Hooks[T]) Add(fn func(context.Context, T)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fns = append(h.fns, fn)
}

// Tell tells every hook of each event, in order.
func (h *Hooks[T]) Tell(ctx context.Context, events ...T) {
	h.mu.Lock()
	fns := slices.Clone(h.fns)
	h.mu.Unlock()
	for _, e := range events {
		for _, fn := range fns {
			fn(ctx, e)
		}
	}
}
