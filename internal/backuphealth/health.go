// Package backuphealth is the one gated way the API and the console read
// the backups' health and the restore drills (恢复演练): every read is
// decided by the access policy (backup.read) and written to the audit log
// through the gate, refused or not, like every other read of the security
// office. It turns the running schedule's report (a backup.Reporter: serve's
// SQLite schedule, or a PostgreSQL installation's) into what people read —
// ages, the RPO and RTO against their goals, whether each is late — and
// strips anything secret from the targets' addresses and the errors.
//
// It must not run backups, restores or drills (internal/backup and serve
// do), read a target itself, or know about HTTP or pages.
package backuphealth

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/backup"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// Reporter is what this package needs of a backup schedule (consumer side;
// backup.Reporter satisfies it).
type Reporter interface {
	Status() backup.Status
	Drills(ctx context.Context) ([]backup.Drill, error)
}

// The goals the seed sets (SPEC §9, seed 003): RPO ≤ 15 minutes, RTO ≤ 4 hours.
const (
	RPOGoal = 15 * time.Minute
	RTOGoal = 4 * time.Hour
)

// Periods are the schedule's periods, which say when a copy is late.
type Periods struct {
	// Full is how often each target gets a full backup (default 24 h).
	Full time.Duration
	// Incremental is how often the shipped stream is sealed (default 15 min).
	Incremental time.Duration
}

func (p Periods) withDefaults() Periods {
	if p.Full <= 0 {
		p.Full = 24 * time.Hour
	}
	if p.Incremental <= 0 {
		p.Incremental = 15 * time.Minute
	}
	return p
}

// watched is a reporter with its periods.
type watched struct {
	r Reporter
	p Periods
}

// Service reads the watched schedule's health through the gate.
type Service struct {
	gate    *gate.Gate
	current atomic.Pointer[watched]
}

// New returns a service that reports "not configured" until Watch.
func New(g *gate.Gate) *Service { return &Service{gate: g} }

// Watch makes r the schedule the service reports on (serve calls it once
// the schedule has started, after the web server; nil stops reporting).
func (s *Service) Watch(r Reporter, p Periods) {
	if r == nil {
		s.current.Store(nil)
		return
	}
	s.current.Store(&watched{r: r, p: p.withDefaults()})
}

// Target is one backup target's health.
type Target struct {
	// URL is where the target is, without user information or any query
	// parameter but endpoint, region and insecure.
	URL     string `json:"url"`
	Media   string `json:"media"`
	OffSite bool   `json:"off_site"`
	// LastBackup is the last successful full backup (null if none yet);
	// AgeSeconds its age.
	LastBackup *time.Time `json:"last_backup"`
	AgeSeconds *float64   `json:"age_seconds"`
	// Late is true when there is no full backup yet or the last one is
	// older than the full period plus one incremental period (the grace a
	// full backup has to finish).
	Late      bool   `json:"late"`
	LastError string `json:"last_error,omitempty"`
}

// Step is one timed step of a drill's restore.
type Step struct {
	Name        string  `json:"name"`
	TookSeconds float64 `json:"took_seconds"`
}

// Drill is one recorded restore drill.
type Drill struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"started_at"`
	Backup    string    `json:"backup"`
	Target    string    `json:"target"`
	// RTOSeconds is how long the restore took, checks included;
	// RPOSeconds how old the restored copy's newest data was.
	RTOSeconds float64 `json:"rto_seconds"`
	RPOSeconds float64 `json:"rpo_seconds"`
	// RTOMet is true when the drill passed within the 4-hour goal.
	RTOMet    bool   `json:"rto_met"`
	Patients  int    `json:"patients"`
	Records   int    `json:"records"`
	AuditSize uint64 `json:"audit_size"`
	// SamplePatients and SampleRecords are how many patients and records
	// the drill decrypted with the key file; SampleFields the fields.
	SamplePatients int    `json:"sample_patients"`
	SampleRecords  int    `json:"sample_records"`
	SampleFields   int    `json:"sample_fields"`
	OK             bool   `json:"ok"`
	Problem        string `json:"problem,omitempty"`
	Steps          []Step `json:"steps"`
}

// Health is the backups' health at a glance.
type Health struct {
	// Configured is false when the server runs no backup schedule (then
	// everything else is empty).
	Configured bool     `json:"configured"`
	Targets    []Target `json:"targets"`
	// RPOSeconds is the achieved RPO: how old the newest data every copy
	// holds is (null before the first copy); RPOLate is true when it is
	// beyond twice the incremental period or the 15-minute goal.
	RPOSeconds *float64 `json:"rpo_seconds"`
	RPOLate    bool     `json:"rpo_late"`
	// Shipped is the newest transaction the continuous stream shipped.
	Shipped *time.Time `json:"shipped"`
	// State321 is the 3-2-1 state (three copies, two media, one off-site).
	State321  backup.State `json:"state_321"`
	LastDrill *Drill       `json:"last_drill"`
	// The goals and periods the figures are judged against.
	RPOGoalSeconds     float64 `json:"rpo_goal_seconds"`
	RTOGoalSeconds     float64 `json:"rto_goal_seconds"`
	FullEverySeconds   float64 `json:"full_every_seconds"`
	IncrementalSeconds float64 `json:"incremental_every_seconds"`
}

// Health reads the backups' health (audited as backup.status).
func (s *Service) Health(ctx context.Context, call *medguard.Call) (*Health, error) {
	var h *Health
	err := s.enter(ctx, call, "backup.status", func(w *watched) error {
		h = s.health(ctx, w)
		return nil
	})
	return h, err
}

// Drills lists the recorded drills, newest first, limit at a time after
// the cursor (a drill's id); next is the cursor of the following page, ""
// at the end (audited as backup.drills).
func (s *Service) Drills(ctx context.Context, call *medguard.Call, after string, limit int) (out []Drill, next string, err error) {
	err = s.enter(ctx, call, "backup.drills", func(w *watched) error {
		if w == nil {
			return nil
		}
		ds, err := w.r.Drills(ctx)
		if err != nil {
			return &medguard.Error{Kind: medguard.Internal, Code: "backup_target_unreadable",
				Message: "the drills could not be read from the backup targets: " + Scrub(err.Error())}
		}
		slices.Reverse(ds)
		for _, d := range ds {
			if after != "" && d.ID >= after {
				continue
			}
			if limit > 0 && len(out) == limit {
				next = out[len(out)-1].ID
				break
			}
			out = append(out, view(d))
		}
		return nil
	})
	return out, next, err
}

// enter passes the gate with backup.read and runs read with the watched
// schedule (nil when none).
func (s *Service) enter(ctx context.Context, call *medguard.Call, action string, read func(*watched) error) error {
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.BackupRead, AuditAction: action,
		Resource: policy.Resource{Type: "backup"}}, func(policy.Decision) (audit.Mutation, error) {
		return nil, read(s.current.Load())
	})
	return err
}

func (s *Service) health(ctx context.Context, w *watched) *Health {
	h := &Health{Targets: []Target{}, RPOGoalSeconds: RPOGoal.Seconds(), RTOGoalSeconds: RTOGoal.Seconds()}
	if w == nil {
		return h
	}
	now := s.gate.Clock().Now()
	st := w.r.Status()
	h.Configured = true
	h.FullEverySeconds, h.IncrementalSeconds = w.p.Full.Seconds(), w.p.Incremental.Seconds()
	for _, t := range st.Targets {
		v := Target{URL: SafeURL(t.URL), Media: t.Media, OffSite: t.OffSite, LastError: Scrub(t.LastError), Late: true}
		if !t.LastBackup.IsZero() {
			at := t.LastBackup.UTC()
			age := max(now.Sub(at), 0)
			v.LastBackup, v.AgeSeconds = &at, ptr(age.Seconds())
			v.Late = age > w.p.Full+w.p.Incremental
		}
		h.Targets = append(h.Targets, v)
	}
	if !st.Shipped.IsZero() {
		at := st.Shipped.UTC()
		h.Shipped = &at
	}
	if st.RPO > 0 || !st.Shipped.IsZero() {
		h.RPOSeconds = ptr(st.RPO.Seconds())
		h.RPOLate = st.RPO > 2*w.p.Incremental || st.RPO > RPOGoal
	}
	h.State321 = st.State
	// The last drill is the newest one recorded on the targets (checked
	// against the server's key), or the schedule's own if they cannot be read.
	if ds, err := w.r.Drills(ctx); err == nil && len(ds) > 0 {
		h.LastDrill = ptr(view(ds[len(ds)-1]))
	} else if st.LastDrill != nil {
		h.LastDrill = ptr(view(*st.LastDrill))
	}
	return h
}

func view(d backup.Drill) Drill {
	v := Drill{ID: d.ID, StartedAt: d.StartedAt.UTC(), Backup: d.Backup, Target: SafeURL(d.Target),
		RTOSeconds: d.RTO.Seconds(), RPOSeconds: d.RPO.Seconds(), Patients: d.Patient, Records: d.Records,
		AuditSize: d.AuditSize, SamplePatients: d.SamplePatients, SampleRecords: d.SampleRecords, SampleFields: d.SampleFields, OK: d.OK, Problem: Scrub(d.Problem), Steps: []Step{}}
	v.RTOMet = d.OK && d.RTO <= RTOGoal
	for _, s := range d.Steps {
		v.Steps = append(v.Steps, Step{Name: s.Name, TookSeconds: s.Took.Seconds()})
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// keptParams are the query parameters of an S3 target's URL that say
// where it is, not how to get in.
var keptParams = []string{"endpoint", "region", "insecure"}

// SafeURL is a target's address fit to show: a directory as it is; a URL
// without user information, fragment or any query parameter but
// endpoint, region and insecure.
func SafeURL(raw string) string {
	if !strings.Contains(raw, "://") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unreadable address)"
	}
	u.User, u.Fragment, u.RawFragment = nil, "", ""
	q := url.Values{}
	for _, k := range keptParams {
		if v, ok := u.Query()[k]; ok {
			q[k] = v
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

var (
	userInfo  = regexp.MustCompile(`(://)[^/@\s]+@`)
	secretArg = regexp.MustCompile(`(?i)((?:access|secret)[_-]?key|signature|token|password|x-amz-credential|x-amz-signature)=[^&\s"']+`)
)

// Scrub takes credentials out of an error message: user information in
// URLs and key, signature, token or password query parameters.
func Scrub(msg string) string {
	msg = userInfo.ReplaceAllString(msg, "$1")
	return secretArg.ReplaceAllString(msg, "$1=…")
}

// Glance is the backups' health in a few figures, for medguard's own daily
// inspection (巡查, issue 13), which fills its backup item in from it:
// whether a schedule runs here, whether anything is late or failing, the
// achieved RPO and the age of the oldest newest full backup. It names no
// target and carries no error's text.
type Glance struct {
	// Configured is false when this server runs no backup schedule (then
	// the rest is zero).
	Configured bool
	// Targets counts the targets; Late those whose last full backup is
	// missing or older than the full period plus one incremental period;
	// Failing those whose last attempt failed.
	Targets, Late, Failing int
	// RPO is the achieved RPO (zero before the first copy) and RPOLate
	// whether it is beyond twice the incremental period or the 15-minute
	// goal.
	RPO     time.Duration
	RPOLate bool
	// FullAge is the age of the stalest target's last full backup (zero
	// when a target has none yet: then it counts as late).
	FullAge time.Duration
	Met321  bool
}

// OK reports whether the backups are healthy: configured, no target late
// or failing, the RPO within its goal.
func (g Glance) OK() bool {
	return g.Configured && g.Targets > 0 && g.Late == 0 && g.Failing == 0 && !g.RPOLate
}

// Glance reads the backups' health at a glance without the gate: it is
// for medguard's own checks, whose operation passed the gate itself (the
// inspection that records it), and discloses no address, error or secret.
func (s *Service) Glance() Glance {
	if s == nil {
		return Glance{}
	}
	w := s.current.Load()
	if w == nil {
		return Glance{}
	}
	now := s.gate.Clock().Now()
	st := w.r.Status()
	g := Glance{Configured: true, Targets: len(st.Targets), Met321: st.State.Met, RPO: st.RPO}
	for _, t := range st.Targets {
		if t.LastError != "" {
			g.Failing++
		}
		if t.LastBackup.IsZero() {
			g.Late++
			continue
		}
		age := max(now.Sub(t.LastBackup), 0)
		g.FullAge = max(g.FullAge, age)
		if age > w.p.Full+w.p.Incremental {
			g.Late++
		}
	}
	if st.RPO > 0 || !st.Shipped.IsZero() {
		g.RPOLate = st.RPO > 2*w.p.Incremental || st.RPO > RPOGoal
	}
	return g
}

// Current is the backups' health now, read without a gate passage, for
// the compliance checks, which show it only through their own audited
// passages (Health is the gated read).
func (s *Service) Current(ctx context.Context) *Health {
	return s.health(ctx, s.current.Load())
}
