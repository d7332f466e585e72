// Package demo fills an empty installation with a synthetic hospital, so
// that a new user sees a living system at once: departments, staff in every
// role, thousands of patients with a year of admissions, records in Chinese,
// archiving on time and late, care teams, access grants, emergency
// (break-glass) accesses with their reviews, and refused accesses; and,
// given the data-use services, the data use of SPEC §8 (datause.go);
// given the asset register and vulnerability management, the register
// and a year of vulnerability scans (vulns.go).
//
// It acts as the synthetic staff through the same services and the same
// gate as everyone else: every change is decided by the access policy and
// written to the audit log. It never writes to a table itself. Its content
// is deterministic for a seed (internal/synth); its times run over the past
// year on a simulated clock.
//
// The simulated year is the 365 days of the hospital (Beijing time) that
// end yesterday: whatever the date, every registration, admission, record,
// discharge and archiving is dated before now, no one is registered or
// admitted before they are born, and every date written in a record lies
// between the patient's birth and now.
package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/assets"
	"medguard/internal/compliance"
	"medguard/internal/datause"
	"medguard/internal/deidjobs"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/inspections"
	"medguard/internal/media"
	"medguard/internal/partners"
	"medguard/internal/plans"
	"medguard/internal/records"
	"medguard/internal/rectify"
	"medguard/internal/reports"
	"medguard/internal/risks"
	"medguard/internal/synth"
	"medguard/internal/training"
	"medguard/internal/vulns"
)

// Clock is the demo's simulated clock: each reading moves it on a little, so
// that the entries of one simulated day spread over its working hours (at
// most workday after Set).
type Clock struct {
	base atomic.Int64 // unix ms of the current slice's start
	tick atomic.Int64
	real bool
}

// Now returns the simulated time.
func (c *Clock) Now() time.Time {
	if c.real {
		return time.Now().UTC()
	}
	n := c.tick.Add(1)
	offset := min(n*7*int64(time.Second/time.Millisecond), int64(workday/time.Millisecond))
	return time.UnixMilli(c.base.Load() + offset).UTC()
}

// Set starts a new slice at t.
func (c *Clock) Set(t time.Time) {
	c.base.Store(t.UnixMilli())
	c.tick.Store(0)
}

// Live switches the clock to the real time.
func (c *Clock) Live() { c.real = true }

// Services are what the loader acts through.
type Services struct {
	Identity  *identity.Service
	Records   *records.Service
	Approvals *approvals.Service
	// DataUse, Partners and DeidJobs, if set, add the data use of SPEC §8:
	// paper folders and loans, record-use requests, a copy, a partner with
	// its agreement and researcher, and a de-identification job.
	DataUse  *datause.Service
	Partners *partners.Service
	DeidJobs *deidjobs.Service
	// Inspections and Media, if set, add the security office's daily
	// inspections and removable media register (inspections.go).
	Inspections *inspections.Service
	Media       *media.Service
	// Training, if set, adds a year of the training register (training.go).
	Training *training.Service
	// Assets and Vulns, if set, add the asset register and a year of
	// vulnerability scans (vulns.go).
	Assets *assets.Service
	Vulns  *vulns.Service
	// Incidents, if set, adds the security office's year of incidents,
	// accountability cases and anonymous reports (issue 13).
	Incidents *incidents.Service
	// Risks and Plans, if set, add the security office's registers of
	// issue 13: a year of risks, emergency plans and drills
	// (risksplans.go).
	Risks *risks.Service
	Plans *plans.Service
	// Reports, if set, adds the leadership's posture reports of the last
	// periods (reports.go), made last, from everything above.
	Reports *reports.Service
	// Rectify, if set, adds a year of the rectification register and two
	// published quarterly compliance checks (issue 14; rectify.go).
	Rectify *rectify.Service
	// Compliance, if set, adds the compliance checks: a departed doctor
	// whose key lives on, attested evidence, and a run at the end of the
	// year (compliance.go).
	Compliance *compliance.Service
}

// Options size the hospital.
type Options struct {
	Seed          uint64
	Patients      int
	Records       int
	Workers       int
	AdminPassword string
	// SecurityPassword is the security administrator's ("security").
	SecurityPassword string
	StaffPassword    string
	// Now is the end of the simulated year (default: the real time). The
	// year is the 365 hospital days before Now's day in Beijing.
	Now time.Time
	// Progress receives a line now and then.
	Progress io.Writer
}

// Staff is a member of the synthetic staff.
type Staff struct {
	Username, Name, Department, Role string
	call                             *medguard.Call
}

// Summary says what was made.
type Summary struct {
	Departments, Staff, Patients, Admissions, Records   int
	BreakGlass, Denied, Grants, CareTeams, LateArchives int
	// Data use (SPEC §8): paper folders, their loans, record-use
	// requests, copies, partners and de-identification jobs.
	Folders, Loans, UseRequests, Copies, Partners, DeidJobs int
	// Training: courses, sessions, results entered, assessments, and the
	// new doctor not trained yet (refused records).
	Courses, TrainingSessions, TrainingResults, Assessments int
	NewDoctor                                               string
	PartnerResearcher                                       string   // the username of the partner's linked researcher
	Frozen                                                  []string // accounts detection froze
	Took                                                    time.Duration
	AdminPassword, SecurityPassword, StaffPassword          string
	Examples                                                []Staff

	// The security office's registers (issue 13): daily inspections,
	// their readings out of range, the days missed, the checklist's saved
	// versions; removable media and their loans.
	Inspections, OutOfRange, MissedDays, ChecklistVersions, Media, MediaLoans int
	// The asset register and vulnerabilities (issue 13): assets, scans
	// imported, vulnerabilities, suspensions of operations.
	Assets, Scans, Vulns, Suspensions int
	// The security office (issue 13): incidents, accountability cases
	// and anonymous reports.
	Incidents, Cases, Reports int
	// The security office's registers (issue 13): risks, emergency plans
	// and drills.
	Risks, Plans, Drills int
	// PostureReports counts the posture reports generated (issue 14).
	PostureReports int
	// The rectification register (issue 14): items, monthly reviews
	// signed, quarterly checks published.
	Rectifications, Reviews, QuarterlyChecks int
	// The compliance checks (issue 14): the departed doctor whose key
	// lives on, the run at the end of the year and its failing checks.
	DepartedDoctor    string
	ComplianceRun     string
	ComplianceFailing []string
}

// hospitalZone is the demo hospital's time zone: China Standard Time,
// which has had no daylight saving since 1991. Its days are the simulated
// days, its working hours theirs.
var hospitalZone = time.FixedZone("CST", 8*60*60)

// The simulated year: days 0 to lastDay, lastDay being yesterday.
const (
	days    = 365
	lastDay = days - 1
	// workStart is when the simulated clock starts each day, and workday
	// the longest it runs on from there.
	workStart = 8 * time.Hour
	workday   = 10 * time.Hour
)

// loader builds one hospital.
type loader struct {
	svc   Services
	clock *Clock
	opts  Options
	first time.Time // midnight at the start of day 0, in hospitalZone
	gen   *synth.Generator
	rnd   *rand.Rand
	admin *medguard.Call
	// security is the security administrator, who approves what the
	// administrator asks for (four eyes).
	security *medguard.Call
	staff    map[string][]*Staff // by department code
	roles    map[string][]*Staff // by role
	sum      Summary
	out      io.Writer
	mu       sync.Mutex
	visits   []*visit
}

// clinical departments plus the offices every hospital has.
var offices = []struct{ code, name string }{
	{"MRD", "病案室"}, {"ITD", "信息科"}, {"QCD", "质控科"}, {"RES", "科研处"},
	{"MAD", "医务科"}, {"LDG", "院领导"},
}

// Load builds the hospital. The installation must be empty.
func Load(ctx context.Context, svc Services, clock *Clock, opts Options) (*Summary, error) {
	start := time.Now()
	l := newLoader(svc, clock, opts)
	clock.Set(l.dayStart(-1).Add(workStart)) // the staff arrive the day before
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"departments and staff", l.people},
		{"patients, admissions and records over the past year", l.year},
		{"care teams, access grants, emergency accesses and refusals", l.incidents},
	}
	if svc.DataUse != nil {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"paper folders, record-use requests, a copy, a partner and a de-identification job", l.dataUse})
	}
	if svc.Inspections != nil || svc.Media != nil {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"a year of daily inspections and the removable media register", l.registers})
	}
	if svc.Training != nil {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"a year of training, commitment letters and staff assessments", l.training})
	}
	if svc.Vulns != nil {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"the asset register and a year of vulnerability scans", l.vulnerabilities})
	}
	if svc.Incidents != nil {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"the security office's incidents, accountability cases and anonymous reports", l.securityOffice})
	}
	if svc.Risks != nil && svc.Plans != nil {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"risks, emergency plans and drills", l.risksAndPlans})
	}
	if svc.Rectify != nil {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"a year of rectification and two quarterly compliance checks", l.rectification})
	}
	if svc.Compliance != nil {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"a departed doctor's key, attested evidence and the compliance checks", l.complianceChecks})
	}
	if svc.Reports != nil {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"the leadership's posture reports of the last weeks, months and quarters", l.postureReports})
	}
	for i, s := range steps {
		fmt.Fprintf(l.out, "[%d/%d] %s…\n", i+1, len(steps), s.name)
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("demo: %s: %w", s.name, err)
		}
	}
	// One request left waiting, filed at the end of the year (now), for
	// the approvals inbox: the administrator asks for an auditor's role
	// for a researcher; it waits the full week for a decision.
	clock.Set(l.opts.Now.Add(-time.Minute)) // the clock ticks on as the request is made
	if researchers := l.roles["researcher"]; len(researchers) > 0 {
		call := *l.admin
		call.RequestID = "demo-waiting"
		if _, err := l.svc.Approvals.GrantRole(ctx, &call, researchers[0].call.Actor.ID, "auditor", "科研数据质控需要审计权限"); err != nil {
			return nil, fmt.Errorf("demo: the waiting request: %w", err)
		}
	}
	clock.Live()
	l.sum.Took = time.Since(start)
	for _, role := range []string{"admin", "security_officer", "records_clerk", "doctor", "nurse", "dept_head", "auditor", "it_engineer", "researcher",
		"medical_affairs", "leadership"} {
		if len(l.roles[role]) > 0 {
			l.sum.Examples = append(l.sum.Examples, *l.roles[role][0])
		}
	}
	return &l.sum, nil
}

// newLoader returns a loader for opts, with the defaults filled in.
func newLoader(svc Services, clock *Clock, opts Options) *loader {
	if opts.Workers <= 0 {
		opts.Workers = 32
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	opts.Now = opts.Now.UTC()
	y, m, d := opts.Now.In(hospitalZone).Date()
	l := &loader{svc: svc, clock: clock, opts: opts, first: time.Date(y, m, d-days, 0, 0, 0, 0, hospitalZone),
		rnd: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x6d656467)), staff: map[string][]*Staff{},
		roles: map[string][]*Staff{}, out: opts.Progress}
	// People are born on or before the last simulated day, so that each
	// can be registered on or after their birth.
	l.gen = synth.NewAt(opts.Seed, l.dayStart(lastDay))
	if l.out == nil {
		l.out = io.Discard
	}
	l.sum.AdminPassword, l.sum.SecurityPassword, l.sum.StaffPassword = opts.AdminPassword, opts.SecurityPassword, opts.StaffPassword
	return l
}

// people creates the departments, the two bootstrap accounts, the staff,
// their roles (every role that opens patient data or privilege through a
// four-eyes approval: the administrator asks, the security administrator
// approves) and the HIS's API key (approved the same way).
func (l *loader) people(ctx context.Context) error {
	id := l.svc.Identity
	ids := map[string]string{}
	for _, a := range identity.BootstrapAccounts(l.opts.AdminPassword, l.opts.SecurityPassword) {
		uid, err := id.Bootstrap(ctx, a)
		if err != nil {
			return err
		}
		ids[a.Username] = uid
	}
	l.admin = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: ids[identity.BootstrapAdmin],
		Name: identity.BootstrapAdmin, Roles: []string{"admin"}}, IP: "10.10.1.10", RequestID: "demo-setup"}
	l.security = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: ids[identity.BootstrapSecurity],
		Name: identity.BootstrapSecurity, Roles: []string{"security_officer"}}, IP: "10.10.1.11", RequestID: "demo-setup"}
	l.roles["admin"] = []*Staff{{Username: "admin", Name: "系统管理员", Role: "admin", call: l.admin}}
	l.roles["security_officer"] = []*Staff{{Username: "security", Name: "安全管理员", Role: "security_officer", call: l.security}}
	for _, d := range synth.Departments() {
		if _, _, err := l.svc.Approvals.CreateDepartment(ctx, l.admin, d.Code, d.Name, nil); err != nil {
			return err
		}
		l.sum.Departments++
	}
	for _, o := range offices {
		if _, _, err := l.svc.Approvals.CreateDepartment(ctx, l.admin, o.code, o.name, nil); err != nil {
			return err
		}
		l.sum.Departments++
	}
	type want struct {
		dept, role string
		n          int
	}
	var wants []want
	for _, d := range synth.Departments() {
		wants = append(wants, want{d.Code, "dept_head", 1}, want{d.Code, "doctor", 4}, want{d.Code, "nurse", 3})
	}
	wants = append(wants, want{"MRD", "records_clerk", 4}, want{"ITD", "it_engineer", 2}, want{"ITD", "security_officer", 2},
		want{"QCD", "auditor", 2}, want{"RES", "researcher", 2}, want{"MAD", "medical_affairs", 1}, want{"LDG", "leadership", 1})
	// Usernames and names in a fixed order, so the seed decides them.
	var plan []*Staff
	seen := map[string]bool{"admin": true, "security": true}
	for _, w := range wants {
		for i := 0; i < w.n; i++ {
			name := l.gen.StaffName()
			u := l.gen.Username(name, len(plan)+1)
			for seen[u] {
				u = l.gen.Username(name, len(plan)+100+l.rnd.IntN(900))
			}
			seen[u] = true
			plan = append(plan, &Staff{Username: u, Name: name, Department: w.dept, Role: w.role})
		}
	}
	err := l.parallel(len(plan), func(i int) error {
		s := plan[i]
		u, pending, err := id.CreateUser(ctx, l.admin, identity.NewUser{Username: s.Username, DisplayName: s.Name,
			Department: s.Department, Roles: []string{s.Role}, Password: l.opts.StaffPassword})
		if err != nil {
			return err
		}
		s.call = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: u.ID, Name: s.Username,
			Department: s.Department, Roles: []string{s.Role}}, IP: fmt.Sprintf("10.20.%d.%d", 1+i/200, 10+i%200)}
		// Roles that open patient data or privilege: the administrator
		// asks, the security administrator approves.
		for _, role := range pending {
			a, err := l.svc.Approvals.GrantRole(ctx, l.admin, u.ID, role, "岗位任命："+s.Name)
			if err != nil {
				return err
			}
			if _, err := l.svc.Approvals.Approve(ctx, l.security, a.ID, "同意任命"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range plan {
		l.staff[s.Department] = append(l.staff[s.Department], s)
		l.roles[s.Role] = append(l.roles[s.Role], s)
		l.sum.Staff++
	}
	// The HIS pushes records and finds patients by ID number: a key that
	// shows patient data, so it too waits for the security administrator.
	_, a, err := l.svc.Approvals.CreateAPIKey(ctx, l.admin, "his", []string{"patient.create", "patient.search", "record.write",
		"admission.manage", "scope.all_departments"}, "", "HIS 推送病历与患者登记")
	if err != nil {
		return err
	}
	if a != nil {
		_, err = l.svc.Approvals.Approve(ctx, l.security, a.ID, "HIS 接口，已核对范围")
	}
	return err
}

// parallel runs fn(0..n-1) on the loader's workers and returns the first error.
func (l *loader) parallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, l.opts.Workers)
	for w := 0; w < l.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs <- err
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// pick returns a random member of department dept with the given role.
func (l *loader) pick(dept, role string) *Staff {
	var c []*Staff
	for _, s := range l.staff[dept] {
		if s.Role == role {
			c = append(c, s)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[l.rnd.IntN(len(c))]
}

// visit is one patient's stay or visit, planned in advance.
type visit struct {
	person      synth.Person
	dept        synth.Department
	day         int // day of the year of the first contact
	inpatient   bool
	stay        int // days
	archiveLag  int // days after discharge; -1: not archived yet
	records     []plannedRecord
	patientID   string
	admissionID string
	clerk       *Staff
	doctor      *Staff
}

type plannedRecord struct {
	day    int
	at     time.Time // the time the text is written at
	typ    string
	author *Staff
	text   synth.RecordText
}

// plan decides every visit and record, deterministically.
func (l *loader) plan() []*visit {
	depts := synth.Departments()
	weights := map[string]int{"EMER": 14, "CARD": 12, "NEUR": 10, "RESP": 10, "GAST": 9, "ORTH": 9, "GSUR": 8,
		"PEDS": 8, "OBGY": 7, "ONCO": 6, "ICU": 3, "PSYC": 3, "INFD": 3}
	total := 0
	for _, d := range depts {
		total += max(1, weights[d.Code])
	}
	var visits []*visit
	perPatient := float64(l.opts.Records) / float64(max(1, l.opts.Patients))
	remaining := l.opts.Records
	for i := 0; i < l.opts.Patients; i++ {
		x, dept := l.rnd.IntN(total), depts[0]
		for _, d := range depts {
			if x -= max(1, weights[d.Code]); x < 0 {
				dept = d
				break
			}
		}
		v := &visit{person: l.gen.PersonFor(dept), dept: dept, day: l.rnd.IntN(360)}
		if born := l.dayOf(v.person.BirthDate); v.day <= born {
			// A newborn's first visit follows the birth: the next day, or
			// the day of birth if that is the last simulated day.
			v.day = min(born+1, lastDay)
		}
		v.inpatient = dept.Code != "EMER" && l.rnd.Float64() < 0.7 || dept.Code == "ICU"
		v.stay = 2 + l.rnd.IntN(12)
		discharged := v.inpatient && v.day+v.stay <= lastDay
		switch r := l.rnd.Float64(); {
		case r < 0.85:
			v.archiveLag = 1 + l.rnd.IntN(6)
		case r < 0.95:
			v.archiveLag = 8 + l.rnd.IntN(5) // late: more than 24 h past the 7-day deadline
		default:
			v.archiveLag = -1
		}
		n := int(perPatient)
		if l.rnd.Float64() < perPatient-float64(n) {
			n++
		}
		if i == l.opts.Patients-1 {
			n = remaining
		}
		n = max(1, min(n, remaining-(l.opts.Patients-1-i)))
		remaining -= n
		v.clerk = l.roles["records_clerk"][l.rnd.IntN(len(l.roles["records_clerk"]))]
		v.doctor = l.pick(dept.Code, "doctor")
		for k := 0; k < n; k++ {
			typ := l.gen.RecordType(dept)
			day := v.day
			if v.inpatient {
				day += min(v.stay, k*v.stay/max(1, n-1))
			}
			day = min(day, lastDay) // nothing is written after yesterday
			switch {
			case v.inpatient && k == 0:
				typ = "admission_note"
			case discharged && k == n-1 && n > 2:
				typ = "discharge_summary"
			case typ == "admission_note", typ == "discharge_summary" && !(discharged && day == v.day+v.stay):
				// An admission note is written on admission and a discharge
				// summary on discharge, and only for a stay that has ended.
				typ = "progress_note"
			}
			author := v.doctor
			if typ == "nursing_note" {
				author = l.pick(dept.Code, "nurse")
			}
			// Written in working hours, early enough that the reports and
			// times in the text stay within the day (and before now).
			at := l.dayStart(day).Add(workStart + time.Duration(l.rnd.IntN(recordHours))*time.Hour)
			var admitted time.Time
			if v.inpatient {
				admitted = l.dayStart(v.day).Add(workStart)
			}
			v.records = append(v.records, plannedRecord{day: day, at: at, typ: typ, author: author,
				text: l.gen.StayRecord(dept, typ, v.person, admitted, at)})
		}
		visits = append(visits, v)
	}
	return visits
}

// recordHours is how many hours after workStart a record's text may start
// so that what it reports (up to synth.MaxReportDelay later) is written
// the same day.
var recordHours = int((24*time.Hour - workStart - synth.MaxReportDelay) / time.Hour)

// dayStart returns midnight, hospital time, at the start of simulated day
// day (0 a year ago, lastDay yesterday). Days are calendar days, so the
// year is right across leap days and New Year.
func (l *loader) dayStart(day int) time.Time {
	return time.Date(l.first.Year(), l.first.Month(), l.first.Day()+day, 0, 0, 0, 0, hospitalZone)
}

// dayOf returns the simulated day of date's calendar date (a birth date:
// midnight UTC), negative before the year.
func (l *loader) dayOf(date time.Time) int {
	y, m, d := date.Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, hospitalZone).Sub(l.first).Round(time.Hour) / (24 * time.Hour))
}

// year replays the planned year day by day: registrations, admissions and
// records of each day are loaded concurrently, then discharges and archiving.
func (l *loader) year(ctx context.Context) error {
	visits := l.plan()
	type op struct {
		day  int
		kind int // 0 register, 1 admit, 2 record, 3 discharge, 4 archive
		v    *visit
		r    int
	}
	var ops []op
	last := lastDay
	for _, v := range visits {
		ops = append(ops, op{v.day, 0, v, 0})
		if v.inpatient {
			ops = append(ops, op{v.day, 1, v, 0})
		}
		for i, r := range v.records {
			ops = append(ops, op{r.day, 2, v, i})
		}
		if v.inpatient && v.day+v.stay <= last {
			ops = append(ops, op{v.day + v.stay, 3, v, 0})
			if v.archiveLag >= 0 && v.day+v.stay+v.archiveLag <= last {
				ops = append(ops, op{v.day + v.stay + v.archiveLag, 4, v, 0})
			}
		}
	}
	sort.SliceStable(ops, func(i, j int) bool {
		if ops[i].day != ops[j].day {
			return ops[i].day < ops[j].day
		}
		return ops[i].kind < ops[j].kind
	})
	for lo, prev := 0, -1; lo < len(ops); {
		day, kind := ops[lo].day, ops[lo].kind
		hi := lo
		for hi < len(ops) && ops[hi].day == day && ops[hi].kind == kind {
			hi++
		}
		// One working day per simulated day: the clock runs on from one
		// kind of work to the next, so that a patient is registered
		// before being admitted, and discharged after the day's records.
		if day != prev {
			l.clock.Set(l.dayStart(day).Add(workStart))
			prev = day
		}
		batch := ops[lo:hi]
		err := l.parallel(len(batch), func(i int) error {
			o := batch[i]
			v := o.v
			switch o.kind {
			case 0:
				p := v.person
				pt, err := l.svc.Records.CreatePatient(ctx, v.clerk.call, records.NewPatient{Name: p.Name, Gender: p.Gender,
					BirthDate: p.BirthDate.Format(time.DateOnly), IDNumber: p.IDNumber, Phone: p.Phone, Address: p.Address, MRN: p.MRN})
				if err != nil {
					return err
				}
				v.patientID = pt.ID
			case 1:
				a, err := l.svc.Records.Admit(ctx, v.doctor.call, v.patientID, v.dept.Code, time.Time{})
				if err != nil {
					return err
				}
				v.admissionID = a.ID
			case 2:
				r := v.records[o.r]
				_, err := l.svc.Records.CreateRecord(ctx, r.author.call, v.patientID, records.NewRecord{Type: r.typ,
					Department: v.dept.Code, Title: r.text.Title, Text: r.text.Text, Fields: r.text.Fields, AdmissionID: v.admissionID})
				return err
			case 3:
				_, err := l.svc.Records.Discharge(ctx, v.doctor.call, v.admissionID, time.Time{})
				return err
			case 4:
				a, err := l.svc.Records.Archive(ctx, v.clerk.call, v.admissionID)
				if err == nil && a.HoursLate > 24 {
					l.mu.Lock()
					l.sum.LateArchives++
					l.mu.Unlock()
				}
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, o := range batch {
			switch o.kind {
			case 0:
				l.sum.Patients++
			case 1:
				l.sum.Admissions++
			case 2:
				l.sum.Records++
			}
		}
		if kind == 4 && day%30 == 29 || hi == len(ops) {
			fmt.Fprintf(l.out, "      day %3d of 365: %d patients, %d admissions, %d records\n", day+1, l.sum.Patients, l.sum.Admissions, l.sum.Records)
		}
		lo = hi
	}
	l.visits = visits
	return nil
}
