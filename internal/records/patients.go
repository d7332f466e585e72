package records

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

var errPatientChanged = &medguard.Error{Kind: medguard.Conflict, Field: "version",
	Message: "the patient was changed meanwhile; reload and retry"}

// Patient is a patient with their identifying data, decrypted.
type Patient struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Gender      string    `json:"gender"`
	BirthDate   string    `json:"birth_date,omitempty"`
	IDNumber    string    `json:"id_number,omitempty"`
	Phone       string    `json:"phone,omitempty"`
	Address     string    `json:"address,omitempty"`
	MRN         string    `json:"mrn,omitempty"`
	Departments []string  `json:"departments"`
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// BreakGlass is set when this read was an emergency access: it names
	// the break-glass window it belongs to.
	BreakGlass *BreakGlassNotice `json:"break_glass,omitempty"`
}

// NewPatient is a request to register a patient (Appendix A).
type NewPatient struct {
	Name      string `json:"name"`
	Gender    string `json:"gender"`
	BirthDate string `json:"birth_date"`
	IDNumber  string `json:"id_number"`
	Phone     string `json:"phone"`
	Address   string `json:"address"`
	MRN       string `json:"mrn"`
}

// PatientChanges is a partial update of a patient; nil fields stay as they
// are, and an empty string clears an optional field.
type PatientChanges struct {
	Name      *string `json:"name"`
	Gender    *string `json:"gender"`
	BirthDate *string `json:"birth_date"`
	IDNumber  *string `json:"id_number"`
	Phone     *string `json:"phone"`
	Address   *string `json:"address"`
	MRN       *string `json:"mrn"`
	// Version, if set, must be the patient's current version (else 409).
	Version *int `json:"version"`
}

// normalize validates a complete set of patient fields and returns them
// normalised.
func normalize(p NewPatient, now time.Time) (NewPatient, error) {
	p.Name = strings.TrimSpace(p.Name)
	if err := required("name", p.Name); err != nil {
		return p, err
	}
	if err := text("name", p.Name, 50, false); err != nil {
		return p, err
	}
	if p.Gender == "" {
		p.Gender = "unknown"
	}
	if err := checkGender(p.Gender); err != nil {
		return p, err
	}
	var birth time.Time
	var err error
	if p.BirthDate != "" {
		if birth, err = checkBirthDate(p.BirthDate, now); err != nil {
			return p, err
		}
	}
	if p.IDNumber != "" {
		n, info, err := checkIDNumber(p.IDNumber, now)
		if err != nil {
			return p, err
		}
		p.IDNumber = n
		if p.BirthDate == "" {
			p.BirthDate = info.BirthDate.Format(time.DateOnly)
		} else if !birth.Equal(info.BirthDate) {
			return p, &medguard.Error{Kind: medguard.Invalid, Field: "birth_date",
				Message: "birth_date does not match the birth date in id_number", Err: ErrBirthDateMismatch}
		}
		if (p.Gender == "male" || p.Gender == "female") && p.Gender != info.Gender {
			return p, &medguard.Error{Kind: medguard.Invalid, Field: "gender", Message: "gender does not match id_number",
				Err: ErrGenderMismatch}
		}
	}
	if p.Phone != "" {
		if p.Phone, err = checkPhone(p.Phone); err != nil {
			return p, err
		}
	}
	p.Address = strings.TrimSpace(p.Address)
	if err := text("address", p.Address, 200, false); err != nil {
		return p, err
	}
	if p.MRN != "" {
		if p.MRN, err = checkMRN(p.MRN); err != nil {
			return p, err
		}
	}
	return p, nil
}

// sealedPatient is a patient's sealed columns and blind indexes. The
// indexes are computed in the writing transaction (index), under the index
// key version active there; plain keeps the indexed values for that, in
// memory only.
type sealedPatient struct {
	name, gender, birth, idNumber, phone, address, mrn []byte
	nameIdx, idNumberIdx, phoneIdx, mrnIdx             []byte
	indexVersion                                       uint32
	plain                                              NewPatient
}

func (s *Service) seal(k *keys.DataKey, id string, p NewPatient) sealedPatient {
	l := func(col string) keys.Location { return loc("patients", id, col) }
	opt := func(col, v string) []byte {
		if v == "" {
			return nil
		}
		return k.SealString(l(col), v)
	}
	return sealedPatient{
		name: k.SealString(l("name"), p.Name), gender: k.SealString(l("gender"), p.Gender),
		birth: opt("birth_date", p.BirthDate), idNumber: opt("id_number", p.IDNumber), phone: opt("phone", p.Phone),
		address: opt("address", p.Address), mrn: opt("mrn", p.MRN), plain: p,
	}
}

// index computes sp's blind indexes under the index key version active in
// tx: writes always index under the newest version, even while a rotation
// re-indexes the rows written before it.
func (s *Service) index(ctx context.Context, tx *sql.Tx, sp *sealedPatient) error {
	b, err := s.keys.IndexForWrite(ctx, tx)
	if err != nil {
		return err
	}
	sp.nameIdx, sp.idNumberIdx, sp.phoneIdx, sp.mrnIdx = patientIndexes(b, sp.plain.Name, sp.plain.IDNumber, sp.plain.Phone, sp.plain.MRN)
	sp.indexVersion = b.Version()
	return nil
}

// patientIndexes are a patient's blind indexes under b (nil for an empty
// optional field).
func patientIndexes(b *keys.BlindIndex, name, idNumber, phone, mrn string) (nameIdx, idNumberIdx, phoneIdx, mrnIdx []byte) {
	idx := func(field, v string) []byte {
		if v == "" {
			return nil
		}
		return b.Of(field, v)
	}
	return b.Of("name", name), idx("id_number", idNumber), idx("phone", phone), idx("mrn", mrn)
}

// indexMatch is the condition "column equals one of the terms" (a value's
// index under each live index key version, keys.IndexLookup), with its
// placeholders numbered from first.
func indexMatch(column string, terms [][]byte, first int) (string, []any) {
	var sb strings.Builder
	args := make([]any, len(terms))
	sb.WriteString(column + " IN (")
	for i, t := range terms {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("$" + strconv.Itoa(first+i))
		args[i] = t
	}
	sb.WriteString(")")
	return sb.String(), args
}

// uniqueTaken returns a Conflict naming the field if another patient has
// the same ID number or 病案号, whichever index key version it is indexed
// under.
func (s *Service) uniqueTaken(ctx context.Context, tx *sql.Tx, id string, sp sealedPatient) error {
	for _, c := range []struct {
		field, column, value string
	}{{"id_number", "id_number_index", sp.plain.IDNumber}, {"mrn", "mrn_index", sp.plain.MRN}} {
		if c.value == "" {
			continue
		}
		terms, err := s.keys.IndexLookup(ctx, tx, c.field, c.value)
		if err != nil {
			return err
		}
		cond, args := indexMatch(c.column, terms, 2)
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM patients WHERE `+cond+` AND id <> $1`, append([]any{id}, args...)...).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &medguard.Error{Kind: medguard.Conflict, Field: c.field, Message: "another patient has this " + c.field}
		}
	}
	return nil
}

// CreatePatient registers a patient. The registering user's department
// becomes the first department holding the patient's data.
func (s *Service) CreatePatient(ctx context.Context, call *medguard.Call, in NewPatient) (*Patient, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	id := medguard.NewID(now)
	var depts []string
	if call.Actor.Department != "" {
		depts = []string{call.Actor.Department}
	}
	var out *Patient
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PatientCreate,
		Resource: policy.Resource{Type: "patient", ID: id, PatientID: id, Departments: depts}},
		func(policy.Decision) (audit.Mutation, error) {
			p, err := normalize(in, s.today())
			if err != nil {
				return nil, err
			}
			k, err := s.keys.NewDataKey(patientOwner(id))
			if err != nil {
				return nil, err
			}
			sp := s.seal(k, id, p)
			out = &Patient{ID: id, Name: p.Name, Gender: p.Gender, BirthDate: p.BirthDate, IDNumber: p.IDNumber,
				Phone: p.Phone, Address: p.Address, MRN: p.MRN, Departments: depts, Version: 1, CreatedAt: now, UpdatedAt: now}
			if out.Departments == nil {
				out.Departments = []string{}
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				if err := s.uniqueTaken(ctx, tx, id, sp); err != nil {
					return err
				}
				if err := s.index(ctx, tx, &sp); err != nil {
					return err
				}
				if err := s.keys.Save(ctx, tx, k); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO patients (id, name, gender, birth_date, id_number, phone, address, mrn,
					name_index, id_number_index, phone_index, mrn_index, index_version, version, created_at, created_by, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $15, 1, $13, $14, $13)`,
					id, sp.name, sp.gender, sp.birth, sp.idNumber, sp.phone, sp.address, sp.mrn,
					sp.nameIdx, sp.idNumberIdx, sp.phoneIdx, sp.mrnIdx, medguard.Millis(now), call.Actor.Name, int64(sp.indexVersion))
				if err != nil {
					return err
				}
				for _, d := range depts {
					if err := addPatientDepartment(ctx, tx, id, d, now); err != nil {
						return err
					}
				}
				return nil
			}, nil
		})
	if err != nil {
		s.keys.Forget(patientOwner(id))
		return nil, err
	}
	return out, nil
}

// storedPatient is a patient row as stored.
type storedPatient struct {
	id                                                 string
	name, gender, birth, idNumber, phone, address, mrn []byte
	version                                            int
	created, updated                                   int64
}

// patientColumns are a stored patient's columns, in scan's order.
const patientColumns = `id, name, gender, birth_date, id_number, phone, address, mrn, version, created_at, updated_at`

// scan reads a row of patientColumns.
func (p *storedPatient) scan(row interface{ Scan(...any) error }) error {
	return row.Scan(&p.id, &p.name, &p.gender, &p.birth, &p.idNumber, &p.phone, &p.address, &p.mrn, &p.version,
		&p.created, &p.updated)
}

func (s *Service) loadPatient(ctx context.Context, id string) (*storedPatient, error) {
	if !medguard.ValidID(id) {
		return nil, errNoPatient
	}
	var p storedPatient
	err := p.scan(s.db.QueryRowContext(ctx, `SELECT `+patientColumns+` FROM patients WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoPatient
	}
	if err != nil {
		return nil, medguard.Wrap("records.loadPatient", err)
	}
	return &p, nil
}

// searchMatches reads the patients matching where (at most MaxMatches, in
// id order) and makes each a passage of action logged as
// patient.search_match, with the patient's departments: every patient a
// search shows is an entry of its own, counted in detection and in that
// patient's access report.
func (s *Service) searchMatches(ctx context.Context, call *medguard.Call, action policy.Permission, where string,
	args ...any) ([]*storedPatient, [][]string, []gate.Passage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+patientColumns+` FROM patients WHERE `+where+
		` ORDER BY id LIMIT `+strconv.Itoa(MaxMatches), args...)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rows.Close()
	var found []*storedPatient
	for rows.Next() {
		var p storedPatient
		if err := p.scan(rows); err != nil {
			return nil, nil, nil, err
		}
		found = append(found, &p)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, err
	}
	depts := make([][]string, len(found))
	items := make([]gate.Passage, len(found))
	for i, p := range found {
		if depts[i], err = s.patientDepartments(ctx, p.id); err != nil {
			return nil, nil, nil, err
		}
		items[i] = gate.Passage{Call: call, Action: action, AuditAction: "patient.search_match",
			Resource: policy.Resource{Type: "patient", ID: p.id, PatientID: p.id, Departments: depts[i]}}
	}
	return found, depts, items, nil
}

// open decrypts a stored patient.
func (s *Service) open(ctx context.Context, sp *storedPatient, depts []string) (*Patient, error) {
	owner := patientOwner(sp.id)
	p := &Patient{ID: sp.id, Departments: depts, Version: sp.version,
		CreatedAt: medguard.FromMillis(sp.created), UpdatedAt: medguard.FromMillis(sp.updated)}
	if p.Departments == nil {
		p.Departments = []string{}
	}
	for _, f := range []struct {
		col string
		ct  []byte
		dst *string
	}{{"name", sp.name, &p.Name}, {"gender", sp.gender, &p.Gender}, {"birth_date", sp.birth, &p.BirthDate},
		{"id_number", sp.idNumber, &p.IDNumber}, {"phone", sp.phone, &p.Phone}, {"address", sp.address, &p.Address},
		{"mrn", sp.mrn, &p.MRN}} {
		v, err := s.keys.OpenString(ctx, owner, loc("patients", sp.id, f.col), f.ct)
		if err != nil {
			return nil, medguard.Wrap("records.open", err)
		}
		*f.dst = v
	}
	return p, nil
}

// patientResource loads what the policy needs to know about a patient.
func (s *Service) patientResource(ctx context.Context, id string) (policy.Resource, error) {
	depts, err := s.patientDepartments(ctx, id)
	if err != nil {
		return policy.Resource{}, medguard.Wrap("records.patientResource", err)
	}
	return policy.Resource{Type: "patient", ID: id, PatientID: id, Departments: depts}, nil
}

// GetPatient returns a patient's identifying data.
func (s *Service) GetPatient(ctx context.Context, call *medguard.Call, id string) (*Patient, error) {
	sp, err := s.loadPatient(ctx, id)
	if err != nil {
		return nil, s.missing(ctx, call, policy.PatientRead, "patient", id, err)
	}
	r, err := s.patientResource(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := s.passage(ctx, call, policy.PatientRead, r)
	if err != nil {
		return nil, err
	}
	p, w, err := s.withWindow(ctx, p)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var out *Patient
	_, _, err = s.gate.Enter(ctx, p, func(d policy.Decision) (audit.Mutation, error) {
		var err error
		if out, err = s.open(ctx, sp, r.Departments); err != nil {
			return nil, err
		}
		if out.Departments, err = s.visibleDepartments(ctx, call, r.Departments); err != nil || !d.BreakGlass {
			return nil, err
		}
		// The departments shown (restricted ones are not) review it.
		return s.breakGlass(ctx, p.Call, w, touch{patientID: id, action: "patient.read", departments: out.Departments}, now, &out.BreakGlass)
	})
	return out, err
}

// missing logs an attempt on something that does not exist (it is still an
// operation by the caller) and returns the not-found error.
func (s *Service) missing(ctx context.Context, call *medguard.Call, action policy.Permission, typ, id string, cause error) error {
	if !medguard.IsKind(cause, medguard.NotFound) {
		return cause
	}
	return s.gate.Missing(ctx, gate.Passage{Call: call, Action: action,
		Resource: policy.Resource{Type: typ, ID: id}}, cause)
}

// UpdatePatient changes a patient's identifying data.
func (s *Service) UpdatePatient(ctx context.Context, call *medguard.Call, id string, ch PatientChanges) (*Patient, error) {
	sp, err := s.loadPatient(ctx, id)
	if err != nil {
		return nil, s.missing(ctx, call, policy.PatientUpdate, "patient", id, err)
	}
	r, err := s.patientResource(ctx, id)
	if err != nil {
		return nil, err
	}
	pass, err := s.passage(ctx, call, policy.PatientUpdate, r)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var out *Patient
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		if ch.Version != nil && *ch.Version != sp.version {
			return nil, errPatientChanged
		}
		cur, err := s.open(ctx, sp, r.Departments)
		if err != nil {
			return nil, err
		}
		if cur.Departments, err = s.visibleDepartments(ctx, call, r.Departments); err != nil {
			return nil, err
		}
		next := NewPatient{Name: cur.Name, Gender: cur.Gender, BirthDate: cur.BirthDate, IDNumber: cur.IDNumber,
			Phone: cur.Phone, Address: cur.Address, MRN: cur.MRN}
		for _, c := range []struct {
			src *string
			dst *string
		}{{ch.Name, &next.Name}, {ch.Gender, &next.Gender}, {ch.BirthDate, &next.BirthDate}, {ch.IDNumber, &next.IDNumber},
			{ch.Phone, &next.Phone}, {ch.Address, &next.Address}, {ch.MRN, &next.MRN}} {
			if c.src != nil {
				*c.dst = *c.src
			}
		}
		if ch.IDNumber != nil && ch.BirthDate == nil && *ch.IDNumber != "" {
			next.BirthDate = "" // taken from the new ID number
		}
		if next, err = normalize(next, s.today()); err != nil {
			return nil, err
		}
		k, err := s.keys.Current(ctx, patientOwner(id))
		if err != nil {
			return nil, medguard.Wrap("records.UpdatePatient", err)
		}
		sealed := s.seal(k, id, next)
		out = &Patient{ID: id, Name: next.Name, Gender: next.Gender, BirthDate: next.BirthDate, IDNumber: next.IDNumber,
			Phone: next.Phone, Address: next.Address, MRN: next.MRN, Departments: cur.Departments, Version: sp.version + 1,
			CreatedAt: cur.CreatedAt, UpdatedAt: now}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if err := s.uniqueTaken(ctx, tx, id, sealed); err != nil {
				return err
			}
			if err := s.index(ctx, tx, &sealed); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `UPDATE patients SET name = $1, gender = $2, birth_date = $3, id_number = $4,
				phone = $5, address = $6, mrn = $7, name_index = $8, id_number_index = $9, phone_index = $10, mrn_index = $11,
				index_version = $15, version = version + 1, updated_at = $12 WHERE id = $13 AND version = $14`,
				sealed.name, sealed.gender, sealed.birth, sealed.idNumber, sealed.phone, sealed.address, sealed.mrn,
				sealed.nameIdx, sealed.idNumberIdx, sealed.phoneIdx, sealed.mrnIdx, medguard.Millis(now), id, sp.version,
				int64(sealed.indexVersion))
			return storage.Affected(res, err, errPatientChanged)
		}, nil
	})
	return out, err
}

// Search is an exact search for patients: exactly one field is set.
type Search struct {
	IDNumber string `json:"id_number"`
	Phone    string `json:"phone"`
	MRN      string `json:"mrn"`
	Name     string `json:"name"`
}

// Match is a search result: enough to tell patients apart, not their data.
type Match struct {
	ID          string   `json:"id"`
	MaskedName  string   `json:"masked_name"`
	Gender      string   `json:"gender"`
	BirthYear   int      `json:"birth_year,omitempty"`
	Departments []string `json:"departments"`
	// Age is the patient's age in whole years today; MRNTail the last
	// characters of their 病案号 (MRNTailLength).
	Age     *int   `json:"age,omitempty"`
	MRNTail string `json:"mrn_tail,omitempty"`
}

// MaxMatches bounds the results of one search.
const MaxMatches = 50

// SearchPatients finds patients by exact ID number, phone, 病案号 or name,
// through the blind indexes. The search is one operation of the gate, and
// each match is its own entry (patient.search_match): every patient shown
// counts, in detection and in that patient's access report. A match shows
// a masked name, gender, birth year and the departments the caller may
// know of.
func (s *Service) SearchPatients(ctx context.Context, call *medguard.Call, q Search) ([]Match, error) {
	var field, column, value string
	set := 0
	for _, c := range []struct{ field, column, value string }{
		{"id_number", "id_number_index", q.IDNumber}, {"phone", "phone_index", q.Phone},
		{"mrn", "mrn_index", q.MRN}, {"name", "name_index", q.Name}} {
		if strings.TrimSpace(c.value) != "" {
			field, column, value = c.field, c.column, strings.TrimSpace(c.value)
			set++
		}
	}
	lead := gate.Passage{Call: call, Action: policy.PatientSearch, Resource: policy.Resource{Type: "patient_search"}}
	var found []*storedPatient
	var depts [][]string
	out := []Match{}
	err := s.gate.EnterList(ctx, lead, func(policy.Decision) ([]gate.Passage, error) {
		if set != 1 {
			return nil, medguard.InvalidField("query", "give exactly one of id_number, phone, mrn, name")
		}
		if err := text(field, value, 64, false); err != nil {
			return nil, err
		}
		if field == "id_number" {
			n, _, err := checkIDNumber(value, s.today())
			if err != nil {
				return nil, err
			}
			value = n
		}
		// The value's index under every live index key version: a
		// rotation's re-index may not have reached the patient yet.
		terms, err := s.keys.IndexLookup(ctx, s.db, field, value)
		if err != nil {
			return nil, err
		}
		cond, args := indexMatch(column, terms, 1)
		var items []gate.Passage
		found, depts, items, err = s.searchMatches(ctx, call, policy.PatientSearch, cond, args...)
		return items, err
	}, func(ds []policy.Decision) error {
		for i, p := range found {
			if !ds[i].Allowed {
				continue
			}
			m, err := s.match(ctx, call, p, depts[i])
			if err != nil {
				return err
			}
			out = append(out, *m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// match shows one search result: enough to tell patients apart.
func (s *Service) match(ctx context.Context, call *medguard.Call, sp *storedPatient, depts []string) (*Match, error) {
	owner := patientOwner(sp.id)
	name, err := s.keys.OpenString(ctx, owner, loc("patients", sp.id, "name"), sp.name)
	if err != nil {
		return nil, err
	}
	gender, err := s.keys.OpenString(ctx, owner, loc("patients", sp.id, "gender"), sp.gender)
	if err != nil {
		return nil, err
	}
	birth, err := s.keys.OpenString(ctx, owner, loc("patients", sp.id, "birth_date"), sp.birth)
	if err != nil {
		return nil, err
	}
	visible, err := s.visibleDepartments(ctx, call, depts)
	if err != nil {
		return nil, err
	}
	mrn, err := s.keys.OpenString(ctx, owner, loc("patients", sp.id, "mrn"), sp.mrn)
	if err != nil {
		return nil, err
	}
	m := &Match{ID: sp.id, MaskedName: maskName(name), Gender: gender, Departments: visible, MRNTail: mrnTail(mrn)}
	if t, err := time.Parse(time.DateOnly, birth); err == nil {
		m.BirthYear = t.Year()
	}
	if age, ok := Age(birth, s.today()); ok {
		m.Age = &age
	}
	return m, nil
}

// PatientSummary is a line of a department's patient list.
type PatientSummary struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Gender    string `json:"gender"`
	BirthDate string `json:"birth_date,omitempty"`
	MRN       string `json:"mrn,omitempty"`
}

// ListPatients lists the patients whose data the department holds (the
// caller's own department; hospital-wide scope may name another, except a
// restricted one), a page at a time in registration order. The list is one
// operation of the gate on the department, and each patient listed is an
// entry of its own (patient.list): every patient shown counts, in
// detection and in that patient's access report.
func (s *Service) ListPatients(ctx context.Context, call *medguard.Call, department, after string, limit int) ([]PatientSummary, string, error) {
	if department == "" {
		department = call.Actor.Department
	}
	out := []PatientSummary{}
	var next string
	lead := gate.Passage{Call: call, Action: policy.PatientList, Resource: policy.Resource{Type: "department"}}
	if department != "" {
		code, err := s.department(ctx, "department", department)
		if err != nil {
			// Unknown: logged without the code the client typed.
			_, _, gerr := s.gate.Enter(ctx, lead, func(policy.Decision) (audit.Mutation, error) { return nil, err })
			return nil, "", gerr
		}
		restricted, err := s.RestrictedDepartments(ctx)
		if err != nil {
			return nil, "", err
		}
		lead.Resource = policy.Resource{Type: "department", ID: code, Departments: []string{code}, Restricted: restricted[code]}
	}
	var rows []storedPatient
	err := s.gate.EnterList(ctx, lead, func(policy.Decision) ([]gate.Passage, error) {
		if department == "" {
			return nil, medguard.InvalidField("department", "department is required for users without one")
		}
		rs, err := s.db.QueryContext(ctx, `SELECT p.id, p.name, p.gender, p.birth_date, p.mrn FROM patient_departments pd
			JOIN patients p ON p.id = pd.patient_id WHERE pd.department = $1 AND pd.patient_id > $2
			ORDER BY pd.patient_id LIMIT $3`, lead.Resource.ID, after, limit+1)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		for rs.Next() {
			var sp storedPatient
			if err := rs.Scan(&sp.id, &sp.name, &sp.gender, &sp.birth, &sp.mrn); err != nil {
				return nil, err
			}
			rows = append(rows, sp)
		}
		if err := rs.Err(); err != nil {
			return nil, err
		}
		if len(rows) > limit {
			rows, next = rows[:limit], rows[limit-1].id
		}
		items := make([]gate.Passage, len(rows))
		for i, sp := range rows {
			items[i] = gate.Passage{Call: call, Action: policy.PatientList, Resource: policy.Resource{Type: "patient", ID: sp.id,
				PatientID: sp.id, Departments: lead.Resource.Departments, Restricted: lead.Resource.Restricted}}
		}
		return items, nil
	}, func(ds []policy.Decision) error {
		for i := range rows {
			if !ds[i].Allowed {
				continue
			}
			p, err := s.open(ctx, &rows[i], nil)
			if err != nil {
				return err
			}
			out = append(out, PatientSummary{ID: p.ID, Name: p.Name, Gender: p.Gender, BirthDate: p.BirthDate, MRN: p.MRN})
		}
		return nil
	})
	return out, next, err
}
