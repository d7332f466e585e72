package deidjobs

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/deid/kanon"
	"medguard/internal/deid/mask"
	"medguard/internal/deid/scrub"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// Run runs approved jobs until ctx ends: when kicked (an approval) and
// every interval; it also purges the outputs that expired or whose
// downloads are used up. onError is told of failures (nil: ignored).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			// The approval commits just after it kicks.
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		case <-t.C:
		}
		if _, err := s.RunPending(ctx); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
		if _, err := s.Purge(ctx); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
	}
}

// RunPending runs every approved job, one at a time, and returns how many
// it ran. A job that fails is marked failed with a message that names no
// patient data.
func (s *Service) RunPending(ctx context.Context) (int, error) {
	// A job left running past its lease (its server stopped mid-job) goes
	// back to the queue; nothing of it was kept.
	stale := medguard.Millis(s.clock.Now().Add(-s.cfg.RunLease))
	if _, err := s.db.ExecContext(ctx, `UPDATE deid_jobs SET status = $1 WHERE status = $2 AND started_at < $3`,
		Approved, Running, stale); err != nil {
		return 0, medguard.Wrap("deidjobs.RunPending", err)
	}
	n := 0
	for {
		var id string
		err := s.db.QueryRowContext(ctx, `SELECT id FROM deid_jobs WHERE status = $1 ORDER BY id LIMIT 1`, Approved).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return n, nil
		}
		if err != nil {
			return n, medguard.Wrap("deidjobs.RunPending", err)
		}
		now := s.clock.Now().Truncate(time.Millisecond)
		res, err := s.db.ExecContext(ctx, `UPDATE deid_jobs SET status = $1, started_at = $2 WHERE id = $3 AND status = $4`,
			Running, medguard.Millis(now), id, Approved)
		if err != nil {
			return n, medguard.Wrap("deidjobs.RunPending", err)
		}
		if k, _ := res.RowsAffected(); k == 0 {
			continue // another server took it
		}
		n++
		if err := s.execute(ctx, id); err != nil {
			msg := "the job failed"
			var me *medguard.Error
			switch {
			case errors.Is(err, kanon.ErrNoSolution):
				msg = "no generalisation reaches k (and l) within the suppression limit; allow more suppression or fewer quasi-identifiers"
			case errors.As(err, &me) && me.Kind != medguard.Internal:
				msg = me.Message
			}
			if _, uerr := s.db.ExecContext(context.WithoutCancel(ctx), `UPDATE deid_jobs SET status = $1, error = $2, finished_at = $3
				WHERE id = $4`, Failed, msg, medguard.Millis(s.clock.Now()), id); uerr != nil {
				return n, uerr
			}
			if errors.Is(err, kanon.ErrNoSolution) || me != nil && me.Kind != medguard.Internal {
				continue
			}
			return n, medguard.Wrap("deidjobs.execute", err)
		}
	}
}

// system is medguard acting for one job: the audit log names it "system"
// (detection does not count its reads), and the decision's rule names
// the job.
func system(jobID string) *medguard.Call {
	return &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, ID: jobID, Name: "system"}, IP: "local",
		RequestID: jobID, Purpose: "research"}
}

// row is one output row: one record of one patient.
type row map[string]string

// execute reads, transforms, anonymises, seals and signs one job.
func (s *Service) execute(ctx context.Context, id string) error {
	j, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if j.ApprovedAt == nil {
		return &medguard.Error{Kind: medguard.Conflict, Message: "the job was not approved"}
	}
	sp := j.Spec
	job := policy.DeidJob{ID: j.ID, PatientIDs: sp.PatientIDs, Department: sp.Scope.Department, RecordTypes: sp.Scope.RecordTypes,
		Until: j.ApprovedAt.Add(s.cfg.RunWindow)}
	call := system(j.ID)
	call.Purpose = j.Purpose
	src, err := s.records.ReadSource(ctx, call, job, records.SourceScope{PatientIDs: sp.PatientIDs, Department: sp.Scope.Department,
		RecordTypes: sp.Scope.RecordTypes, From: sp.Scope.From, To: sp.Scope.To})
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	t, err := newTransform(sp, secret, s.clock.Now())
	if err != nil {
		return err
	}
	rows, patients, err := t.apply(src)
	clear(secret)
	if err != nil {
		return err
	}
	var anon *Anonymity
	if sp.K > 0 {
		if rows, anon, err = anonymise(sp, rows, patients); err != nil {
			return err
		}
	}
	columns := t.columns()
	csvOut, jsonOut, err := encode(columns, rows)
	if err != nil {
		return err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	out := map[string][]byte{"csv": csvOut, "jsonl": jsonOut}
	m := Manifest{JobID: j.ID, ApprovalID: j.ApprovalID, Purpose: j.Purpose, RequestedBy: j.Requester, RequestedAt: j.CreatedAt,
		ApprovedBy: j.ApprovedBy, ApprovedAt: *j.ApprovedAt, Recipient: j.Recipient, AgreementID: j.AgreementID, Scope: sp.Scope,
		PatientIDsNamed: len(sp.PatientIDs), Fields: sp.fieldsCopy(), Anonymity: anon, RecordsWithheld: src.Withheld,
		PatientsRead: len(src.Patients), RowsOut: len(rows), MaxDownloads: j.MaxDownloads, ExpiresAt: j.ExpiresAt, CreatedAt: now}
	for _, p := range src.Patients {
		m.RecordsRead += len(p.Records)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r["patient"]] = true
	}
	m.PatientsOut = len(seen)
	if sp.Fields["birth_date"] == "shift" || sp.Fields["record_date"] == "shift" {
		m.DateShift = "per patient, by 1-365 days from a secret the job drew and discarded"
	}
	for _, f := range []string{"csv", "jsonl"} {
		sum := sha256.Sum256(out[f])
		m.Outputs = append(m.Outputs, OutputFile{Format: f, Rows: len(rows), Bytes: len(out[f]), SHA256: hex.EncodeToString(sum[:])})
	}
	signer := s.signer()
	if signer == nil {
		return &medguard.Error{Kind: medguard.Internal, Message: "no signing key for the manifest"}
	}
	signed, err := SignManifest(signer, m)
	if err != nil {
		return err
	}
	key, err := s.keys.NewDataKey(keyOwner(j.ID))
	if err != nil {
		return err
	}
	sealed := map[string][]byte{}
	for f, b := range out {
		sealed[f] = key.Seal(outputLocation(j.ID, f), b)
	}
	_, err = s.gate.Record(ctx, eventOf(call, "deid.output", j.ID), func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if err := s.keys.Save(ctx, tx, key); err != nil {
			return err
		}
		for _, f := range m.Outputs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO deid_outputs (job_id, format, sealed, bytes, sha256) VALUES ($1, $2, $3, $4, $5)`,
				j.ID, f.Format, sealed[f.Format], f.Bytes, f.SHA256); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE deid_jobs SET status = $1, finished_at = $2, manifest = $3 WHERE id = $4 AND status = $5`,
			Done, medguard.Millis(now), mustJSON(signed), j.ID, Running)
		return err
	})
	return err
}

// keyOwner is the owner of a job's data key, which seals its output.
func keyOwner(jobID string) string { return "deidjob:" + jobID }

func outputLocation(jobID, format string) keys.Location {
	return keys.Location{Table: "deid_outputs", Row: jobID, Column: format}
}

// transform applies a job's field rules to what it read.
type transform struct {
	sp      Spec
	secret  []byte
	dates   *mask.DateShifter
	scrub   *scrub.Scrubber
	today   time.Time
	columns func() []string
}

func newTransform(sp Spec, secret []byte, now time.Time) (*transform, error) {
	t := &transform{sp: sp, secret: slices.Clone(secret), today: now}
	var err error
	if t.dates, err = mask.NewDateShifter(t.secret, 365); err != nil {
		return nil, err
	}
	for _, f := range []string{"title", "diagnosis", "text"} {
		if sp.Fields[f] == "scrub" {
			// The scrubber's dictionary is large: loaded once, and only
			// when a job scrubs.
			if t.scrub, err = scrub.Default(); err != nil {
				return nil, err
			}
			break
		}
	}
	cols := []string{"patient"}
	for _, f := range []string{"name", "gender", "birth_date", "age", "id_number", "phone", "address"} {
		if sp.Fields[f] != "" {
			cols = append(cols, f)
		}
	}
	cols = append(cols, "record", "record_type")
	for _, f := range []string{"department", "record_date", "title", "diagnosis", "text"} {
		if sp.Fields[f] != "" {
			cols = append(cols, f)
		}
	}
	t.columns = func() []string { return cols }
	return t, nil
}

// pseudonym is a job's stable, secret-keyed name for an id: the same id
// gets the same pseudonym within a job and an unrelated one in another.
func (t *transform) pseudonym(prefix, id string) string {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte(prefix + "\x00" + id))
	return prefix + hex.EncodeToString(m.Sum(nil)[:6])
}

// patientInfo is what k-anonymity needs of one patient.
type patientInfo struct {
	pseudonym string
	address   string // the original, for the hierarchy's coarser units
	sensitive string
}

// apply masks and scrubs every record of every patient.
func (t *transform) apply(src *records.SourceRead) ([]row, []patientInfo, error) {
	var rows []row
	var patients []patientInfo
	for _, sp := range src.Patients {
		p := sp.Patient
		base := row{"patient": t.pseudonym("P", p.ID)}
		f := t.sp.Fields
		if f["name"] == "mask" {
			base["name"] = mask.MaskName(p.Name)
		}
		if f["gender"] == "keep" {
			base["gender"] = p.Gender
		}
		switch f["birth_date"] {
		case "shift":
			if v, err := t.dates.ShiftString(p.ID, p.BirthDate); err == nil {
				base["birth_date"] = v
			} else {
				base["birth_date"] = ""
			}
		case "year":
			if len(p.BirthDate) >= 4 {
				base["birth_date"] = p.BirthDate[:4]
			} else {
				base["birth_date"] = ""
			}
		}
		if f["age"] == "group" {
			base["age"] = ""
			if a, ok := records.Age(p.BirthDate, t.today); ok {
				base["age"], _ = mask.GroupAge(strconv.Itoa(a))
			}
		}
		if f["id_number"] == "mask" {
			base["id_number"] = mask.MaskIDNumber(p.IDNumber)
		}
		if f["phone"] == "mask" {
			base["phone"] = ""
			if p.Phone != "" {
				base["phone"] = mask.MaskPhone(p.Phone)
			}
		}
		prov, city, district := mask.AddressLevels(p.Address)
		switch f["address"] {
		case "district":
			base["address"] = district
		case "city":
			base["address"] = city
		case "province":
			base["address"] = prov
		}
		info := patientInfo{pseudonym: base["patient"], address: p.Address}
		for _, r := range sp.Records {
			out := cloneRow(base)
			out["record"] = t.pseudonym("R", r.ID)
			out["record_type"] = r.Type
			if f["department"] == "keep" {
				out["department"] = r.Department
			}
			switch f["record_date"] {
			case "shift":
				out["record_date"] = t.dates.Shift(p.ID, r.CreatedAt).Format(time.DateOnly)
			case "month":
				out["record_date"] = r.CreatedAt.Format("2006-01")
			}
			if f["title"] == "scrub" {
				out["title"] = t.clean(p, r.Title)
			}
			if f["diagnosis"] == "scrub" {
				out["diagnosis"] = t.clean(p, r.Fields["诊断"])
			}
			if f["text"] == "scrub" {
				out["text"] = t.clean(p, r.Text)
			}
			if l := t.sp.LDiverse; l != nil && info.sensitive == "" {
				info.sensitive = out[l.Attribute]
			}
			rows = append(rows, out)
		}
		patients = append(patients, info)
	}
	return rows, patients, nil
}

func cloneRow(r row) row {
	out := make(row, len(r)+8)
	for k, v := range r {
		out[k] = v
	}
	return out
}

// clean removes the patient's own identifiers from free text (every
// occurrence of their name, ID number, phone, record number and address,
// whatever the scrubber makes of the context), then scrubs the rest.
func (t *transform) clean(p records.Patient, text string) string {
	if text == "" {
		return ""
	}
	lang := scrub.Detect(text)
	known := []struct {
		v    string
		kind scrub.Kind
	}{{p.Address, scrub.Address}, {p.IDNumber, scrub.IDNumber}, {strings.ToLower(p.IDNumber), scrub.IDNumber},
		{p.Phone, scrub.Phone}, {p.MRN, scrub.RecordNumber}, {p.Name, scrub.Name}}
	for _, k := range known {
		if len([]rune(k.v)) >= 2 {
			text = strings.ReplaceAll(text, k.v, scrub.Placeholder(k.kind, lang))
		}
	}
	out, _ := t.scrub.Scrub(text, scrub.Options{Lang: lang})
	return out
}

// anonymise makes the patients k-anonymous (and l-diverse) over the
// quasi-identifiers and rewrites every row with its patient's generalised
// values; the rows of suppressed patients are removed.
func anonymise(sp Spec, rows []row, patients []patientInfo) ([]row, *Anonymity, error) {
	first := map[string]row{}
	for _, r := range rows {
		if first[r["patient"]] == nil {
			first[r["patient"]] = r
		}
	}
	cols := append([]string{"_patient"}, sp.QuasiIdentifiers...)
	cfg := kanon.Config{Insensitive: []string{"_patient"}, K: sp.K, SuppressionLimit: sp.Suppress}
	if sp.LDiverse != nil {
		cols = append(cols, "_sensitive")
		cfg.Sensitive, cfg.L = "_sensitive", sp.LDiverse.L
	}
	t := &kanon.Table{Columns: cols}
	levels := make([]map[string][]string, len(sp.QuasiIdentifiers))
	for i := range levels {
		levels[i] = map[string][]string{}
	}
	for _, p := range patients {
		r := first[p.pseudonym]
		cells := []string{p.pseudonym}
		for i, q := range sp.QuasiIdentifiers {
			v := r[q]
			cells = append(cells, v)
			if _, ok := levels[i][v]; !ok {
				levels[i][v] = levelsOf(q, sp.Fields[q], v, p.address)
			}
		}
		if sp.LDiverse != nil {
			cells = append(cells, p.sensitive)
		}
		t.Rows = append(t.Rows, cells)
	}
	for i, q := range sp.QuasiIdentifiers {
		cfg.QuasiIdentifiers = append(cfg.QuasiIdentifiers, kanon.QuasiIdentifier{Column: q, Hierarchy: buildHierarchy(levels[i])})
	}
	res, err := kanon.Anonymize(t, cfg)
	if err != nil {
		if errors.Is(err, kanon.ErrInvalid) {
			return nil, nil, fmt.Errorf("deidjobs: k-anonymity: %w", err)
		}
		return nil, nil, err
	}
	gen := map[string][]string{}
	for _, o := range res.Output().Rows {
		gen[o[0]] = o[1 : 1+len(sp.QuasiIdentifiers)]
	}
	var out []row
	for _, r := range rows {
		g, ok := gen[r["patient"]]
		if !ok {
			continue // suppressed
		}
		for i, q := range sp.QuasiIdentifiers {
			r[q] = g[i]
		}
		out = append(out, r)
	}
	rep := res.Report()
	a := &Anonymity{QuasiIdentifiers: sp.QuasiIdentifiers, KRequested: sp.K, KReached: res.K, LDiverse: sp.LDiverse, LReached: res.L,
		SuppressionLimit: sp.Suppress, Suppressed: res.Suppressed, Transformation: rep.Transformation, Loss: rep.Loss,
		LossMetric: rep.Metric, Classes: res.Classes, NodesChecked: res.NodesChecked}
	return out, a, nil
}

// encode writes the rows as CSV (header first) and as JSON lines.
func encode(columns []string, rows []row) ([]byte, []byte, error) {
	var c, j bytes.Buffer
	w := csv.NewWriter(&c)
	if err := w.Write(columns); err != nil {
		return nil, nil, err
	}
	cells := make([]string, len(columns))
	for _, r := range rows {
		for i, col := range columns {
			cells[i] = r[col]
		}
		if err := w.Write(cells); err != nil {
			return nil, nil, err
		}
		// Keys in column order.
		j.WriteByte('{')
		for i, col := range columns {
			if i > 0 {
				j.WriteByte(',')
			}
			k, _ := json.Marshal(col)
			v, _ := json.Marshal(r[col])
			j.Write(k)
			j.WriteByte(':')
			j.Write(v)
		}
		j.WriteString("}\n")
	}
	w.Flush()
	return c.Bytes(), j.Bytes(), w.Error()
}

func eventOf(call *medguard.Call, action, jobID string) gate.Event {
	return gate.Event{Call: call, Action: action, TargetType: "deid_job", TargetID: jobID, Allowed: true,
		Rule: policy.RuleDeidJob + ":" + jobID}
}
