package compliance

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The statuses of a result.
const (
	Pass          = "pass"
	Fail          = "fail"
	NotApplicable = "not_applicable"
	NeedsEvidence = "needs_evidence"
)

// Statuses lists the statuses of a result.
var Statuses = []string{Pass, Fail, NotApplicable, NeedsEvidence}

// Item is one line of the evidence behind a figure: a member of staff, a
// key, a column, a link, a day — named by id and name, never by patient
// data.
type Item struct {
	// Kind says what the line is (ItemStaff, ItemAPIKey, …), so that it
	// can be shown in words.
	Kind       string `json:"kind"`
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Department string `json:"department,omitempty"`
	// Detail says why it counts, in a few words or codes.
	Detail string `json:"detail,omitempty"`
	// At is the date that matters (a due date, a last backup).
	At *time.Time `json:"at,omitempty"`
	// Who is the username of the person concerned (a key's owner, an
	// inspector, an attester).
	Who string `json:"who,omitempty"`
	// Count of Of, where the line is a ratio (a column's sealed values).
	Count *int `json:"count,omitempty"`
	Of    *int `json:"of,omitempty"`
}

// The kinds of evidence line.
const (
	ItemStaff          = "staff"
	ItemAPIKey         = "api_key"
	ItemColumn         = "column"
	ItemLink           = "link"
	ItemAuditLog       = "audit_log"
	ItemSIEM           = "siem"
	ItemBackupTarget   = "backup_target"
	ItemRestoreDrill   = "restore_drill"
	ItemVuln           = "vuln"
	ItemBreakGlass     = "break_glass"
	ItemAdmission      = "admission"
	ItemReconciliation = "reconciliation"
	ItemInspectionDay  = "inspection_day"
	ItemRisk           = "risk"
	ItemPlan           = "plan"
	ItemDrillKind      = "drill_kind"
	ItemAttestation    = "attestation"
)

// Evidence is what a figure rests on: the list behind the number, and
// where to see it live (the console page and the API list).
type Evidence struct {
	Console string `json:"console,omitempty"`
	API     string `json:"api,omitempty"`
	Items   []Item `json:"items"`
	// Attestation is, for an attested check, the evidence in force.
	Attestation *Attestation `json:"attestation,omitempty"`
}

// DepartmentFigure is a check's figure for one department.
type DepartmentFigure struct {
	Department  string `json:"department"`
	Status      string `json:"status"`
	Value       string `json:"value"`
	Numerator   int    `json:"numerator"`
	Denominator int    `json:"denominator"`
}

// Result is a check computed at a moment.
type Result struct {
	ID      string   `json:"id"`
	Kind    string   `json:"kind"`
	Title   string   `json:"title"`
	Clauses []string `json:"clauses"`
	Status  string   `json:"status"`
	// Value is the measured value as shown: "0", "100 %", "3 h".
	Value       string `json:"value"`
	Numerator   *int   `json:"numerator,omitempty"`
	Denominator *int   `json:"denominator,omitempty"`
	// Reason says, in words, why a check failed, is not applicable or
	// needs evidence.
	Reason      string             `json:"reason,omitempty"`
	Threshold   string             `json:"threshold"`
	How         string             `json:"how"`
	Evidence    Evidence           `json:"evidence"`
	Departments []DepartmentFigure `json:"departments,omitempty"`
	At          time.Time          `json:"at"`
}

// env is what a measure reads.
type env struct {
	src Sources
	now time.Time
}

// measure computes one check; it fills Status, Value, counts, Reason,
// Evidence and Departments.
type measure func(ctx context.Context, e *env, r *Result) error

// measures are the measured checks, by catalogue id.
var measures = map[string]measure{
	"departed_staff_access":      departedStaffAccess,
	"departed_owner_api_keys":    departedOwnerKeys,
	"sensitive_fields_encrypted": sensitiveFieldsEncrypted,
	"transport_encrypted":        transportEncrypted,
	"audit_tree_verified":        auditVerified,
	"audit_retention":            auditRetention,
	"siem_forwarding":            siemForwarding,
	"backup_age":                 backupAge,
	"restore_drill":              restoreDrill,
	"backup_321":                 backup321,
	"vulns_past_due":             vulnsPastDue,
	"training_coverage":          trainingCoverage,
	"training_overdue":           trainingOverdue,
	"commitment_letters":         commitmentLetters,
	"breakglass_reviews_overdue": breakGlassOverdue,
	"records_archived_late":      archivedLate,
	"paper_sync_rate":            paperSyncRate,
	"inspections_signed":         inspectionsSigned,
	"risks_past_review":          risksPastReview,
	"plans_past_review":          plansPastReview,
	"drills_on_cadence":          drillsOnCadence,
	"privileged_second_factor":   privilegedSecondFactor,
	"separation_of_duties":       separationOfDuties,
	"unused_accounts":            unusedAccounts,
}

// Thresholds of the measures (the catalogue says them in words).
const (
	RPO                = 15 * time.Minute
	DrillMaxAge        = 31 * 24 * time.Hour
	MinAuditRetention  = 180
	MaxSIEMLag         = 1000
	TrainingMinPercent = 95
	UnusedAfter        = 90 * 24 * time.Hour
	ArchiveLookback    = 90 * 24 * time.Hour
	InspectionDays     = 30
)

// privilegedRoles are the roles whose accounts need a second factor.
var privilegedRoles = []string{"admin", "security_officer", "auditor", "it_engineer"}

func notWired(r *Result, what string) error {
	r.Status, r.Value, r.Reason = NotApplicable, "—", what+" is not connected to the compliance checks"
	return nil
}

func ptr(n int) *int { return &n }

func tptr(t time.Time) *time.Time { return &t }

// count sets a "must be 0" result from its evidence.
func count(r *Result, items []Item, what string) {
	r.Evidence.Items = items
	r.Value = strconv.Itoa(len(items))
	r.Numerator = ptr(len(items))
	r.Status = Pass
	if len(items) > 0 {
		r.Status = Fail
		r.Reason = fmt.Sprintf("%d %s", len(items), what)
	}
}

// percent formats num/den as a whole percentage, rounded down so that
// 99.6 % never shows as 100 %.
func percent(num, den int) string {
	if den == 0 {
		return "—"
	}
	return strconv.Itoa(num*100/den) + " %"
}

// ratio sets a "must be 100 %" (or ≥ min %) result.
func ratio(r *Result, num, den, min int, what string) {
	r.Numerator, r.Denominator = ptr(num), ptr(den)
	r.Value = percent(num, den)
	switch {
	case den == 0:
		r.Status, r.Reason = NotApplicable, "nothing to count: no "+what
	case num*100 >= min*den:
		r.Status = Pass
	default:
		r.Status = Fail
		r.Reason = fmt.Sprintf("%d of %d %s", den-num, den, "fall short")
	}
}

// duration formats a duration as shown: minutes, hours or days.
func duration(d time.Duration) string {
	switch {
	case d < time.Hour:
		return strconv.Itoa(int(math.Round(d.Minutes()))) + " min"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " d"
}

func departedStaffAccess(ctx context.Context, e *env, r *Result) error {
	if e.src.Staff == nil {
		return notWired(r, "the staff directory")
	}
	accounts, err := e.src.Staff.Accounts(ctx)
	if err != nil {
		return err
	}
	keys, err := e.src.Staff.APIKeys(ctx)
	if err != nil {
		return err
	}
	liveKeys := map[string][]string{}
	for _, k := range keys {
		if !k.Revoked && !k.OwnerActive && k.OwnerID != "" {
			liveKeys[k.OwnerID] = append(liveKeys[k.OwnerID], k.Name)
		}
	}
	var items []Item
	depts := map[string]*DepartmentFigure{}
	for _, a := range accounts {
		d := deptFigure(depts, a.Department)
		if a.Active {
			continue
		}
		d.Denominator++
		var why []string
		if a.LiveSessions > 0 {
			why = append(why, fmt.Sprintf("sessions:%d", a.LiveSessions))
		}
		if ks := liveKeys[a.ID]; len(ks) > 0 {
			why = append(why, "api_keys:"+strings.Join(ks, ","))
		}
		if len(a.RolesAfterDeparture) > 0 {
			why = append(why, "roles:"+strings.Join(a.RolesAfterDeparture, ","))
		}
		if len(why) == 0 {
			continue
		}
		d.Numerator++
		items = append(items, Item{Kind: ItemStaff, ID: a.ID, Who: a.Username, Name: a.Username + " " + a.DisplayName, Department: a.Department,
			Detail: strings.Join(why, " "), At: a.DeactivatedAt})
	}
	count(r, items, "departed staff still have access")
	r.Departments = departmentFigures(depts, func(d *DepartmentFigure) {
		d.Value, d.Status = strconv.Itoa(d.Numerator), Pass
		if d.Numerator > 0 {
			d.Status = Fail
		}
	})
	return nil
}

func deptFigure(m map[string]*DepartmentFigure, dept string) *DepartmentFigure {
	if dept == "" {
		dept = "-"
	}
	d := m[dept]
	if d == nil {
		d = &DepartmentFigure{Department: dept}
		m[dept] = d
	}
	return d
}

func departmentFigures(m map[string]*DepartmentFigure, finish func(*DepartmentFigure)) []DepartmentFigure {
	out := make([]DepartmentFigure, 0, len(m))
	for _, d := range m {
		finish(d)
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DepartmentFigure) int { return strings.Compare(a.Department, b.Department) })
	return out
}

func departedOwnerKeys(ctx context.Context, e *env, r *Result) error {
	if e.src.Staff == nil {
		return notWired(r, "the staff directory")
	}
	keys, err := e.src.Staff.APIKeys(ctx)
	if err != nil {
		return err
	}
	var items []Item
	live := 0
	for _, k := range keys {
		if k.Revoked {
			continue
		}
		live++
		if !k.OwnerActive && k.OwnerID != "" {
			items = append(items, Item{Kind: ItemAPIKey, ID: k.ID, Name: k.Name, Who: k.OwnerUsername, Department: k.OwnerDepartment,
				Detail: "owner " + k.OwnerUsername})
		}
	}
	count(r, items, "live API keys were made by staff who left")
	r.Denominator = ptr(live)
	return nil
}

func sensitiveFieldsEncrypted(ctx context.Context, e *env, r *Result) error {
	if e.src.Fields == nil {
		return notWired(r, "the records store")
	}
	scans, err := e.src.Fields.ScanSealed(ctx)
	if err != nil {
		return err
	}
	var num, den int
	for _, s := range scans {
		num += s.Sealed
		den += s.Values
		detail := fmt.Sprintf("%d/%d sealed", s.Sealed, s.Values)
		if len(s.Unsealed) > 0 {
			detail += "; not sealed: " + strings.Join(s.Unsealed, ",")
		}
		r.Evidence.Items = append(r.Evidence.Items, Item{Kind: ItemColumn, ID: s.Table + "." + s.Column, Detail: detail,
			Count: ptr(s.Sealed), Of: ptr(s.Values)})
	}
	ratio(r, num, den, 100, "stored sensitive values")
	if r.Status == NotApplicable {
		// An empty archive holds nothing in clear: the rule holds.
		r.Status, r.Reason, r.Value = Pass, "", "100 %"
	}
	if r.Status == Fail {
		r.Reason = fmt.Sprintf("%d stored sensitive values are not in the cipher envelope", den-num)
	}
	return nil
}

func transportEncrypted(ctx context.Context, e *env, r *Result) error {
	if e.src.Links == nil {
		return notWired(r, "the register of links")
	}
	links, err := e.src.Links.Links(ctx)
	if err != nil {
		return err
	}
	num := 0
	for _, l := range links {
		detail := l.Protocol
		if l.Encrypted {
			num++
		} else {
			detail = "PLAIN " + l.Protocol
		}
		if l.Note != "" {
			detail += " — " + l.Note
		}
		r.Evidence.Items = append(r.Evidence.Items, Item{Kind: ItemLink, ID: l.Name, Name: l.Target, Detail: detail})
	}
	ratio(r, num, len(links), 100, "links")
	if r.Status == Fail {
		r.Reason = fmt.Sprintf("%d of %d links are not encrypted", len(links)-num, len(links))
	}
	return nil
}

func auditVerified(ctx context.Context, e *env, r *Result) error {
	if e.src.Audit == nil {
		return notWired(r, "the audit log")
	}
	st, err := e.src.Audit.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	r.Evidence.Items = []Item{{Kind: ItemAuditLog, ID: "audit_log", Detail: fmt.Sprintf("%d entries", st.Size), At: tptr(st.VerifiedAt),
		Count: ptr(int(st.Size))}}
	if st.Verified {
		r.Status, r.Value = Pass, strconv.FormatUint(st.Size, 10)
		return nil
	}
	r.Status, r.Value, r.Reason = Fail, "✗", "the audit log does not verify: "+st.Problem
	return nil
}

func auditRetention(ctx context.Context, e *env, r *Result) error {
	if e.src.Audit == nil {
		return notWired(r, "the audit log")
	}
	st, err := e.src.Audit.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	r.Value = strconv.Itoa(st.RetentionDays) + " d"
	r.Numerator, r.Denominator = ptr(st.RetentionDays), ptr(MinAuditRetention)
	r.Status = Pass
	if st.RetentionDays < MinAuditRetention {
		r.Status, r.Reason = Fail, fmt.Sprintf("the audit log is kept %d days, less than %d", st.RetentionDays, MinAuditRetention)
	}
	return nil
}

func siemForwarding(ctx context.Context, e *env, r *Result) error {
	if e.src.SIEM == nil {
		return notWired(r, "the SIEM forwarder")
	}
	st, err := e.src.SIEM.SIEMState(ctx)
	if err != nil {
		return err
	}
	if !st.Configured {
		r.Status, r.Value, r.Reason = NotApplicable, "—", "no SIEM is configured (--siem)"
		return nil
	}
	r.Value = strconv.FormatUint(st.Lag, 10)
	detail := "connected"
	switch {
	case st.Standby:
		detail = "standby: another server forwards"
	case !st.Connected:
		detail = "not connected"
	}
	if st.Problem != "" {
		detail += " — " + st.Problem
	}
	r.Evidence.Items = []Item{{Kind: ItemSIEM, ID: st.Destination, Detail: detail, Count: ptr(int(min(st.Lag, 1<<31-1)))}}
	switch {
	case st.Lag > MaxSIEMLag:
		r.Status, r.Reason = Fail, fmt.Sprintf("%d audit entries wait to be forwarded", st.Lag)
	case !st.Connected && !st.Standby:
		r.Status, r.Reason = Fail, "the SIEM is not connected"
	default:
		r.Status = Pass
	}
	return nil
}

func backups(ctx context.Context, e *env, r *Result) (*BackupState, error) {
	if e.src.Backups == nil {
		return nil, notWired(r, "the backups")
	}
	st, err := e.src.Backups.BackupState(ctx)
	if err != nil {
		return nil, err
	}
	if !st.Configured {
		// Another server of the installation may run them (the daily run
		// happens on whichever server claims the day): this server cannot
		// say. The reason says so; the checks run where serve has
		// --backup-to measure them.
		r.Status, r.Value, r.Reason = NotApplicable, "—", "no backups are scheduled on this server (--backup-to): run the checks on the server that takes them"
		return nil, nil
	}
	return &st, nil
}

func backupAge(ctx context.Context, e *env, r *Result) error {
	st, err := backups(ctx, e, r)
	if st == nil {
		return err
	}
	var worst time.Duration
	late := 0
	for _, t := range st.Targets {
		it := Item{Kind: ItemBackupTarget, ID: t.URL, Name: t.Media, At: t.LastBackup}
		switch {
		case t.LastBackup == nil:
			late++
			it.Detail = "no backup yet"
			worst = max(worst, time.Duration(math.MaxInt64))
		default:
			age := e.now.Sub(*t.LastBackup)
			worst = max(worst, age)
			it.Detail = "age " + duration(age)
			if age > RPO {
				late++
				it.Detail += " > 15 min"
			}
		}
		if t.LastError != "" {
			it.Detail += " — " + t.LastError
		}
		r.Evidence.Items = append(r.Evidence.Items, it)
	}
	r.Numerator, r.Denominator = ptr(late), ptr(len(st.Targets))
	switch {
	case len(st.Targets) == 0:
		r.Status, r.Value, r.Reason = Fail, "—", "no backup target"
	case worst == time.Duration(math.MaxInt64):
		r.Status, r.Value, r.Reason = Fail, "—", "a target has no backup yet"
	default:
		r.Value = duration(worst)
		r.Status = Pass
		if late > 0 {
			r.Status, r.Reason = Fail, fmt.Sprintf("%d of %d targets are older than the RPO of 15 min", late, len(st.Targets))
		}
	}
	return nil
}

func restoreDrill(ctx context.Context, e *env, r *Result) error {
	st, err := backups(ctx, e, r)
	if st == nil {
		return err
	}
	d := st.LastDrill
	if d == nil {
		r.Status, r.Value, r.Reason = Fail, "—", "no restore drill was ever run (medguard backup drill)"
		return nil
	}
	age := e.now.Sub(d.At)
	r.Value = duration(age)
	detail := "passed"
	if !d.OK {
		detail = "failed: " + d.Problem
	} else if !d.RTOMet {
		detail = "RTO missed"
	}
	r.Evidence.Items = []Item{{Kind: ItemRestoreDrill, ID: d.ID, Detail: detail, At: tptr(d.At)}}
	switch {
	case age > DrillMaxAge:
		r.Status, r.Reason = Fail, "the last restore drill is older than 31 days"
	case !d.OK || !d.RTOMet:
		r.Status, r.Reason = Fail, "the last restore drill did not pass: "+detail
	default:
		r.Status = Pass
	}
	return nil
}

func backup321(ctx context.Context, e *env, r *Result) error {
	st, err := backups(ctx, e, r)
	if st == nil {
		return err
	}
	r.Value = fmt.Sprintf("%d/%d/%d", st.Copies, st.Media, st.OffSite)
	for _, t := range st.Targets {
		detail := t.Media
		if t.OffSite {
			detail += " off-site"
		}
		if t.LastError != "" {
			detail += " — failing"
		}
		r.Evidence.Items = append(r.Evidence.Items, Item{Kind: ItemBackupTarget, ID: t.URL, Name: t.Media, Detail: detail})
	}
	r.Status = Pass
	if !st.Met321 {
		r.Status, r.Reason = Fail, fmt.Sprintf("%d copies on %d media with %d off-site; 3-2-1 needs 3, 2 and 1", st.Copies, st.Media, st.OffSite)
	}
	return nil
}

func overdueItems(kind string, os []Overdue, detail func(Overdue) string) []Item {
	items := make([]Item, 0, len(os))
	for _, o := range os {
		it := Item{Kind: kind, ID: o.ID, Name: o.Title, Department: o.Department, Detail: detail(o), At: tptr(o.DueAt), Who: o.Owner}
		items = append(items, it)
	}
	return items
}

func registers(e *env, r *Result) bool {
	if e.src.Registers == nil {
		notWired(r, "the registers")
		return false
	}
	return true
}

func vulnsPastDue(ctx context.Context, e *env, r *Result) error {
	if !registers(e, r) {
		return nil
	}
	os, err := e.src.Registers.OverdueVulns(ctx, e.now)
	if err != nil {
		return err
	}
	count(r, overdueItems(ItemVuln, os, func(o Overdue) string { return o.Severity }), "vulnerabilities are past due")
	if len(os) > 0 {
		by := map[string]int{}
		for _, o := range os {
			by[o.Severity]++
		}
		var parts []string
		for _, s := range []string{"critical", "high", "medium", "low"} {
			if by[s] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", s, by[s]))
			}
		}
		r.Reason = fmt.Sprintf("%d vulnerabilities are past due (%s)", len(os), strings.Join(parts, ", "))
	}
	return nil
}

func standings(ctx context.Context, e *env, r *Result) ([]Standing, bool, error) {
	if !registers(e, r) {
		return nil, false, nil
	}
	st, err := e.src.Registers.TrainingStandings(ctx)
	return st, err == nil, err
}

func trainingCoverage(ctx context.Context, e *env, r *Result) error {
	st, ok, err := standings(ctx, e, r)
	if !ok {
		return err
	}
	depts := map[string]*DepartmentFigure{}
	num := 0
	for _, s := range st {
		d := deptFigure(depts, s.Department)
		d.Denominator++
		if s.Current {
			num++
			d.Numerator++
			continue
		}
		r.Evidence.Items = append(r.Evidence.Items, staffItem(s, "owes training"))
	}
	ratio(r, num, len(st), TrainingMinPercent, "active staff")
	r.Departments = departmentFigures(depts, func(d *DepartmentFigure) {
		d.Value, d.Status = percent(d.Numerator, d.Denominator), Pass
		if d.Numerator*100 < TrainingMinPercent*d.Denominator {
			d.Status = Fail
		}
	})
	return nil
}

func trainingOverdue(ctx context.Context, e *env, r *Result) error {
	return staffOwing(ctx, e, r, func(s Standing) bool { return s.Overdue }, "periodic_training",
		"staff are overdue for their twice-yearly training")
}

func commitmentLetters(ctx context.Context, e *env, r *Result) error {
	return staffOwing(ctx, e, r, func(s Standing) bool { return s.LetterOwed }, "commitment_letter",
		"staff have not signed the commitment letter")
}

// staffOwing counts the active staff whose standing owes something (out
// of all of them), each named in the evidence.
func staffOwing(ctx context.Context, e *env, r *Result, owes func(Standing) bool, detail, what string) error {
	st, ok, err := standings(ctx, e, r)
	if !ok {
		return err
	}
	var items []Item
	for _, s := range st {
		if owes(s) {
			items = append(items, staffItem(s, detail))
		}
	}
	count(r, items, what)
	r.Denominator = ptr(len(st))
	return nil
}

// staffItem is a member of staff as a line of evidence.
func staffItem(s Standing, detail string) Item {
	return Item{Kind: ItemStaff, ID: s.UserID, Who: s.Username, Name: s.Username + " " + s.DisplayName, Department: s.Department, Detail: detail}
}

func breakGlassOverdue(ctx context.Context, e *env, r *Result) error {
	if !registers(e, r) {
		return nil
	}
	os, err := e.src.Registers.OverdueBreakGlass(ctx, e.now)
	if err != nil {
		return err
	}
	count(r, overdueItems(ItemBreakGlass, os, func(o Overdue) string { return "by " + o.Owner }), "break-glass reviews are overdue")
	return nil
}

func archivedLate(ctx context.Context, e *env, r *Result) error {
	if !registers(e, r) {
		return nil
	}
	os, err := e.src.Registers.LateArchives(ctx, e.now.Add(-ArchiveLookback), e.now)
	if err != nil {
		return err
	}
	depts := map[string]*DepartmentFigure{}
	count(r, overdueItems(ItemAdmission, os, func(o Overdue) string {
		d := deptFigure(depts, o.Department)
		d.Numerator++
		if o.DoneAt != nil {
			return "archived " + duration(o.DoneAt.Sub(o.DueAt)) + " late"
		}
		return "not archived"
	}), "admissions were archived late or are past due")
	r.Departments = departmentFigures(depts, func(d *DepartmentFigure) {
		d.Value, d.Status = strconv.Itoa(d.Numerator), Fail
	})
	return nil
}

func paperSyncRate(ctx context.Context, e *env, r *Result) error {
	if !registers(e, r) {
		return nil
	}
	rec, err := e.src.Registers.LatestReconciliation(ctx)
	if err != nil {
		return err
	}
	if rec == nil {
		r.Status, r.Value, r.Reason = NotApplicable, "—", "no daily reconciliation has run yet"
		return nil
	}
	r.Value = strconv.FormatFloat(math.Floor(rec.Rate*10)/10, 'f', -1, 64) + " %"
	r.Numerator, r.Denominator = ptr(rec.Matched), ptr(rec.Matched+rec.FoldersWithoutElectronic+rec.PatientsWithoutFolder)
	r.Evidence.Items = []Item{{Kind: ItemReconciliation, ID: rec.Day, Count: ptr(rec.Matched), Of: ptr(rec.Matched + rec.FoldersWithoutElectronic + rec.PatientsWithoutFolder), Detail: fmt.Sprintf("folders %d, inpatients %d, matched %d, folders without electronic %d, inpatients without folder %d",
		rec.Folders, rec.Inpatients, rec.Matched, rec.FoldersWithoutElectronic, rec.PatientsWithoutFolder)}}
	r.Status = Pass
	if rec.Rate < 100 {
		r.Status, r.Reason = Fail, fmt.Sprintf("%d folders without an electronic copy, %d inpatients without a folder on %s",
			rec.FoldersWithoutElectronic, rec.PatientsWithoutFolder, rec.Day)
	}
	return nil
}

func inspectionsSigned(ctx context.Context, e *env, r *Result) error {
	if !registers(e, r) {
		return nil
	}
	days, err := e.src.Registers.InspectionDays(ctx, InspectionDays)
	if err != nil {
		return err
	}
	num := 0
	for _, d := range days {
		if d.Status == DaySigned {
			num++
			continue
		}
		r.Evidence.Items = append(r.Evidence.Items, Item{Kind: ItemInspectionDay, ID: d.Day, Who: d.Inspector, Detail: d.Status})
	}
	ratio(r, num, len(days), 100, "inspection days")
	if r.Status == NotApplicable {
		r.Reason = "the daily inspection has not begun"
	} else if r.Status == Fail {
		r.Reason = fmt.Sprintf("%d of the last %d days are not signed by two people", len(days)-num, len(days))
	}
	return nil
}

func risksPastReview(ctx context.Context, e *env, r *Result) error {
	if !registers(e, r) {
		return nil
	}
	os, err := e.src.Registers.OverdueRiskReviews(ctx, e.now)
	if err != nil {
		return err
	}
	count(r, overdueItems(ItemRisk, os, func(o Overdue) string { return o.Severity }), "risks are past their review date")
	return nil
}

func plansPastReview(ctx context.Context, e *env, r *Result) error {
	if !registers(e, r) {
		return nil
	}
	os, err := e.src.Registers.OverduePlanReviews(ctx, e.now)
	if err != nil {
		return err
	}
	count(r, overdueItems(ItemPlan, os, func(Overdue) string { return "yearly review" }), "emergency plans are past their yearly review")
	return nil
}

func drillsOnCadence(ctx context.Context, e *env, r *Result) error {
	if !registers(e, r) {
		return nil
	}
	cs, err := e.src.Registers.DrillCadences(ctx)
	if err != nil {
		return err
	}
	var items []Item
	started := 0
	for _, c := range cs {
		if !c.Started {
			continue
		}
		started++
		if len(c.Missed) > 0 {
			items = append(items, Item{Kind: ItemDrillKind, ID: c.Kind, Name: strings.Join(c.Missed, ", "), Detail: "missed " + strings.Join(c.Missed, ","), At: c.LastDrillAt})
		}
	}
	if started == 0 {
		r.Status, r.Value, r.Reason = NotApplicable, "—", "no emergency plan is published: no drill is due yet"
		return nil
	}
	count(r, items, "kinds of drill missed a period")
	r.Denominator = ptr(started)
	return nil
}

func privilegedSecondFactor(ctx context.Context, e *env, r *Result) error {
	if e.src.Staff == nil {
		return notWired(r, "the staff directory")
	}
	accounts, err := e.src.Staff.Accounts(ctx)
	if err != nil {
		return err
	}
	num, den := 0, 0
	for _, a := range accounts {
		if !a.Active || !slices.ContainsFunc(a.Roles, func(x string) bool { return slices.Contains(privilegedRoles, x) }) {
			continue
		}
		den++
		if a.TOTP {
			num++
			continue
		}
		r.Evidence.Items = append(r.Evidence.Items, Item{Kind: ItemStaff, ID: a.ID, Who: a.Username, Name: a.Username + " " + a.DisplayName, Department: a.Department,
			Detail: "no TOTP: " + strings.Join(a.Roles, ",")})
	}
	ratio(r, num, den, 100, "privileged accounts")
	if r.Status == Fail {
		r.Reason = fmt.Sprintf("%d privileged accounts have no second factor", den-num)
	}
	return nil
}

func separationOfDuties(ctx context.Context, e *env, r *Result) error {
	if e.src.Staff == nil {
		return notWired(r, "the staff directory")
	}
	accounts, err := e.src.Staff.Accounts(ctx)
	if err != nil {
		return err
	}
	var items []Item
	for _, a := range accounts {
		if a.Active && slices.Contains(a.Roles, "admin") &&
			(slices.Contains(a.Roles, "security_officer") || slices.Contains(a.Roles, "auditor")) {
			items = append(items, Item{Kind: ItemStaff, ID: a.ID, Who: a.Username, Name: a.Username + " " + a.DisplayName, Department: a.Department, Detail: strings.Join(a.Roles, ",")})
		}
	}
	count(r, items, "people hold the administrator's role with the security officer's or the auditor's")
	return nil
}

func unusedAccounts(ctx context.Context, e *env, r *Result) error {
	if e.src.Staff == nil {
		return notWired(r, "the staff directory")
	}
	accounts, err := e.src.Staff.Accounts(ctx)
	if err != nil {
		return err
	}
	var items []Item
	active := 0
	for _, a := range accounts {
		if !a.Active {
			continue
		}
		active++
		if e.now.Sub(a.CreatedAt) < UnusedAfter || a.LastSignIn != nil && e.now.Sub(*a.LastSignIn) < UnusedAfter ||
			a.LastActive != nil && e.now.Sub(*a.LastActive) < UnusedAfter {
			continue
		}
		detail := "never signed in"
		if a.LastSignIn != nil {
			detail = "last sign-in " + a.LastSignIn.Format(time.DateOnly)
		}
		items = append(items, Item{Kind: ItemStaff, ID: a.ID, Who: a.Username, Name: a.Username + " " + a.DisplayName, Department: a.Department, Detail: detail, At: a.LastSignIn})
	}
	count(r, items, "active accounts were not used for 90 days")
	r.Denominator = ptr(active)
	return nil
}
