package console

import (
	"net/http"
	"time"

	"medguard"
	"medguard/internal/idnum"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// Patient registration (登记患者, SPEC §4): every field of records.NewPatient,
// checked by the service, a refusal shown next to its field in words; an
// admission may be made at once (住院登记). After registration the
// patient's page opens.

func init() {
	register(
		Page{Method: "GET", Path: "/patients/new", Any: []policy.Permission{policy.PatientCreate},
			Nav: &Nav{Key: "nav.register", Order: 22}, Handle: registrationPage},
		Page{Method: "POST", Path: "/patients/new", Any: []policy.Permission{policy.PatientCreate}, Handle: registerPatient},
	)
}

// causeCodes name the causes of refused patient fields in catalog keys
// (clinical.patient.error.<field>.<code>).
var causeCodes = map[string]error{
	"length":   idnum.ErrLength,
	"format":   idnum.ErrFormat,
	"area":     idnum.ErrArea,
	"birth":    idnum.ErrBirthDate,
	"checksum": idnum.ErrChecksum,
	"date":     records.ErrDateFormat,
	"range":    records.ErrBirthDateRange,
	"mismatch": records.ErrBirthDateMismatch,
	"differs":  records.ErrGenderMismatch,
}

// deptOption is a department offered in a form.
type deptOption struct {
	Code, Name string
}

// registrationView is the registration form.
type registrationView struct {
	Patient records.NewPatient
	Genders []string
	Error   *fieldError
	// Admission at registration: the departments the user may admit to,
	// the one chosen ("" for none) and the time.
	CanAdmit    bool
	Departments []deptOption
	Department  string
	AdmittedAt  string
}

func registrationPage(rq *Request) error {
	return rq.Render(http.StatusOK, "patient_new", "clinical.patient.title", rq.registrationView(records.NewPatient{}))
}

func (rq *Request) registrationView(p records.NewPatient) registrationView {
	v := registrationView{Patient: p, Genders: records.Genders, CanAdmit: rq.Can(policy.AdmissionManage),
		Departments: rq.admissionDepartments(), AdmittedAt: rq.localInput(rq.Deps.Clock.Now())}
	return v
}

// admissionDepartments are the departments the user may admit patients
// to: every department with hospital-wide scope, else their own.
func (rq *Request) admissionDepartments() []deptOption {
	var out []deptOption
	for _, d := range rq.c.dir.departments() {
		if rq.Can(policy.AllDepartments) || d.Code == rq.Call.Actor.Department {
			out = append(out, deptOption{Code: d.Code, Name: d.Name})
		}
	}
	return out
}

func registerPatient(rq *Request) error {
	p := records.NewPatient{Name: rq.form("name"), Gender: rq.form("gender"), BirthDate: rq.form("birth_date"),
		IDNumber: rq.form("id_number"), Phone: rq.form("phone"), Address: rq.form("address"), MRN: rq.form("mrn")}
	v := rq.registrationView(p)
	if p.Gender == "" && p.IDNumber != "" {
		// "From the ID number", as the birth date is: the service checks
		// the number (and a gender given) itself.
		if info, err := idnum.ValidateAt(p.IDNumber, rq.Deps.Clock.Now()); err == nil {
			p.Gender = info.Gender
		}
	}
	v.Department, v.AdmittedAt = rq.form("department"), rq.form("admitted_at")
	refuse := func(status int, fe *fieldError) error {
		v.Error = fe
		return rq.Render(status, "patient_new", "clinical.patient.title", v)
	}
	// The admission's fields are read first: a patient is not registered
	// when the admission that goes with it cannot be made.
	var admittedAt time.Time
	if v.Department != "" {
		known := false
		for _, d := range v.Departments {
			known = known || d.Code == v.Department
		}
		if !known || !v.CanAdmit {
			return refuse(http.StatusUnprocessableEntity, &fieldError{Field: "department", Key: "clinical.admit.error.department"})
		}
		t, err := rq.localTime("admitted_at", v.AdmittedAt, false)
		if err != nil || t.After(rq.Deps.Clock.Now().Add(time.Hour)) {
			return refuse(http.StatusUnprocessableEntity, &fieldError{Field: "admitted_at", Key: "clinical.admit.error.admitted_at"})
		}
		admittedAt = t
	}
	rq.Call.Purpose = clinicalPurpose(rq)
	created, err := rq.Deps.Records.CreatePatient(rq.Context(), rq.Call, p)
	if err != nil {
		fe, ok := rq.fieldErrorOf(err, "clinical.patient.error")
		if !ok {
			return err
		}
		status := http.StatusUnprocessableEntity
		if medguard.IsKind(err, medguard.Conflict) {
			status = http.StatusConflict
		}
		return refuse(status, fe)
	}
	if v.Department == "" {
		return rq.Redirect("/patients/"+created.ID, "patient_registered")
	}
	if _, err := rq.Deps.Records.Admit(rq.Context(), rq.Call, created.ID, v.Department, admittedAt); err != nil {
		if _, ok := rq.fieldErrorOf(err, "clinical.admit.error"); !ok && !medguard.IsKind(err, medguard.Forbidden) {
			return err
		}
		return rq.Redirect("/patients/"+created.ID+"/admissions", "registered_not_admitted")
	}
	return rq.Redirect("/patients/"+created.ID, "patient_registered_admitted")
}

// Bad reports whether the form's refusal names field.
func (v registrationView) Bad(field string) bool { return v.Error != nil && v.Error.Field == field }
