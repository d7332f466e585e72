package inspections_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/backuphealth"
	"medguard/internal/gate"
	"medguard/internal/inspections"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// The daily inspection's service on SQLite and, with
// MEDGUARD_TEST_POSTGRES, on PostgreSQL; the host and the backups are
// fakes, time is the test's clock.

type host struct {
	load15     float64
	cpus       int
	free, size uint64
	err        error
}

func (h *host) Load() (float64, int, error)    { return h.load15, h.cpus, h.err }
func (h *host) Space() (uint64, uint64, error) { return h.free, h.size, h.err }

type backups struct{ g backuphealth.Glance }

func (b *backups) Glance() backuphealth.Glance { return b.g }

type env struct {
	t      *testing.T
	svc    *inspections.Service
	log    *audit.Log
	clock  *testkit.Clock
	host   *host
	backup *backups

	mu     sync.Mutex
	out    []inspections.OutOfRange
	back   []string
	missed []inspections.MissedDay
}

func newEnv(t *testing.T, zone *time.Location, now time.Time) *env {
	t.Helper()
	ctx := context.Background()
	db := storagetest.Open(t, keys.Schema(), audit.Schema(), inspections.Schema())
	clock := testkit.NewClock(now)
	log, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	g := gate.New(log, clock)
	kr := keys.NewKeyring(db, keys.NewKeyFile(keys.SM4GCM, clock.Now()), clock)
	e := &env{t: t, log: log, clock: clock, host: &host{load15: 2, cpus: 8, free: 400 << 30, size: 1000 << 30},
		backup: &backups{g: backuphealth.Glance{Configured: true, Targets: 2, RPO: time.Minute, FullAge: 3 * time.Hour, Met321: true}}}
	e.svc = inspections.New(db, g, kr, inspections.Config{Zone: zone})
	e.svc.SetSystem(e.host, e.backup)
	e.svc.OnOutOfRange(func(_ context.Context, o inspections.OutOfRange) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.out = append(e.out, o)
	})
	e.svc.OnBackInRange(func(_ context.Context, b inspections.BackInRange) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.back = append(e.back, b.Key)
	})
	e.svc.OnMissed(func(_ context.Context, m inspections.MissedDay) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.missed = append(e.missed, m)
	})
	return e
}

func call(id, name string, roles ...string) *medguard.Call {
	return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: id, Name: name, Roles: roles}, IP: "10.2.3.4", RequestID: "r-" + name}
}

var (
	inspector = call("u-it", "chenjing", policy.ITEngineer)
	clerk     = call("u-clerk", "zhaomin", policy.RecordsClerk)
	reviewer  = call("u-sec", "zhouqiang", policy.SecurityOfficer)
	both      = call("u-both", "wufang", policy.ITEngineer, policy.SecurityOfficer)
	doctor    = call("u-doc", "zhangwei", policy.Doctor)
)

func ptr[T any](v T) *T { return &v }

// day is a full set of the inspector's readings, temperature and humidity
// as given.
func day(temp, humidity float64) inspections.NewInspection {
	return inspections.NewInspection{Note: "库房巡查完毕，已登记。", Readings: []inspections.ReadingInput{
		{Key: inspections.RoomTemperature, Value: ptr(temp)},
		{Key: inspections.RoomHumidity, Value: ptr(humidity)},
		{Key: inspections.FireDevices, OK: ptr(true)},
		{Key: inspections.AntiTheftDevices, OK: ptr(true)},
		{Key: inspections.AccessDevices, OK: ptr(true)},
		{Key: inspections.StorageDevices, OK: ptr(true)},
	}}
}

func (e *env) record(c *medguard.Call, in inspections.NewInspection) *inspections.Inspection {
	e.t.Helper()
	got, err := e.svc.Record(context.Background(), c, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

func field(err error) string {
	var me *medguard.Error
	if errors.As(err, &me) && me.Kind == medguard.Invalid {
		return me.Field
	}
	return "(not invalid: " + errString(err) + ")"
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func rule(err error) string {
	var me *medguard.Error
	if errors.As(err, &me) && me.Kind == medguard.Forbidden {
		return me.Rule
	}
	return "(not forbidden: " + errString(err) + ")"
}

// TestRanges: the archive room's 22 ± 2 °C and 45–60 % relative humidity
// are inclusive ranges; a hair outside is out.
func TestRanges(t *testing.T) {
	tpl := inspections.DefaultTemplate()
	temp, _ := tpl.Item(inspections.RoomTemperature)
	hum, _ := tpl.Item(inspections.RoomHumidity)
	load, _ := tpl.Item(inspections.ServerLoad)
	space, _ := tpl.Item(inspections.FreeSpace)
	for _, c := range []struct {
		item inspections.Item
		v    float64
		in   bool
	}{
		{temp, 22, true}, {temp, 20, true}, {temp, 24, true}, {temp, 20.0001, true}, {temp, 23.9999, true},
		{temp, 19.9999, false}, {temp, 19.9, false}, {temp, 24.0001, false}, {temp, 24.1, false}, {temp, -3, false}, {temp, 35, false},
		{hum, 45, true}, {hum, 60, true}, {hum, 52.5, true}, {hum, 44.99, false}, {hum, 60.01, false}, {hum, 0, false}, {hum, 100, false},
		{load, 0, true}, {load, 80, true}, {load, 80.1, false},
		{space, 15, true}, {space, 99, true}, {space, 14.9, false},
	} {
		if got := c.item.InRange(c.v); got != c.in {
			t.Errorf("%s %v: in range %v, want %v", c.item.Key, c.v, got, c.in)
		}
	}
	for _, c := range []struct {
		item inspections.Item
		want string
	}{{temp, "20–24 °C"}, {hum, "45–60 %"}, {load, "≤ 80 %"}, {space, "≥ 15 %"}} {
		if got := c.item.Range(); got != c.want {
			t.Errorf("%s: range %q, want %q", c.item.Key, got, c.want)
		}
	}
	// The same boundaries through an inspection: every reading is judged
	// when it is signed.
	for _, c := range []struct {
		temp, hum float64
		out       []string
	}{
		{20, 45, nil}, {24, 60, nil}, {19.9, 45, []string{inspections.RoomTemperature}}, {24.1, 60, []string{inspections.RoomTemperature}},
		{22, 44.9, []string{inspections.RoomHumidity}}, {22, 60.1, []string{inspections.RoomHumidity}},
		{25.3, 61, []string{inspections.RoomTemperature, inspections.RoomHumidity}},
	} {
		e := newEnv(t, inspections.DefaultZone, time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC))
		in := e.record(inspector, day(c.temp, c.hum))
		var out []string
		for _, r := range in.Readings {
			if r.OutOfRange {
				out = append(out, r.Key)
			}
		}
		if !slices.Equal(out, c.out) || in.OutOfRange != len(c.out) || len(e.out) != len(c.out) {
			t.Errorf("%v °C, %v %%: out of range %v (%d, %d announced), want %v", c.temp, c.hum, out, in.OutOfRange, len(e.out), c.out)
		}
	}
}

// TestTwoSignatures: the inspector signs, the reviewer countersigns — never
// the inspector, even holding both roles; the refusal is in the log; a
// signed inspection is never changed: no second inspection that day, no
// second countersignature, the row as it was signed.
func TestTwoSignatures(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, inspections.DefaultZone, time.Date(2026, 3, 2, 1, 30, 0, 0, time.UTC)) // 09:30 in Beijing
	in := day(25.3, 52)
	in.Readings[0].Note = "空调故障，已报后勤维修"
	ins := e.record(both, in)
	if ins.Day != "2026-03-02" || ins.Status != inspections.AwaitingReview || ins.Inspector != "wufang" || ins.OutOfRange != 1 ||
		ins.TemplateVersion != 1 || len(ins.Readings) != 9 {
		t.Fatalf("recorded %+v", ins)
	}
	if len(e.out) != 1 || e.out[0].Reading.Key != inspections.RoomTemperature || e.out[0].Reading.Shown() != "25.3 °C" ||
		e.out[0].Day != "2026-03-02" || e.out[0].InspectionID != ins.ID {
		t.Fatalf("announced out of range: %+v", e.out)
	}
	if !slices.Contains(e.back, inspections.RoomHumidity) || slices.Contains(e.back, inspections.RoomTemperature) ||
		!slices.Contains(e.back, inspections.BackupStatus) {
		t.Fatalf("back in range: %v", e.back)
	}
	if _, err := e.svc.Record(ctx, clerk, day(22, 50)); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("a second inspection the same day: %v", err)
	}
	if _, err := e.svc.Countersign(ctx, both, ins.ID, inspections.Review{Note: "自己复核"}); rule(err) != policy.RuleSameSignatory {
		t.Fatalf("the inspector countersigns: %v", err)
	}
	if _, err := e.svc.Countersign(ctx, inspector, ins.ID, inspections.Review{}); rule(err) != policy.RuleNoPermission {
		t.Fatalf("an IT engineer countersigns: %v", err)
	}
	if _, err := e.svc.Countersign(ctx, reviewer, "06h4j9khpaef1743afn74xhkkm", inspections.Review{}); !medguard.IsKind(err, medguard.NotFound) {
		t.Fatalf("a missing inspection: %v", err)
	}
	e.clock.Advance(6 * time.Hour)
	signed, err := e.svc.Countersign(ctx, reviewer, ins.ID, inspections.Review{Note: "已通知后勤，明日复测"})
	if err != nil || signed.Status != inspections.Signed || signed.Reviewer != "zhouqiang" || signed.ReviewedAt == nil {
		t.Fatalf("countersigned %+v %v", signed, err)
	}
	if _, err := e.svc.Countersign(ctx, call("u-sec2", "sunli", policy.SecurityOfficer), ins.ID, inspections.Review{}); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("a second countersignature: %v", err)
	}
	got, err := e.svc.Get(ctx, call("u-aud", "qianli", policy.Auditor), ins.ID)
	if err != nil || got.Status != inspections.Signed || got.Reviewer != "zhouqiang" || got.ReviewNote != "已通知后勤，明日复测" ||
		got.Note != "库房巡查完毕，已登记。" || got.Readings[0].Note != "空调故障，已报后勤维修" || *got.Readings[0].Value != 25.3 ||
		!got.ReviewedAt.Equal(*signed.ReviewedAt) || !got.InspectedAt.Equal(ins.InspectedAt) {
		t.Fatalf("read back %+v %v", got, err)
	}
	if _, err := e.svc.Get(ctx, doctor, ins.ID); rule(err) != policy.RuleNoPermission {
		t.Fatalf("a doctor reads an inspection: %v", err)
	}
	// The log: the refused countersignature under its rule, the accepted
	// one, the second day's inspection refused as a conflict.
	size, _, _ := e.log.Head(ctx)
	es, err := e.log.Entries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, s := range es {
		x := s.Entry
		if strings.HasPrefix(x.Action, "inspection.re") {
			seen = append(seen, x.Action+" "+x.Actor+" "+string(x.Decision)+" "+x.Rule+" "+string(x.Outcome))
		}
	}
	for _, want := range []string{"inspection.record wufang allow allow.permission success", "inspection.record zhaomin allow allow.permission conflict",
		"inspection.review wufang deny deny.same_signatory denied", "inspection.review chenjing deny deny.no_permission denied",
		"inspection.review zhouqiang allow allow.permission success", "inspection.review sunli allow allow.permission conflict"} {
		if !slices.Contains(seen, want) {
			t.Errorf("the log lacks %q: %v", want, seen)
		}
	}
}

// TestReadingsChecked: every item read once, plausible values, a note for
// a check not in order; medguard's own items refused from the inspector
// while it can read them, asked of the inspector when it cannot; the
// backups as the server sees them.
func TestReadingsChecked(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, inspections.DefaultZone, time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC))
	bad := func(mod func(*inspections.NewInspection)) error {
		in := day(22, 50)
		mod(&in)
		_, err := e.svc.Record(ctx, inspector, in)
		return err
	}
	for _, c := range []struct {
		name  string
		mod   func(*inspections.NewInspection)
		field string
	}{
		{"an item left out", func(in *inspections.NewInspection) { in.Readings = in.Readings[1:] }, "readings.room_temperature"},
		{"an item read twice", func(in *inspections.NewInspection) { in.Readings = append(in.Readings, in.Readings[0]) }, "readings.room_temperature"},
		{"an item the checklist lacks", func(in *inspections.NewInspection) {
			in.Readings = append(in.Readings, inspections.ReadingInput{Key: "coffee_machine", OK: ptr(true)})
		}, "readings"},
		{"a reading without a value", func(in *inspections.NewInspection) { in.Readings[0].Value = nil }, "readings.room_temperature.value"},
		{"a reading given as a check", func(in *inspections.NewInspection) { in.Readings[1].OK = ptr(true) }, "readings.room_humidity.ok"},
		{"a check without ok", func(in *inspections.NewInspection) { in.Readings[2].OK = nil }, "readings.fire_devices.ok"},
		{"a check given a value", func(in *inspections.NewInspection) { in.Readings[3].Value = ptr(1.0) }, "readings.anti_theft_devices.value"},
		{"an implausible value", func(in *inspections.NewInspection) { in.Readings[0].Value = ptr(1e9) }, "readings.room_temperature.value"},
		{"a check failed without a note", func(in *inspections.NewInspection) { in.Readings[2].OK = ptr(false) }, "readings.fire_devices.note"},
		{"a control character", func(in *inspections.NewInspection) { in.Note = "巡查\x00完毕" }, "note"},
		{"a note too long", func(in *inspections.NewInspection) { in.Note = strings.Repeat("长", 501) }, "note"},
		{"the server load typed in", func(in *inspections.NewInspection) {
			in.Readings = append(in.Readings, inspections.ReadingInput{Key: inspections.ServerLoad, Value: ptr(10.0)})
		}, "readings.server_load"},
		{"the backups typed in", func(in *inspections.NewInspection) {
			in.Readings = append(in.Readings, inspections.ReadingInput{Key: inspections.BackupStatus, OK: ptr(true)})
		}, "readings.backup_status"},
	} {
		if got := field(bad(c.mod)); got != c.field {
			t.Errorf("%s: field %s, want %s", c.name, got, c.field)
		}
	}
	if _, err := e.svc.Record(ctx, doctor, day(22, 50)); rule(err) != policy.RuleNoPermission {
		t.Fatalf("a doctor inspects: %v", err)
	}
	// Nothing of the refused inputs was kept.
	if days, _, err := e.svc.Days(ctx, reviewer, inspections.DayQuery{}); err != nil || len(days) != 1 || days[0].Status != inspections.DayDue {
		t.Fatalf("after refusals: %+v %v", days, err)
	}

	// The host unreadable and no backup schedule: the inspector reads
	// them, and the reading says why.
	e.host.err = errors.New("no /proc here")
	e.backup.g = backuphealth.Glance{}
	today, err := e.svc.Today(ctx, clerk)
	if err != nil || len(today.System) != 3 {
		t.Fatalf("today %+v %v", today, err)
	}
	for _, r := range today.System {
		if r.Source != inspections.SourceInspector {
			t.Errorf("%s unreadable but from %s", r.Key, r.Source)
		}
	}
	if got := field(bad(func(*inspections.NewInspection) {})); got != "readings.server_load" {
		t.Fatalf("the load left out while unreadable: %s", got)
	}
	in := day(22, 50)
	in.Readings = append(in.Readings, inspections.ReadingInput{Key: inspections.ServerLoad, Value: ptr(35.0)},
		inspections.ReadingInput{Key: inspections.FreeSpace, Value: ptr(10.0)},
		inspections.ReadingInput{Key: inspections.BackupStatus, OK: ptr(true), Note: "由 DBA 的 pgBackRest 备份，已核对"})
	ins := e.record(clerk, in)
	byKey := map[string]inspections.Reading{}
	for _, r := range ins.Readings {
		byKey[r.Key] = r
	}
	if r := byKey[inspections.FreeSpace]; !r.OutOfRange || r.Source != inspections.SourceInspector || r.Facts[inspections.FactUnreadable] != 1 {
		t.Errorf("free space by hand: %+v", r)
	}
	if r := byKey[inspections.BackupStatus]; r.OutOfRange || r.Facts[inspections.FactBackups] != 0 || r.Note == "" {
		t.Errorf("backups by hand: %+v", r)
	}
}

// TestSystemItems: medguard's readings of its own state — the load per
// CPU, the free share of the disk, the backups as the server sees them —
// and an alert when they are out of range.
func TestSystemItems(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, inspections.DefaultZone, time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC))
	e.host.load15, e.host.cpus = 7, 8
	e.host.free, e.host.size = 100<<30, 1000<<30
	e.backup.g.Late, e.backup.g.FullAge = 1, 26*time.Hour
	ins := e.record(inspector, day(22, 50))
	byKey := map[string]inspections.Reading{}
	for _, r := range ins.Readings {
		byKey[r.Key] = r
	}
	load, space, bk := byKey[inspections.ServerLoad], byKey[inspections.FreeSpace], byKey[inspections.BackupStatus]
	if load.Source != inspections.SourceSystem || *load.Value != 87.5 || !load.OutOfRange || load.Facts[inspections.FactCPUs] != 8 {
		t.Errorf("load: %+v", load)
	}
	if space.Source != inspections.SourceSystem || *space.Value != 10 || !space.OutOfRange || space.Facts[inspections.FactTotalBytes] != 1000<<30 {
		t.Errorf("space: %+v", space)
	}
	if bk.Source != inspections.SourceSystem || *bk.OK || !bk.OutOfRange || bk.Facts[inspections.FactLate] != 1 ||
		bk.Facts[inspections.FactFullAgeSeconds] != 26*3600 {
		t.Errorf("backups: %+v", bk)
	}
	if len(e.out) != 3 {
		t.Errorf("announced %d out of range, want 3", len(e.out))
	}
	today, err := e.svc.Today(ctx, inspector)
	if err != nil || today.Status != inspections.DayAwaitingReview || today.Inspection == nil || today.Inspection.ID != ins.ID {
		t.Fatalf("today: %+v %v", today, err)
	}
}

// TestMissedDays: a day that ends, in the hospital's zone, without an
// inspection is announced once, the moment it ends — on leap days, at New
// Year, across daylight-saving changes and far from UTC; nothing is
// missed before inspections began.
func TestMissedDays(t *testing.T) {
	zone := func(name string) *time.Location {
		l, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, c := range []struct {
		name string
		zone *time.Location
		// first is the day inspected; the next day is missed.
		first, missed, after string
	}{
		{"Beijing, the leap day missed", inspections.DefaultZone, "2028-02-28", "2028-02-29", "2028-03-01"},
		{"Beijing, New Year's Eve missed", zone("Asia/Shanghai"), "2026-12-30", "2026-12-31", "2027-01-01"},
		{"Beijing, New Year's Day missed", zone("Asia/Shanghai"), "2026-12-31", "2027-01-01", "2027-01-02"},
		{"New York, spring forward (23 hours)", zone("America/New_York"), "2026-03-07", "2026-03-08", "2026-03-09"},
		{"New York, fall back (25 hours)", zone("America/New_York"), "2026-10-31", "2026-11-01", "2026-11-02"},
		{"Kiritimati, UTC+14", zone("Pacific/Kiritimati"), "2027-12-30", "2027-12-31", "2028-01-01"},
		{"Pago Pago, UTC−11", zone("Pacific/Pago_Pago"), "2028-02-28", "2028-02-29", "2028-03-01"},
		{"UTC", time.UTC, "2026-12-31", "2027-01-01", "2027-01-02"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			first, _ := inspections.ParseDate(c.first)
			missed, _ := inspections.ParseDate(c.missed)
			// Before anything was recorded, nothing is missed.
			e := newEnv(t, c.zone, first.Start(c.zone).Add(-48*time.Hour))
			if got, err := e.svc.CheckMissed(ctx); err != nil || len(got) != 0 {
				t.Fatalf("before the first inspection: %v %v", got, err)
			}
			// The inspection at one minute to midnight belongs to its day.
			e.clock.Set(first.End(c.zone).Add(-time.Minute))
			if ins := e.record(inspector, day(22, 50)); ins.Day != c.first {
				t.Fatalf("recorded on %s, want %s", ins.Day, c.first)
			}
			// The next day is not missed until it has ended in the zone.
			e.clock.Set(missed.End(c.zone).Add(-time.Millisecond))
			if got, err := e.svc.CheckMissed(ctx); err != nil || len(got) != 0 {
				t.Fatalf("a millisecond before the end of %s: %v %v", c.missed, got, err)
			}
			e.clock.Set(missed.End(c.zone))
			got, err := e.svc.CheckMissed(ctx)
			if err != nil || len(got) != 1 || got[0].Day != c.missed || !got[0].DueAt.Equal(missed.End(c.zone)) || len(e.missed) != 1 {
				t.Fatalf("at the end of %s: %+v %v", c.missed, got, err)
			}
			if y, m, d := got[0].DueAt.In(c.zone).Date(); time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly) != c.after ||
				got[0].DueAt.In(c.zone).Hour() != 0 {
				t.Fatalf("due at %v, want midnight starting %s", got[0].DueAt.In(c.zone), c.after)
			}
			if got, err := e.svc.CheckMissed(ctx); err != nil || len(got) != 0 {
				t.Fatalf("announced twice: %v %v", got, err)
			}
			days, _, err := e.svc.Days(ctx, reviewer, inspections.DayQuery{From: c.first, To: c.after})
			if err != nil || len(days) != 3 || days[0].Status != inspections.DayDue || days[1].Status != inspections.DayMissed ||
				days[1].Day != c.missed || days[2].Status != inspections.DayAwaitingReview {
				t.Fatalf("the history: %+v %v", days, err)
			}
		})
	}
}

// TestMissedAnnouncedOnce: two servers checking at once announce each
// missed day once; a server back after weeks announces at most the
// lookback.
func TestMissedAnnouncedOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, inspections.DefaultZone, time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC))
	e.record(inspector, day(22, 50))
	e.clock.Advance(100 * 24 * time.Hour)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := e.svc.CheckMissed(ctx)
			if err != nil {
				t.Error(err)
			}
			counts[i] = len(got)
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 35 || len(e.missed) != 35 {
		t.Fatalf("announced %v (%d hooks), want 35 in all", counts, len(e.missed))
	}
}

// TestWeeklySummary: per ISO week, the days inspected and missed, the
// readings out of range and the inspections waiting for a reviewer —
// across New Year, where 1 January 2027 is in 2026-W53.
func TestWeeklySummary(t *testing.T) {
	ctx := context.Background()
	at := func(d string, hour int) time.Time {
		t, _ := time.ParseInLocation(time.DateOnly, d, inspections.DefaultZone)
		return t.Add(time.Duration(hour) * time.Hour)
	}
	e := newEnv(t, inspections.DefaultZone, at("2026-12-23", 9)) // a Wednesday
	plan := map[string]inspections.NewInspection{
		"2026-12-23": day(22, 50), "2026-12-24": day(25, 50), "2026-12-25": day(22, 50), "2026-12-27": day(22, 65),
		"2026-12-28": day(19, 70), "2026-12-30": day(22, 50), "2027-01-01": day(22, 50), "2027-01-04": day(22, 50),
	}
	review := map[string]bool{"2026-12-23": true, "2026-12-24": true, "2026-12-28": true}
	for d := "2026-12-23"; d <= "2027-01-04"; {
		e.clock.Set(at(d, 9))
		if in, ok := plan[d]; ok {
			ins := e.record(inspector, in)
			if review[d] {
				if _, err := e.svc.Countersign(ctx, reviewer, ins.ID, inspections.Review{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		next, _ := inspections.ParseDate(d)
		d = next.AddDays(1).String()
	}
	// Now is Monday 4 January 2027, 09:00.
	weeks, err := e.svc.Weeks(ctx, reviewer, "2026-12-21", "2027-01-04")
	if err != nil {
		t.Fatal(err)
	}
	want := []inspections.Week{
		{Week: "2027-W01", From: "2027-01-04", To: "2027-01-10", Days: 1, Inspected: 1, Missed: 0, OutOfRange: 0, Unsigned: 1},
		{Week: "2026-W53", From: "2026-12-28", To: "2027-01-03", Days: 7, Inspected: 3, Missed: 4, OutOfRange: 2, Unsigned: 2},
		{Week: "2026-W52", From: "2026-12-21", To: "2026-12-27", Days: 5, Inspected: 4, Missed: 1, OutOfRange: 2, Unsigned: 2},
	}
	if !slices.Equal(weeks, want) {
		t.Fatalf("weeks\n got %+v\nwant %+v", weeks, want)
	}
	// The default: twelve weeks to this one.
	if weeks, err := e.svc.Weeks(ctx, reviewer, "", ""); err != nil || len(weeks) != 12 || weeks[0].Week != "2027-W01" || weeks[11].Week != "2026-W43" {
		t.Fatalf("default weeks: %d %v", len(weeks), err)
	}
	for _, c := range []struct{ from, to, field string }{{"2027-01-05", "2026-12-01", "from"}, {"2020-01-01", "", "from"}, {"26-1-1", "", "from"},
		{"", "2027-02-30", "to"}} {
		if _, err := e.svc.Weeks(ctx, reviewer, c.from, c.to); field(err) != c.field {
			t.Errorf("weeks %s to %s: %v", c.from, c.to, err)
		}
	}
	if _, err := e.svc.Weeks(ctx, doctor, "", ""); rule(err) != policy.RuleNoPermission {
		t.Errorf("a doctor reads the summary: %v", err)
	}
	// The history lists the same days, filtered and paged.
	days, next, err := e.svc.Days(ctx, reviewer, inspections.DayQuery{From: "2026-12-20", Status: inspections.DayMissed, Limit: 3})
	if err != nil || len(days) != 3 || next != "2026-12-31" || days[0].Day != "2027-01-03" {
		t.Fatalf("missed, first page: %+v %q %v", days, next, err)
	}
	days, next, err = e.svc.Days(ctx, reviewer, inspections.DayQuery{From: "2026-12-20", Status: inspections.DayMissed, Before: next, Limit: 3})
	if err != nil || len(days) != 2 || next != "" || days[0].Day != "2026-12-29" || days[1].Day != "2026-12-26" {
		t.Fatalf("missed, second page: %+v %q %v", days, next, err)
	}
	days, _, err = e.svc.Days(ctx, reviewer, inspections.DayQuery{From: "2026-12-20", Status: inspections.OutOfRangeFilter})
	if err != nil || len(days) != 3 {
		t.Fatalf("out of range: %+v %v", days, err)
	}
	if _, _, err := e.svc.Days(ctx, reviewer, inspections.DayQuery{Status: "lost"}); field(err) != "status" {
		t.Fatalf("an unknown status: %v", err)
	}
}

// TestTemplates: the security office saves a new version of the
// checklist — ranges changed, an item added — and it is in force at once;
// inspections keep the version they were made with; the built-in items
// stay, with their kinds; nobody else edits it.
func TestTemplates(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, inspections.DefaultZone, time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC))
	old := e.record(inspector, day(25, 50)) // out of range under version 1
	tpl := inspections.DefaultTemplate()
	items := slices.Clone(tpl.Items)
	items[0].Min, items[0].Max, items[0].Label = ptr(18.0), ptr(26.0), "一号病案库房温度"
	items = append(items, inspections.Item{Key: "dehumidifier", Label: "除湿机运行正常", Kind: inspections.KindCheck},
		inspections.Item{Key: "room2_temperature", Label: "二号库房温度", Kind: inspections.KindReading, Unit: "°C", Min: ptr(18.0), Max: ptr(26.0)})
	if _, err := e.svc.SaveTemplate(ctx, inspector, inspections.NewTemplate{Items: items}); rule(err) != policy.RuleNoPermission {
		t.Fatalf("an IT engineer edits the checklist: %v", err)
	}
	for _, c := range []struct {
		name  string
		mod   func([]inspections.Item) []inspections.Item
		field string
	}{
		{"a built-in item dropped", func(is []inspections.Item) []inspections.Item { return is[1:] }, "items"},
		{"a built-in item's kind changed", func(is []inspections.Item) []inspections.Item {
			is[2].Kind, is[2].Unit, is[2].Min = inspections.KindReading, "个", ptr(1.0)
			return is
		}, "items[2].kind"},
		{"a key twice", func(is []inspections.Item) []inspections.Item { return append(is, is[0]) }, "items[11].key"},
		{"a bad key", func(is []inspections.Item) []inspections.Item { is[9].Key = "Dehumidifier!"; return is }, "items[9].key"},
		{"a check with a range", func(is []inspections.Item) []inspections.Item { is[9].Max = ptr(1.0); return is }, "items[9].unit"},
		{"a reading without a range", func(is []inspections.Item) []inspections.Item { is[10].Min, is[10].Max = nil, nil; return is }, "items[10].min"},
		{"min above max", func(is []inspections.Item) []inspections.Item { is[10].Min = ptr(30.0); return is }, "items[10].max"},
		{"no unit", func(is []inspections.Item) []inspections.Item { is[10].Unit = ""; return is }, "items[10].unit"},
		{"no label", func(is []inspections.Item) []inspections.Item { is[10].Label = " "; return is }, "items[10].label"},
		{"an unknown kind", func(is []inspections.Item) []inspections.Item { is[9].Kind = "photo"; return is }, "items[9].kind"},
	} {
		_, err := e.svc.SaveTemplate(ctx, reviewer, inspections.NewTemplate{Items: c.mod(slices.Clone(items))})
		if got := field(err); got != c.field {
			t.Errorf("%s: field %s, want %s", c.name, got, c.field)
		}
	}
	items[6].Unit = "负载" // a system item's unit stays its own
	saved, err := e.svc.SaveTemplate(ctx, reviewer, inspections.NewTemplate{Items: items})
	if err != nil || saved.Version != 2 || !saved.Current || saved.CreatedBy != "zhouqiang" || saved.Items[6].Unit != "%" || !saved.Items[6].System {
		t.Fatalf("saved %+v %v", saved, err)
	}
	list, err := e.svc.Templates(ctx, clerk)
	if err != nil || len(list) != 2 || list[0].Version != 2 || !list[0].Current || list[1].Version != 1 || list[1].Current {
		t.Fatalf("versions %+v %v", list, err)
	}
	// The next day's inspection follows version 2: 25 °C is in range now,
	// and the new items must be read.
	e.clock.Advance(24 * time.Hour)
	if _, err := e.svc.Record(ctx, inspector, day(25, 50)); field(err) != "readings.dehumidifier" {
		t.Fatalf("the new item left out: %v", err)
	}
	in := day(25, 50)
	in.Readings = append(in.Readings, inspections.ReadingInput{Key: "dehumidifier", OK: ptr(true)},
		inspections.ReadingInput{Key: "room2_temperature", Value: ptr(17.5)})
	ins := e.record(inspector, in)
	if ins.TemplateVersion != 2 || ins.OutOfRange != 1 || ins.Readings[0].OutOfRange || ins.Readings[0].Label != "一号病案库房温度" {
		t.Fatalf("under version 2: %+v", ins)
	}
	again, err := e.svc.Get(ctx, reviewer, old.ID)
	if err != nil || again.TemplateVersion != 1 || !again.Readings[0].OutOfRange || again.Readings[0].Range() != "20–24 °C" {
		t.Fatalf("the old inspection: %+v %v", again, err)
	}
}

// TestDates: the calendar helpers a hospital's days hang on.
func TestDates(t *testing.T) {
	for _, c := range []struct {
		day, week, monday string
	}{
		{"2026-03-02", "2026-W10", "2026-03-02"}, {"2028-02-29", "2028-W09", "2028-02-28"}, {"2027-01-01", "2026-W53", "2026-12-28"},
		{"2026-12-31", "2026-W53", "2026-12-28"}, {"2025-12-29", "2026-W01", "2025-12-29"}, {"2027-01-03", "2026-W53", "2026-12-28"},
	} {
		d, err := inspections.ParseDate(c.day)
		if err != nil || d.ISOWeek() != c.week || d.Monday().String() != c.monday {
			t.Errorf("%s: week %s monday %s %v", c.day, d.ISOWeek(), d.Monday(), err)
		}
	}
	for _, bad := range []string{"2027-02-29", "2026-13-01", "2026-3-2", "20260302", "", "2026-03-02T00:00:00Z"} {
		if _, err := inspections.ParseDate(bad); err == nil {
			t.Errorf("%q read as a date", bad)
		}
	}
	// 23:30 on 31 December in Beijing is 15:30 UTC the same day; 00:30 on
	// 1 January in Beijing is still 31 December in UTC.
	if d := inspections.DateOf(time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), inspections.DefaultZone); d.String() != "2027-01-01" {
		t.Errorf("00:30 on New Year's Day in Beijing is %s", d)
	}
	ny, _ := time.LoadLocation("America/New_York")
	d, _ := inspections.ParseDate("2026-03-08")
	if h := d.End(ny).Sub(d.Start(ny)); h != 23*time.Hour {
		t.Errorf("the day clocks spring forward lasts %v", h)
	}
}

// FuzzParseLoadavg: /proc/loadavg's text never panics the reader, and
// what it accepts is a plain non-negative number.
func FuzzParseLoadavg(f *testing.F) {
	for _, s := range []string{"0.52 0.58 0.59 1/467 12345\n", "12.00 9.50 7.25 3/1200 99", "", "1 2", "a b c", "0 0 -1 1/1 1",
		"0 0 NaN 1/1 1", "0 0 1e400 1/1 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := inspections.ParseLoadavg(s)
		if err == nil && (v < 0 || v != v || v > 1e308) {
			t.Fatalf("%q read as %v", s, v)
		}
	})
}

// FuzzParseDate: a day from a query string is read strictly, and what is
// read writes back the same.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-03-02", "2028-02-29", "2027-02-29", "9999-12-31", "0000-01-01", "2026-3-2", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := inspections.ParseDate(s)
		if err == nil && d.String() != s {
			t.Fatalf("%q read as %s", s, d)
		}
	})
}

// TestExplanation: the alert's explanation reads back as it was written,
// whatever the label holds.
func TestExplanation(t *testing.T) {
	tpl := inspections.DefaultTemplate()
	temp, _ := tpl.Item(inspections.RoomTemperature)
	fire, _ := tpl.Item(inspections.FireDevices)
	for _, c := range []struct {
		o                 inspections.OutOfRange
		label, value, rng string
	}{
		{inspections.OutOfRange{Day: "2028-02-29", Reading: inspections.Reading{Key: temp.Key, Label: temp.Label, Kind: temp.Kind, Unit: temp.Unit,
			Min: temp.Min, Max: temp.Max, Value: ptr(25.3)}}, temp.Label, "25.3 °C", "20–24 °C"},
		{inspections.OutOfRange{Day: "2026-12-31", Reading: inspections.Reading{Key: fire.Key, Label: fire.Label, Kind: fire.Kind, OK: ptr(false)}},
			fire.Label, "", ""},
		{inspections.OutOfRange{Day: "2027-01-01", Reading: inspections.Reading{Key: "x_y", Label: `二号库 "东" (range) reads`, Kind: inspections.KindReading,
			Unit: "%", Max: ptr(60.0), Value: ptr(61.0)}}, `二号库 "东" (range) reads`, "61 %", "≤ 60 %"},
	} {
		s := inspections.Explain(c.o)
		day, label, value, rng, ok := inspections.ParseExplanation(s)
		if !ok || day != c.o.Day || label != c.label || value != c.value || rng != c.rng {
			t.Errorf("%q read back as %q %q %q %q %v", s, day, label, value, rng, ok)
		}
	}
	if _, _, _, _, ok := inspections.ParseExplanation("paper folder BA-1 (loan x) lent to y was due z"); ok {
		t.Error("another rule's explanation was read")
	}
}

// FuzzParseExplanation: an alert's explanation, which a stored alert
// hands back to the console, never panics the reader, and what it reads
// of a check, written again, reads back the same.
func FuzzParseExplanation(f *testing.F) {
	for _, s := range []string{`inspection of 2026-03-02: "病案库房温度" reads 25.3 °C (range 20–24 °C)`,
		`inspection of 2026-12-31: "消防设施完好" is not in order`, `inspection of 2026-12-31: "\"" is not in order`,
		`inspection of 2026-12-31: "x reads 1 (range 2)`, "paper folder BA-1 (loan x) lent to y was due z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		day, label, value, _, ok := inspections.ParseExplanation(s)
		if !ok || value != "" {
			return
		}
		again := inspections.Explain(inspections.OutOfRange{Day: day, Reading: inspections.Reading{Label: label, Kind: inspections.KindCheck}})
		d2, l2, v2, r2, ok2 := inspections.ParseExplanation(again)
		if !ok2 || d2 != day || l2 != label || v2 != "" || r2 != "" {
			t.Fatalf("%q read as %q %q, written as %q, read back as %q %q", s, day, label, again, d2, l2)
		}
	})
}
