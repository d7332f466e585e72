package rectify

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// CSVColumns are the columns of a third-party audit report in CSV, by
// their English names, each with the Chinese headers accepted for it.
// The first line is the header; columns may come in any order; unknown
// columns are refused (a misspelt header would otherwise drop its data).
// ref, title, owner and severity are required; a line's due_at, when
// empty, is the severity's default (DefaultDue).
var CSVColumns = []struct {
	Name     string
	Headers  []string
	Required bool
}{
	{"ref", []string{"编号", "序号", "问题编号"}, true},
	{"title", []string{"问题", "标题", "问题标题"}, true},
	{"title_en", []string{"英文标题"}, false},
	{"clauses", []string{"条款", "对应条款", "标准条款"}, false},
	{"department", []string{"科室", "部门", "责任部门", "责任科室"}, false},
	{"owner", []string{"责任人"}, true},
	{"severity", []string{"严重程度", "风险等级", "等级"}, true},
	{"due_at", []string{"整改期限", "期限", "截止日期"}, false},
	{"description", []string{"描述", "问题描述", "说明"}, false},
}

// severityWords are the severities' Chinese names in audit reports.
var severityWords = map[string]string{
	"严重": Critical, "极高": Critical, "紧急": Critical, "高": High, "高危": High, "中": Medium, "中危": Medium, "低": Low, "低危": Low,
}

// MaxImportLines is the most items one report may hold.
const MaxImportLines = 2000

// Import is a third-party audit report to import (POST
// /api/v1/rectifications/import?auditor=…&report=…, the CSV as the body).
type Import struct {
	// Auditor is the audit firm (第三方测评机构); Report names the report
	// (its number), which prefixes each line's ref.
	Auditor string
	Report  string
	CSV     []byte
}

// ImportSummary is what an import opened.
type ImportSummary struct {
	Auditor string   `json:"auditor"`
	Report  string   `json:"report,omitempty"`
	Created int      `json:"created"`
	Items   []string `json:"items"`
}

// csvError names a line and a column of the report.
func csvError(lineNo int, column, header string, err error) error {
	msg := err.Error()
	var me *medguard.Error
	if errors.As(err, &me) {
		msg = me.Message
	}
	return &medguard.Error{Kind: medguard.Invalid, Field: column,
		Message: fmt.Sprintf("line %d, column %s (%s): %s", lineNo, header, column, msg)}
}

// ImportReport imports a third-party audit report (rectification.manage):
// every line becomes an item of kind third_party, all in one transaction.
// A bad line refuses the whole report (422 naming the line, the column
// and the field); nothing is stored.
func (s *Service) ImportReport(ctx context.Context, call *medguard.Call, in Import) (*ImportSummary, error) {
	var err error
	if in.Auditor, err = medguard.Line("auditor", in.Auditor, 100, true); err != nil {
		return nil, err
	}
	if in.Report, err = medguard.Line("report", in.Report, 60, false); err != nil {
		return nil, err
	}
	// Only the permission is checked before reading: a refusal is logged
	// and says nothing of the report.
	if d := s.gate.Check(gate.Passage{Call: call, Action: policy.RectificationManage}); !d.Allowed {
		_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationManage, AuditAction: "rectification.import",
			Resource: policy.Resource{Type: "rectification"}}, func(policy.Decision) (audit.Mutation, error) { return nil, nil })
		return nil, err
	}
	items, err := s.parseReport(ctx, in)
	if err != nil {
		return nil, err
	}
	sealed := make([][]byte, len(items))
	for i, it := range items {
		if sealed[i], err = s.seal(ctx, "rectification_items", it.ID, "description", it.Description); err != nil {
			return nil, err
		}
	}
	now := s.clock.Now()
	sum := &ImportSummary{Auditor: in.Auditor, Report: in.Report, Items: []string{}}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationManage, AuditAction: "rectification.import",
		Resource: policy.Resource{Type: "rectification"}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			for i, it := range items {
				if err := s.insert(ctx, tx, it, sealed[i]); err != nil {
					if storage.IsConflict(err) {
						return &medguard.Error{Kind: medguard.Conflict, Field: "ref",
							Message: fmt.Sprintf("line %d: an item of this report and ref is open already", i+2)}
					}
					return err
				}
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		sum.Items = append(sum.Items, it.ID)
	}
	sum.Created = len(items)
	for _, it := range items {
		if !now.Before(it.DueAt) {
			s.announceNow(ctx, it.DueAt)
			break
		}
	}
	return sum, nil
}

// ReportLine is one line of a report: its line number in the file (a
// quoted value may span lines) and its values by column name.
type ReportLine struct {
	Line   int
	Values map[string]string
}

// ReadReport reads a report's CSV: the header (each column one of
// CSVColumns, by its name or a Chinese header, once; the required ones
// present) and every line with as many fields as the header, blank lines
// skipped. It returns the lines and the header as written by column
// name. Its errors are Invalid, naming the column at fault ("csv" for the
// file as a whole) and the line.
func ReadReport(data []byte) ([]ReportLine, map[string]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, nil, medguard.InvalidField("csv", "the report must be UTF-8 text")
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, medguard.InvalidField("csv", "the report is empty")
	}
	if err != nil {
		return nil, nil, medguard.InvalidField("csv", "line 1: %s", csvMessage(err))
	}
	cols := map[string]int{}
	headers := map[string]string{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		name := ""
		for _, c := range CSVColumns {
			if strings.EqualFold(h, c.Name) || containsString(c.Headers, h) {
				name = c.Name
			}
		}
		if name == "" {
			return nil, nil, medguard.InvalidField("csv", "line 1, column %d: unknown column %q", i+1, clip(h, 40))
		}
		if _, dup := cols[name]; dup {
			return nil, nil, &medguard.Error{Kind: medguard.Invalid, Field: name, Message: fmt.Sprintf("line 1: column %s appears twice", name)}
		}
		cols[name], headers[name] = i, h
	}
	for _, c := range CSVColumns {
		if _, ok := cols[c.Name]; c.Required && !ok {
			return nil, nil, &medguard.Error{Kind: medguard.Invalid, Field: c.Name,
				Message: fmt.Sprintf("line 1: the column %s (%s) is missing", c.Name, c.Headers[0])}
		}
	}
	var out []ReportLine
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			return nil, nil, medguard.InvalidField("csv", "line %d: %s", line, csvMessage(err))
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(out) == MaxImportLines {
			return nil, nil, medguard.InvalidField("csv", "a report may hold at most %d lines", MaxImportLines)
		}
		if len(rec) != len(header) {
			return nil, nil, medguard.InvalidField("csv", "line %d has %d fields, the header %d", line, len(rec), len(header))
		}
		values := make(map[string]string, len(cols))
		for name, i := range cols {
			values[name] = rec[i]
		}
		out = append(out, ReportLine{Line: line, Values: values})
	}
	if len(out) == 0 {
		return nil, nil, medguard.InvalidField("csv", "the report holds no line")
	}
	return out, headers, nil
}

// parseReport reads and checks every line of a report.
func (s *Service) parseReport(ctx context.Context, imp Import) ([]*stored, error) {
	lines, headers, err := ReadReport(imp.CSV)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, deps, err := s.identity.Directory(ctx)
	if err != nil {
		return nil, err
	}
	if deps == nil {
		deps = []identity.Department{}
	}
	var out []*stored
	refs := map[string]int{}
	for _, l := range lines {
		n, get := l.Line, func(name string) string { return l.Values[name] }
		bad := func(name string, err error) error { return csvError(n, name, headers[name], err) }
		ni := NewItem{Kind: KindThirdParty, Ref: get("ref"), Title: get("title"), TitleEN: get("title_en"), Department: get("department"),
			Owner: get("owner"), Severity: strings.ToLower(strings.TrimSpace(get("severity"))), Description: get("description"),
			Auditor: imp.Auditor}
		if w, ok := severityWords[ni.Severity]; ok {
			ni.Severity = w
		}
		ni.Clauses = trimAll(strings.FieldsFunc(get("clauses"), func(r rune) bool { return r == ';' || r == '；' || r == '、' || r == '\n' }))
		if d := strings.TrimSpace(get("due_at")); d != "" {
			t, err := parseDue(d, s.location())
			if err != nil {
				return nil, bad("due_at", err)
			}
			ni.DueAt = t
		}
		if strings.TrimSpace(ni.Ref) == "" {
			return nil, bad("ref", medguard.InvalidField("ref", "ref is required"))
		}
		it, _, err := s.checkNew(ctx, ni, now, deps)
		if err != nil {
			var me *medguard.Error
			if errors.As(err, &me) && me.Kind == medguard.Invalid {
				return nil, bad(me.Field, err)
			}
			return nil, err
		}
		if imp.Report != "" {
			it.Ref = clip(imp.Report+"/"+it.Ref, 100)
		}
		if prev, dup := refs[it.Ref]; dup {
			return nil, bad("ref", fmt.Errorf("the same ref as line %d", prev))
		}
		refs[it.Ref] = n
		out = append(out, it)
	}
	return out, nil
}

func csvMessage(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return "not CSV"
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// parseDue reads a deadline: a date (the end of that day in the
// hospital's zone) or an RFC 3339 time.
func parseDue(v string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{"2006-01-02", "2006/01/02", "2006/1/2", "2006-1-2"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t.AddDate(0, 0, 1).Add(-time.Millisecond).UTC(), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, medguard.InvalidField("due_at", "due_at must be a date like 2026-12-31")
}
