// Package detect watches the audit log as it is written and stops abuse in
// the act (SPEC §6): rules with sliding windows over the entries, in the
// request path, that raise alerts and freeze accounts before the offending
// user's next request is answered.
//
// The engine (Engine) is pure: entries in, firings out, time taken from the
// entries themselves, so that replaying stored entries raises exactly the
// alerts the live path raised. The service (Service) feeds it from the gate,
// persists rules and alerts, and acts: freezing through identity, notifying.
package detect

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"medguard"
)

// Keys a rule counts by.
const (
	ByUser        = "user"
	ByIP          = "ip"
	ByUserPatient = "user_patient"
)

// Actions a rule takes when it fires.
const (
	ActAlert  = "alert"
	ActFreeze = "freeze"
)

// Rule is a detection rule, stored as data: which entries count, keyed by
// what, how many in which window, and what to do. A rule fires when at
// least Threshold events (or distinct patients, with Distinct) fall within
// the last Window, both ends included; then its window for that key starts
// afresh, so the next firing needs Threshold new events.
type Rule struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Actions are the audit actions that count (e.g. "record.read").
	Actions []string `json:"actions"`
	// Decision is "allow", "deny" or "" (either).
	Decision string `json:"decision,omitempty"`
	// Outcomes, if set, are the outcomes that count (e.g. "success").
	Outcomes []string `json:"outcomes,omitempty"`
	// PolicyRules, if set, are the policy rules that count (e.g.
	// "allow.break_glass", "deny.deactivated").
	PolicyRules []string `json:"policy_rules,omitempty"`
	// OffHours, if set ("22:00-07:00"), counts only entries outside working
	// hours, in the hospital's time zone.
	OffHours  string   `json:"off_hours,omitempty"`
	Key       string   `json:"key"`
	Distinct  string   `json:"distinct,omitempty"` // "" or "patient"
	Threshold int      `json:"threshold"`
	Window    Duration `json:"window"`
	Action    string   `json:"action"`
	Enabled   bool     `json:"enabled"`
	// Severity ranks the rule's alerts: low, medium, high or critical
	// (default medium). An alert raised by an entry on core data (核心数据)
	// ranks one step higher.
	Severity string `json:"severity,omitempty"`
	// Baseline makes the rule compare each user's count in the current
	// hour with their usual count in that hour of the week (the last
	// BaselineWeeks weeks): it fires when the count reaches Threshold and
	// exceeds the mean by more than three standard deviations. Window
	// must be 1h.
	Baseline bool `json:"baseline,omitempty"`
}

// BaselineWeeks is how many past weeks a baseline learns from, and
// baselineMinWeeks how many it needs before it judges.
const (
	BaselineWeeks    = 8
	baselineMinWeeks = 2
)

// Duration is a time.Duration written as "5m0s" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "5m", "10m0s", "1h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration such as \"5m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("a duration such as \"5m\": %w", err)
	}
	*d = Duration(v)
	return nil
}

// DisclosureActions are the audit actions that show a patient's data to
// the caller: reading, listing (each patient listed is an entry of its
// own), search results, attachments, versions, a change answered with the
// whole record, the patient access report. Every one of them counts
// towards the distinct-patient rules; a test walks the API's routes and
// fails when a route discloses patient data under an action not here.
var DisclosureActions = []string{
	"patient.read", "patient.update", "patient.list", "patient.search_match",
	"record.read", "record.update", "record.list", "record.versions", "record.read_history", "record.attachment_read",
	"admission.list", "careteam.list", "audit.access_report",
	// An export's file: one entry per patient in it (internal/exports);
	// record.export_approved for an export a second person approved.
	"record.export", "record.export_approved",
}

// ApprovedExport is the action of a patient's entry in an export that a
// second person approved (four eyes, SPEC §8): a disclosure, but one the
// per-user bulk-read freeze does not count — the approval is what lets
// many patients go at once. A bulk export without approval is refused and
// freezes (bulk_export); exports of one patient at a time count.
const ApprovedExport = "record.export_approved"

// DeadlineOverdueRule is the rule of the alerts raised for an incident's
// overdue deadline (RaiseNotice): the alert's key is the incident's id,
// and its explanation names the deadline ("… deadline <name> was due
// <time>").
const DeadlineOverdueRule = "incident_deadline_overdue"

// RecordReads are the reads of a record's content.
var RecordReads = []string{"record.read", "record.read_history", "record.attachment_read"}

// DefaultRules are the built-in rules of SPEC §6 with their default
// thresholds. Only the per-user bulk read (and bulk export outside an
// approved request) freeze: hospitals work at night, and a rule keyed by
// IP must not lock out a whole ward behind one NAT.
func DefaultRules() []Rule {
	reads := RecordReads
	disclosures := DisclosureActions
	unapproved := slices.DeleteFunc(slices.Clone(disclosures), func(a string) bool { return a == ApprovedExport })
	return []Rule{
		{Name: "bulk_read_user", Description: "一名用户在时间窗内查看超过 N 名患者的数据（读取、列表、检索结果、附件、访问报告、单患者导出；默认 5 分钟内超过 50 名）",
			Actions: unapproved, Decision: "allow", Outcomes: []string{"success"}, Key: ByUser, Distinct: "patient",
			Threshold: 51, Window: Duration(5 * time.Minute), Action: ActFreeze, Enabled: true, Severity: SeverityHigh},
		{Name: "bulk_read_ip", Description: "同一 IP 在时间窗内查看超过 N 名患者的数据",
			Actions: disclosures, Decision: "allow", Outcomes: []string{"success"}, Key: ByIP, Distinct: "patient",
			Threshold: 51, Window: Duration(5 * time.Minute), Action: ActAlert, Enabled: true, Severity: SeverityHigh},
		// An export outside an approved request is refused by the policy
		// (deny.export_not_approved: more than one patient unapproved, or
		// someone else's export); the refusal itself freezes, so that the
		// next request is answered 423. Approved exports are allowed and
		// never match.
		{Name: "bulk_export", Description: "审批之外的批量导出（未经审批导出多名患者，或取用他人的导出文件）",
			Decision: "deny", PolicyRules: []string{"deny.export_not_approved"}, Key: ByUser,
			Threshold: 1, Window: Duration(time.Minute), Action: ActFreeze, Enabled: true, Severity: SeverityHigh},
		{Name: "repeat_patient", Description: "同一用户反复读取同一患者的病历（默认 10 分钟内 20 次）",
			Actions: reads, Decision: "allow", Outcomes: []string{"success"}, Key: ByUserPatient,
			Threshold: 20, Window: Duration(10 * time.Minute), Action: ActAlert, Enabled: true, Severity: SeverityMedium},
		{Name: "off_hours_read", Description: "非工作时间读取病历（22:00–07:00）",
			Actions: reads, Decision: "allow", Outcomes: []string{"success"}, OffHours: "22:00-07:00", Key: ByUser,
			Threshold: 10, Window: Duration(time.Hour), Action: ActAlert, Enabled: true, Severity: SeverityLow},
		{Name: "cross_department_read", Description: "无诊疗关系跨科室读取病历（紧急访问）",
			Actions: reads, Decision: "allow", Outcomes: []string{"success"}, PolicyRules: []string{"allow.break_glass"},
			Key: ByUser, Threshold: 3, Window: Duration(time.Hour), Action: ActAlert, Enabled: true, Severity: SeverityMedium},
		{Name: "new_relation", Description: "为此前无诊疗关系的患者（其他科室的患者）书写病历或办理入院（默认 1 小时内 3 名）",
			Actions: []string{"record.create", "admission.create"}, Decision: "allow", Outcomes: []string{"success"},
			PolicyRules: []string{"allow.new_relation"}, Key: ByUser, Distinct: "patient",
			Threshold: 3, Window: Duration(time.Hour), Action: ActAlert, Enabled: true, Severity: SeverityMedium},
		{Name: "baseline_deviation", Description: "读取量明显偏离本人同一时段的常态（较均值高出三个标准差以上，且本小时至少 20 次）",
			Actions: reads, Decision: "allow", Outcomes: []string{"success"}, Key: ByUser, Baseline: true,
			Threshold: 20, Window: Duration(time.Hour), Action: ActAlert, Enabled: true, Severity: SeverityMedium},
		{Name: "repeated_denied", Description: "反复被拒绝的访问尝试",
			Decision: "deny", PolicyRules: []string{"deny.no_relation", "deny.no_permission", "deny.restricted_record_type",
				"deny.break_glass_not_permitted", "deny.write_other_department", "deny.own_account", "deny.own_relation",
				"deny.approver_changed_by_requester", "deny.not_an_eligible_approver", "deny.purpose_required"}, Key: ByUser,
			Threshold: 5, Window: Duration(10 * time.Minute), Action: ActAlert, Enabled: true, Severity: SeverityMedium},
		{Name: "failed_signin_ip", Description: "同一 IP 多次登录失败",
			Actions: []string{"auth.login"}, Decision: "deny", Key: ByIP,
			Threshold: 10, Window: Duration(10 * time.Minute), Action: ActAlert, Enabled: true, Severity: SeverityMedium},
		{Name: "deactivated_signin", Description: "已停用账号尝试登录",
			Actions: []string{"auth.login"}, PolicyRules: []string{"deny.deactivated_account"}, Key: ByUser,
			Threshold: 1, Window: Duration(time.Minute), Action: ActAlert, Enabled: true, Severity: SeverityMedium},
	}
}

// Severities of alerts, lowest first.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Severities lists the severities, lowest first.
var Severities = []string{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// rank returns the severity of an alert of rule r raised by an entry, one
// step higher when the entry concerned core data.
func (r *Rule) rank(core bool) string {
	i := slices.Index(Severities, r.Severity)
	if i < 0 {
		i = 1
	}
	if core && i < len(Severities)-1 {
		i++
	}
	return Severities[i]
}

// Validate checks a rule as the API receives it, naming the field at fault.
func (r *Rule) Validate() error {
	switch {
	case !validName(r.Name):
		return medguard.InvalidField("name", "a rule name is 1-64 lower-case letters, digits or '_'")
	case r.Key != ByUser && r.Key != ByIP && r.Key != ByUserPatient:
		return medguard.InvalidField("key", "key must be user, ip or user_patient")
	case r.Distinct != "" && r.Distinct != "patient":
		return medguard.InvalidField("distinct", "distinct must be empty or patient")
	case r.Threshold < 1 || r.Threshold > 100000:
		return medguard.InvalidField("threshold", "a rule needs a count: threshold from 1 to 100,000")
	case r.Window <= 0 || time.Duration(r.Window) > 7*24*time.Hour:
		return medguard.InvalidField("window", "a rule needs a time frame: window from 1s to 168h")
	case r.Action != ActAlert && r.Action != ActFreeze:
		return medguard.InvalidField("action", "action must be alert or freeze")
	case r.Decision != "" && r.Decision != "allow" && r.Decision != "deny":
		return medguard.InvalidField("decision", "decision must be allow, deny or empty")
	case r.Action == ActFreeze && r.Key != ByUser:
		return medguard.InvalidField("action", "only a rule keyed by user may freeze: a rule keyed by IP would lock out a whole ward")
	case r.Baseline && (r.Key != ByUser || time.Duration(r.Window) != time.Hour || r.Distinct != "" || r.Action != ActAlert):
		return medguard.InvalidField("baseline", "a baseline rule counts a user's events per hour (key user, window 1h) and alerts")
	case r.Severity != "" && !slices.Contains(Severities, r.Severity):
		return medguard.InvalidField("severity", "severity must be low, medium, high or critical")
	}
	if _, err := medguard.Text("description", r.Description, 500, false); err != nil {
		return err
	}
	if r.OffHours != "" {
		if _, _, err := parseHours(r.OffHours); err != nil {
			return medguard.InvalidField("off_hours", "off_hours must be HH:MM-HH:MM")
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// parseHours reads "HH:MM-HH:MM" into minutes of the day.
func parseHours(v string) (from, to int, err error) {
	var fh, fm, th, tm int
	if _, err := fmt.Sscanf(v, "%d:%d-%d:%d", &fh, &fm, &th, &tm); err != nil {
		return 0, 0, err
	}
	if fh > 23 || th > 23 || fm > 59 || tm > 59 || fh < 0 || th < 0 || fm < 0 || tm < 0 {
		return 0, 0, fmt.Errorf("out of range")
	}
	return fh*60 + fm, th*60 + tm, nil
}

// matchesPolicyRule reports whether a policy rule matches one of patterns
// ("deny.*" matches every deny rule).
func matchesPolicyRule(rule string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			return strings.HasPrefix(rule, prefix)
		}
		return p == rule
	})
}
