package console

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"medguard/internal/detect"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

// Alerts (告警, SPEC §6): the detection engine's alerts with their states,
// filtered by state and rule, moved on by a security officer (acknowledge,
// false positive, escalate), and the frozen accounts (冻结账户) with the
// form that releases one, which asks the reason.

func init() {
	manage := []policy.Permission{policy.AlertManage}
	register(
		Page{Method: "GET", Path: "/alerts", Any: []policy.Permission{policy.AlertRead},
			Nav: &Nav{Key: "nav.alerts", Order: 40}, Handle: alertsPage},
		Page{Method: "POST", Path: "/alerts/{id}/acknowledge", Any: manage, Handle: alertStatus(detect.StatusAcknowledged, "alert_acknowledged")},
		Page{Method: "POST", Path: "/alerts/{id}/false-positive", Any: manage, Handle: alertStatus(detect.StatusFalsePositive, "alert_false_positive")},
		Page{Method: "POST", Path: "/alerts/{id}/escalate", Any: manage, Handle: alertStatus(detect.StatusEscalated, "alert_escalated")},
		Page{Method: "POST", Path: "/accounts/{id}/release", Any: []policy.Permission{policy.AccountRelease}, Handle: releaseAccount},
	)
}

// AlertStatuses are the alert states, in the order the filter shows them.
var AlertStatuses = []string{detect.StatusNew, detect.StatusAcknowledged, detect.StatusFalsePositive, detect.StatusEscalated}

// alertRow is an alert with its rule in words and the moves it allows.
type alertRow struct {
	detect.Alert
	RuleName string
	Window   string   // the rule's window, e.g. 5m0s
	Next     []string // the states it may move to
}

// freezeRow is a frozen account with the rule that froze it in words.
type freezeRow struct {
	identity.Freeze
	RuleName string
}

type ruleOption struct {
	Name, Text string
}

type alertsView struct {
	Alerts    []alertRow
	Next      string
	Status    string
	Statuses  []string
	Rule      string
	Rules     []ruleOption
	Freezes   []freezeRow
	CanManage bool
	CanFree   bool
	Error     *formError
}

// alertMoves are the states an alert in each state may move to.
var alertMoves = map[string][]string{
	detect.StatusNew:          {detect.StatusAcknowledged, detect.StatusFalsePositive, detect.StatusEscalated},
	detect.StatusAcknowledged: {detect.StatusFalsePositive, detect.StatusEscalated},
}

func alertsPage(rq *Request) error { return renderAlerts(rq, http.StatusOK, nil) }

func renderAlerts(rq *Request, status int, fe *formError) error {
	q := rq.URL.Query()
	st := statusFilter(q.Get("status"), append([]string{"all"}, AlertStatuses...)...)
	if q.Get("status") == "" {
		st = detect.StatusNew
	}
	v := alertsView{Status: st, Statuses: append(slices.Clone(AlertStatuses), "all"), CanManage: rq.Can(policy.AlertManage),
		CanFree: rq.Can(policy.AccountRelease), Error: fe}
	for _, r := range detect.DefaultRules() {
		v.Rules = append(v.Rules, ruleOption{Name: r.Name, Text: rq.textOr("detect.rule."+r.Name, r.Name)})
	}
	if r := q.Get("rule"); slices.ContainsFunc(v.Rules, func(o ruleOption) bool { return o.Name == r }) {
		v.Rule = r
	}
	query := detect.AlertQuery{Status: st, Rule: v.Rule, After: rq.Cursor(), Limit: PageSize}
	if st == "all" {
		query.Status = ""
	}
	as, next, err := rq.Deps.Detect.Alerts(rq.Context(), rq.Call, query)
	if err != nil {
		return err
	}
	for _, a := range as {
		v.Alerts = append(v.Alerts, alertRow{Alert: a, RuleName: rq.textOr("detect.rule."+a.Rule, a.Rule),
			Window: time.Duration(a.Window).String(), Next: alertMoves[a.Status]})
	}
	v.Next = next
	fs, err := rq.Deps.Identity.Freezes(rq.Context(), rq.Call, true)
	if err != nil {
		return err
	}
	for _, f := range fs {
		v.Freezes = append(v.Freezes, freezeRow{Freeze: f, RuleName: rq.textOr("detect.rule."+f.Rule, f.Rule)})
	}
	return rq.Render(status, "alerts", "alerts.title", v)
}

// alertStatus moves an alert to status; an escalation may name the
// incident it went to.
func alertStatus(status, flash string) func(*Request) error {
	return func(rq *Request) error {
		incident := ""
		if status == detect.StatusEscalated {
			incident = rq.form("incident_id")
			if incident != "" && idPath(incident) == "" {
				return renderAlerts(rq, http.StatusUnprocessableEntity, &formError{Key: "alerts.error.incident", Field: "incident_id"})
			}
		}
		if _, err := rq.Deps.Detect.SetStatus(rq.Context(), rq.Call, rq.PathValue("id"), status, incident); err != nil {
			if fe, ok := rq.asFormError(err, "alerts.error.status"); ok {
				return renderAlerts(rq, http.StatusUnprocessableEntity, fe)
			}
			return err
		}
		return rq.Redirect(alertsBack(rq), flash)
	}
}

// alertsBack is the alerts page with the filters the form came from.
func alertsBack(rq *Request) string {
	p := "/alerts"
	var qs []string
	if s := rq.PostFormValue("back_status"); slices.Contains(AlertStatuses, s) || s == "all" {
		qs = append(qs, "status="+s)
	}
	if r := rq.PostFormValue("back_rule"); r != "" && validName(r) {
		qs = append(qs, "rule="+r)
	}
	if len(qs) > 0 {
		p += "?" + strings.Join(qs, "&")
	}
	return p
}

// validName accepts a detection rule's name (lower-case letters, digits, _).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func releaseAccount(rq *Request) error {
	if err := rq.Deps.Identity.ReleaseAccount(rq.Context(), rq.Call, rq.PathValue("id"), rq.form("reason")); err != nil {
		if fe, ok := rq.asFormError(err, "alerts.error.release"); ok {
			return renderAlerts(rq, http.StatusUnprocessableEntity, fe)
		}
		return err
	}
	return rq.Redirect("/alerts", "account_released")
}
