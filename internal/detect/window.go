package detect

import (
	"container/list"
	"time"
)

// window is one key's events within one rule's time frame. Every operation
// is O(1) amortised, and memory is bounded: a counting window keeps at most
// the rule's threshold of event times (enough to know whether that many
// fall within the frame), a distinct-patient window one entry per patient
// with the latest time the patient was seen.
type window struct {
	distinct bool
	limit    int
	// Counting: event times in Unix ms, oldest first, times[head:] live.
	times []int64
	head  int
	// Distinct: each patient's latest time, ordered oldest first.
	order *list.List // of *seen
	byID  map[string]*list.Element
}

type seen struct {
	patient string
	at      int64
}

func newWindow(distinct bool, limit int) *window {
	w := &window{distinct: distinct, limit: max(limit, 1)}
	if distinct {
		w.order, w.byID = list.New(), map[string]*list.Element{}
	}
	return w
}

// prune drops events older than the frame: an event at t counts while
// now - frame ≤ t (inclusive).
func (w *window) prune(now time.Time, frame time.Duration) {
	cut := now.Add(-frame).UnixMilli()
	if w.distinct {
		for e := w.order.Front(); e != nil && e.Value.(*seen).at < cut; e = w.order.Front() {
			delete(w.byID, e.Value.(*seen).patient)
			w.order.Remove(e)
		}
		return
	}
	for w.head < len(w.times) && w.times[w.head] < cut {
		w.head++
	}
	if w.head > 64 && w.head*2 > len(w.times) {
		w.times = append(w.times[:0], w.times[w.head:]...)
		w.head = 0
	}
}

// add counts an event at time at (for distinct windows, of patient).
// Entries from concurrent requests may arrive slightly out of order; they
// are put in their place.
func (w *window) add(at time.Time, patient string) {
	ms := at.UnixMilli()
	if w.distinct {
		if e, ok := w.byID[patient]; ok {
			if e.Value.(*seen).at >= ms {
				return
			}
			w.order.Remove(e)
		}
		mark := w.order.Back()
		for mark != nil && mark.Value.(*seen).at > ms {
			mark = mark.Prev()
		}
		v := &seen{patient: patient, at: ms}
		if mark == nil {
			w.byID[patient] = w.order.PushFront(v)
		} else {
			w.byID[patient] = w.order.InsertAfter(v, mark)
		}
		return
	}
	i := len(w.times)
	w.times = append(w.times, ms)
	for i > w.head && w.times[i-1] > ms {
		w.times[i], w.times[i-1] = w.times[i-1], w.times[i]
		i--
	}
	if n := len(w.times) - w.head; n > w.limit {
		w.head += n - w.limit // only the newest limit events can decide
	}
}

// count is the number of events, or of distinct patients, in the window.
func (w *window) count() int {
	if w.distinct {
		return len(w.byID)
	}
	return len(w.times) - w.head
}

// countWith is the number of events, or of distinct patients, in the
// window as if the given earlier events of one operation (patients, or n
// events) and one more (of patient) were in it.
func (w *window) countWith(patients map[string]bool, n int, patient string) int {
	if !w.distinct {
		return len(w.times) - w.head + n + 1
	}
	c := len(w.byID)
	for p := range patients {
		if _, ok := w.byID[p]; !ok {
			c++
		}
	}
	if _, ok := w.byID[patient]; !ok && !patients[patient] {
		c++
	}
	return c
}

// oldest is the time of the oldest event counted.
func (w *window) oldest() (time.Time, bool) {
	switch {
	case w.distinct && w.order.Len() > 0:
		return time.UnixMilli(w.order.Front().Value.(*seen).at).UTC(), true
	case !w.distinct && w.head < len(w.times):
		return time.UnixMilli(w.times[w.head]).UTC(), true
	}
	return time.Time{}, false
}

// reset empties the window: after a firing, the next needs new events.
func (w *window) reset() {
	w.times, w.head = w.times[:0], 0
	if w.distinct {
		w.order.Init()
		clear(w.byID)
	}
}

func (w *window) empty() bool {
	if w.distinct {
		return w.order.Len() == 0
	}
	return w.head == len(w.times)
}
