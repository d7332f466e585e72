package incidents

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
)

// The anonymous reporting channel (举报).
//
// Anyone who can reach the server — a member of staff at their desk, or
// anyone at the sign-in page — may report a suspected violation without
// saying who they are. The channel's operations take no caller at all:
// FileAnonymous, ReceiptStatus and AddToReport have no *medguard.Call
// parameter, so that nothing of who asks can reach them. A report stores
// its category, its text and the reporter's later additions (sealed with
// the "system:anonymous_reports" key, created when the service is
// prepared, not at the first report), the day it was filed (in the
// hospital's time zone, nothing finer), a random id (not time-ordered),
// and the SHA-256 of a random receipt code given to the reporter, with
// which they follow it up and add to it. Each of these operations is in
// the audit log as done by "anonymous", with no address, request id or
// target: the log shows that the channel was used, not by whom nor for
// which report.
//
// The security office (report.triage) lists and reads the reports,
// answers the reporter (whom the answer reaches through the receipt
// code), converts a report into an incident (with incident.manage) or an
// accountability case (with accountability.manage), and closes it; each
// of these is logged under the officer's name.
//
// What the channel cannot hide is written in docs/incidents.md: the TLS
// connection, a reverse proxy's or firewall's logs, the order of writes in
// the database's own files, and the minute at which the audit log shows
// the channel used.

// Categories of anonymous report.
const (
	ReportUnauthorizedAccess = "unauthorized_access" // 越权查阅病历
	ReportDataLeak           = "data_leak"           // 泄露患者信息
	ReportTampering          = "tampering"           // 篡改病历
	ReportAccountSharing     = "account_sharing"     // 账号借用、共享
	ReportProcedure          = "procedure"           // 未按流程操作
	ReportOther              = "other"               // 其他
)

// ReportCategory is a category in words.
type ReportCategory struct {
	Code, NameZH, NameEN string
}

// ReportCategories lists the categories of anonymous report.
var ReportCategories = []ReportCategory{
	{ReportUnauthorizedAccess, "越权查阅病历", "Records read without a reason"},
	{ReportDataLeak, "泄露患者信息", "Patient data leaked"},
	{ReportTampering, "篡改病历", "Records tampered with"},
	{ReportAccountSharing, "借用或共享账号", "Accounts lent or shared"},
	{ReportProcedure, "未按流程操作", "Procedure not followed"},
	{ReportOther, "其他", "Other"},
}

// ReportCategoryCodes lists the categories' codes.
func ReportCategoryCodes() []string {
	out := make([]string, len(ReportCategories))
	for i, c := range ReportCategories {
		out[i] = c.Code
	}
	return out
}

// Statuses of an anonymous report.
const (
	ReportNew       = "new"
	ReportInReview  = "in_review"
	ReportConverted = "converted"
	ReportClosed    = "closed"
)

// ReportStatuses lists the statuses of an anonymous report.
var ReportStatuses = []string{ReportNew, ReportInReview, ReportConverted, ReportClosed}

// Authors of a report's messages.
const (
	AuthorReporter = "reporter"
	AuthorOffice   = "office"
)

// MaxReportText is the longest message of a report, in characters.
const MaxReportText = 10_000

// MaxReportMessages is the most messages one report holds.
const MaxReportMessages = 200

// AnonymousReport is a report as the security office sees it.
type AnonymousReport struct {
	ID         string `json:"id"`
	Category   string `json:"category"`
	Status     string `json:"status"`
	FiledOn    string `json:"filed_on"`
	UpdatedOn  string `json:"updated_on"`
	IncidentID string `json:"incident_id,omitempty"`
	CaseID     string `json:"case_id,omitempty"`
	ClosedBy   string `json:"closed_by,omitempty"`
	// MessageCount is how many messages it holds; Messages are given when
	// the report is read one at a time.
	MessageCount int             `json:"message_count"`
	Messages     []ReportMessage `json:"messages,omitempty"`
}

// ReportMessage is one message of a report: the reporter's words or the
// office's answer, and the day it was written.
type ReportMessage struct {
	Author string `json:"author"`
	// By names the member of the office who answered (never the
	// reporter); the reporter's view leaves it out.
	By   string `json:"by,omitempty"`
	On   string `json:"on"`
	Text string `json:"text"`
}

// ReceiptView is a report as its reporter sees it through the receipt
// code: no id, and the office's answers without the officer's name.
type ReceiptView struct {
	Category  string          `json:"category"`
	Status    string          `json:"status"`
	FiledOn   string          `json:"filed_on"`
	UpdatedOn string          `json:"updated_on"`
	Messages  []ReportMessage `json:"messages"`
}

// NewAnonymousReport is a report as filed.
type NewAnonymousReport struct {
	Category string `json:"category"`
	Text     string `json:"text"`
}

// ReportReceipt is the answer to a filed report: the receipt code, shown
// once (only its SHA-256 is kept), and the day.
type ReportReceipt struct {
	Receipt string `json:"receipt"`
	FiledOn string `json:"filed_on"`
	Status  string `json:"status"`
}

// AnonymousNotice tells the application that a report was filed on Day
// (Filed), or that no report of Day waits untriaged any more (!Filed).
type AnonymousNotice struct {
	Day   string
	Filed bool
}

// AnonymousRule is the alert rule of the notice that reports wait for
// triage; the key is the day (never a report's id: the alert's time would
// date the report).
const AnonymousRule = "anonymous_report_received"

// anonymousKey is the system data key the reports are sealed with.
const anonymousKey = "anonymous_reports"

// anonymous is the caller every operation of the channel is logged as.
var anonymous = medguard.Call{Actor: medguard.Actor{Name: "anonymous"}}

// receiptAlphabet has no 0, 1, I or O, which readers confuse.
const receiptAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// receiptLen is the receipt code's length: 20 characters of 5 bits, 100
// random bits, shown in groups of four.
const receiptLen = 20

// newReceipt makes a receipt code, e.g. "K7QM-2XHD-9PWA-T4NE-RB6C".
func newReceipt() string {
	b := make([]byte, receiptLen)
	if _, err := rand.Read(b); err != nil {
		panic("incidents: crypto/rand failed: " + err.Error())
	}
	var out strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			out.WriteByte('-')
		}
		out.WriteByte(receiptAlphabet[c&31])
	}
	return out.String()
}

// NormalizeReceipt reads a receipt code as a person may type it (any case,
// spaces or hyphens anywhere) and returns it in its canonical form; ok is
// false when it is not one.
func NormalizeReceipt(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r > 127 || !strings.ContainsRune(receiptAlphabet, r):
			return "", false
		}
		if b.Len() > 0 && b.Len()%5 == 4 {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	if b.Len() != receiptLen+receiptLen/4-1 {
		return "", false
	}
	return b.String(), true
}

// receiptHash is what is kept of a receipt code. The code carries 100
// random bits, so a plain SHA-256 cannot be reversed by trying codes.
func receiptHash(canonical string) string {
	sum := sha256.Sum256([]byte("medguard anonymous report receipt v1\n" + canonical))
	return hex.EncodeToString(sum[:])
}

// randomID is an id of the shape of medguard.NewID with no time in it:
// the first 48 bits are zero, the other 80 random. Reports sort by it in
// no telling order.
func randomID() string { return medguard.NewID(time.UnixMilli(0)) }

// channelLimit bounds the anonymous channel for everyone at once (it
// cannot tell reporters apart, and must not): filings and receipt
// look-ups, each a token bucket. Beyond it the channel answers 429.
type channelLimit struct {
	mu      sync.Mutex
	clock   medguard.Clock
	buckets map[string]*tokens
}

type tokens struct {
	n    float64
	last time.Time
}

// The channel's limits: 60 reports an hour (a burst of 20), 600 receipt
// look-ups and additions an hour (a burst of 100).
var channelRates = map[string][2]float64{"file": {60.0 / 3600, 20}, "receipt": {600.0 / 3600, 100}}

func newChannelLimit(clock medguard.Clock) *channelLimit {
	return &channelLimit{clock: clock, buckets: map[string]*tokens{}}
}

func (l *channelLimit) allow(kind string) bool {
	rate := channelRates[kind]
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[kind]
	if b == nil {
		b = &tokens{n: rate[1], last: now}
		l.buckets[kind] = b
	}
	b.n = min(rate[1], b.n+now.Sub(b.last).Seconds()*rate[0])
	b.last = now
	if b.n < 1 {
		return false
	}
	b.n--
	return true
}

var errChannelBusy = &medguard.Error{Kind: medguard.RateLimited, Message: "the reporting channel is busy; try again in a few minutes"}

var errNoReport = &medguard.Error{Kind: medguard.NotFound, Message: "no such report"}

var errNoReceipt = &medguard.Error{Kind: medguard.NotFound, Message: "no report has this receipt code"}

// PrepareAnonymousChannel makes the channel's data key now, at start, so
// that its creation time dates no report. Call it while wiring.
func (s *Service) PrepareAnonymousChannel(ctx context.Context) error {
	_, err := s.keys.SystemKey(ctx, anonymousKey)
	return medguard.Wrap("incidents.PrepareAnonymousChannel", err)
}

// today is the hospital's day now, YYYY-MM-DD.
func (s *Service) today() string { return s.clock.Now().In(s.zone).Format(time.DateOnly) }

// recordAnonymous logs one use of the channel as "anonymous": no address,
// no request id, no target.
func (s *Service) recordAnonymous(ctx context.Context, action string, werr error, m audit.Mutation) error {
	call := anonymous
	outcome := audit.OutcomeOf(werr)
	if werr != nil {
		m = nil
	}
	_, err := s.gate.Record(ctx, gate.Event{Call: &call, Action: action, TargetType: "anonymous_report", Allowed: true,
		Rule: "allow.anonymous_channel", Outcome: outcome}, m)
	if werr != nil {
		return werr
	}
	return err
}

func reportMessageLoc(reportID string, seq int) keys.Location {
	return loc("anonymous_report_messages", reportID+"/"+strconv.Itoa(seq), "body")
}

// addMessage appends a message to a report in tx, sealed.
func addMessage(ctx context.Context, tx *sql.Tx, k *keys.DataKey, reportID, author, by, day, body string) error {
	var seq int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM anonymous_report_messages WHERE report_id = $1`,
		reportID).Scan(&seq); err != nil {
		return err
	}
	if seq > MaxReportMessages {
		return &medguard.Error{Kind: medguard.Conflict, Code: "report_full", Message: "the report holds as many messages as it may"}
	}
	var byName sql.NullString
	if author == AuthorOffice {
		byName = sql.NullString{String: by, Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO anonymous_report_messages (report_id, seq, author, by_name, on_day, body)
		VALUES ($1, $2, $3, $4, $5, $6)`, reportID, seq, author, byName, day, k.SealString(reportMessageLoc(reportID, seq), body))
	return err
}

// FileAnonymous files an anonymous report and returns its receipt code,
// which is shown this once. It knows nothing of who files it.
func (s *Service) FileAnonymous(ctx context.Context, in NewAnonymousReport) (*ReportReceipt, error) {
	if !s.anonymous.allow("file") {
		return nil, s.recordAnonymous(ctx, "anonymous_report.file", errChannelBusy, nil)
	}
	body, err := medguard.Text("text", in.Text, MaxReportText, true)
	if err == nil && !slices.Contains(ReportCategoryCodes(), in.Category) {
		err = medguard.InvalidField("category", "category must be one of %s", strings.Join(ReportCategoryCodes(), ", "))
	}
	if err != nil {
		return nil, s.recordAnonymous(ctx, "anonymous_report.file", err, nil)
	}
	k, err := s.keys.SystemKey(ctx, anonymousKey)
	if err != nil {
		return nil, medguard.Wrap("incidents.FileAnonymous", err)
	}
	receipt, day, id := newReceipt(), s.today(), randomID()
	err = s.recordAnonymous(ctx, "anonymous_report.file", nil, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO anonymous_reports (id, receipt_hash, category, status, filed_on, updated_on)
			VALUES ($1, $2, $3, $4, $5, $5)`, id, receiptHash(receipt), in.Category, ReportNew, day); err != nil {
			return err
		}
		return addMessage(ctx, tx, k, id, AuthorReporter, "", day, body)
	})
	if err != nil {
		return nil, err
	}
	s.anonymousNotice(ctx, AnonymousNotice{Day: day, Filed: true})
	return &ReportReceipt{Receipt: receipt, FiledOn: day, Status: ReportNew}, nil
}

// reportByReceipt finds the report of a receipt code.
func (s *Service) reportByReceipt(ctx context.Context, receipt string) (*AnonymousReport, error) {
	canonical, ok := NormalizeReceipt(receipt)
	if !ok {
		return nil, medguard.InvalidField("receipt", "a receipt code is 20 letters and digits, e.g. K7QM-2XHD-9PWA-T4NE-RB6C")
	}
	r, err := scanReport(s.db.QueryRowContext(ctx, `SELECT `+reportColumns+` FROM anonymous_reports WHERE receipt_hash = $1`,
		receiptHash(canonical)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoReceipt
	}
	return r, err
}

func (s *Service) receiptView(ctx context.Context, r *AnonymousReport) (*ReceiptView, error) {
	msgs, err := s.messagesOf(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	for i := range msgs {
		msgs[i].By = ""
	}
	return &ReceiptView{Category: r.Category, Status: r.Status, FiledOn: r.FiledOn, UpdatedOn: r.UpdatedOn, Messages: msgs}, nil
}

// ReceiptStatus shows a report to whoever holds its receipt code: its
// status, and the messages (the office's answers among them).
func (s *Service) ReceiptStatus(ctx context.Context, receipt string) (*ReceiptView, error) {
	if !s.anonymous.allow("receipt") {
		return nil, s.recordAnonymous(ctx, "anonymous_report.status", errChannelBusy, nil)
	}
	var v *ReceiptView
	r, err := s.reportByReceipt(ctx, receipt)
	if err == nil {
		v, err = s.receiptView(ctx, r)
	}
	if err := s.recordAnonymous(ctx, "anonymous_report.status", err, nil); err != nil {
		return nil, err
	}
	return v, nil
}

// AddToReport adds the reporter's further information to a report, by its
// receipt code; a closed report takes no more.
func (s *Service) AddToReport(ctx context.Context, receipt, addition string) (*ReceiptView, error) {
	if !s.anonymous.allow("receipt") {
		return nil, s.recordAnonymous(ctx, "anonymous_report.add", errChannelBusy, nil)
	}
	body, err := medguard.Text("text", addition, MaxReportText, true)
	var r *AnonymousReport
	if err == nil {
		r, err = s.reportByReceipt(ctx, receipt)
	}
	if err == nil && r.Status == ReportClosed {
		err = &medguard.Error{Kind: medguard.Conflict, Code: "report_closed", Message: "the report is closed"}
	}
	var k *keys.DataKey
	if err == nil {
		k, err = s.keys.SystemKey(ctx, anonymousKey)
	}
	day := s.today()
	err = s.recordAnonymous(ctx, "anonymous_report.add", err, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE anonymous_reports SET updated_on = $1 WHERE id = $2`, day, r.ID); err != nil {
			return err
		}
		return addMessage(ctx, tx, k, r.ID, AuthorReporter, "", day, body)
	})
	if err != nil {
		return nil, err
	}
	r.UpdatedOn = day
	return s.receiptView(ctx, r)
}

const reportColumns = `id, category, status, filed_on, updated_on, incident_id, case_id, closed_by,
	(SELECT count(*) FROM anonymous_report_messages m WHERE m.report_id = anonymous_reports.id)`

func scanReport(sc interface{ Scan(...any) error }) (*AnonymousReport, error) {
	var r AnonymousReport
	var incident, cs, closed sql.NullString
	if err := sc.Scan(&r.ID, &r.Category, &r.Status, &r.FiledOn, &r.UpdatedOn, &incident, &cs, &closed, &r.MessageCount); err != nil {
		return nil, err
	}
	r.IncidentID, r.CaseID, r.ClosedBy = incident.String, cs.String, closed.String
	return &r, nil
}

func (s *Service) messagesOf(ctx context.Context, reportID string) ([]ReportMessage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, author, by_name, on_day, body FROM anonymous_report_messages
		WHERE report_id = $1 ORDER BY seq`, reportID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ReportMessage{}
	for rows.Next() {
		var m ReportMessage
		var seq int
		var by sql.NullString
		var body []byte
		if err := rows.Scan(&seq, &m.Author, &by, &m.On, &body); err != nil {
			return nil, err
		}
		m.By = by.String
		if m.Text, err = s.keys.OpenString(ctx, "system:"+anonymousKey, reportMessageLoc(reportID, seq), body); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ListReports lists the anonymous reports with the given status (default
// all), newest day first, a page at a time; items carry no text.
func (s *Service) ListReports(ctx context.Context, call *medguard.Call, status, before string, limit int) ([]AnonymousReport, string, error) {
	out := []AnonymousReport{}
	var next string
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ReportTriage, AuditAction: "anonymous_report.list",
		Resource: policy.Resource{Type: "anonymous_report"}},
		func(policy.Decision) (audit.Mutation, error) {
			switch status {
			case "", "all":
				status = ""
			case ReportNew, ReportInReview, ReportConverted, ReportClosed:
			default:
				return nil, medguard.InvalidField("status", "status must be new, in_review, converted, closed or all")
			}
			day, id, _ := strings.Cut(before, "/")
			rows, err := s.db.QueryContext(ctx, `SELECT `+reportColumns+` FROM anonymous_reports
				WHERE ($1 = '' OR filed_on < $1 OR (filed_on = $1 AND id < $2)) AND ($3 = '' OR status = $3)
				ORDER BY filed_on DESC, id DESC LIMIT $4`, day, id, status, limit+1)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				r, err := scanReport(rows)
				if err != nil {
					return nil, err
				}
				if len(out) == limit {
					last := out[len(out)-1]
					next = last.FiledOn + "/" + last.ID
					break
				}
				out = append(out, *r)
			}
			return nil, rows.Err()
		})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// loadReport reads a report by id.
func (s *Service) loadReport(ctx context.Context, id string) (*AnonymousReport, error) {
	if !medguard.ValidID(id) {
		return nil, errNoReport
	}
	r, err := scanReport(s.db.QueryRowContext(ctx, `SELECT `+reportColumns+` FROM anonymous_reports WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoReport
	}
	return r, medguard.Wrap("incidents.loadReport", err)
}

// triage passes the gate for one step of the office on a report: it loads
// the report (a missing one is logged and answered 404) and lets work
// return the mutation, given the channel's key and the day.
func (s *Service) triage(ctx context.Context, call *medguard.Call, id, auditAction string,
	work func(r *AnonymousReport, k *keys.DataKey, day string) (audit.Mutation, error)) (*AnonymousReport, error) {
	r, lerr := s.loadReport(ctx, id)
	if lerr != nil && !medguard.IsKind(lerr, medguard.NotFound) {
		return nil, lerr
	}
	before := ""
	if r != nil {
		before = r.Status
	}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ReportTriage, AuditAction: auditAction,
		Resource: policy.Resource{Type: "anonymous_report", ID: id, Missing: lerr != nil}},
		func(policy.Decision) (audit.Mutation, error) {
			if lerr != nil {
				return nil, lerr
			}
			k, err := s.keys.SystemKey(ctx, anonymousKey)
			if err != nil {
				return nil, err
			}
			return work(r, k, s.today())
		})
	if err != nil {
		return nil, err
	}
	out, err := s.loadReport(ctx, id)
	if err != nil {
		return nil, err
	}
	if out.Messages, err = s.messagesOf(ctx, id); err != nil {
		return nil, err
	}
	if before == ReportNew && out.Status != ReportNew {
		s.triaged(ctx, out.FiledOn)
	}
	return out, nil
}

// triaged tells the hooks when no report of day waits untriaged any more.
func (s *Service) triaged(ctx context.Context, day string) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM anonymous_reports WHERE filed_on = $1 AND status = $2`,
		day, ReportNew).Scan(&n); err != nil || n > 0 {
		return
	}
	s.anonymousNotice(ctx, AnonymousNotice{Day: day})
}

// GetReport reads a report with its messages (logged).
func (s *Service) GetReport(ctx context.Context, call *medguard.Call, id string) (*AnonymousReport, error) {
	return s.triage(ctx, call, id, "anonymous_report.read", func(*AnonymousReport, *keys.DataKey, string) (audit.Mutation, error) {
		return nil, nil
	})
}

func openReport(r *AnonymousReport) error {
	if r.Status == ReportConverted || r.Status == ReportClosed {
		return &medguard.Error{Kind: medguard.Conflict, Code: "report_" + r.Status, Message: "the report is " + r.Status}
	}
	return nil
}

// ReplyReport answers the reporter: the answer reaches them through their
// receipt code (they may be asked for more). The report is then in review.
func (s *Service) ReplyReport(ctx context.Context, call *medguard.Call, id, reply string) (*AnonymousReport, error) {
	return s.triage(ctx, call, id, "anonymous_report.reply", func(r *AnonymousReport, k *keys.DataKey, day string) (audit.Mutation, error) {
		body, err := medguard.Text("text", reply, MaxReportText, true)
		if err != nil {
			return nil, err
		}
		if err := openReport(r); err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if _, err := tx.ExecContext(ctx, `UPDATE anonymous_reports SET status = $1, updated_on = $2 WHERE id = $3`,
				ReportInReview, day, id); err != nil {
				return err
			}
			return addMessage(ctx, tx, k, id, AuthorOffice, call.Actor.Name, day, body)
		}, nil
	})
}

// CloseReport closes a report, with the office's last word to the
// reporter (why: unfounded, handled otherwise, …).
func (s *Service) CloseReport(ctx context.Context, call *medguard.Call, id, reason string) (*AnonymousReport, error) {
	return s.triage(ctx, call, id, "anonymous_report.close", func(r *AnonymousReport, k *keys.DataKey, day string) (audit.Mutation, error) {
		body, err := medguard.Text("reason", reason, MaxReportText, true)
		if err != nil {
			return nil, err
		}
		if r.Status == ReportClosed {
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "report_closed", Message: "the report is closed"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if _, err := tx.ExecContext(ctx, `UPDATE anonymous_reports SET status = $1, updated_on = $2, closed_by = $3
				WHERE id = $4`, ReportClosed, day, call.Actor.Name, id); err != nil {
				return err
			}
			return addMessage(ctx, tx, k, id, AuthorOffice, call.Actor.Name, day, body)
		}, nil
	})
}

// reporterText is the report's first message: the reporter's own words.
func (s *Service) reporterText(ctx context.Context, id string) (string, error) {
	msgs, err := s.messagesOf(ctx, id)
	if err != nil || len(msgs) == 0 {
		return "", err
	}
	return msgs[0].Text, nil
}

// ReportToIncident converts a report into an incident (report.triage and
// incident.manage): in as for Report, its description the reporter's
// words when left empty. The report is then converted and names the
// incident; the incident names the report.
func (s *Service) ReportToIncident(ctx context.Context, call *medguard.Call, id string, in NewIncident) (*Incident, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	inc := &Incident{ID: medguard.NewID(now), Status: Open, Source: SourceAnonymous, ReportedBy: call.Actor.Name,
		ReportedAt: now, LastUpdateAt: now, Facts: in.Facts, ReportID: id}
	_, err := s.triage(ctx, call, id, "anonymous_report.convert", func(r *AnonymousReport, k *keys.DataKey, day string) (audit.Mutation, error) {
		if d := s.gate.Check(gate.Passage{Call: call, Action: policy.IncidentManage, Resource: policy.Resource{Type: "incident", ID: inc.ID}}); !d.Allowed {
			return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: d.Rule, Message: "opening an incident needs incident.manage as well"}
		}
		if err := openReport(r); err != nil {
			return nil, err
		}
		if strings.TrimSpace(in.Description) == "" {
			words, err := s.reporterText(ctx, id)
			if err != nil {
				return nil, err
			}
			in.Description = words
		}
		m, err := s.newIncident(call, in, inc)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := m(ctx, tx, index); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE anonymous_reports SET status = $1, updated_on = $2, incident_id = $3 WHERE id = $4`,
				ReportConverted, day, inc.ID, id)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "incident.report", TargetType: "incident", TargetID: inc.ID,
		Allowed: true, Rule: "allow.anonymous_report"}, nil); err != nil {
		return nil, err
	}
	out, err := s.fresh(ctx, inc.ID)
	if err != nil {
		return nil, err
	}
	s.reported(ctx, *out)
	return out, nil
}

// ReportToCase converts a report into an accountability case (report.triage
// and accountability.manage, never about oneself): nc as for OpenCase, its
// summary the reporter's words when left empty.
func (s *Service) ReportToCase(ctx context.Context, call *medguard.Call, id string, nc NewCase) (*Case, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	caseID := medguard.NewID(now)
	_, err := s.triage(ctx, call, id, "anonymous_report.convert", func(r *AnonymousReport, k *keys.DataKey, day string) (audit.Mutation, error) {
		if d := s.gate.Check(gate.Passage{Call: call, Action: policy.AccountabilityManage,
			Resource: policy.Resource{Type: "accountability_case", ID: caseID, SubjectUserID: nc.SubjectUserID}}); !d.Allowed {
			return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: d.Rule, Message: "opening a case needs accountability.manage as well"}
		}
		if err := openReport(r); err != nil {
			return nil, err
		}
		if strings.TrimSpace(nc.Summary) == "" {
			words, err := s.reporterText(ctx, id)
			if err != nil {
				return nil, err
			}
			nc.Summary = "据匿名举报 From an anonymous report: " + words
		}
		m, err := s.newCase(ctx, call, caseID, nc, now)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := m(ctx, tx, index); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE anonymous_reports SET status = $1, updated_on = $2, case_id = $3 WHERE id = $4`,
				ReportConverted, day, caseID, id)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "accountability.open", TargetType: "accountability_case",
		TargetID: caseID, Allowed: true, Rule: "allow.anonymous_report"}, nil); err != nil {
		return nil, err
	}
	return s.freshCase(ctx, caseID)
}

// reportOf is the anonymous report an incident was opened from, if any.
func (s *Service) reportOf(ctx context.Context, incidentID string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM anonymous_reports WHERE incident_id = $1`, incidentID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// OnAnonymousReport adds a hook told when a report is filed (the day only)
// and when no report of a day waits for triage any more.
func (s *Service) OnAnonymousReport(hook func(context.Context, AnonymousNotice)) {
	s.onAnonymous.Add(hook)
}

func (s *Service) anonymousNotice(ctx context.Context, n AnonymousNotice) {
	s.onAnonymous.Tell(ctx, n)
}
