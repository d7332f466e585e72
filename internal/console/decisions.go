package console

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/vulns"
)

// The approvals inbox (approvals.go) shows each request as the decision it
// asks for — "授予 李强（信息科）“信息安全专员”角色 — 申请人 王敏（信息科），理由：…" — and
// offers 批准 and 拒绝 only to those the policy would let decide it; the
// requester sees 撤回 on their own pending request instead.
//
// A four-eyes request in words: what it would do, to whom, asked by whom
// and why, who may decide it and what was decided — never its JSON
// payload or a field's code. People are named with their department,
// departments by name, roles and permissions through the catalog; a
// patient is named only to a reader who may see the patient (read through
// the records service as that reader, and so logged), and otherwise said
// to be hidden.

func init() {
	// The requester withdraws their own request (the service checks).
	register(Page{Method: "POST", Path: "/approvals/{id}/cancel", Handle: cancelApproval})
}

// decisionText is a request described for the page.
type decisionText struct {
	// What is the operation: "授予 李强（信息科）信息安全专员".
	What string
	// Requester and Reason: who asked and why (a reason the route filed
	// by itself in the page's language).
	Requester, Reason string
	// Department is the code of the department the request concerns, for
	// the filter ("" for none).
	Department string
	// Approvers says who may decide it; Outcome what was decided.
	Approvers, Outcome string
}

// Sentence is the whole request in one sentence, as the CSV and the
// row's text say it.
func (d decisionText) Sentence(rq *Request) string {
	return rq.T("approvals.sentence", d.What, d.Requester, d.Reason)
}

// decisionWords describes the requests of one page, reading each patient
// at most once.
type decisionWords struct {
	rq       *Request
	patients map[string]string // patient id → how the reader sees them
	reread   bool              // the directory was read again for this page
}

// person names a member of staff; someone the cached directory does not
// know yet (made a moment ago, through the API) has it read again, once
// per page.
func (w *decisionWords) person(who string) string {
	p := w.rq.Person(who)
	if p == who && who != "" && !w.reread {
		w.reread = true
		w.rq.c.dir.forget()
		p = w.rq.Person(who)
	}
	return p
}

func newDecisionWords(rq *Request) *decisionWords {
	return &decisionWords{rq: rq, patients: map[string]string{}}
}

// payload is every field a built-in kind's payload may hold.
type payload struct {
	UserID     string     `json:"user_id"`
	Role       string     `json:"role"`
	Department string     `json:"department"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	PatientID  string     `json:"patient_id"`
	GranteeID  string     `json:"grantee_id"`
	StartsAt   time.Time  `json:"starts_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Until      *time.Time `json:"until"`
	// Certificate is a PEM certificate (user.certificate_set).
	Certificate string `json:"certificate"`
}

// describe says a request in words.
func (w *decisionWords) describe(a *approvals.Approval) (decisionText, error) {
	rq := w.rq
	var p payload
	json.Unmarshal(a.Payload, &p) // a kind's payload is JSON its service wrote
	subject := a.SubjectUserID
	if subject == "" {
		subject = p.UserID
	}
	who := w.person(subject)
	d := decisionText{Requester: w.person(a.RequestedBy), Reason: w.reason(a.Reason)}
	switch a.Kind {
	case approvals.RoleGrant:
		d.What = rq.T("approvals.what.role.grant", who, roleName(rq, p.Role))
	case approvals.DepartmentChange:
		d.What = rq.T("approvals.what.user.department_change", who, rq.Dept(p.Department))
		d.Department = p.Department
	case approvals.PasswordReset:
		d.What = rq.T("approvals.what.user.password_reset", who)
	case approvals.TOTPReset:
		d.What = rq.T("approvals.what.user.totp_reset", who)
	case approvals.CertificateSet:
		if fp := fingerprint(p.Certificate); fp != "" {
			d.What = rq.T("approvals.what.user.certificate_set", who, fp)
		} else {
			d.What = rq.T("approvals.what.user.certificate_remove", who)
		}
	case approvals.APIKeyCreate:
		d.What = rq.T("approvals.what.apikey.create", p.Name, permissionList(rq, p.Scopes))
		if p.Department != "" {
			d.What = rq.T("approvals.what.apikey.create_department", d.What, rq.Dept(p.Department))
			d.Department = p.Department
		}
	case approvals.CareTeamAdd:
		patient, err := w.patient(a, p.PatientID)
		if err != nil {
			return d, err
		}
		until := rq.T("approvals.until.open")
		if p.Until != nil {
			until = rq.T("approvals.until", rq.TimeCell(*p.Until).Text)
		}
		d.What = rq.T("approvals.what.careteam.add", who, patient, until)
	case approvals.AccessGrant:
		patient, err := w.patient(a, p.PatientID)
		if err != nil {
			return d, err
		}
		d.What = rq.T("approvals.what.access.grant", who, patient, rq.Dept(p.Department),
			rq.TimeCell(p.StartsAt).Text, rq.TimeCell(p.ExpiresAt).Text, sayDuration(rq.c.catalog, rq.Lang, p.ExpiresAt.Sub(p.StartsAt).Round(time.Minute)))
		d.Department = p.Department
	case approvals.DepartmentUnlocked:
		d.What = rq.T("approvals.what.department.unrestrict", rq.Dept(p.Department))
		d.Department = p.Department
	case approvals.RecordsDestroy:
		var dp struct {
			RecordIDs []string `json:"record_ids"`
		}
		json.Unmarshal(a.Payload, &dp)
		d.What = rq.T("approvals.what.records.destroy", len(dp.RecordIDs))
	case approvals.RetentionShorten:
		var rp approvals.RetentionPayload
		json.Unmarshal(a.Payload, &rp)
		d.What = rq.T("approvals.what.retention.shorten", recordTypeName(rq.Lang, rp.RecordType), rp.Years)
	case approvals.ExportsBulk:
		var ep struct {
			PatientIDs   []string `json:"patient_ids"`
			Records      int      `json:"records"`
			Format       string   `json:"format"`
			ContainsCore bool     `json:"contains_core"`
			Purpose      string   `json:"purpose"`
		}
		json.Unmarshal(a.Payload, &ep)
		d.What = rq.T("approvals.what.exports.bulk", len(ep.PatientIDs), ep.Records, ep.Format, rq.T("exports.purpose."+ep.Purpose))
		if ep.ContainsCore {
			d.What = rq.T("approvals.what.exports.bulk_core", d.What)
		}
	case vulns.ExceptionKind, vulns.LiftKind:
		d.What = w.vulnWhat(a)
	default:
		d.What = rq.textOr("kind."+a.Kind, rq.T("approvals.what.other"))
		if subject != "" {
			d.What = rq.T("approvals.what.other_for", d.What, who)
		}
	}
	if d.Department == "" {
		d.Department = a.Approvers.DepartmentHead
	}
	if d.Department == "" && subject != "" {
		if s, ok := rq.c.dir.staff(subject); ok {
			d.Department = s.Department
		}
	}
	switch head := a.Approvers.DepartmentHead; {
	case a.Approvers.Permission != "" && a.Approvers.SecurityOfficer:
		d.Approvers = rq.T("approvals.by.office_or_security", rq.T("approvals.office."+a.Approvers.Permission))
	case a.Approvers.Permission != "":
		d.Approvers = rq.T("approvals.by.office", rq.T("approvals.office."+a.Approvers.Permission))
	case a.Approvers.SecurityOfficer && head != "":
		d.Approvers = rq.T("approvals.by.security_or_head", rq.Dept(head))
	case head != "":
		d.Approvers = rq.T("approvals.by.head", rq.Dept(head))
	default:
		d.Approvers = rq.T("approvals.by.security")
	}
	switch a.Status {
	case approvals.Approved, approvals.Refused:
		at := ""
		if a.DecidedAt != nil {
			at = rq.TimeCell(*a.DecidedAt).Text
		}
		d.Outcome = rq.T("approvals.outcome."+a.Status, w.person(a.DecidedBy), at)
		if a.DecisionNote != "" {
			d.Outcome = rq.T("approvals.outcome.note", d.Outcome, a.DecisionNote)
		}
	case approvals.Cancelled:
		at := ""
		if a.DecidedAt != nil {
			at = rq.TimeCell(*a.DecidedAt).Text
		}
		d.Outcome = rq.T("approvals.outcome.cancelled", at)
	case approvals.Expired:
		d.Outcome = rq.T("approvals.outcome.expired")
	}
	return d, nil
}

// reason is a request's reason, a default one in the page's language.
func (w *decisionWords) reason(r string) string {
	if code := approvals.DefaultReasonCode(r); code != "" {
		return w.rq.T("approvals.reason." + code)
	}
	return r
}

// patient names the patient of a request as the reader may see them: by
// name and the tail of the 病案号 when the reader relates to the patient —
// read through the records service as the reader, so the read is logged
// and counted like any other — and otherwise as a patient whose name is
// not shown. Only readers who would be allowed are asked about (the head
// of the department whose records a grant opens, the head who asked for a
// care-team member): a refused read is logged as one, and refusals add up
// to an alert.
func (w *decisionWords) patient(a *approvals.Approval, id string) (string, error) {
	rq := w.rq
	if s, ok := w.patients[id]; ok {
		return s, nil
	}
	hidden := rq.T("approvals.patient.hidden")
	var p payload
	json.Unmarshal(a.Payload, &p)
	related := rq.Can(policy.PatientRead) && medguard.ValidID(id) &&
		(a.Kind == approvals.AccessGrant && p.Department != "" && p.Department == rq.Call.Actor.Department ||
			a.Kind == approvals.CareTeamAdd && a.RequestedBy == rq.Call.Actor.Name)
	if !related {
		return hidden, nil
	}
	pt, err := rq.Deps.Records.GetPatient(rq.Context(), rq.Call, id)
	switch {
	case medguard.IsKind(err, medguard.Forbidden) || medguard.IsKind(err, medguard.NotFound):
		w.patients[id] = hidden
		return hidden, nil
	case err != nil:
		return "", err
	}
	w.patients[id] = patientLabel(rq, pt)
	return w.patients[id], nil
}

// patientLabel is a patient's name with the tail of their 病案号.
func patientLabel(rq *Request, p *records.Patient) string {
	if p.MRN == "" {
		return p.Name
	}
	tail := p.MRN
	if n := utf8.RuneCountInString(tail); n > 4 {
		tail = string([]rune(tail)[n-4:])
	}
	return rq.T("approvals.patient", p.Name, tail)
}

// roleName is a role in words.
func roleName(rq *Request, role string) string { return rq.textOr("role."+role, role) }

// permissionName is a permission in words: "书写病历（仅护理记录）" for one
// qualified by a record type.
func permissionName(rq *Request, p string) string {
	base, typ, qualified := strings.Cut(p, ":")
	name := rq.textOr("perm."+base, p)
	if !qualified {
		return name
	}
	rt, ok := policy.LookupRecordType(typ)
	if !ok {
		return name
	}
	t := rt.NameZH
	if rq.Lang == "en" {
		t = rt.NameEN
	}
	return rq.T("perm.only", name, t)
}

// permissionList says permissions in words, separated as the language does.
func permissionList(rq *Request, ps []string) string {
	words := make([]string, len(ps))
	for i, p := range ps {
		words[i] = permissionName(rq, p)
	}
	return strings.Join(words, rq.T("perm.separator"))
}

// fingerprint is the start of a PEM certificate's SHA-256 fingerprint,
// grouped for reading, or "" for none.
func fingerprint(certPEM string) string {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return ""
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return ""
	}
	fp := identity.Fingerprint(block.Bytes)[:16]
	return fp[:4] + " " + fp[4:8] + " " + fp[8:12] + " " + fp[12:]
}

// statusOrder sorts the statuses: waiting first.
var statusOrder = map[string]string{approvals.Pending: "0", approvals.Approved: "1", approvals.Refused: "2",
	approvals.Cancelled: "3", approvals.Expired: "4"}

// statusClass is the tag class of a request's status.
func statusClass(status string) string {
	switch status {
	case approvals.Pending:
		return "tag warn"
	case approvals.Approved:
		return "tag ok"
	case approvals.Refused:
		return "tag bad"
	}
	return "tag muted"
}

// statusCell is a cell showing a status as a tag.
func statusCell(text, class, sort string) Cell {
	return Cell{Text: text, Sort: sort, Class: "nowrap", HTML: template.HTML(`<span class="` + class + `">` +
		template.HTMLEscapeString(text) + `</span>`)}
}

// row is a request's row in the inbox.
func (w *decisionWords) row(a *approvals.Approval, d decisionText, mine bool, st itemState) (Row, error) {
	rq := w.rq
	request, err := rq.partial("approvals", "approval-request", map[string]any{"D": d, "ID": a.ID, "Kind": a.Kind})
	if err != nil {
		return Row{}, err
	}
	actions, err := rq.partial("approvals", "approval-actions", map[string]any{"ID": a.ID, "CSRF": rq.CSRFToken(),
		"MayDecide": a.MayDecide, "Cancel": mine && a.Status == approvals.Pending, "Note": st.Note, "Error": st.Error})
	if err != nil {
		return Row{}, err
	}
	// While it waits, the status says how long it has left.
	status := statusCell(rq.textOr("status."+a.Status, a.Status), statusClass(a.Status), statusOrder[a.Status])
	if a.Status == approvals.Pending {
		left := rq.countdown(a.ExpiresAt, rq.Deps.Clock.Now())
		status.Text += " " + left
		status.HTML += template.HTML(`<br><span class="muted" title="` + template.HTMLEscapeString(rq.T("approvals.expires_at",
			rq.TimeCell(a.ExpiresAt).Text)) + `">` + template.HTMLEscapeString(left) + `</span>`)
	}
	row := Row{Cells: []Cell{
		{Text: d.Sentence(rq), HTML: request, Sort: a.Kind + " " + a.RequestedAt.UTC().Format(time.RFC3339Nano)},
		status,
		rq.TimeCell(a.RequestedAt),
		{Text: d.Approvers},
		{Text: d.Outcome},
		{HTML: actions},
	}}
	if st.Error != "" {
		row.Class = "failed"
	}
	return row, nil
}

// partial renders a template a page's file defines (e.g. a grid cell's
// form) into HTML for a cell: the template escapes it, as it does a page.
func (rq *Request) partial(page, name string, data any) (template.HTML, error) {
	t, err := rq.c.views.page(rq.Lang, page)
	if err != nil {
		return "", err
	}
	if t == nil || t.Lookup(name) == nil {
		return "", &medguard.Error{Kind: medguard.Internal, Message: "no template " + page + "/" + name}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil
}

// pageAt makes a page rendered in answer to a form (a POST to
// /approvals/{id}/refuse that failed, say) link as the list at path does:
// its grid's sort, page and size links lead to path, without the form's
// query.
func (rq *Request) pageAt(path string) {
	if rq.Method == http.MethodGet {
		return
	}
	u := *rq.URL
	u.Path, u.RawPath, u.RawQuery = path, "", ""
	rq.URL = &u
}
