package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"medguard/internal/deid/kanon"
)

const deidHelp = `usage: medguard deid <command> [flags]

commands:
  table   make a CSV table k-anonymous (and l-diverse) by generalising its
          quasi-identifiers with ARX-format hierarchies and suppressing rows,
          at the least information loss over the whole lattice:
            medguard deid table --in FILE.csv --sep ';' --qi NAME=HIERARCHY.csv …
              [--insensitive NAME …] --k K [--suppress FRACTION]
              [--l-diverse NAME=L] --out OUT.csv --report REPORT.json
          Every column must be named: --qi, --insensitive or --l-diverse.
  text    scrub identifiers from clinical notes (Chinese and English):
            medguard deid text --jsonl [--lang zh|en|auto] [--surrogate]
          reads lines {"id","text"} on stdin, writes them scrubbed on
          stdout in the same order
  verify-manifest FILE [--key KEY | --data DIR]
          verify a de-identification job's manifest offline (GET
          /api/v1/deid/jobs/{id}/manifest): exit 0 only if it is signed
          by the audit log's key and unchanged since
`

// deidCmd runs "medguard deid …".
func deidCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, deidHelp)
		return usageError{errors.New("deid: no command given")}
	}
	switch args[0] {
	case "table":
		return deidTable(args[1:], getenv, stdout, stderr)
	case "text":
		return deidText(ctx, args[1:], getenv, stdinReader, stdout, stderr)
	case "verify-manifest":
		return deidVerifyManifest(args[1:], getenv, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, deidHelp)
		return nil
	}
	fmt.Fprint(stderr, deidHelp)
	return usageError{fmt.Errorf("deid: unknown command %q", args[0])}
}

// tableFlagList is a flag that may be given more than once.
type tableFlagList []string

func (r *tableFlagList) String() string { return strings.Join(*r, ",") }
func (r *tableFlagList) Set(v string) error {
	*r = append(*r, v)
	return nil
}

// deidTable runs "medguard deid table".
func deidTable(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("deid table", stderr)
	in := fs.String("in", "", "input CSV file, header line first")
	sep := fs.String("sep", ";", `column separator of --in and --out (one character; "\t" for tab)`)
	hsep := fs.String("hierarchy-sep", ";", "column separator of the hierarchy files (ARX: ';')")
	var qis, insensitive tableFlagList
	fs.Var(&qis, "qi", "quasi-identifier and its hierarchy file, NAME=HIERARCHY.csv (repeat)")
	fs.Var(&insensitive, "insensitive", "column copied unchanged (repeat, or NAME,NAME)")
	k := fs.Int("k", 0, "least number of rows per class (k-anonymity)")
	suppress := fs.Float64("suppress", 0, "largest fraction of rows that may be removed, in [0, 1)")
	ldiv := fs.String("l-diverse", "", "sensitive column and least distinct values per class, NAME=L")
	out := fs.String("out", "", "output CSV file (same columns, generalised, suppressed rows removed)")
	report := fs.String("report", "", `JSON report file ("-" for standard output)`)
	fs.Usage = func() { usage(stderr, fs.FlagSet, "usage: medguard deid table [flags]\n\n"+deidHelp) }
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("deid table: unexpected argument %q", fs.Arg(0))}
	}
	comma, err := tableSeparator("--sep", *sep)
	if err != nil {
		return err
	}
	hcomma, err := tableSeparator("--hierarchy-sep", *hsep)
	if err != nil {
		return err
	}
	switch {
	case *in == "":
		return usageError{errors.New("deid table: --in is required")}
	case *out == "":
		return usageError{errors.New("deid table: --out is required")}
	case *report == "":
		return usageError{errors.New("deid table: --report is required")}
	case len(qis) == 0:
		return usageError{errors.New("deid table: name at least one --qi NAME=HIERARCHY.csv")}
	case *k < 1:
		return usageError{errors.New("deid table: --k must be at least 1")}
	case math.IsNaN(*suppress) || *suppress < 0 || *suppress >= 1:
		return usageError{errors.New("deid table: --suppress must be a fraction in [0, 1)")}
	}
	cfg := kanon.Config{K: *k, SuppressionLimit: *suppress}
	for _, q := range qis {
		name, file, ok := strings.Cut(q, "=")
		if !ok || name == "" || file == "" {
			return usageError{fmt.Errorf("deid table: --qi %q: want NAME=HIERARCHY.csv", q)}
		}
		h, err := readHierarchyFile(file, hcomma)
		if err != nil {
			return fmt.Errorf("--qi %s: %s: %w", name, file, err)
		}
		cfg.QuasiIdentifiers = append(cfg.QuasiIdentifiers, kanon.QuasiIdentifier{Column: name, Hierarchy: h})
	}
	for _, v := range insensitive {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				cfg.Insensitive = append(cfg.Insensitive, c)
			}
		}
	}
	if *ldiv != "" {
		name, lv, ok := strings.Cut(*ldiv, "=")
		l, err := strconv.Atoi(lv)
		if !ok || name == "" || err != nil || l < 1 {
			return usageError{fmt.Errorf("deid table: --l-diverse %q: want NAME=L with L ≥ 1", *ldiv)}
		}
		cfg.Sensitive, cfg.L = name, l
	}
	table, err := readCSVTable(*in, comma)
	if err != nil {
		return err
	}
	res, err := kanon.Anonymize(table, cfg)
	if err != nil {
		var ce *kanon.CellError
		switch {
		case errors.As(err, &ce) && ce.Column != "":
			// Row r of the table is line r+1 of the file (the header is line 1).
			return fmt.Errorf("--in %s: line %d, column %q: %s", *in, ce.Row+1, ce.Column, ce.Reason)
		case errors.As(err, &ce):
			return fmt.Errorf("--in %s: line %d: %s", *in, ce.Row+1, ce.Reason)
		case errors.Is(err, kanon.ErrNoSolution):
			return fmt.Errorf("deid table: %w (raise --suppress or lower --k / --l-diverse)", err)
		}
		return fmt.Errorf("deid table: %w", err)
	}
	if err := writeFileVia(*out, func(w io.Writer) error { return res.WriteCSV(w, comma) }); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	body, err := json.MarshalIndent(res.Report(), "", "  ")
	if err != nil {
		return err
	}
	body = append(body, '\n')
	if *report == "-" {
		_, err = stdout.Write(body)
		return err
	}
	if err := writeFileVia(*report, func(w io.Writer) error { _, err := w.Write(body); return err }); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	rep := res.Report()
	fmt.Fprintf(stdout, "k=%d reached, %d of %d rows suppressed, loss %.2f, %d nodes checked, %.1f ms; wrote %s and %s\n",
		rep.K, rep.Suppressed, rep.Rows, rep.Loss, rep.NodesChecked, rep.ElapsedMS, *out, *report)
	return nil
}

// tableSeparator parses a one-character separator flag.
func tableSeparator(flagName, v string) (rune, error) {
	if v == `\t` || v == "tab" {
		return '\t', nil
	}
	r, size := utf8.DecodeRuneInString(v)
	if size == 0 || size != len(v) || r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' {
		return 0, usageError{fmt.Errorf("deid table: %s %q: want one character", flagName, v)}
	}
	return r, nil
}

// readHierarchyFile reads an ARX hierarchy file.
func readHierarchyFile(file string, comma rune) (*kanon.Hierarchy, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return kanon.ReadHierarchy(f, comma)
}

// readCSVTable reads a CSV table whose first line is the header. Errors name
// the line, never a cell's value.
func readCSVTable(file string, comma rune) (*kanon.Table, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--in: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.Comma = comma
	cr.FieldsPerRecord = -1 // checked below, with the line
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("--in %s: empty file, no header line", file)
	}
	if err != nil {
		return nil, fmt.Errorf("--in %s: %w", file, tableCSVError(err))
	}
	t := &kanon.Table{Columns: header}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("--in %s: %w", file, tableCSVError(err))
		}
		if len(rec) != len(header) {
			line, _ := cr.FieldPos(0)
			return nil, fmt.Errorf("--in %s: line %d: %d columns, the header has %d", file, line, len(rec), len(header))
		}
		t.Rows = append(t.Rows, rec)
	}
	return t, nil
}

// tableCSVError keeps a CSV parse error's line and reason, not its text.
func tableCSVError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %v", pe.Line, pe.Err)
	}
	return err
}

// writeFileVia writes a file through a temporary file in the same directory,
// renamed into place when complete, so a failed run leaves no half file.
func writeFileVia(name string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
