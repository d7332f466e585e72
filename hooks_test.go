package medguard

import (
	"context"
	"slices"
	"testing"
)

// TestHooks: every hook is told of every event, in the order added; a
// hook that adds another while it is told does not deadlock, and the new
// one hears the next event.
func TestHooks(t *testing.T) {
	var h Hooks[string]
	var got []string
	h.Tell(context.Background(), "无人") // no hook yet
	h.Add(func(_ context.Context, s string) { got = append(got, "a:"+s) })
	h.Add(func(_ context.Context, s string) {
		got = append(got, "b:"+s)
		if s == "逾期" {
			h.Add(func(_ context.Context, s string) { got = append(got, "c:"+s) })
		}
	})
	h.Tell(context.Background(), "逾期", "完成")
	h.Tell(context.Background(), "核验")
	want := []string{"a:逾期", "b:逾期", "a:完成", "b:完成", "a:核验", "b:核验", "c:核验"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
