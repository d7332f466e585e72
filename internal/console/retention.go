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
// certificates (销毁证明), readable and downloadable.
func init() {
	register(
		Page{Method: "GET", Path: "/retention", Any: []policy.Permission{policy.RetentionRead},
			Nav: &Nav{Key: "nav.retention", Order: 57}, Handle: retentionPage},
		Page{Method: "POST", Path: "/retention/destroy", Any: []policy.Permission{policy.RecordDestroy}, Handle: requestDestruction},
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
	return rq.Render(http.StatusOK, "retention", "retention.title", map[string]any{"Expired": expired, "Next": next,
		"Certificates": certs, "CanDestroy": rq.Perms[policy.RecordDestroy]})
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
