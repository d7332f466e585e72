package assets

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// The CSV import: a file of the register (UTF-8, with or without a byte
// order mark; comma-separated; a header row naming the columns in English
// or Chinese, in any order) whose rows register new assets and change the
// ones whose code is known. A file with any error changes nothing: the
// answer names the line and the column of each error (the first ten).

// MaxImportBytes and MaxImportRows bound an import file.
const (
	MaxImportBytes = 4 << 20
	MaxImportRows  = 5000
)

// Columns lists the columns of an import file, by their English names.
var Columns = []string{"code", "name", "kind", "owner", "department", "location", "address", "classification", "labels",
	"end_of_support", "records_system"}

// columnAliases are the names a header may use for each column.
var columnAliases = map[string]string{
	"code": "code", "资产编号": "code", "编号": "code",
	"name": "name", "名称": "name", "资产名称": "name",
	"kind": "kind", "type": "kind", "类型": "kind", "资产类型": "kind",
	"owner": "owner", "负责人": "owner",
	"department": "department", "dept": "department", "科室": "department", "部门": "department",
	"location": "location", "位置": "location", "存放位置": "location",
	"address": "address", "ip": "address", "地址": "address", "ip地址": "address",
	"classification": "classification", "分级": "classification", "数据分级": "classification",
	"labels": "labels", "标签": "labels",
	"end_of_support": "end_of_support", "eos": "end_of_support", "停止支持日期": "end_of_support", "维保到期": "end_of_support",
	"records_system": "records_system", "病案系统": "records_system",
}

// ImportSummary says what an import did.
type ImportSummary struct {
	Rows      int `json:"rows"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// Row is one data row of an import file: the line it starts on and the
// value of each column the header names.
type Row struct {
	Line   int
	Values map[string]string
}

// lineErrors collects the errors of a file, each naming its line and
// column.
type lineErrors struct {
	list  []string
	field string
}

func (le *lineErrors) add(line int, column, msg string) {
	if le.field == "" {
		le.field = column
	}
	if len(le.list) < 10 {
		le.list = append(le.list, fmt.Sprintf("line %d, column %s: %s", line, column, msg))
	}
}

func (le *lineErrors) err() error {
	if len(le.list) == 0 {
		return nil
	}
	return &medguard.Error{Kind: medguard.Invalid, Field: le.field, Message: strings.Join(le.list, "; ")}
}

// ParseCSV reads an import file into rows: the header is checked (known
// columns, each once, code, name and kind present), every row has the
// header's width, every value is valid UTF-8 without control characters.
// It checks nothing against the register.
func ParseCSV(data []byte) ([]Row, error) {
	if len(data) > MaxImportBytes {
		return nil, &medguard.Error{Kind: medguard.TooLarge, Field: "file", Message: "the file is larger than 4 MiB"}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if !utf8.Valid(data) {
		return nil, medguard.InvalidField("file", "the file is not UTF-8 text")
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = 0
	r.ReuseRecord = false
	head, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, medguard.InvalidField("file", "the file is empty: it needs a header row and rows")
	}
	if err != nil {
		return nil, csvError(err)
	}
	var le lineErrors
	cols := make([]string, len(head))
	for i, h := range head {
		name, ok := columnAliases[strings.ToLower(strings.TrimSpace(h))]
		switch {
		case !ok:
			le.add(1, fmt.Sprintf("%d", i+1), fmt.Sprintf("%q is not a column of the register (%s)", clip(h), strings.Join(Columns, ", ")))
		case slices.Contains(cols, name):
			le.add(1, name, "the column appears twice")
		}
		cols[i] = name
	}
	for _, need := range []string{"code", "name", "kind"} {
		if !slices.Contains(cols, need) {
			le.add(1, need, "the header has no such column")
		}
	}
	if err := le.err(); err != nil {
		return nil, err
	}
	var rows []Row
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if len(rows) == MaxImportRows {
			return nil, medguard.InvalidField("file", "at most %d rows at once", MaxImportRows)
		}
		row := Row{Line: line, Values: map[string]string{}}
		for i, v := range rec {
			if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				le.add(line, cols[i], "the value holds control characters")
				continue
			}
			row.Values[cols[i]] = strings.TrimSpace(v)
		}
		rows = append(rows, row)
	}
	if err := le.err(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, medguard.InvalidField("file", "the file has a header but no rows")
	}
	return rows, nil
}

// csvError says where a file stops being CSV.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return medguard.InvalidField("file", "line %d, column %d: the file is not valid CSV (%s)", pe.Line, pe.Column, pe.Err)
	}
	return medguard.InvalidField("file", "the file is not valid CSV")
}

// clip shortens a value an error repeats.
func clip(s string) string {
	if utf8.RuneCountInString(s) > 32 {
		return string([]rune(s)[:32]) + "…"
	}
	return s
}

// parseYesNo reads the records_system column.
func parseYesNo(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "no", "false", "0", "n", "否":
		return false, true
	case "yes", "true", "1", "y", "是":
		return true, true
	}
	return false, false
}

// splitLabels reads the labels column: separated by ';', '|' or '、'.
func splitLabels(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '|' || r == '、' || r == '；' })
}

// Import registers and changes assets from a CSV file (asset.manage):
// every row checked against the register and the directory first, then
// all of them written with one audit entry (asset.import), or — if any
// row is wrong — none, the error naming the line and column of each
// problem.
func (s *Service) Import(ctx context.Context, call *medguard.Call, data []byte) (*ImportSummary, error) {
	rows, err := ParseCSV(data)
	if err != nil {
		return nil, err
	}
	d, err := s.directory(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	sum := &ImportSummary{Rows: len(rows)}
	var le lineErrors
	var creates, updates []*Asset
	seen := map[string]int{}
	for _, row := range rows {
		v := row.Values
		code := v["code"]
		if first, ok := seen[code]; ok && code != "" {
			le.add(row.Line, "code", fmt.Sprintf("the code is on line %d already", first))
			continue
		}
		seen[code] = row.Line
		a, err := s.byCode(ctx, code)
		if err != nil {
			return nil, err
		}
		existing := a != nil
		if !existing {
			a = &Asset{ID: medguard.NewID(now), Code: code, Status: InUse, CreatedBy: call.Actor.Name, CreatedAt: now}
		}
		before := *a
		before.Labels = slices.Clone(a.Labels)
		for col, val := range v {
			switch col {
			case "name":
				a.Name = val
			case "kind":
				a.Kind = val
			case "owner":
				a.Owner = val
			case "department":
				a.Department = val
			case "location":
				a.Location = val
			case "address":
				a.Address = val
			case "classification":
				a.Classification = val
			case "labels":
				a.Labels = splitLabels(val)
			case "end_of_support":
				a.EndOfSupport = val
			case "records_system":
				b, ok := parseYesNo(val)
				if !ok {
					le.add(row.Line, col, "records_system must be yes or no (是/否)")
				}
				a.RecordsSystem = b
			}
		}
		if err := d.check(a); err != nil {
			var me *medguard.Error
			errors.As(err, &me)
			le.add(row.Line, me.Field, me.Message)
			continue
		}
		a.UpdatedBy, a.UpdatedAt = call.Actor.Name, now
		switch {
		case !existing:
			creates = append(creates, a)
		case same(&before, a):
			sum.Unchanged++
		default:
			updates = append(updates, a)
		}
	}
	if err := le.err(); err != nil {
		return nil, err
	}
	sum.Created, sum.Updated = len(creates), len(updates)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AssetManage, AuditAction: "asset.import",
		Resource: policy.Resource{Type: "asset"}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			for _, a := range creates {
				if err := insert(ctx, tx, a); err != nil {
					return err
				}
			}
			for _, a := range updates {
				if err := update(ctx, tx, a); err != nil {
					return err
				}
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// same reports whether an import leaves an asset as it was.
func same(a, b *Asset) bool {
	return a.Name == b.Name && a.Kind == b.Kind && a.Owner == b.Owner && a.Department == b.Department && a.Location == b.Location &&
		a.Address == b.Address && a.Classification == b.Classification && slices.Equal(a.Labels, b.Labels) &&
		a.EndOfSupport == b.EndOfSupport && a.RecordsSystem == b.RecordsSystem
}

func (s *Service) byCode(ctx context.Context, code string) (*Asset, error) {
	if code == "" || len(code) > 256 {
		return nil, nil
	}
	a, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM assets WHERE code = $1`, code))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return a, medguard.Wrap("assets.byCode", err)
}
