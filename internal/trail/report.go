package trail

import (
	"context"
	"time"
	_ "time/tzdata" // the hospital's default time zone without relying on the host's zoneinfo

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// ReportAction is the audit action of producing a patient access report.
// Producing one is itself an access to the patient's trail: it is logged
// with the patient's id and appears in later reports.
const ReportAction = "audit.access_report"

// Lang is a language the access report is written in.
type Lang string

// The languages of the access report.
const (
	Chinese Lang = "zh-CN" // Simplified Chinese, the default
	English Lang = "en"
)

// DefaultZone is the time zone of the report's human-readable times when the
// hospital configured none: China Standard Time.
var DefaultZone = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic("trail: time zone " + name + ": " + err.Error()) // time/tzdata is linked in
	}
	return loc
}

// The categories of a report line: what kind of contact with the patient's
// data an entry was.
const (
	CategoryRead          = "read"           // data was shown
	CategoryChange        = "change"         // data was added or changed
	CategoryAccessControl = "access_control" // who may see the data changed (care team, grants)
	CategoryOversight     = "oversight"      // a review of an emergency access
	CategoryReport        = "access_report"  // an access report like this one was produced
	CategoryOther         = "other"          // an operation this report has no words for
)

// The statuses of a report line.
const (
	StatusCompleted  = "completed"  // allowed, and it happened
	StatusDenied     = "denied"     // the access policy refused it
	StatusIncomplete = "incomplete" // allowed, but it failed (bad input, a conflict, an error)
)

// The kinds of actor in a report line.
const (
	ActorStaff  = "staff"  // a member of staff, signed in
	ActorSystem = "system" // another hospital system (an API key) or medguard itself
)

// ReportQuery asks for one patient's access report.
type ReportQuery struct {
	PatientID string
	// From and To bound the period; either may be zero for an open end.
	// To is exclusive.
	From, To time.Time
	Lang     Lang // "" for Chinese
	// Before, if not zero, continues the report with the entries before
	// this audit index (the cursor of the previous page).
	Before uint64
	Limit  int // at most audit.MaxEntries; default DefaultReportLimit
	// Named asks for the patient's name and 病案号 in the report, for
	// handing it to them (the console's printed report); the API's report
	// names nobody.
	Named bool
}

// DefaultReportLimit is the number of lines in a page of the report when the
// query names none.
const DefaultReportLimit = 50

// AccessReport is one patient's access report (患者访问记录): who accessed
// their data, when, what, why, and whether by break-glass, in words a
// patient understands. It names the patient it is about (it is handed to
// them) and holds staff names and opaque ids, never other patients' data.
type AccessReport struct {
	PatientID string `json:"patient_id"`
	// Patient names the patient (name and 病案号) when the query asked for
	// it (Named).
	Patient     *records.ReportSubject `json:"patient,omitempty"`
	Language    Lang                   `json:"language"`
	TimeZone    string                 `json:"time_zone"` // of the local times, e.g. Asia/Shanghai
	GeneratedAt time.Time              `json:"generated_at"`
	// Summary covers the whole period, whichever page Items is.
	Summary AccessSummary `json:"summary"`
	// Items are the entries, newest first.
	Items []AccessLine `json:"items"`
}

// AccessSummary counts a report's entries over its whole period.
type AccessSummary struct {
	// From is the start of the period: the one asked for, or else the
	// time of the earliest entry (null when there is none).
	From *time.Time `json:"from"`
	// To is the end of the period (exclusive): the one asked for, or else
	// the time the report was made.
	To time.Time `json:"to"`
	// Period is the period in words.
	Period string `json:"period"`
	// Entries is every line in the period.
	Entries int `json:"entries"`
	// Accesses are the lines that completed (status completed), of which
	// BreakGlass were emergency accesses.
	Accesses   int `json:"accesses"`
	BreakGlass int `json:"break_glass"`
	// Staff and Systems count the distinct members of staff and systems
	// behind the accesses.
	Staff   int `json:"staff"`
	Systems int `json:"systems"`
	// Denied are the attempts the access policy refused; Incomplete the
	// allowed operations that failed and changed nothing.
	Denied     int `json:"denied"`
	Incomplete int `json:"incomplete"`
	// Text says all of it in one sentence.
	Text string `json:"text"`
}

// AccessLine is one audit entry about the patient, in words.
type AccessLine struct {
	Index     uint64    `json:"index"`      // the entry's index in the audit log, for its proof
	Time      time.Time `json:"time"`       // UTC, RFC 3339
	LocalTime string    `json:"local_time"` // in the report's language and time zone
	// Actor is the username, "apikey:<name>" or "system"; ActorKind says
	// whether it is a member of staff or a system.
	Actor     string `json:"actor"`
	ActorKind string `json:"actor_kind"`
	// Department is the actor's department code and DepartmentName its
	// name; both empty for none.
	Department     string   `json:"department"`
	DepartmentName string   `json:"department_name"`
	Roles          []string `json:"roles"` // the actor's roles, in words
	Who            string   `json:"who"`   // department, roles and name together
	Action         string   `json:"action"`
	Category       string   `json:"category"`
	What           string   `json:"what"`
	TargetType     string   `json:"target_type"`
	TargetID       string   `json:"target_id"`
	Purpose        string   `json:"purpose"` // purpose-of-use code, or ""
	Why            string   `json:"why"`     // the purpose in words
	BreakGlass     bool     `json:"break_glass"`
	// BreakGlassNote explains an emergency access. The reason the member of
	// staff gave is not shown: it is sealed with the patient's key and read
	// only by the reviewing department head.
	BreakGlassNote string `json:"break_glass_note,omitempty"`
	Status         string `json:"status"`
	Denied         bool   `json:"denied"` // the system refused: an attempt, not an access
	Result         string `json:"result"` // the status in words
	Text           string `json:"text"`   // the whole line as one sentence
}

var errNoPatient = &medguard.Error{Kind: medguard.NotFound, Message: "no such patient"}

// AccessReport returns a patient's access report and the audit index to
// continue before (0 when there are no more lines).
//
// It needs audit.read: the report is made by the staff who answer a
// patient's request (the security officer, the quality auditor) and is
// handed to the patient, whom it names when asked (Named: name and 病案号).
// The request is logged as ReportAction with the patient's id — a
// disclosure, counted by detection — so it appears in the patient's later
// reports. A patient who is not registered is not found.
func (s *Service) AccessReport(ctx context.Context, call *medguard.Call, q ReportQuery) (*AccessReport, uint64, error) {
	known, err := s.patientKnown(ctx, q.PatientID)
	if err != nil {
		return nil, 0, err
	}
	res := policy.Resource{Type: "patient", ID: q.PatientID, PatientID: q.PatientID}
	if !known {
		// Only the permission is decided; an id of the wrong shape (which
		// might be anything a caller typed) is not written to the log.
		res = policy.Resource{Type: "patient", Missing: true}
		if medguard.ValidID(q.PatientID) {
			res.ID = q.PatientID
		}
	}
	var rep *AccessReport
	var next uint64
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AuditRead, AuditAction: ReportAction, Resource: res},
		func(policy.Decision) (audit.Mutation, error) {
			if !known {
				return nil, errNoPatient
			}
			now := s.gate.Clock().Now().Truncate(time.Millisecond)
			switch {
			case !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From):
				return nil, medguard.InvalidField("to", "to must be after from")
			case !q.From.IsZero() && q.To.IsZero() && !now.After(q.From):
				return nil, medguard.InvalidField("from", "from must be in the past when there is no to")
			}
			if q.Lang == "" {
				q.Lang = Chinese
			}
			if q.Lang != Chinese && q.Lang != English {
				return nil, medguard.InvalidField("lang", "lang must be zh or en")
			}
			if q.Limit <= 0 {
				q.Limit = DefaultReportLimit
			}
			q.Limit = min(q.Limit, audit.MaxEntries)
			var err error
			if rep, next, err = s.report(ctx, q, now); err != nil {
				return nil, err
			}
			if q.Named {
				subject, err := s.patients.ReportSubject(ctx, q.PatientID)
				if err != nil {
					return nil, err
				}
				rep.Patient = &subject
			}
			return nil, nil
		})
	if err != nil {
		return nil, 0, err
	}
	return rep, next, nil
}

// patientKnown reports whether the patient is registered. Patients are
// never deleted, so this holds for patients whose entries were archived.
func (s *Service) patientKnown(ctx context.Context, patientID string) (bool, error) {
	if !medguard.ValidID(patientID) {
		return false, nil
	}
	return s.patients.PatientExists(ctx, patientID)
}

// report reads every entry about the patient in the period, newest first,
// counting them all for the summary and writing out one page of them. now
// is the time of the report, the end of a period without one.
func (s *Service) report(ctx context.Context, q ReportQuery, now time.Time) (*AccessReport, uint64, error) {
	w := wordsFor(q.Lang, s.zone)
	rep := &AccessReport{PatientID: q.PatientID, Language: q.Lang, TimeZone: s.zone.String(), GeneratedAt: now,
		Items: []AccessLine{}}
	t := tally{staff: map[string]bool{}, systems: map[string]bool{}}
	depts := map[string]string{} // department code → name
	var next, before uint64
	var earliest time.Time
	for {
		st, more, err := s.log.Search(ctx, audit.Query{PatientID: q.PatientID, From: q.From, To: q.To, Before: before,
			Limit: audit.MaxEntries})
		if err != nil {
			return nil, 0, err
		}
		for _, e := range st {
			t.add(e.Entry)
			earliest = e.Entry.Time
			if q.Before != 0 && e.Index >= q.Before {
				continue
			}
			switch {
			case len(rep.Items) < q.Limit:
				name, err := s.departmentName(ctx, depts, e.Entry.ActorDepartment)
				if err != nil {
					return nil, 0, err
				}
				rep.Items = append(rep.Items, w.line(e, name))
			case next == 0:
				next = rep.Items[len(rep.Items)-1].Index
			}
		}
		if !more || len(st) == 0 {
			break
		}
		before = st[len(st)-1].Index
	}
	sum := AccessSummary{To: q.To, Entries: t.entries, Accesses: t.accesses, BreakGlass: t.breakGlass,
		Staff: len(t.staff), Systems: len(t.systems), Denied: t.denied, Incomplete: t.incomplete}
	switch {
	case !q.From.IsZero():
		from := q.From
		sum.From = &from
	case t.entries > 0:
		sum.From = &earliest
	}
	if sum.To.IsZero() {
		sum.To = rep.GeneratedAt
	}
	sum.Period = w.period(sum.From, sum.To)
	sum.Text = w.summary(sum)
	rep.Summary = sum
	return rep, next, nil
}

// departmentName returns the name of the department with code, through the
// cache; "" for no department, and the code itself for one that is gone.
func (s *Service) departmentName(ctx context.Context, cache map[string]string, code string) (string, error) {
	if code == "" || s.id == nil {
		return "", nil
	}
	if name, ok := cache[code]; ok {
		return name, nil
	}
	d, err := s.id.DepartmentByCode(ctx, code)
	switch {
	case medguard.IsKind(err, medguard.NotFound):
		cache[code] = code
	case err != nil:
		return "", err
	default:
		cache[code] = d.Name
	}
	return cache[code], nil
}

// tally counts a report's entries for its summary.
type tally struct {
	entries, accesses, breakGlass, denied, incomplete int
	staff, systems                                    map[string]bool
}

func (t *tally) add(e *audit.Entry) {
	t.entries++
	switch status(e) {
	case StatusDenied:
		t.denied++
	case StatusIncomplete:
		t.incomplete++
	default:
		t.accesses++
		if e.BreakGlass {
			t.breakGlass++
		}
		if actorKind(e) == ActorSystem {
			t.systems[e.Actor] = true
		} else {
			t.staff[e.Actor] = true
		}
	}
}

// status says whether the operation of an entry happened.
func status(e *audit.Entry) string {
	switch {
	case e.Decision == audit.Deny || e.Outcome == audit.Denied:
		return StatusDenied
	case e.Outcome != audit.Success:
		return StatusIncomplete
	}
	return StatusCompleted
}
