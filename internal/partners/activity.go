package partners

import (
	"context"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// The flags of an activity entry: what the inspection looks at.
const (
	// FlagOutsideScope marks an action a partner's account has no
	// business doing (anything but signing in, the directory and
	// receiving de-identified outputs).
	FlagOutsideScope = "outside_scope"
	// FlagAfterExpiry marks activity when none of the partner's agreements
	// was in force any more.
	FlagAfterExpiry = "after_expiry"
	// FlagNoAgreement marks activity before any agreement was in force.
	FlagNoAgreement = "no_agreement"
	// FlagPurpose marks a declared purpose of use the agreement in force
	// does not allow.
	FlagPurpose = "purpose_outside_scope"
	// FlagRefused marks a request that was refused or failed.
	FlagRefused = "refused"
	// FlagPatient marks an entry that names a patient: a partner's
	// account never reaches identified patient data.
	FlagPatient = "patient_data"
)

// ActivityFlags lists the flags of an activity entry.
var ActivityFlags = []string{FlagOutsideScope, FlagAfterExpiry, FlagNoAgreement, FlagPurpose, FlagRefused, FlagPatient}

// inScope reports whether a partner's account may do action: sign in and
// out, read the directory, and receive de-identified outputs (the actions
// of the de-identification jobs, "deid.…").
func inScope(action string) bool {
	for _, p := range []string{"auth.", "session.", "deid."} {
		if strings.HasPrefix(action, p) {
			return true
		}
	}
	return slices.Contains([]string{"department.list", "role.list", "directory.read"}, action)
}

// ActivityEntry is one audit entry of a partner's account, with what the
// inspection flags in it. It never holds the patient's id.
type ActivityEntry struct {
	Index      uint64    `json:"index"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	TargetType string    `json:"target_type,omitempty"`
	TargetID   string    `json:"target_id,omitempty"`
	Decision   string    `json:"decision"`
	Rule       string    `json:"rule,omitempty"`
	Outcome    string    `json:"outcome"`
	Purpose    string    `json:"purpose,omitempty"`
	// AgreementID is the agreement in force at the time, if any.
	AgreementID string   `json:"agreement_id,omitempty"`
	Flags       []string `json:"flags"`
}

// Activity is the partner accounts' audit entries of the last months,
// newest first, against the agreements' scope.
type Activity struct {
	PartnerID string          `json:"partner_id"`
	Months    int             `json:"months"`
	From      time.Time       `json:"from"`
	To        time.Time       `json:"to"`
	Accounts  []string        `json:"accounts"`
	Entries   []ActivityEntry `json:"entries"`
	// Flagged counts the entries with at least one flag; Flags counts each
	// flag.
	Flagged int            `json:"flagged"`
	Flags   map[string]int `json:"flags"`
	// Truncated says an account had more than MaxActivity entries in the
	// period: only the newest are listed.
	Truncated bool `json:"truncated"`
}

// MaxActivity is the most entries listed per account.
const MaxActivity = 5000

// Activity lists the partner accounts' audit entries of the last months
// (1-12, default 3) against the partner's agreements (partner.read): the
// unannounced inspection of seed 003 §3.3.2. Each entry is flagged when
// it is an action outside the scope, happened when no agreement was in
// force, declared a purpose the agreement does not allow, was refused, or
// names a patient.
func (s *Service) Activity(ctx context.Context, call *medguard.Call, partnerID string, months int) (*Activity, error) {
	if months == 0 {
		months = 3
	}
	if months < 1 || months > 12 {
		return nil, medguard.InvalidField("months", "months must be between 1 and 12")
	}
	p, err := s.load(ctx, call, policy.PartnerRead, "partner.activity", partnerID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := &Activity{PartnerID: p.ID, Months: months, From: now.AddDate(0, -months, 0), To: now, Accounts: []string{},
		Entries: []ActivityEntry{}, Flags: map[string]int{}}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PartnerRead, AuditAction: "partner.activity",
		Resource: partnerResource(p.ID)}, func(policy.Decision) (audit.Mutation, error) {
		for _, acc := range p.Accounts {
			out.Accounts = append(out.Accounts, acc.Username)
			var before uint64
			n, truncated := 0, false
			for {
				page, more, err := s.gate.Log().Search(ctx, audit.Query{Actor: acc.Username, From: out.From, To: out.To.Add(time.Millisecond),
					Before: before, Limit: audit.MaxEntries})
				if err != nil {
					return nil, err
				}
				for _, st := range page {
					if n == MaxActivity {
						truncated, out.Truncated = true, true
						break
					}
					n++
					out.Entries = append(out.Entries, judge(st, p.Agreements))
					before = st.Index
				}
				if !more || truncated || len(page) == 0 {
					break
				}
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.judgeRequests(ctx, out.Entries); err != nil {
		return nil, err
	}
	slices.SortFunc(out.Entries, func(a, b ActivityEntry) int {
		switch {
		case a.Index > b.Index:
			return -1
		case a.Index < b.Index:
			return 1
		}
		return 0
	})
	for _, e := range out.Entries {
		if len(e.Flags) > 0 {
			out.Flagged++
		}
		for _, f := range e.Flags {
			out.Flags[f]++
		}
	}
	return out, nil
}

// judge flags one entry against the partner's agreements.
func judge(st audit.Stored, as []Agreement) ActivityEntry {
	e := st.Entry
	out := ActivityEntry{Index: st.Index, Time: e.Time, Actor: e.Actor, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID,
		Decision: e.Decision, Rule: e.Rule, Outcome: e.Outcome, Purpose: e.Purpose, Flags: []string{}}
	var live *Agreement
	started := false
	for i := range as {
		if as[i].covers(e.Time) {
			live = &as[i]
			break
		}
		started = started || !e.Time.Before(as[i].StartsAt)
	}
	if !inScope(e.Action) {
		out.Flags = append(out.Flags, FlagOutsideScope)
	}
	// Signing in and out when no agreement is in force is no use of data.
	if live == nil && !strings.HasPrefix(e.Action, "auth.") && !strings.HasPrefix(e.Action, "session.") {
		if started {
			out.Flags = append(out.Flags, FlagAfterExpiry)
		} else {
			out.Flags = append(out.Flags, FlagNoAgreement)
		}
	}
	if live != nil {
		out.AgreementID = live.ID
		if e.Purpose != "" && !slices.Contains(live.Purposes, e.Purpose) {
			out.Flags = append(out.Flags, FlagPurpose)
		}
	}
	if e.Decision == audit.Deny || e.Outcome != audit.Success {
		out.Flags = append(out.Flags, FlagRefused)
	}
	if e.PatientID != "" {
		out.Flags = append(out.Flags, FlagPatient)
	}
	return out
}

// SetApprovalKinds lets the inspection read a partner's four-eyes requests:
// asking for a de-identification job (kind deid.job) is within the scope;
// any other request is not.
func (s *Service) SetApprovalKinds(f func(ctx context.Context, ids ...string) (map[string]string, error)) {
	s.approvalKinds = f
}

// jobRequestKind is the kind of four-eyes request that asks for a
// de-identification job (approvals.DeidJob).
const jobRequestKind = "deid.job"

// judgeRequests clears the outside-scope flag of the entries that asked
// for a de-identification job: an approval.request entry names only the
// approval, whose kind says what was asked.
func (s *Service) judgeRequests(ctx context.Context, entries []ActivityEntry) error {
	if s.approvalKinds == nil {
		return nil
	}
	var ids []string
	for _, e := range entries {
		if e.Action == "approval.request" && e.TargetType == "approval" && e.TargetID != "" {
			ids = append(ids, e.TargetID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	kinds, err := s.approvalKinds(ctx, ids...)
	if err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		if e.Action == "approval.request" && kinds[e.TargetID] == jobRequestKind {
			e.Flags = slices.DeleteFunc(e.Flags, func(f string) bool { return f == FlagOutsideScope })
		}
	}
	return nil
}
