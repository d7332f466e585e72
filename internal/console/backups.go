package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"medguard/internal/backuphealth"
	"medguard/internal/policy"
)

// The backups pages (SPEC §9, issue 11) for the information engineer
// (信息科工程师) and the security office: per target the last backup, its
// age (red when late) and the last error in words; the achieved RPO
// against the 15-minute goal; the 3-2-1 state in words; the last restore
// drill against the 4-hour RTO goal — and the drill history (恢复演练) as a
// grid with each drill's steps and checks. Every read goes through
// backuphealth (backup.read, audited).

func init() {
	read := []policy.Permission{policy.BackupRead}
	register(
		Page{Method: "GET", Path: "/backups", Any: read, Nav: &Nav{Key: "nav.backups", Order: 58}, Handle: backupsPage},
		Page{Method: "GET", Path: "/backups/drills", Any: read, Handle: drillsPage},
	)
}

// targetRow is a target as the page shows it.
type targetRow struct {
	backuphealth.Target
	Media     string
	Age       string
	Error     string // the last error in words
	ErrorText string // and as the target said it (credentials removed)
}

// drillView is a drill as the pages show it.
type drillView struct {
	backuphealth.Drill
	RTO, RPO string
	Steps    []string
	Checks   string
	Problem  string
}

type backupsView struct {
	H         *backuphealth.Health
	Targets   []targetRow
	RPO       string
	RPOGoal   string
	RTOGoal   string
	FullEvery string
	State     string
	LastDrill *drillView
}

// backupHealth reads the health (not configured without a schedule).
func (rq *Request) backupHealth() (*backuphealth.Health, error) {
	if rq.Deps.Backups == nil {
		return &backuphealth.Health{}, nil
	}
	return rq.Deps.Backups.Health(rq.Context(), rq.Call)
}

func backupsPage(rq *Request) error {
	h, err := rq.backupHealth()
	if err != nil {
		return err
	}
	v := backupsView{H: h, RPOGoal: rq.span(backuphealth.RPOGoal.Seconds()), RTOGoal: rq.span(backuphealth.RTOGoal.Seconds()),
		FullEvery: rq.span(h.FullEverySeconds), State: rq.state321(h)}
	for _, t := range h.Targets {
		row := targetRow{Target: t, Media: rq.textOr("backups.media."+t.Media, t.Media), Error: rq.backupError(t.LastError),
			ErrorText: t.LastError}
		if t.AgeSeconds != nil {
			row.Age = rq.span(*t.AgeSeconds)
		}
		v.Targets = append(v.Targets, row)
	}
	if h.RPOSeconds != nil {
		v.RPO = rq.span(*h.RPOSeconds)
	}
	if h.LastDrill != nil {
		v.LastDrill = rq.drillView(*h.LastDrill)
	}
	return rq.Render(http.StatusOK, "backups", "backups.title", v)
}

func drillsPage(rq *Request) error {
	h, err := rq.backupHealth()
	if err != nil {
		return err
	}
	var ds []backuphealth.Drill
	next := ""
	if rq.Deps.Backups != nil {
		if ds, next, err = rq.Deps.Backups.Drills(rq.Context(), rq.Call, "", MaxRows); err != nil {
			return err
		}
	}
	cols := []Column{
		{Key: "started", Title: "backups.col.started", Sort: true},
		{Key: "result", Title: "backups.col.result", Sort: true},
		{Key: "rto", Title: "backups.col.rto", Sort: true, Num: true},
		{Key: "rpo", Title: "backups.col.rpo", Sort: true, Num: true},
		{Key: "checks", Title: "backups.col.checks"},
		{Key: "steps", Title: "backups.col.steps"},
		{Key: "backup", Title: "backups.col.backup", Sort: true},
		{Key: "problem", Title: "backups.col.problem"},
	}
	var rows []Row
	for _, d := range ds {
		dv := rq.drillView(d)
		result := Cell{Text: rq.T("backups.drill.ok"), Class: "ok"}
		switch {
		case !d.OK:
			result = Cell{Text: rq.T("backups.drill.failed"), Class: "bad"}
		case !d.RTOMet:
			result = Cell{Text: rq.T("backups.drill.slow"), Class: "bad"}
		}
		rto := Cell{Text: dv.RTO, Sort: fmt.Sprintf("%020.3f", d.RTOSeconds)}
		if !d.RTOMet {
			rto.Class = "bad"
		}
		row := Row{Cells: []Cell{
			rq.TimeCell(d.StartedAt), result, rto,
			{Text: dv.RPO, Sort: fmt.Sprintf("%020.3f", d.RPOSeconds)},
			{Text: dv.Checks},
			{Text: strings.Join(dv.Steps, rq.T("backups.step_sep"))},
			{Text: lastPart(d.Backup), Title: d.Backup, Class: "mono"},
			{Text: dv.Problem},
		}}
		if !d.OK {
			row.Class = "bad"
		}
		rows = append(rows, row)
	}
	g, handled, err := rq.Grid("drills", cols, rows, GridOptions{DefaultSort: "started", DefaultDesc: true, Capped: next != "",
		Export: "backup-drills", Empty: "backups.no_drills"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	return rq.Render(http.StatusOK, "backup_drills", "backups.drills.title", map[string]any{"Grid": g, "Configured": h.Configured,
		"RTOGoal": rq.span(backuphealth.RTOGoal.Seconds())})
}

func (rq *Request) drillView(d backuphealth.Drill) *drillView {
	v := &drillView{Drill: d, RTO: rq.span(d.RTOSeconds), RPO: rq.span(d.RPOSeconds),
		Checks: rq.T("backups.checks", d.Patients, d.Records, d.AuditSize, d.SamplePatients, d.SampleRecords, d.SampleFields)}
	for _, s := range d.Steps {
		v.Steps = append(v.Steps, rq.T("backups.step", rq.textOr("backups.step."+stepKey(s.Name), s.Name), rq.span(s.TookSeconds)))
	}
	if !d.OK {
		v.Problem = rq.drillProblem(d.Problem)
	}
	return v
}

// stepKey turns a restore step's name into a catalog key's last part:
// "check (integrity, indexes)" → "check_integrity_indexes".
func stepKey(name string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
			sep = false
		} else {
			sep = true
		}
	}
	return b.String()
}

func lastPart(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 && i+1 < len(s) {
		return s[i+1:]
	}
	return s
}

// span says a number of seconds in words: "1.4 秒" under a minute, then
// minutes, hours and minutes, days and hours.
func (rq *Request) span(seconds float64) string {
	if seconds < 60 {
		return rq.T("backups.span.s", max(seconds, 0))
	}
	d := time.Duration(seconds * float64(time.Second))
	mins := int(d / time.Minute)
	days, hours, m := mins/(24*60), mins/60%24, mins%60
	switch {
	case days > 0:
		return rq.T("backups.span.dh", days, hours)
	case hours > 0:
		return rq.T("backups.span.hm", hours, m)
	}
	return rq.T("backups.span.m", m)
}

// state321 says the 3-2-1 state in words.
func (rq *Request) state321(h *backuphealth.Health) string {
	s := h.State321
	return rq.T("backups.state", s.Copies, s.Media, s.OffSite)
}

// backupErrors are the errors a target gives that the page says in words,
// by a part of their text.
var backupErrors = []struct{ key, contains string }{
	{"unreachable", "connection refused"}, {"unreachable", "no such host"}, {"unreachable", "i/o timeout"},
	{"unreachable", "network is unreachable"}, {"unreachable", "dial tcp"},
	{"denied", "permission denied"}, {"denied", "accessdenied"}, {"denied", "access denied"},
	{"denied", "invalidaccesskeyid"}, {"denied", "signaturedoesnotmatch"}, {"denied", "read-only file system"},
	{"full", "no space left"}, {"full", "quota"},
	{"missing", "no such file"}, {"missing", "not a directory"}, {"missing", "nosuchbucket"},
}

// backupError says a target's last error in words ("" for none).
func (rq *Request) backupError(msg string) string {
	if msg == "" {
		return ""
	}
	low := strings.ToLower(msg)
	for _, e := range backupErrors {
		if strings.Contains(low, e.contains) {
			return rq.T("backups.error." + e.key)
		}
	}
	return rq.T("backups.error.other")
}

// drillProblem says why a drill failed in words.
func (rq *Request) drillProblem(msg string) string {
	low := strings.ToLower(msg)
	for _, p := range []struct{ key, contains string }{
		{"no_backup", "no verified backup"}, {"counts", "the manifest"}, {"key_file", "key file"},
		{"audit", "audit"}, {"tampered", "sha-256"}, {"tampered", "signature"}, {"identity", "identity"},
	} {
		if strings.Contains(low, p.contains) {
			return rq.T("backups.problem." + p.key)
		}
	}
	if e := rq.backupError(msg); e != "" {
		return e
	}
	return rq.T("backups.problem.other")
}

// BackupTile is the dashboard's backup health at a glance.
type BackupTile struct {
	Shown, Configured bool
	Targets           []targetRow
	Late              bool // a target is late or failing, or the RPO is late
	Met321            bool
	State             string
	Drill             *drillView
	DrillAge          string
}

// loadBackupTile reads the tile for those who may see the backups.
func loadBackupTile(rq *Request, now time.Time) (BackupTile, error) {
	h, err := rq.backupHealth()
	if err != nil {
		if hidden(err) {
			return BackupTile{}, nil
		}
		return BackupTile{}, err
	}
	t := BackupTile{Shown: true, Configured: h.Configured, Met321: h.State321.Met, State: rq.state321(h), Late: h.RPOLate}
	for _, tg := range h.Targets {
		row := targetRow{Target: tg, Media: rq.textOr("backups.media."+tg.Media, tg.Media), Error: rq.backupError(tg.LastError)}
		if tg.AgeSeconds != nil {
			row.Age = rq.span(*tg.AgeSeconds)
		}
		t.Late = t.Late || tg.Late || tg.LastError != ""
		t.Targets = append(t.Targets, row)
	}
	if h.LastDrill != nil {
		t.Drill = rq.drillView(*h.LastDrill)
		t.DrillAge = rq.span(now.Sub(h.LastDrill.StartedAt).Seconds())
	}
	return t, nil
}
