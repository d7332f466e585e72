package detect

import (
	"fmt"
	"math"
	"time"
)

// baseline is one user's typical activity by hour of the week, learnt from
// the stream: the count of the hour in progress, and for each of the 168
// hours of the week the counts of the last BaselineWeeks weeks.
type baseline struct {
	hour  int64 // the hour in progress (Unix hours)
	count int
	fired bool
	first int64 // the first hour the user was seen
	// past[slot] holds (week, count) of earlier weeks' same hour.
	past map[int][]weekCount
}

type weekCount struct {
	week  int64
	count int
}

func newBaseline(hour int64) *baseline {
	return &baseline{hour: hour, first: hour, past: map[int][]weekCount{}}
}

// slotOf is the hour of the week (0 = Monday 00:00) of t in zone.
func slotOf(t time.Time, zone *time.Location) int {
	t = t.In(zone)
	return (int(t.Weekday())+6)%7*24 + t.Hour()
}

// roll closes the hour in progress if at is in a later one.
func (b *baseline) roll(at time.Time, zone *time.Location) {
	h := at.Unix() / 3600
	if h <= b.hour {
		return
	}
	if b.count > 0 {
		slot := slotOf(time.Unix(b.hour*3600, 0), zone)
		ws := append(b.past[slot], weekCount{week: b.hour / 168, count: b.count})
		if len(ws) > BaselineWeeks {
			ws = ws[len(ws)-BaselineWeeks:]
		}
		b.past[slot] = ws
	}
	b.hour, b.count, b.fired = h, 0, false
}

// usual returns the mean and standard deviation of the user's counts in
// this hour of the week over the past weeks they were known (weeks without
// activity count as 0), and how many weeks that is.
func (b *baseline) usual(at time.Time, zone *time.Location) (mean, sd float64, weeks int) {
	h := at.Unix() / 3600
	week := h / 168
	weeks = int(min(int64(BaselineWeeks), (h-b.first)/168))
	if weeks <= 0 {
		return 0, 0, 0
	}
	counts := make([]float64, weeks)
	for _, wc := range b.past[slotOf(at, zone)] {
		if ago := week - wc.week; ago >= 1 && ago <= int64(weeks) {
			counts[ago-1] = float64(wc.count)
		}
	}
	for _, c := range counts {
		mean += c
	}
	mean /= float64(weeks)
	for _, c := range counts {
		sd += (c - mean) * (c - mean)
	}
	return mean, math.Sqrt(sd / float64(weeks)), weeks
}

// observeBaseline counts an entry in its user's baseline and says whether
// the hour's count now deviates strongly from the usual, with the words.
func (e *Engine) observeBaseline(r *Rule, key string, at time.Time) (bool, int, string) {
	ws := e.baselines[r.Name]
	if ws == nil {
		ws = map[string]*baseline{}
		e.baselines[r.Name] = ws
	}
	b := ws[key]
	if b == nil {
		b = newBaseline(at.Unix() / 3600)
		ws[key] = b
	}
	b.roll(at, e.zone)
	if at.Unix()/3600 < b.hour {
		return false, 0, "" // a late entry of an hour already closed
	}
	b.count++
	mean, sd, weeks := b.usual(at, e.zone)
	if b.fired || weeks < baselineMinWeeks || b.count < r.Threshold || float64(b.count) <= mean+3*max(sd, 1) {
		return false, 0, ""
	}
	b.fired = true
	return true, b.count, fmt.Sprintf("本小时已读取 %d 次，该时段通常 %.0f ± %.0f 次（近 %d 周）; %d reads this hour, usually %.0f ± %.0f (last %d weeks)",
		b.count, mean, sd, weeks, b.count, mean, sd, weeks)
}
