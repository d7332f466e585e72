package console

import (
	"net/http"
	"strconv"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/policy"
	"medguard/internal/trail"
)

// The audit log (SPEC §5): search by POST (a patient id is opaque but still
// says whose trail is looked at, so it stays out of URLs), the state of the
// log — its latest signed checkpoint and whether the signature verifies with
// the verifier key — and one entry with its inclusion proof verified here,
// on the server. The patient access report (患者访问记录) is reached from
// the audit page with a patient id, and is written in the console's
// language.

func init() {
	read := []policy.Permission{policy.AuditRead}
	register(
		Page{Method: "GET", Path: "/audit", Any: read, Nav: &Nav{Key: "nav.audit", Order: 50}, Handle: auditPage},
		Page{Method: "POST", Path: "/audit", Any: read, Handle: auditSearch},
		Page{Method: "GET", Path: "/audit/entries/{index}", Any: read, Handle: auditEntry},
		Page{Method: "GET", Path: "/audit/verify", Any: read, Handle: auditVerifyForm},
		Page{Method: "POST", Path: "/audit/access-report", Any: read, Handle: accessReportForm},
		Page{Method: "GET", Path: "/patients/{id}/access-report", Any: read, Handle: accessReportPage},
	)
}

// LogState is the audit log's latest signed checkpoint and whether it
// verifies with the log's verifier key.
type LogState struct {
	Size     uint64
	Root     []byte
	SignedAt time.Time
	Verified bool
	Key      string // the note verifier key
}

// logState reads and verifies the latest checkpoint.
func logState(rq *Request) (*LogState, error) {
	cp, err := rq.Deps.Trail.Checkpoint(rq.Context(), rq.Call)
	if err != nil {
		return nil, err
	}
	key, err := rq.Deps.Trail.VerifierKey(rq.Context(), rq.Call)
	if err != nil {
		return nil, err
	}
	st := &LogState{Size: cp.Size, Root: cp.Root, SignedAt: cp.SignedAt, Key: key}
	if _, size, root, err := audit.OpenCheckpoint([]byte(cp.Note), key); err == nil && size == cp.Size {
		st.Verified, st.Root = true, root
	}
	return st, nil
}

// auditQuery is the search form as given.
type auditQuery struct {
	Actor, Patient, Action, From, To string
}

type auditView struct {
	Log      *LogState
	Query    auditQuery
	Entries  []auditRow
	Searched bool
	Next     uint64
	Error    *formError
}

func auditPage(rq *Request) error {
	st, err := logState(rq)
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "audit", "audit.title", auditView{Log: st})
}

func auditSearch(rq *Request) error {
	q := auditQuery{Actor: rq.form("actor"), Patient: rq.form("patient"), Action: rq.form("action"),
		From: rq.form("from"), To: rq.form("to")}
	v := auditView{Query: q}
	st, err := logState(rq)
	if err != nil {
		return err
	}
	v.Log = st
	fail := func(err error) error {
		fe, ok := rq.asFormError(err, "audit.error.query")
		if !ok {
			return err
		}
		v.Error = fe
		return rq.Render(http.StatusUnprocessableEntity, "audit", "audit.title", v)
	}
	from, err := rq.localTime("from", q.From, false)
	if err != nil {
		return fail(err)
	}
	to, err := rq.localTime("to", q.To, true)
	if err != nil {
		return fail(err)
	}
	var before uint64
	if b := rq.form("before"); b != "" {
		if before, err = uintValue("before", b); err != nil {
			return fail(err)
		}
	}
	es, next, err := rq.Deps.Trail.Search(rq.Context(), rq.Call, trail.Query{Actor: q.Actor, PatientID: q.Patient,
		Action: q.Action, From: from, To: to, Before: before, Limit: PageSize})
	if err != nil {
		return fail(err)
	}
	for _, e := range es {
		v.Entries = append(v.Entries, rowOf(e))
	}
	v.Next, v.Searched = next, true
	return rq.Render(http.StatusOK, "audit", "audit.title", v)
}

// auditRow is an entry with its time read.
type auditRow struct {
	Index uint64
	Leaf  []byte
	Entry audit.Fields
	At    time.Time
}

func rowOf(e trail.Entry) auditRow {
	at, _ := time.Parse(time.RFC3339Nano, e.Entry.Time)
	return auditRow{Index: e.Index, Leaf: e.Leaf, Entry: e.Entry, At: at}
}

// entryView is one entry with its inclusion proof, verified.
type entryView struct {
	Entry    auditRow
	Log      *LogState
	Covered  bool // the entry is in the tree of the latest checkpoint
	Proof    [][]byte
	LeafHash []byte
	Verified bool
}

func auditVerifyForm(rq *Request) error {
	n, err := uintValue("index", rq.URL.Query().Get("index"))
	if err != nil {
		return err
	}
	return rq.Redirect("/audit/entries/"+strconv.FormatUint(n, 10), "")
}

func auditEntry(rq *Request) error {
	index, err := uintValue("index", rq.PathValue("index"))
	if err != nil {
		return &notFound
	}
	st, err := logState(rq)
	if err != nil {
		return err
	}
	es, err := rq.Deps.Trail.Entries(rq.Context(), rq.Call, index, index+1)
	if err != nil {
		return err
	}
	if len(es) != 1 {
		return &medguard.Error{Kind: medguard.NotFound, Message: "no such audit entry"}
	}
	v := entryView{Entry: rowOf(es[0]), Log: st, LeafHash: rfc6962.DefaultHasher.HashLeaf(es[0].Leaf)}
	if index < st.Size && st.Verified {
		v.Covered = true
		p, err := rq.Deps.Trail.InclusionProof(rq.Context(), rq.Call, index, st.Size)
		if err != nil {
			return err
		}
		v.Proof = p
		v.Verified = proof.VerifyInclusion(rfc6962.DefaultHasher, index, st.Size, v.LeafHash, p, st.Root) == nil
	}
	return rq.Render(http.StatusOK, "audit_entry", "audit.entry.title", v)
}

// accessReportForm takes a patient id from the audit page to the report.
func accessReportForm(rq *Request) error {
	id := idPath(rq.form("patient"))
	if id == "" {
		st, err := logState(rq)
		if err != nil {
			return err
		}
		return rq.Render(http.StatusUnprocessableEntity, "audit", "audit.title",
			auditView{Log: st, Error: &formError{Key: "audit.error.patient_id", Field: "patient"}})
	}
	return rq.Redirect("/patients/"+id+"/access-report", "")
}

type reportView struct {
	Report   *trail.AccessReport
	Next     string
	From, To string
	Error    *formError
}

func accessReportPage(rq *Request) error {
	id := rq.PathValue("id")
	lang := trail.Chinese
	if rq.Lang == "en" {
		lang = trail.English
	}
	q := rq.URL.Query()
	v := reportView{From: q.Get("from"), To: q.Get("to")}
	from, ferr := rq.localTime("from", v.From, false)
	to, terr := rq.localTime("to", v.To, true)
	if ferr != nil || terr != nil {
		from, to = time.Time{}, time.Time{}
		v.Error = &formError{Key: "report.error.period"}
	}
	var before uint64
	if c := rq.Cursor(); c != "" {
		before, _ = strconv.ParseUint(c, 10, 63)
	}
	rep, next, err := rq.Deps.Trail.AccessReport(rq.Context(), rq.Call, trail.ReportQuery{PatientID: id, From: from, To: to,
		Lang: lang, Before: before, Limit: PageSize})
	if err != nil {
		if fe, ok := rq.asFormError(err, "report.error.period"); ok {
			v.Error = fe
			rep, next, err = rq.Deps.Trail.AccessReport(rq.Context(), rq.Call, trail.ReportQuery{PatientID: id, Lang: lang,
				Before: before, Limit: PageSize})
		}
		if err != nil {
			return err
		}
	}
	v.Report = rep
	if next > 0 {
		v.Next = strconv.FormatUint(next, 10)
	}
	status := http.StatusOK
	if v.Error != nil {
		status = http.StatusUnprocessableEntity
	}
	return rq.Render(status, "access_report", "report.title", v)
}
