package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"medguard/internal/synth"
)

// synthCmd runs "medguard synth": a synthetic data set for test
// environments (SPEC §8), from the generator the demo uses, written as
// CSV and JSON lines — patients.csv, patients.jsonl, records.csv,
// records.jsonl in --out. Every person is fictional; the files are
// deterministic for a seed and a --today.
func synthCmd(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("synth", stderr)
	patients := fs.Int("patients", 100, "number of patients")
	perPatient := fs.Int("records-per-patient", 3, "records per patient (1-50)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same data")
	out := fs.String("out", "", "directory to write the files to (made if missing)")
	today := fs.String("today", "2026-01-01", "the data set's today (YYYY-MM-DD): no one is born and nothing is written after it")
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard synth --patients N --out DIR [flags]\n\n"+
			"Writes a realistic synthetic data set for test environments, from the generator the demo uses:\n"+
			"patients.csv/.jsonl (name, gender, birth date, ID number, phone, address, 病案号) and\n"+
			"records.csv/.jsonl (type, department, date, title, text, fields) in Chinese. Every person is fictional.")
	}
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	switch {
	case *out == "":
		return usageError{errors.New("synth: --out is required")}
	case *patients < 1 || *patients > 1_000_000:
		return usageError{errors.New("synth: --patients must be 1-1000000")}
	case *perPatient < 1 || *perPatient > 50:
		return usageError{errors.New("synth: --records-per-patient must be 1-50")}
	}
	day, err := time.Parse(time.DateOnly, *today)
	if err != nil {
		return usageError{fmt.Errorf("synth: --today: %w", err)}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	files := map[string]*os.File{}
	for _, name := range []string{"patients.csv", "patients.jsonl", "records.csv", "records.jsonl"} {
		f, err := os.OpenFile(filepath.Join(*out, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		files[name] = f
	}
	bw := func(name string) *bufio.Writer { return bufio.NewWriterSize(files[name], 1<<16) }
	pcsvW, pjsonW, rcsvW, rjsonW := bw("patients.csv"), bw("patients.jsonl"), bw("records.csv"), bw("records.jsonl")
	pcsv, rcsv := csv.NewWriter(pcsvW), csv.NewWriter(rcsvW)
	pcsv.Write([]string{"patient_id", "name", "gender", "birth_date", "id_number", "phone", "address", "mrn", "department"})
	rcsv.Write([]string{"record_id", "patient_id", "type", "department", "written_at", "title", "text", "fields"})
	g := synth.NewAt(*seed, day)
	depts := synth.Departments()
	nRecords := 0
	for i := 0; i < *patients; i++ {
		dept := depts[i%len(depts)]
		p := g.PersonFor(dept)
		pid := "P" + strconv.Itoa(100000+i)
		birth := p.BirthDate.Format(time.DateOnly)
		pcsv.Write([]string{pid, p.Name, p.Gender, birth, p.IDNumber, p.Phone, p.Address, p.MRN, dept.Code})
		writeJSONLine(pjsonW, map[string]any{"patient_id": pid, "name": p.Name, "gender": p.Gender, "birth_date": birth,
			"id_number": p.IDNumber, "phone": p.Phone, "address": p.Address, "mrn": p.MRN, "department": dept.Code})
		for j := 0; j < *perPatient; j++ {
			// Records over the year before today, in order.
			at := day.AddDate(0, 0, -365+(j*365)/(*perPatient)+i%7).Add(time.Duration(8+j%9) * time.Hour)
			if at.Before(p.BirthDate) {
				at = p.BirthDate.Add(24 * time.Hour)
			}
			typ := g.RecordType(dept)
			rec := g.Record(dept, typ, p, at)
			rid := "R" + strconv.Itoa(1000000+nRecords)
			nRecords++
			fields, _ := json.Marshal(rec.Fields) // keys sorted
			rcsv.Write([]string{rid, pid, typ, dept.Code, at.Format(time.RFC3339), rec.Title, rec.Text, string(fields)})
			writeJSONLine(rjsonW, map[string]any{"record_id": rid, "patient_id": pid, "type": typ, "department": dept.Code,
				"written_at": at.Format(time.RFC3339), "title": rec.Title, "text": rec.Text, "fields": rec.Fields})
		}
	}
	pcsv.Flush()
	rcsv.Flush()
	for _, err := range []error{pcsv.Error(), rcsv.Error(), pcsvW.Flush(), pjsonW.Flush(), rcsvW.Flush(), rjsonW.Flush()} {
		if err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %d patients and %d records (seed %d) to %s: patients.csv, patients.jsonl, records.csv, records.jsonl\n",
		*patients, nRecords, *seed, *out)
	return nil
}

func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}
