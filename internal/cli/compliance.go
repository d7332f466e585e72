package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"medguard/internal/audit"
	"medguard/internal/compliance"
	"medguard/internal/training"
	"medguard/internal/web"
)

// openCompliance makes the compliance checks (合规检查, issue 14) and
// wires them: the measures read the registers through the adapters below;
// a measured check that turns to fail raises an alert once
// (compliance_check_failed, keyed by the check), resolved when it passes
// again. The rectification register, when there is one, is set with
// a.Compliance.SetRectifier.
func (a *App) openCompliance(cfg Config, d *web.Deps) {
	logger := cfg.Logger
	a.Compliance = compliance.New(a.DB, a.Gate, a.Keys, a.Identity, compliance.Config{Location: a.Trail.Zone(), Logger: logger})
	a.Compliance.SetSources(compliance.Sources{
		Staff: complianceStaff{a}, Fields: complianceFields{a}, Links: complianceLinks{a}, Audit: complianceAudit{a},
		SIEM: complianceSIEM{a}, Backups: complianceBackups{a}, Registers: complianceRegisters{a},
	})
	a.Compliance.OnFailing(func(ctx context.Context, f compliance.Finding) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), compliance.FailedRule, f.CheckID,
			fmt.Sprintf("compliance check %s fails: %s (%s)", f.CheckID, f.Value, f.Reason)); err != nil {
			logger.Error("raising the alert of a failing compliance check failed", "check", f.CheckID, "error", err.Error())
		}
	})
	a.Compliance.OnPassing(func(ctx context.Context, id string) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), compliance.FailedRule, id, "check_passed"); err != nil {
			logger.Error("resolving the alert of a compliance check failed", "check", id, "error", err.Error())
		}
	})
	d.Compliance = a.Compliance
}

// complianceStaff reads the staff directory and the API keys.
type complianceStaff struct{ a *App }

func (s complianceStaff) Accounts(ctx context.Context) ([]compliance.Account, error) {
	facts, err := s.a.Identity.AccountFacts(ctx, s.a.Config.Clock.Now())
	if err != nil {
		return nil, err
	}
	now := s.a.Config.Clock.Now()
	since := now.Add(-compliance.UnusedAfter)
	out := make([]compliance.Account, 0, len(facts))
	for _, f := range facts {
		a := compliance.Account{ID: f.ID, Username: f.Username, DisplayName: f.DisplayName, Department: f.Department,
			Roles: f.Roles, Active: f.Active, CreatedAt: f.CreatedAt, DeactivatedAt: f.DeactivatedAt, LiveSessions: f.LiveSessions,
			RolesAfterDeparture: f.RolesAfterDeparture, TOTP: f.TOTP, LastSignIn: f.LastSignIn}
		// An account not signed in lately may still act (an API
		// session of another kind, a console of a server whose sessions
		// were reset): its newest action in the audit log counts.
		if a.Active && (a.LastSignIn == nil || a.LastSignIn.Before(since)) && a.CreatedAt.Before(since) {
			es, _, err := s.a.Log.Search(ctx, audit.Query{Actor: f.Username, From: since, Limit: 1})
			if err != nil {
				return nil, err
			}
			if len(es) > 0 {
				at := es[0].Entry.Time
				a.LastActive = &at
			}
		}
		out = append(out, a)
	}
	return out, nil
}

func (s complianceStaff) APIKeys(ctx context.Context) ([]compliance.APIKey, error) {
	facts, err := s.a.Identity.KeyFacts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.APIKey, 0, len(facts))
	for _, k := range facts {
		out = append(out, compliance.APIKey{ID: k.ID, Name: k.Name, Status: k.Status, OwnerID: k.OwnerID, OwnerUsername: k.OwnerUsername,
			OwnerDepartment: k.OwnerDepartment, OwnerActive: k.OwnerActive, Revoked: k.Revoked})
	}
	return out, nil
}

// complianceFields scans the stored sensitive columns.
type complianceFields struct{ a *App }

func (f complianceFields) ScanSealed(ctx context.Context) ([]compliance.ColumnScan, error) {
	scans, err := f.a.Records.ScanSealed(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.ColumnScan, 0, len(scans))
	for _, s := range scans {
		out = append(out, compliance.ColumnScan{Table: s.Table, Column: s.Column, Values: s.Values, Sealed: s.Sealed, Unsealed: s.Unsealed})
	}
	return out, nil
}

// complianceLinks reads the running server's links and its backup
// targets: a directory is no network link; https and S3 without
// insecure=1 are TLS; anything else is plain.
type complianceLinks struct{ a *App }

func (l complianceLinks) Links(ctx context.Context) ([]compliance.Link, error) {
	var out []compliance.Link
	for _, k := range l.a.Transport.Status().Links {
		out = append(out, compliance.Link{Name: k.Name, Target: k.Target, Protocol: k.Protocol, Note: k.Note, Encrypted: k.Encrypted})
	}
	if l.a.BackupHealth != nil {
		for _, t := range l.a.BackupHealth.Current(ctx).Targets {
			if link, ok := backupLink(t.URL); ok {
				out = append(out, link)
			}
		}
	}
	return out, nil
}

// backupLink describes the link to a backup target (ok false for a local
// directory).
func backupLink(raw string) (compliance.Link, bool) {
	if !strings.Contains(raw, "://") {
		return compliance.Link{}, false
	}
	u, err := url.Parse(raw)
	if err != nil {
		return compliance.Link{Name: "backup", Target: "(unreadable address)", Protocol: "unknown"}, true
	}
	l := compliance.Link{Name: "backup", Target: u.Scheme + "://" + u.Host + u.Path}
	switch {
	case u.Scheme == "file":
		return compliance.Link{}, false
	case u.Scheme == "https":
		l.Encrypted, l.Protocol = true, "HTTPS"
	case u.Scheme == "s3" && u.Query().Get("insecure") != "1":
		l.Encrypted, l.Protocol = true, "S3 over TLS"
		l.Target = "s3://" + u.Host + u.Path + " (" + u.Query().Get("endpoint") + ")"
	case u.Scheme == "s3":
		l.Protocol, l.Note = "S3 over plain HTTP", "insecure=1: the backups travel without TLS"
		l.Target = "s3://" + u.Host + u.Path + " (" + u.Query().Get("endpoint") + ")"
	default:
		l.Protocol = "plain " + u.Scheme
	}
	return l, true
}

// complianceAudit verifies the audit log now — the whole tree against its
// head and the stored checkpoints, with the archived parts if any — and
// reads its retention.
type complianceAudit struct{ a *App }

func (c complianceAudit) VerifyAudit(ctx context.Context) (compliance.AuditState, error) {
	var st compliance.AuditState
	days, err := audit.RetentionDays(ctx, c.a.DB)
	if err != nil {
		return st, err
	}
	st.RetentionDays = days
	key := c.a.Checkpoints.Signer().VerifierKey()
	opts := audit.VerifyOptions{VerifierKey: key}
	if dir := filepath.Join(c.a.Config.DataDir, "audit-archive"); dirExists(dir) {
		stored, err := audit.StoredCheckpoints(ctx, c.a.DB)
		if err != nil {
			return st, err
		}
		chain, err := audit.FollowKeys(key, stored)
		if err != nil {
			st.Problem = err.Error()
			st.VerifiedAt = c.a.Config.Clock.Now()
			return st, nil
		}
		if opts.Archived, err = audit.OpenArchive(dir, chain.VerifierKeys()...); err != nil {
			st.Problem = err.Error()
			st.VerifiedAt = c.a.Config.Clock.Now()
			return st, nil
		}
	}
	rep, err := audit.Verify(ctx, c.a.DB, opts)
	st.VerifiedAt = c.a.Config.Clock.Now()
	if err != nil {
		// A tampered log is the finding; anything else is an error.
		var te *audit.TamperError
		if !asTamper(err, &te) {
			return st, err
		}
		st.Problem = te.Error()
		return st, nil
	}
	st.Verified, st.Size = true, rep.Size
	return st, nil
}

func asTamper(err error, te **audit.TamperError) bool {
	for e := err; e != nil; {
		if t, ok := e.(*audit.TamperError); ok {
			*te = t
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// complianceSIEM reads the forwarder's state.
type complianceSIEM struct{ a *App }

func (s complianceSIEM) SIEMState(context.Context) (compliance.SIEMState, error) {
	if s.a.SIEM == nil {
		return compliance.SIEMState{}, nil
	}
	st := s.a.SIEM.Status()
	return compliance.SIEMState{Configured: true, Destination: st.Destination, Connected: st.Connected, Standby: st.Standby,
		Lag: st.Lag, Problem: st.LastError}, nil
}

// complianceBackups reads the backups' health.
type complianceBackups struct{ a *App }

func (b complianceBackups) BackupState(ctx context.Context) (compliance.BackupState, error) {
	if b.a.BackupHealth == nil {
		return compliance.BackupState{}, nil
	}
	h := b.a.BackupHealth.Current(ctx)
	st := compliance.BackupState{Configured: h.Configured, Copies: h.State321.Copies, Media: h.State321.Media, OffSite: h.State321.OffSite,
		Met321: h.State321.Met}
	for _, t := range h.Targets {
		st.Targets = append(st.Targets, compliance.BackupTarget{URL: t.URL, Media: t.Media, OffSite: t.OffSite, LastBackup: t.LastBackup,
			LastError: t.LastError})
	}
	if d := h.LastDrill; d != nil {
		st.LastDrill = &compliance.RestoreDrill{ID: d.ID, At: d.StartedAt, OK: d.OK, RTOMet: d.RTOMet, Problem: d.Problem}
	}
	return st, nil
}

// complianceRegisters reads the security office's and the archive's
// registers.
type complianceRegisters struct{ a *App }

func (r complianceRegisters) OverdueVulns(ctx context.Context, now time.Time) ([]compliance.Overdue, error) {
	vs, titles, err := r.a.Vulns.PastDue(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Overdue, 0, len(vs))
	for i, v := range vs {
		out = append(out, compliance.Overdue{ID: v.VulnID, Title: titles[i], Severity: v.Severity, DueAt: v.DueAt})
	}
	return out, nil
}

func (r complianceRegisters) TrainingStandings(ctx context.Context) ([]compliance.Standing, error) {
	rows, err := r.a.Training.Standings(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Standing, 0, len(rows))
	for _, row := range rows {
		out = append(out, compliance.Standing{UserID: row.UserID, Username: row.Username, DisplayName: row.DisplayName,
			Department: row.Department, Current: row.Status == training.StatusCurrent, Overdue: row.Standing.Overdue,
			LetterOwed: slices.ContainsFunc(row.Standing.Obligations, func(o training.Obligation) bool { return o.Kind == training.ObligationLetter })})
	}
	return out, nil
}

func (r complianceRegisters) OverdueBreakGlass(ctx context.Context, now time.Time) ([]compliance.Overdue, error) {
	os, err := r.a.Records.OverdueBreakGlass(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Overdue, 0, len(os))
	for _, o := range os {
		out = append(out, compliance.Overdue{ID: o.ID, Owner: o.Username, Department: o.Department, DueAt: o.DueAt})
	}
	return out, nil
}

func (r complianceRegisters) LateArchives(ctx context.Context, since, now time.Time) ([]compliance.Overdue, error) {
	os, err := r.a.Records.LateArchives(ctx, since, now)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Overdue, 0, len(os))
	for _, o := range os {
		out = append(out, compliance.Overdue{ID: o.ID, Department: o.Department, DueAt: o.DueAt, DoneAt: o.DoneAt})
	}
	return out, nil
}

func (r complianceRegisters) LatestReconciliation(ctx context.Context) (*compliance.Reconciliation, error) {
	d, err := r.a.DataUse.LatestReconciliation(ctx)
	if err != nil || d == nil {
		return nil, err
	}
	return &compliance.Reconciliation{Day: d.Day, Rate: d.Rate, Folders: d.Folders, Inpatients: d.Inpatients, Matched: d.Matched,
		FoldersWithoutElectronic: d.FoldersWithoutElectronic, PatientsWithoutFolder: d.PatientsWithoutFolder}, nil
}

func (r complianceRegisters) InspectionDays(ctx context.Context, n int) ([]compliance.InspectionDay, error) {
	days, err := r.a.Inspections.EndedDays(ctx, n)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.InspectionDay, 0, len(days))
	for _, d := range days {
		day := compliance.InspectionDay{Day: d.Day, Status: d.Status}
		if d.Inspection != nil {
			day.Inspector, day.Reviewer = d.Inspection.Inspector, d.Inspection.Reviewer
		}
		out = append(out, day)
	}
	return out, nil
}

func (r complianceRegisters) OverdueRiskReviews(ctx context.Context, now time.Time) ([]compliance.Overdue, error) {
	os, err := r.a.Risks.PastReview(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Overdue, 0, len(os))
	for _, o := range os {
		out = append(out, compliance.Overdue{ID: o.RiskID, Title: o.Title, Severity: o.Level, Owner: o.Owner, DueAt: o.DueAt})
	}
	return out, nil
}

func (r complianceRegisters) OverduePlanReviews(ctx context.Context, now time.Time) ([]compliance.Overdue, error) {
	os, err := r.a.Plans.PastReview(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Overdue, 0, len(os))
	for _, o := range os {
		out = append(out, compliance.Overdue{ID: o.PlanID, Title: o.Title, DueAt: o.DueAt})
	}
	return out, nil
}

func (r complianceRegisters) DrillCadences(ctx context.Context) ([]compliance.DrillCadence, error) {
	cs, err := r.a.Plans.Cadences(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.DrillCadence, 0, len(cs))
	for _, c := range cs {
		out = append(out, compliance.DrillCadence{Kind: c.Kind, Started: c.Started, Missed: c.Missed, LastDrillAt: c.LastDrillAt})
	}
	return out, nil
}
