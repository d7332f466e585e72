package console

import (
	"encoding/json"
	"net/http"
	"strings"

	"medguard/internal/approvals"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// The retention pages (SPEC §4): the records whose retention has ended,
// with a form to ask for their destruction (a four-eyes request a security
// officer decides in the approvals inbox), and the destruction
// certificates (销毁证明), readable and downloadable; and the legal holds
// (诉讼保全 / 封存) with a form to place one and, for each, to ask for its
// lifting (a four-eyes request).
func init() {
	register(
		Page{Method: "GET", Path: "/retention", Any: []policy.Permission{policy.RetentionRead},
			Nav: &Nav{Key: "nav.retention", Order: 57}, Handle: retentionPage},
		Page{Method: "POST", Path: "/retention/destroy", Any: []policy.Permission{policy.RecordDestroy}, Handle: requestDestruction},
		Page{Method: "POST", Path: "/retention/holds", Any: []policy.Permission{policy.RetentionHold}, Handle: placeHold},
		Page{Method: "POST", Path: "/retention/holds/{id}/lift", Any: []policy.Permission{policy.RetentionHold}, Handle: liftHold},
		Page{Method: "GET", Path: "/retention/certificates/{id}", Any: []policy.Permission{policy.RetentionRead}, Handle: certificatePage},
		Page{Method: "GET", Path: "/retention/certificates/{id}/download", Any: []policy.Permission{policy.RetentionRead},
			Handle: downloadCertificate},
	)
}

func retentionPage(rq *Request) error {
	expired, next, err := rq.Deps.Records.ExpiredRecords(rq.Context(), rq.Call, rq.Cursor(), PageSize)
	if err != nil {
		return err
	}
	certs, _, err := rq.Deps.Records.Certificates(rq.Context(), rq.Call, "", PageSize)
	if err != nil {
		return err
	}
	holds, err := rq.Deps.Records.Holds(rq.Context(), rq.Call, "active")
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "retention", "retention.title", map[string]any{"Expired": expired, "Next": next,
		"Certificates": certs, "CanDestroy": rq.Perms[policy.RecordDestroy], "Holds": holds,
		"CanHold": rq.Perms[policy.RetentionHold]})
}

// placeHold places a legal hold from the form: a patient's id, or record
// ids separated by spaces, commas or new lines.
func placeHold(rq *Request) error {
	ids := strings.FieldsFunc(rq.PostFormValue("record_ids"), func(r rune) bool {
		return r == ',' || r == '，' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	})
	if _, err := rq.Deps.Records.PlaceHold(rq.Context(), rq.Call, records.NewHold{
		PatientID: strings.TrimSpace(rq.PostFormValue("patient_id")), RecordIDs: ids,
		Reason: rq.PostFormValue("reason"), Reference: rq.PostFormValue("reference")}); err != nil {
		return err
	}
	return rq.Redirect("/retention", "hold_placed")
}

// liftHold asks for a hold to be lifted: a security officer other than
// the requester and the person who placed it decides in the inbox.
func liftHold(rq *Request) error {
	payload, err := json.Marshal(approvals.HoldLiftPayload{HoldID: rq.PathValue("id")})
	if err != nil {
		return err
	}
	if _, err := rq.Deps.Approvals.Request(rq.Context(), rq.Call, approvals.NewRequest{Kind: approvals.HoldLift,
		Payload: payload, Reason: strings.TrimSpace(rq.PostFormValue("reason"))}); err != nil {
		return err
	}
	return rq.Redirect("/approvals", "hold_lift_requested")
}

func requestDestruction(rq *Request) error {
	ids := rq.PostForm["record"]
	payload, err := json.Marshal(records.DestructionRequest{RecordIDs: ids})
	if err != nil {
		return err
	}
	if _, err := rq.Deps.Approvals.Request(rq.Context(), rq.Call, approvals.NewRequest{Kind: approvals.RecordsDestroy,
		Payload: payload, Reason: strings.TrimSpace(rq.PostFormValue("reason"))}); err != nil {
		return err
	}
	return rq.Redirect("/approvals", "destruction_requested")
}

func certificatePage(rq *Request) error {
	_, signed, err := rq.Deps.Records.Certificate(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "certificate", "retention.certificate.title", map[string]any{"C": signed.Certificate,
		"VerifierKey": signed.VerifierKey})
}

func downloadCertificate(rq *Request) error {
	id := rq.PathValue("id")
	body, _, err := rq.Deps.Records.Certificate(rq.Context(), rq.Call, id)
	if err != nil {
		return err
	}
	rq.W.Header().Set("Content-Type", "application/json")
	rq.W.Header().Set("Content-Disposition", `attachment; filename="destruction-certificate-`+id+`.json"`)
	rq.W.WriteHeader(http.StatusOK)
	_, err = rq.W.Write(append(body, '\n'))
	return err
}

// recordTypeName names a record type in the page's language.
func recordTypeName(lang, code string) string {
	rt, ok := policy.LookupRecordType(code)
	switch {
	case !ok:
		return code
	case lang == "en":
		return rt.NameEN
	}
	return rt.NameZH
}
