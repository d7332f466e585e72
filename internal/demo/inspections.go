package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"medguard/internal/backuphealth"
	"medguard/internal/inspections"
	"medguard/internal/media"
)

// The security office's registers over the demo year (issue 13): a daily
// inspection (巡查) every day but a few missed ones, each signed by an IT
// engineer or a records clerk and countersigned by a security officer,
// with a few readings out of range (alerted, then resolved by the next
// reading in range) and the checklist's second version half-way; and
// the removable media register: devices, loans signed by lender and
// borrower, returns, erasures before a witness, a disposal, a confiscated
// unencrypted drive, and — at the end — a loan out, one overdue (alerted)
// and one waiting for its borrower's signature. The days and texts are in
// data/inspections.json, relative to the simulated year.

//go:embed data/inspections.json
var inspectionsData []byte

// registersPlan is data/inspections.json.
type registersPlan struct {
	Missed       []int            `json:"missed"`
	TemplateDay  int              `json:"template_day"`
	TemplateItem inspections.Item `json:"template_item"`
	Events       []struct {
		Day    int      `json:"day"`
		Item   string   `json:"item"`
		Value  *float64 `json:"value"`
		OK     *bool    `json:"ok"`
		Note   string   `json:"note"`
		Review string   `json:"review"`
	} `json:"events"`
	Notes       []string          `json:"notes"`
	Reviews     []string          `json:"reviews"`
	Devices     []media.NewDevice `json:"devices"`
	Confiscated struct {
		Day int `json:"day"`
		media.NewDevice
	} `json:"confiscated"`
	Loans []struct {
		Day      int    `json:"day"`
		Device   int    `json:"device"`
		Borrower string `json:"borrower"`
		Purpose  string `json:"purpose"`
		Days     int    `json:"days"`
		Erasure  string `json:"erasure"`
		Dispose  *struct {
			Day    int    `json:"day"`
			Method string `json:"method"`
			Note   string `json:"note"`
		} `json:"dispose"`
	} `json:"loans"`
	Current []struct {
		Back     int    `json:"back"`
		Device   int    `json:"device"`
		Borrower string `json:"borrower"`
		Purpose  string `json:"purpose"`
		Days     int    `json:"days"`
		State    string `json:"state"`
	} `json:"current"`
}

func loadRegistersPlan() (*registersPlan, error) {
	var p registersPlan
	if err := json.Unmarshal(inspectionsData, &p); err != nil {
		return nil, fmt.Errorf("data/inspections.json: %w", err)
	}
	for _, d := range append(slices.Clone(p.Missed), p.TemplateDay, p.Confiscated.Day) {
		if d < 0 || d > lastDay {
			return nil, fmt.Errorf("data/inspections.json: day %d is outside the year", d)
		}
	}
	for _, e := range p.Events {
		if e.Day < 0 || e.Day > lastDay || slices.Contains(p.Missed, e.Day) {
			return nil, fmt.Errorf("data/inspections.json: the event of day %d is outside the year or on a missed day", e.Day)
		}
	}
	return &p, nil
}

// simulatedServer is the demo hospital's server as the inspections read
// it, on the demo's clock: a steady load with a spike on the day an event
// says, a disk that fills slowly over the year, backups healthy but on the
// day an event says.
type simulatedServer struct {
	l     *loader
	load  map[int]float64 // day → load per CPU, in %
	late  map[int]bool    // day → the backups are late
	noise func(day int) float64
}

const simulatedCPUs = 16

func (s *simulatedServer) day() int {
	return int(s.l.clock.Now().Sub(s.l.first) / (24 * time.Hour))
}

// Load is the 15-minute load average.
func (s *simulatedServer) Load() (float64, int, error) {
	pct, ok := s.load[s.day()]
	if !ok {
		pct = 18 + 10*s.noise(s.day())
	}
	return math.Round(pct*simulatedCPUs) / 100, simulatedCPUs, nil
}

// Space is a 4 TB array filling from 38 % to 61 % over the year.
func (s *simulatedServer) Space() (uint64, uint64, error) {
	const total = 4 << 40
	used := 0.38 + 0.23*float64(min(max(s.day(), 0), lastDay))/lastDay
	return uint64(float64(total) * (1 - used)), total, nil
}

// Glance is two targets, a full backup a few hours old, the RPO a minute.
func (s *simulatedServer) Glance() backuphealth.Glance {
	g := backuphealth.Glance{Configured: true, Targets: 2, RPO: time.Minute, FullAge: 5 * time.Hour, Met321: true}
	if s.late[s.day()] {
		g.Late, g.FullAge, g.RPO = 1, 49*time.Hour, 40*time.Minute
	}
	return g
}

// registers fills the daily inspection and the media register.
func (l *loader) registers(ctx context.Context) error {
	ins, med := l.svc.Inspections, l.svc.Media
	plan, err := loadRegistersPlan()
	if err != nil {
		return err
	}
	active := func(role string) []*Staff {
		var out []*Staff
		for _, s := range l.roles[role] {
			if !slices.Contains(l.sum.Frozen, s.Username) {
				out = append(out, s)
			}
		}
		return out
	}
	its, clerks, officers := active("it_engineer"), active("records_clerk"), active("security_officer")
	if len(its) < 2 || len(clerks) == 0 || len(officers) < 2 {
		return nil
	}
	rnd := rand.New(rand.NewPCG(l.opts.Seed, 0x78756e6a6961))
	at := func(day int, d time.Duration) { l.clock.Set(l.dayStart(day).Add(d)) }
	if ins != nil {
		if err := l.inspectionYear(ctx, plan, rnd, its, clerks, officers, at); err != nil {
			return err
		}
	}
	if med != nil {
		return l.mediaYear(ctx, plan, its, officers, at)
	}
	return nil
}

// inspectionYear records a year of daily inspections.
func (l *loader) inspectionYear(ctx context.Context, plan *registersPlan, rnd *rand.Rand, its, clerks, officers []*Staff,
	at func(int, time.Duration)) error {
	ins := l.svc.Inspections
	server := &simulatedServer{l: l, load: map[int]float64{}, late: map[int]bool{}, noise: func(day int) float64 {
		return math.Abs(math.Sin(float64(day)*1.7 + float64(l.opts.Seed)))
	}}
	events := map[int][]int{}
	for i, e := range plan.Events {
		events[e.Day] = append(events[e.Day], i)
		switch e.Item {
		case inspections.ServerLoad:
			server.load[e.Day] = *e.Value
		case inspections.BackupStatus:
			server.late[e.Day] = true
		}
	}
	prevHost, prevBackups := ins.SetSystem(server, server)
	defer ins.SetSystem(prevHost, prevBackups)
	round1 := func(v float64) float64 { return math.Round(v*10) / 10 }
	for day := 0; day <= lastDay; day++ {
		if day > 0 && slices.Contains(plan.Missed, day-1) {
			// The server notices the missed day the next night.
			at(day, time.Hour)
			if _, err := ins.CheckMissed(ctx); err != nil {
				return err
			}
		}
		if day == plan.TemplateDay {
			at(day, 8*time.Hour)
			items := inspections.DefaultTemplate().Items
			items = append(items, plan.TemplateItem)
			if _, err := ins.SaveTemplate(ctx, officers[0].call, inspections.NewTemplate{Items: items}); err != nil {
				return err
			}
			l.sum.ChecklistVersions++
		}
		if slices.Contains(plan.Missed, day) {
			continue
		}
		// Weekdays an IT engineer inspects, turn about by week; weekends
		// the records clerk on duty, who keeps the archive room.
		weekday := l.dayStart(day).Weekday()
		inspector := its[(day/7)%len(its)]
		if weekday == time.Saturday || weekday == time.Sunday {
			inspector = clerks[(day/7)%len(clerks)]
		}
		temp := round1(min(max(22+rnd.NormFloat64()*0.7, 20.4), 23.6))
		hum := round1(min(max(52+rnd.NormFloat64()*3, 46), 59))
		in := inspections.NewInspection{Note: plan.Notes[rnd.IntN(len(plan.Notes))], Readings: []inspections.ReadingInput{
			{Key: inspections.RoomTemperature, Value: &temp}, {Key: inspections.RoomHumidity, Value: &hum}}}
		checks := []string{inspections.FireDevices, inspections.AntiTheftDevices, inspections.AccessDevices, inspections.StorageDevices}
		if day >= plan.TemplateDay {
			checks = append(checks, plan.TemplateItem.Key)
		}
		for _, k := range checks {
			ok := true
			in.Readings = append(in.Readings, inspections.ReadingInput{Key: k, OK: &ok})
		}
		review := plan.Reviews[rnd.IntN(len(plan.Reviews))]
		for _, i := range events[day] {
			e := plan.Events[i]
			if inspections.IsSystem(e.Item) {
				in.Note, review = e.Note, e.Review // medguard reads it; the inspector says why
				continue
			}
			for j := range in.Readings {
				if in.Readings[j].Key == e.Item {
					in.Readings[j].Value, in.Readings[j].OK, in.Readings[j].Note = e.Value, e.OK, e.Note
				}
			}
			review = e.Review
		}
		at(day, 8*time.Hour+time.Duration(20+rnd.IntN(50))*time.Minute)
		done, err := ins.Record(ctx, inspector.call, in)
		if err != nil {
			return fmt.Errorf("day %d: %w", day, err)
		}
		l.sum.Inspections++
		l.sum.OutOfRange += done.OutOfRange
		if day == lastDay || day == lastDay-2 {
			// Yesterday's waits for its reviewer; the one of the day
			// before was never countersigned (its reviewer was on leave):
			// the compliance checks find it.
			continue
		}
		at(day, 14*time.Hour+time.Duration(rnd.IntN(150))*time.Minute)
		reviewer := officers[(day/7+1)%len(officers)]
		if reviewer.Username == inspector.Username {
			reviewer = officers[(day/7+2)%len(officers)]
		}
		if _, err := ins.Countersign(ctx, reviewer.call, done.ID, inspections.Review{Note: review}); err != nil {
			return fmt.Errorf("day %d: %w", day, err)
		}
	}
	l.sum.MissedDays = len(plan.Missed)
	return nil
}

// mediaYear fills the removable media register.
func (l *loader) mediaYear(ctx context.Context, plan *registersPlan, its, officers []*Staff, at func(int, time.Duration)) error {
	med := l.svc.Media
	year := strconv.Itoa(l.dayStart(0).Year())
	custodian, operator := its[0], its[1]
	at(5, 9*time.Hour)
	var devices []*media.Device
	for _, d := range plan.Devices {
		d.Label = strings.ReplaceAll(d.Label, "{year}", year)
		dev, err := med.Register(ctx, custodian.call, d)
		if err != nil {
			return err
		}
		devices = append(devices, dev)
		l.sum.Media++
	}
	borrower := func(role string, n int) *Staff {
		var c []*Staff
		for _, s := range l.roles[role] {
			if !slices.Contains(l.sum.Frozen, s.Username) {
				c = append(c, s)
			}
		}
		if len(c) == 0 {
			return nil
		}
		return c[n%len(c)]
	}
	// lend has the borrower sign at once, unless told otherwise; a loan to
	// an IT engineer is made by the security office.
	lend := func(day int, dev *media.Device, who *Staff, purpose string, due time.Time, sign bool) (*media.Loan, error) {
		lender := custodian
		if who.Username == custodian.Username {
			lender = officers[0]
		}
		at(day, 9*time.Hour+30*time.Minute)
		loan, err := med.Lend(ctx, lender.call, dev.ID, media.NewLoan{Borrower: who.Username, Purpose: purpose, DueAt: due})
		if err != nil {
			return nil, err
		}
		l.sum.MediaLoans++
		if !sign {
			return loan, nil
		}
		at(day, 9*time.Hour+45*time.Minute)
		return med.Sign(ctx, who.call, loan.ID)
	}
	receiver := func(who *Staff) *Staff {
		if who.Username == custodian.Username {
			return operator
		}
		return custodian
	}
	for i, p := range plan.Loans {
		who := borrower(p.Borrower, i)
		if who == nil {
			continue
		}
		dev := devices[p.Device]
		loan, err := lend(p.Day, dev, who, p.Purpose, l.dayStart(p.Day+p.Days).Add(17*time.Hour), true)
		if err != nil {
			return fmt.Errorf("loan of day %d: %w", p.Day, err)
		}
		at(p.Day+p.Days, 16*time.Hour)
		if _, err := med.Return(ctx, receiver(who).call, loan.ID); err != nil {
			return err
		}
		at(p.Day+p.Days+1, 10*time.Hour)
		if _, err := med.Erase(ctx, operator.call, dev.ID, media.NewErasure{Method: p.Erasure, Witness: officers[i%len(officers)].Username}); err != nil {
			return err
		}
		if p.Dispose != nil {
			at(p.Dispose.Day, 15*time.Hour)
			if _, err := med.Dispose(ctx, operator.call, dev.ID, media.NewDisposal{Method: p.Dispose.Method,
				Witness: officers[(i+1)%len(officers)].Username, Note: p.Dispose.Note}); err != nil {
				return err
			}
		}
	}
	c := plan.Confiscated
	c.NewDevice.Label = strings.ReplaceAll(c.NewDevice.Label, "{year}", year)
	at(c.Day, 11*time.Hour)
	if _, err := med.Register(ctx, officers[0].call, c.NewDevice); err != nil {
		return err
	}
	l.sum.Media++
	for i, p := range plan.Current {
		who := borrower(p.Borrower, i+1)
		if who == nil {
			continue
		}
		day := lastDay - p.Back
		if _, err := lend(day, devices[p.Device], who, p.Purpose, l.dayStart(day+p.Days).Add(17*time.Hour),
			p.State != media.AwaitingBorrower); err != nil {
			return fmt.Errorf("the current loan of %s: %w", devices[p.Device].Label, err)
		}
	}
	// The overdue loan is announced (an alert) as the server would.
	at(lastDay, 18*time.Hour)
	_, err := med.CheckOverdue(ctx)
	return err
}
