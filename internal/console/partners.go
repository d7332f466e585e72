package console

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/partners"
	"medguard/internal/policy"
)

// External partners (合作单位, SPEC §8, issue 12): the list of partners
// with their agreements' state (live, expiring within 30 days, ended,
// deletion confirmation due or overdue); a partner's page with its
// agreements, linked accounts, the activity of the last three months
// against the scope, and the forms to ask for an agreement (a four-eyes
// request), link an account, terminate an agreement and record the
// deletion confirmation (删除确认). The service decides and logs; these
// pages only show and post.

func init() {
	register(
		Page{Method: "GET", Path: "/partners", Any: []policy.Permission{policy.PartnerRead},
			Nav: &Nav{Key: "nav.partners", Order: 37}, Handle: partnersPage},
		Page{Method: "POST", Path: "/partners", Any: []policy.Permission{policy.PartnerManage}, Handle: createPartner},
		Page{Method: "GET", Path: "/partners/{id}", Any: []policy.Permission{policy.PartnerRead}, Handle: partnerPage},
		Page{Method: "POST", Path: "/partners/{id}/accounts", Any: []policy.Permission{policy.PartnerManage}, Handle: linkPartnerAccount},
		Page{Method: "POST", Path: "/partners/{id}/agreements", Any: []policy.Permission{policy.PartnerManage}, Handle: askAgreement},
		Page{Method: "POST", Path: "/agreements/{id}/terminate", Any: []policy.Permission{policy.PartnerManage}, Handle: terminateAgreement},
		Page{Method: "POST", Path: "/agreements/{id}/deletion-confirmation", Any: []policy.Permission{policy.PartnerManage},
			Handle: confirmDeletion},
	)
}

type partnersView struct {
	Items     []partners.Partner
	Status    string
	Statuses  []string
	CanManage bool
}

func partnersPage(rq *Request) error {
	status := ""
	for _, s := range partners.PartnerStatuses {
		if rq.URL.Query().Get("status") == s {
			status = s
		}
	}
	ps, err := rq.Deps.Partners.ListPartners(rq.Context(), rq.Call, status)
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "partners", "partners.title", partnersView{Items: ps, Status: status,
		Statuses: partners.PartnerStatuses, CanManage: rq.Can(policy.PartnerManage)})
}

func createPartner(rq *Request) error {
	p, err := rq.Deps.Partners.CreatePartner(rq.Context(), rq.Call, partners.NewPartner{Name: rq.PostFormValue("name"),
		OrgCode: rq.PostFormValue("org_code"), ContactName: rq.PostFormValue("contact_name"),
		ContactPhone: rq.PostFormValue("contact_phone"), ContactEmail: rq.PostFormValue("contact_email")})
	if err != nil {
		return err
	}
	return rq.Redirect("/partners/"+p.ID, "partner_created")
}

type partnerView struct {
	P         *partners.Partner
	Activity  *partners.Activity
	CanManage bool
	Purposes  []string
	Kinds     []string
	// Flagged are the activity entries with a flag, newest first (at most
	// 200 shown).
	Flagged []partners.ActivityEntry
}

func partnerPage(rq *Request) error {
	p, err := rq.Deps.Partners.GetPartner(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	act, err := rq.Deps.Partners.Activity(rq.Context(), rq.Call, p.ID, 3)
	if err != nil {
		return err
	}
	v := partnerView{P: p, Activity: act, CanManage: rq.Can(policy.PartnerManage), Purposes: partners.AgreementPurposes,
		Kinds: partners.DatasetKinds}
	for _, e := range act.Entries {
		if len(e.Flags) > 0 && len(v.Flagged) < 200 {
			v.Flagged = append(v.Flagged, e)
		}
	}
	return rq.Render(http.StatusOK, "partner", "partner.title", v)
}

func linkPartnerAccount(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Partners.LinkAccount(rq.Context(), rq.Call, id, partners.LinkAccount{UserID: strings.TrimSpace(rq.PostFormValue("user_id"))}); err != nil {
		return err
	}
	return rq.Redirect("/partners/"+id, "partner_account_linked")
}

func askAgreement(rq *Request) error {
	id := rq.PathValue("id")
	expires, err := rq.dayEnd("expires_at", rq.PostFormValue("expires_at"))
	if err != nil {
		return err
	}
	in := partners.NewAgreement{Title: rq.PostFormValue("title"), Purposes: rq.PostForm["purposes"], DatasetKinds: rq.PostForm["dataset_kinds"],
		Departments: splitIDs(rq.PostFormValue("departments")), ExpiresAt: expires, Confidentiality: rq.PostFormValue("confidentiality"),
		DocumentSHA256: rq.PostFormValue("document_sha256"), Reason: rq.PostFormValue("reason")}
	if k := strings.TrimSpace(rq.PostFormValue("min_k")); k != "" {
		n, err := strconv.Atoi(k)
		if err != nil {
			return medguard.InvalidField("min_k", "min_k must be a number")
		}
		in.MinK = n
	}
	ask, err := partners.NewAgreementRequest(id, in)
	if err != nil {
		return err
	}
	if _, err := rq.Deps.Approvals.Request(rq.Context(), rq.Call, ask); err != nil {
		return err
	}
	return rq.Redirect("/partners/"+id, "agreement_asked")
}

func terminateAgreement(rq *Request) error {
	a, err := rq.Deps.Partners.Terminate(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	return rq.Redirect("/partners/"+a.PartnerID, "agreement_terminated")
}

func confirmDeletion(rq *Request) error {
	in := partners.NewDeletionConfirmation{Representative: rq.PostFormValue("representative"), Statement: rq.PostFormValue("statement"),
		DocumentSHA256: rq.PostFormValue("document_sha256")}
	if v := strings.TrimSpace(rq.PostFormValue("deleted_at")); v != "" {
		d, err := time.ParseInLocation("2006-01-02", v, rq.c.zone)
		if err != nil {
			return medguard.InvalidField("deleted_at", "deleted_at must be a date (YYYY-MM-DD)")
		}
		in.DeletedAt = d
	}
	id := rq.PathValue("id")
	if _, err := rq.Deps.Partners.ConfirmDeletion(rq.Context(), rq.Call, id, in); err != nil {
		return err
	}
	back := "/partners"
	if p, err := rq.Deps.Partners.AgreementPartner(rq.Context(), id); err == nil && p != "" {
		back = "/partners/" + p
	}
	return rq.Redirect(back, "deletion_confirmed")
}
