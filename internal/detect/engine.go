package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"medguard/internal/audit"
)

// Firing is a rule that fired: on which key, with how many events in the
// window, because of which entry.
type Firing struct {
	Rule      string    `json:"rule"`
	Action    string    `json:"action"`
	Key       string    `json:"key"`      // the user, IP or user/patient it counted by
	Username  string    `json:"username"` // the actor of the triggering entry
	Count     int       `json:"count"`    // events (or distinct patients) in the window
	Threshold int       `json:"threshold"`
	Window    Duration  `json:"window"`
	From      time.Time `json:"from"` // the oldest event counted
	At        time.Time `json:"at"`   // the triggering entry's time
	RequestID string    `json:"request_id"`
	// Note, if set, explains the firing in words (a baseline's).
	Note string `json:"note,omitempty"`
	// Screened is true when the firing refused the triggering operation
	// before it was done (a freeze rule), false when it was raised after.
	Screened bool `json:"screened"`
	// Severity ranks the alert (the rule's severity, one step higher when
	// the triggering entry concerned core data).
	Severity string `json:"severity"`
	// Index is the triggering entry's index in the audit log (for a
	// firing raised after the entry was written); servers that share a
	// database raise each such firing once, by this index.
	Index uint64 `json:"index,omitempty"`
}

// Explain says in words why the rule fired.
func (f Firing) Explain() string {
	if f.Note != "" {
		return f.Rule + ": " + f.Note
	}
	what := "events"
	if f.Rule == "bulk_read_user" || f.Rule == "bulk_read_ip" {
		what = "patients' records read"
	}
	return fmt.Sprintf("%s: %d %s by %s between %s and %s (threshold %d in %s)", f.Rule, f.Count, what, f.Key,
		f.From.UTC().Format(time.RFC3339), f.At.UTC().Format(time.RFC3339), f.Threshold, time.Duration(f.Window))
}

// Engine evaluates the rules on a stream of entries. It is not safe for
// concurrent use; the Service serialises it.
type Engine struct {
	rules []Rule
	zone  *time.Location
	// windows[rule][key]
	windows map[string]map[string]*window
	// baselines[rule][user]
	baselines map[string]map[string]*baseline
	// offHours[rule] is the rule's off-hours span in minutes of the day
	// (from, to), read once when the rules are set.
	offHours map[string][2]int
	// seen counts entries processed (for the throughput benchmark).
	seen int
}

// NewEngine returns an engine for rules; zone is the hospital's time zone,
// in which off-hours are read.
func NewEngine(rules []Rule, zone *time.Location) *Engine {
	if zone == nil {
		zone = time.UTC
	}
	e := &Engine{zone: zone, windows: map[string]map[string]*window{}, baselines: map[string]map[string]*baseline{}}
	e.SetRules(rules)
	return e
}

// SetRules replaces the rules; windows of rules that remain are kept.
func (e *Engine) SetRules(rules []Rule) {
	e.rules = slices.Clone(rules)
	e.offHours = map[string][2]int{}
	keep := map[string]bool{}
	for _, r := range rules {
		keep[r.Name] = true
		if r.OffHours != "" {
			from, to, _ := parseHours(r.OffHours) // checked when the rule was made
			e.offHours[r.Name] = [2]int{from, to}
		}
	}
	for name := range e.windows {
		if !keep[name] {
			delete(e.windows, name)
		}
	}
	for name := range e.baselines {
		if !keep[name] {
			delete(e.baselines, name)
		}
	}
}

// Rules returns the engine's rules.
func (e *Engine) Rules() []Rule { return slices.Clone(e.rules) }

// matches reports whether entry en counts for rule r. screening is true
// when en is an operation about to be done (a screen) rather than done.
func (e *Engine) matches(r *Rule, en *audit.Entry, screening bool) bool {
	if !r.Enabled || en.Actor == "system" {
		return false
	}
	if len(r.Actions) > 0 && !slices.Contains(r.Actions, en.Action) {
		return false
	}
	decision, outcome, rule := en.Decision, en.Outcome, en.Rule
	if screening || strings.HasPrefix(rule, "detect.") {
		// An operation refused by a screen was allowed by the policy: it
		// is judged as it was when screened.
		decision, outcome = audit.Allow, audit.Success
		if strings.HasPrefix(rule, "detect.") {
			rule = ""
		}
	}
	if r.Decision != "" && r.Decision != decision {
		return false
	}
	if len(r.Outcomes) > 0 && !slices.Contains(r.Outcomes, outcome) {
		return false
	}
	if len(r.PolicyRules) > 0 && !matchesPolicyRule(rule, r.PolicyRules) {
		return false
	}
	if r.Distinct == "patient" && en.PatientID == "" {
		return false
	}
	if r.OffHours != "" {
		span := e.offHours[r.Name]
		from, to := span[0], span[1]
		t := en.Time.In(e.zone)
		m := t.Hour()*60 + t.Minute()
		off := m >= from || m < to
		if from < to {
			off = m >= from && m < to
		}
		if !off {
			return false
		}
	}
	return true
}

func keyOf(r *Rule, en *audit.Entry) string {
	switch r.Key {
	case ByIP:
		return en.IP
	case ByUserPatient:
		return en.Actor + "/" + en.PatientID
	}
	return en.Actor
}

func (e *Engine) window(r *Rule, key string) *window {
	ws := e.windows[r.Name]
	if ws == nil {
		ws = map[string]*window{}
		e.windows[r.Name] = ws
	}
	w := ws[key]
	if w == nil {
		w = newWindow(r.Distinct != "", r.Threshold)
		ws[key] = w
	}
	return w
}

// Screen judges the entries of one operation about to be done (entries
// not yet written: one, or a list's items) against the freeze rules, as if
// they were done in order: if doing them would make one fire, the index of
// the entry that fires and the firing are returned (and that key's window
// starts afresh) and the operation must be refused. Nothing is counted
// otherwise: Observe counts what was done.
func (e *Engine) Screen(es []*audit.Entry) (int, *Firing) {
	// The operation's earlier entries, per window: distinct patients, or a
	// count.
	type extra struct {
		patients map[string]bool
		n        int
	}
	var extras map[*window]*extra
	for i, en := range es {
		for j := range e.rules {
			r := &e.rules[j]
			if r.Action != ActFreeze || r.Baseline || !e.matches(r, en, true) {
				continue
			}
			key := keyOf(r, en)
			w := e.window(r, key)
			w.prune(en.Time, time.Duration(r.Window))
			x := extras[w]
			if x == nil {
				x = &extra{patients: map[string]bool{}}
			}
			n := w.countWith(x.patients, x.n, en.PatientID)
			if n >= r.Threshold {
				f := e.firing(r, key, en, n, w)
				f.Screened = true
				w.reset()
				return i, &f
			}
			if extras == nil {
				extras = map[*window]*extra{}
			}
			extras[w] = x
			x.n++
			if en.PatientID != "" {
				x.patients[en.PatientID] = true
			}
		}
	}
	return -1, nil
}

// Observe counts a written entry in every rule it matches and returns the
// alert rules that fire on it. Freeze rules fire in Screen, before the
// operation; here they only count.
func (e *Engine) Observe(en *audit.Entry) []Firing {
	e.seen++
	var out []Firing
	if name, ok := strings.CutPrefix(en.Rule, "detect."); ok {
		// Refused by a screen: it was not done, so it does not count; the
		// window of the rule that fired starts afresh on every server, as
		// it did on the server that screened it.
		for i := range e.rules {
			if r := &e.rules[i]; r.Name == name && !r.Baseline {
				if w := e.windows[r.Name][keyOf(r, en)]; w != nil {
					w.reset()
				}
			}
		}
		return nil
	}
	for i := range e.rules {
		r := &e.rules[i]
		if !e.matches(r, en, false) {
			continue
		}
		key := keyOf(r, en)
		if r.Baseline {
			if ok, n, note := e.observeBaseline(r, key, en.Time); ok {
				out = append(out, Firing{Rule: r.Name, Action: r.Action, Key: key, Username: en.Actor, Count: n,
					Threshold: r.Threshold, Window: r.Window, From: en.Time.Truncate(time.Hour), At: en.Time,
					RequestID: en.RequestID, Note: note, Severity: r.rank(en.Classification == policyCore)})
			}
			continue
		}
		w := e.window(r, key)
		w.prune(en.Time, time.Duration(r.Window))
		w.add(en.Time, en.PatientID)
		if r.Action == ActFreeze && r.Decision != audit.Deny {
			// Screened before it was done. A freeze rule on refusals
			// (bulk_export) fires here instead: a refused operation is
			// never screened, and the refusal is written before it is
			// answered, so that the freeze comes first.
			continue
		}
		if n := w.count(); n >= r.Threshold {
			out = append(out, e.firing(r, key, en, n, w))
			w.reset()
		}
	}
	return out
}

// Learn counts a past entry in the baselines only: nothing fires and no
// window changes. It warms the baselines from the log when a server starts.
func (e *Engine) Learn(en *audit.Entry) {
	for i := range e.rules {
		r := &e.rules[i]
		if r.Baseline && !strings.HasPrefix(en.Rule, "detect.") && e.matches(r, en, false) {
			e.observeBaseline(r, keyOf(r, en), en.Time)
			e.baselines[r.Name][keyOf(r, en)].fired = true
		}
	}
}

// Replay runs an entry as the live path did: screened first if it was an
// operation the gate screened, then observed.
func (e *Engine) Replay(en *audit.Entry) []Firing {
	var out []Firing
	if en.Decision == audit.Allow || strings.HasPrefix(en.Rule, "detect.") {
		if _, f := e.Screen([]*audit.Entry{en}); f != nil {
			out = append(out, *f)
		}
	}
	return append(out, e.Observe(en)...)
}

func (e *Engine) firing(r *Rule, key string, en *audit.Entry, n int, w *window) Firing {
	from := en.Time
	if o, ok := w.oldest(); ok && o.Before(from) {
		from = o
	}
	return Firing{Rule: r.Name, Action: r.Action, Key: key, Username: en.Actor, Count: n, Threshold: r.Threshold,
		Window: r.Window, From: from, At: en.Time, RequestID: en.RequestID, Severity: r.rank(en.Classification == policyCore)}
}

// policyCore is the classification of core data (核心数据).
const policyCore = "core"

// Sweep drops windows whose events have all left their frame at now, so
// that memory follows the active keys only.
func (e *Engine) Sweep(now time.Time) {
	for i := range e.rules {
		r := &e.rules[i]
		for key, w := range e.windows[r.Name] {
			w.prune(now, time.Duration(r.Window))
			if w.empty() {
				delete(e.windows[r.Name], key)
			}
		}
	}
}
