package web

import (
	"medguard/internal/approvals"
	"medguard/internal/assets"
	"medguard/internal/datause"
	"medguard/internal/deidjobs"
	"medguard/internal/detect"
	"medguard/internal/exports"
	"medguard/internal/identity"
	"medguard/internal/incidents"
	"medguard/internal/inspections"
	"medguard/internal/media"
	"medguard/internal/partners"
	"medguard/internal/plans"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/rectify"
	"medguard/internal/reports"
	"medguard/internal/risks"
	"medguard/internal/training"
	"medguard/internal/vulns"
)

// buildRoutes lists every API route: method, path, the action logged for
// requests that fail before their service logs them, who may call it (the
// kind of session, and the permissions of which the caller needs one before
// any body is read — the services decide the rest), the request body, and
// the handler. /healthz, /readyz, /metrics and the OpenAPI
// document are registered in New.
func (s *Server) buildRoutes() []Route {
	return []Route{
		// Sign-in (SPEC §2, Appendix A).
		{Method: "POST", Pattern: "/api/v1/auth/login", Action: "auth.login", auth: public, Body: loginRequest{}, h: s.login},
		{Method: "POST", Pattern: "/api/v1/auth/logout", Action: "auth.logout", auth: userOnly, h: s.logout},
		{Method: "POST", Pattern: "/api/v1/auth/totp", Action: "auth.totp_enroll", auth: enrolment, h: s.startTOTP},
		{Method: "POST", Pattern: "/api/v1/auth/totp/confirm", Action: "auth.totp_confirm", auth: enrolment, Body: totpConfirmRequest{}, h: s.confirmTOTP},
		{Method: "GET", Pattern: "/api/v1/auth/me", Action: "auth.me", auth: userOnly, h: s.me},
		{Method: "POST", Pattern: "/api/v1/auth/password", Action: "auth.password_change", auth: enrolment, Body: passwordChangeRequest{}, h: s.changePassword},

		// Departments, roles, users, API keys.
		{Method: "POST", Pattern: "/api/v1/departments", Action: "department.create", auth: userOnly, Perms: perms(policy.DepartmentManage), Body: departmentRequest{}, h: s.createDepartment},
		{Method: "PUT", Pattern: "/api/v1/departments/{code}/restricted", Action: "department.restrict", auth: userOnly, Perms: perms(policy.DepartmentManage), Body: restrictionRequest{}, h: s.restrictDepartment},
		{Method: "GET", Pattern: "/api/v1/departments", Action: "department.list", auth: signedIn, h: s.listDepartments},
		{Method: "GET", Pattern: "/api/v1/roles", Action: "role.list", auth: signedIn, h: s.listRoles},
		{Method: "POST", Pattern: "/api/v1/users", Action: "user.create", auth: userOnly, Perms: perms(policy.UserManage), Body: identity.NewUser{}, h: s.createUser},
		{Method: "GET", Pattern: "/api/v1/users", Action: "user.list", auth: userOnly, Perms: perms(policy.UserRead), h: s.listUsers},
		{Method: "GET", Pattern: "/api/v1/users/{id}", Action: "user.read", auth: userOnly, Perms: perms(policy.UserRead), h: s.getUser},
		{Method: "POST", Pattern: "/api/v1/users/{id}/deactivate", Action: "user.deactivate", auth: userOnly, Perms: perms(policy.UserManage), h: s.deactivateUser},
		{Method: "POST", Pattern: "/api/v1/users/{id}/roles", Action: "user.role_grant", auth: userOnly, Perms: perms(policy.UserManage), Body: roleRequest{}, h: s.grantRole},
		{Method: "DELETE", Pattern: "/api/v1/users/{id}/roles/{role}", Action: "user.role_revoke", auth: userOnly, Perms: perms(policy.UserManage), h: s.revokeRole},
		{Method: "POST", Pattern: "/api/v1/users/{id}/department", Action: "user.department_change", auth: userOnly, Perms: perms(policy.UserManage), Body: departmentChangeRequest{}, h: s.changeDepartment},
		{Method: "POST", Pattern: "/api/v1/users/{id}/unlock", Action: "user.unlock", auth: userOnly, Perms: perms(policy.UserManage), h: s.unlockUser},
		{Method: "POST", Pattern: "/api/v1/users/{id}/totp/reset", Action: "user.totp_reset", auth: userOnly, Perms: perms(policy.UserManage), h: s.resetTOTP},
		{Method: "POST", Pattern: "/api/v1/users/{id}/password", Action: "user.password_reset", auth: userOnly, Perms: perms(policy.UserManage), Body: passwordResetRequest{}, h: s.resetPassword},
		{Method: "PUT", Pattern: "/api/v1/users/{id}/certificate", Action: "user.certificate_set", auth: userOnly, Perms: perms(policy.UserManage), Body: certificateRequest{}, h: s.setCertificate},
		{Method: "POST", Pattern: "/api/v1/api-keys", Action: "apikey.create", auth: userOnly, Perms: perms(policy.APIKeyManage), Body: apiKeyRequest{}, h: s.createAPIKey},
		{Method: "GET", Pattern: "/api/v1/api-keys", Action: "apikey.list", auth: userOnly, Perms: perms(policy.APIKeyManage), h: s.listAPIKeys},
		{Method: "POST", Pattern: "/api/v1/api-keys/{id}/release", Action: "apikey.release", auth: userOnly, Perms: perms(policy.AccountRelease), Body: releaseRequest{}, h: s.releaseAPIKey},
		{Method: "POST", Pattern: "/api/v1/api-keys/{id}/revoke", Action: "apikey.revoke", auth: userOnly, Perms: perms(policy.APIKeyManage), h: s.revokeAPIKey},

		// Detection (SPEC §6): alerts, rules, frozen accounts.
		{Method: "GET", Pattern: "/api/v1/alerts", Action: "alert.list", auth: userOnly, Perms: perms(policy.AlertRead), h: s.listAlerts},
		{Method: "POST", Pattern: "/api/v1/alerts/{id}/acknowledge", Action: "alert.acknowledged", auth: userOnly, Perms: perms(policy.AlertManage), Body: alertStatusRequest{}, h: s.alertStatus(detect.StatusAcknowledged)},
		{Method: "POST", Pattern: "/api/v1/alerts/{id}/false-positive", Action: "alert.false_positive", auth: userOnly, Perms: perms(policy.AlertManage), Body: alertStatusRequest{}, h: s.alertStatus(detect.StatusFalsePositive)},
		{Method: "POST", Pattern: "/api/v1/alerts/{id}/escalate", Action: "alert.escalated", auth: userOnly, Perms: perms(policy.AlertManage), Body: alertStatusRequest{}, h: s.alertStatus(detect.StatusEscalated)},
		{Method: "GET", Pattern: "/api/v1/detection/rules", Action: "detect.rule.list", auth: userOnly, Perms: perms(policy.AlertRead), h: s.listRules},
		{Method: "PUT", Pattern: "/api/v1/detection/rules/{name}", Action: "detect.rule.set", auth: userOnly, Perms: perms(policy.RuleManage), Body: detect.Rule{}, h: s.setRule},
		{Method: "GET", Pattern: "/api/v1/freezes", Action: "account.freeze.list", auth: userOnly, Perms: perms(policy.AlertRead), h: s.listFreezes},
		{Method: "POST", Pattern: "/api/v1/users/{id}/release", Action: "account.release", auth: userOnly, Perms: perms(policy.AccountRelease), Body: releaseRequest{}, h: s.releaseAccount},

		// Four-eyes approvals (SPEC §3).
		{Method: "POST", Pattern: "/api/v1/approvals", Action: "approval.request", auth: userOnly, Body: approvals.NewRequest{}, h: s.requestApproval},
		{Method: "GET", Pattern: "/api/v1/approvals", Action: "approval.list", auth: userOnly, h: s.listApprovals},
		{Method: "GET", Pattern: "/api/v1/approvals/{id}", Action: "approval.read", auth: userOnly, h: s.getApproval},
		{Method: "POST", Pattern: "/api/v1/approvals/{id}/approve", Action: "approval.approve", auth: userOnly, Perms: perms(policy.ApprovalDecide, policy.ApprovalDecideDepartment, policy.DeidApprove, policy.ExportApprove), Body: decisionRequest{}, h: s.approve},
		{Method: "POST", Pattern: "/api/v1/approvals/{id}/refuse", Action: "approval.refuse", auth: userOnly, Perms: perms(policy.ApprovalDecide, policy.ApprovalDecideDepartment, policy.DeidApprove, policy.ExportApprove), Body: decisionRequest{}, h: s.refuse},
		{Method: "POST", Pattern: "/api/v1/approvals/{id}/cancel", Action: "approval.cancel", auth: userOnly, h: s.cancelApproval},

		// Patients (SPEC §4).
		{Method: "POST", Pattern: "/api/v1/patients", Action: "patient.create", auth: signedIn, Perms: perms(policy.PatientCreate), Body: records.NewPatient{}, h: s.createPatient},
		{Method: "GET", Pattern: "/api/v1/patients", Action: "patient.list", auth: signedIn, Perms: perms(policy.PatientList), h: s.listPatients},
		{Method: "POST", Pattern: "/api/v1/patients/search", Action: "patient.search", auth: signedIn, Perms: perms(policy.PatientSearch), Body: records.Search{}, h: s.searchPatients},
		{Method: "GET", Pattern: "/api/v1/patients/{id}", Action: "patient.read", auth: signedIn, Perms: perms(policy.PatientRead), h: s.getPatient},
		{Method: "PATCH", Pattern: "/api/v1/patients/{id}", Action: "patient.update", auth: signedIn, Perms: perms(policy.PatientUpdate), Body: records.PatientChanges{}, h: s.updatePatient},
		{Method: "POST", Pattern: "/api/v1/patients/{id}/records", Action: "record.create", auth: signedIn, Perms: perms(policy.RecordWrite), Body: records.NewRecord{}, h: s.createRecord},
		{Method: "GET", Pattern: "/api/v1/patients/{id}/records", Action: "record.list", auth: signedIn, Perms: perms(policy.RecordList), h: s.listRecords},
		{Method: "POST", Pattern: "/api/v1/patients/{id}/admissions", Action: "admission.create", auth: signedIn, Perms: perms(policy.AdmissionManage), Body: admissionRequest{}, h: s.admit},
		{Method: "GET", Pattern: "/api/v1/patients/{id}/admissions", Action: "admission.list", auth: signedIn, Perms: perms(policy.PatientRead), h: s.listAdmissions},
		{Method: "POST", Pattern: "/api/v1/patients/{id}/care-team", Action: "careteam.add", auth: userOnly, Perms: perms(policy.CareTeamManage), Body: careTeamRequest{}, h: s.addCareTeam},
		{Method: "GET", Pattern: "/api/v1/patients/{id}/care-team", Action: "careteam.list", auth: userOnly, Perms: perms(policy.PatientRead), h: s.listCareTeam},
		{Method: "DELETE", Pattern: "/api/v1/patients/{id}/care-team/{user_id}", Action: "careteam.remove", auth: userOnly, Perms: perms(policy.CareTeamManage), h: s.removeCareTeam},

		// Records, versions, attachments.
		{Method: "GET", Pattern: "/api/v1/records/{id}", Action: "record.read", auth: signedIn, Perms: perms(policy.RecordRead), h: s.getRecord, later: true},
		{Method: "PATCH", Pattern: "/api/v1/records/{id}", Action: "record.update", auth: signedIn, Perms: perms(policy.RecordWrite), Body: records.RecordChanges{}, h: s.updateRecord},
		{Method: "GET", Pattern: "/api/v1/records/{id}/versions", Action: "record.versions", auth: userOnly, Perms: perms(policy.RecordReadHistory), h: s.listVersions},
		{Method: "GET", Pattern: "/api/v1/records/{id}/versions/{version}", Action: "record.read_history", auth: userOnly, Perms: perms(policy.RecordReadHistory), h: s.getVersion},
		{Method: "POST", Pattern: "/api/v1/records/{id}/attachments", Action: "record.attachment_add", auth: signedIn, Perms: perms(policy.RecordWrite), h: s.addAttachment},
		{Method: "GET", Pattern: "/api/v1/attachments/{id}", Action: "record.attachment_read", auth: signedIn, Perms: perms(policy.RecordRead), h: s.getAttachment},

		// Admissions and archiving (SPEC §4).
		{Method: "POST", Pattern: "/api/v1/admissions/{id}/discharge", Action: "admission.discharge", auth: signedIn, Perms: perms(policy.AdmissionManage), Body: dischargeRequest{}, h: s.discharge},
		{Method: "POST", Pattern: "/api/v1/admissions/{id}/archive", Action: "admission.archive", auth: userOnly, Perms: perms(policy.RecordArchive), h: s.archive},
		{Method: "GET", Pattern: "/api/v1/archiving/late", Action: "archiving.late", auth: userOnly, Perms: perms(policy.ArchivingRead), h: s.lateArchiving},

		// Access grants and break-glass review (SPEC §3).
		{Method: "POST", Pattern: "/api/v1/grants", Action: "grant.create", auth: userOnly, Perms: perms(policy.GrantRequest), Body: grantRequest{}, h: s.createGrant},
		{Method: "GET", Pattern: "/api/v1/grants", Action: "grant.list", auth: userOnly, Perms: perms(policy.GrantManage), h: s.listGrants},
		{Method: "POST", Pattern: "/api/v1/grants/{id}/revoke", Action: "grant.revoke", auth: userOnly, Perms: perms(policy.GrantManage), h: s.revokeGrant},
		{Method: "GET", Pattern: "/api/v1/break-glass", Action: "breakglass.list", auth: userOnly, Perms: perms(policy.BreakGlassRead, policy.BreakGlassReview), h: s.listBreakGlass},
		{Method: "POST", Pattern: "/api/v1/break-glass/{id}/review", Action: "breakglass.review", auth: userOnly, Perms: perms(policy.BreakGlassReview), Body: reviewRequest{}, h: s.reviewBreakGlass},

		// The audit log (SPEC §5).
		{Method: "GET", Pattern: "/api/v1/audit/entries", Action: "audit.entries", auth: userOnly, Perms: perms(policy.AuditRead), h: s.auditEntries},
		{Method: "GET", Pattern: "/api/v1/audit/search", Action: "audit.search", auth: userOnly, Perms: perms(policy.AuditRead), h: s.auditSearch},
		{Method: "GET", Pattern: "/api/v1/audit/checkpoint", Action: "audit.checkpoint", auth: userOnly, Perms: perms(policy.AuditRead), h: s.auditCheckpoint},
		{Method: "GET", Pattern: "/api/v1/audit/verifier-key", Action: "audit.verifier_key", auth: userOnly, Perms: perms(policy.AuditRead), h: s.auditVerifierKey},
		{Method: "GET", Pattern: "/api/v1/audit/proof/inclusion", Action: "audit.proof_inclusion", auth: userOnly, Perms: perms(policy.AuditRead), h: s.auditInclusion},
		{Method: "GET", Pattern: "/api/v1/audit/proof/consistency", Action: "audit.proof_consistency", auth: userOnly, Perms: perms(policy.AuditRead), h: s.auditConsistency},
		{Method: "GET", Pattern: "/api/v1/patients/{id}/access-report", Action: "audit.access_report", auth: userOnly, Perms: perms(policy.AuditRead), h: s.accessReport},

		// Keys (SPEC §9): the KEK versions and a rotation's progress.
		{Method: "GET", Pattern: "/api/v1/keys", Action: "keys.status", auth: userOnly, Perms: perms(policy.KeyRotate, policy.ApprovalDecide), h: s.keyStatus},

		// Incidents (SPEC §7).
		{Method: "GET", Pattern: "/api/v1/incidents", Action: "incident.list", auth: userOnly, h: s.listIncidents},
		{Method: "POST", Pattern: "/api/v1/incidents", Action: "incident.report", auth: userOnly, Body: incidents.NewIncident{}, h: s.reportIncident},
		{Method: "GET", Pattern: "/api/v1/incidents/overdue", Action: "incident.overdue", auth: userOnly, h: s.overdueIncidents},
		{Method: "GET", Pattern: "/api/v1/incidents/{id}", Action: "incident.read", auth: userOnly, h: s.getIncident},
		{Method: "POST", Pattern: "/api/v1/incidents/{id}/grade", Action: "incident.grade_confirm", auth: userOnly, Body: incidents.GradeConfirmation{}, h: s.confirmGrade},
		{Method: "POST", Pattern: "/api/v1/incidents/{id}/updates", Action: "incident.update", auth: userOnly, Body: incidents.NewUpdate{}, h: s.addIncidentUpdate},
		{Method: "POST", Pattern: "/api/v1/incidents/{id}/evidence", Action: "incident.evidence", auth: userOnly, Body: evidenceRequest{}, h: s.attachEvidence},
		{Method: "POST", Pattern: "/api/v1/incidents/{id}/analysis", Action: "incident.analysis", auth: userOnly, Body: incidents.RootCause{}, h: s.setAnalysis},
		{Method: "POST", Pattern: "/api/v1/incidents/{id}/actions", Action: "incident.action_add", auth: userOnly, Body: actionRequest{}, h: s.addAction},
		{Method: "PATCH", Pattern: "/api/v1/incidents/{id}/actions/{action_id}", Action: "incident.action_state", auth: userOnly, Body: actionStateRequest{}, h: s.setActionState},
		{Method: "POST", Pattern: "/api/v1/incidents/{id}/close", Action: "incident.close", auth: userOnly, Body: closeRequest{}, h: s.closeIncident},

		// Accountability cases (SPEC §7).
		// Incidents completed (issue 13): commander, steps confirmed by a
		// second person, external evidence files, the handling opinion.
		{Method: "GET", Pattern: "/api/v1/incidents/commanded", Action: "incident.list", auth: userOnly, h: s.commandedIncidents},
		{Method: "POST", Pattern: "/api/v1/incidents/{id}/commander", Action: "incident.commander_change", auth: userOnly, Perms: perms(policy.IncidentManage), Body: incidents.CommanderChange{}, h: s.changeCommander},
		{Method: "POST", Pattern: "/api/v1/incidents/{id}/steps/{index}/confirm", Action: "incident.step_confirm", auth: userOnly, Perms: perms(policy.IncidentManage), h: s.confirmStep},
		{Method: "POST", Pattern: "/api/v1/incidents/{id}/files", Action: "incident.file_attach", auth: userOnly, Perms: perms(policy.IncidentManage), h: s.attachFile},
		{Method: "GET", Pattern: "/api/v1/incidents/{id}/files/{file_id}", Action: "incident.file_read", auth: userOnly, Perms: perms(policy.IncidentRead), h: s.getFile},
		{Method: "POST", Pattern: "/api/v1/accountability/{id}/opinion", Action: "accountability.opinion", auth: userOnly, Perms: perms(policy.AccountabilityManage), Body: incidents.CaseOpinion{}, h: s.caseOpinion},

		// The anonymous reporting channel (举报): public, and the door keeps
		// nothing of who calls (anonymous.go); the security office's triage.
		{Method: "POST", Pattern: "/api/v1/anonymous/reports", Action: "anonymous_report.file", auth: public, anonymous: true, Body: incidents.NewAnonymousReport{}, h: s.fileAnonymous},
		{Method: "POST", Pattern: "/api/v1/anonymous/reports/status", Action: "anonymous_report.status", auth: public, anonymous: true, Body: receiptRequest{}, h: s.anonymousStatus},
		{Method: "POST", Pattern: "/api/v1/anonymous/reports/messages", Action: "anonymous_report.add", auth: public, anonymous: true, Body: receiptMessage{}, h: s.anonymousAdd},
		{Method: "GET", Pattern: "/api/v1/anonymous-reports", Action: "anonymous_report.list", auth: userOnly, Perms: perms(policy.ReportTriage), h: s.listReports},
		{Method: "GET", Pattern: "/api/v1/anonymous-reports/{id}", Action: "anonymous_report.read", auth: userOnly, Perms: perms(policy.ReportTriage), h: s.getReport},
		{Method: "POST", Pattern: "/api/v1/anonymous-reports/{id}/reply", Action: "anonymous_report.reply", auth: userOnly, Perms: perms(policy.ReportTriage), Body: noteRequest{}, h: s.replyReport},
		{Method: "POST", Pattern: "/api/v1/anonymous-reports/{id}/incident", Action: "anonymous_report.convert", auth: userOnly, Perms: perms(policy.ReportTriage), Body: incidents.NewIncident{}, h: s.reportToIncident},
		{Method: "POST", Pattern: "/api/v1/anonymous-reports/{id}/case", Action: "anonymous_report.convert", auth: userOnly, Perms: perms(policy.ReportTriage), Body: incidents.NewCase{}, h: s.reportToCase},
		{Method: "POST", Pattern: "/api/v1/anonymous-reports/{id}/close", Action: "anonymous_report.close", auth: userOnly, Perms: perms(policy.ReportTriage), Body: closeReportRequest{}, h: s.closeReport},

		{Method: "GET", Pattern: "/api/v1/accountability", Action: "accountability.list", auth: userOnly, h: s.listCases},
		{Method: "POST", Pattern: "/api/v1/accountability", Action: "accountability.open", auth: userOnly, Body: incidents.NewCase{}, h: s.openCase},
		{Method: "GET", Pattern: "/api/v1/accountability/candidates", Action: "accountability.candidates", auth: userOnly, h: s.caseCandidates},
		{Method: "GET", Pattern: "/api/v1/accountability/{id}", Action: "accountability.read", auth: userOnly, h: s.getCase},
		{Method: "POST", Pattern: "/api/v1/accountability/{id}/findings", Action: "accountability.finding", auth: userOnly, Body: noteRequest{}, h: s.addFinding},
		{Method: "POST", Pattern: "/api/v1/accountability/{id}/statement", Action: "accountability.statement", auth: userOnly, Body: noteRequest{}, h: s.caseStatement},
		{Method: "POST", Pattern: "/api/v1/accountability/{id}/decision", Action: "accountability.decide", auth: userOnly, Body: incidents.CaseDecision{}, h: s.decideCase},
		{Method: "POST", Pattern: "/api/v1/accountability/{id}/appeal", Action: "accountability.appeal", auth: userOnly, Body: noteRequest{}, h: s.caseAppeal},
		{Method: "POST", Pattern: "/api/v1/accountability/{id}/appeal/review", Action: "accountability.review", auth: userOnly, Body: incidents.CaseReview{}, h: s.reviewAppeal},

		// Retention and destruction (SPEC §4, issue 11).
		{Method: "GET", Pattern: "/api/v1/retention/periods", Action: "retention.periods", auth: userOnly, Perms: perms(policy.RetentionRead), h: s.listRetentionPeriods},
		{Method: "PUT", Pattern: "/api/v1/retention/periods/{type}", Action: "retention.lengthen", auth: userOnly, Perms: perms(policy.RetentionManage), Body: retentionRequest{}, h: s.setRetentionPeriod},
		{Method: "GET", Pattern: "/api/v1/retention/expired", Action: "retention.expired", auth: userOnly, Perms: perms(policy.RetentionRead), h: s.listExpiredRecords},
		{Method: "POST", Pattern: "/api/v1/retention/destructions", Action: "approval.request", auth: userOnly, Perms: perms(policy.RecordDestroy), Body: destructionRequest{}, h: s.requestDestruction},
		{Method: "GET", Pattern: "/api/v1/retention/certificates", Action: "retention.certificates", auth: userOnly, Perms: perms(policy.RetentionRead), h: s.listCertificates},
		{Method: "GET", Pattern: "/api/v1/retention/certificates/{id}", Action: "retention.certificate_read", auth: userOnly, Perms: perms(policy.RetentionRead), h: s.getCertificate},
		{Method: "GET", Pattern: "/api/v1/retention/holds", Action: "retention.holds", auth: userOnly, Perms: perms(policy.RetentionRead), h: s.listHolds},
		{Method: "POST", Pattern: "/api/v1/retention/holds", Action: "retention.hold", auth: userOnly, Perms: perms(policy.RetentionHold), Body: records.NewHold{}, h: s.placeHold},
		{Method: "POST", Pattern: "/api/v1/retention/holds/{id}/lift", Action: "approval.request", auth: userOnly, Perms: perms(policy.RetentionHold), Body: holdLiftRequest{}, h: s.liftHold},

		// Data use (SPEC §8, issue 12): record-use requests, paper folders,
		// copies and the paper–electronic reconciliation.
		{Method: "POST", Pattern: "/api/v1/use-requests", Action: "use.request", auth: userOnly, Perms: perms(policy.UseRequest), Body: datause.NewUseRequest{}, h: s.askUse},
		{Method: "GET", Pattern: "/api/v1/use-requests", Action: "use.list", auth: userOnly, Perms: perms(policy.UseRequest, policy.UseRead, policy.UseApprove), h: s.listUse},
		{Method: "POST", Pattern: "/api/v1/use-requests/{id}/approve", Action: "use.approve", auth: userOnly, Perms: perms(policy.UseApprove, policy.ApprovalDecideDepartment), Body: useDecisionRequest{}, h: s.decideUse(true)},
		{Method: "POST", Pattern: "/api/v1/use-requests/{id}/refuse", Action: "use.refuse", auth: userOnly, Perms: perms(policy.UseApprove, policy.ApprovalDecideDepartment), Body: useDecisionRequest{}, h: s.decideUse(false)},
		{Method: "POST", Pattern: "/api/v1/use-requests/{id}/withdraw", Action: "use.withdraw", auth: userOnly, Perms: perms(policy.UseRequest), h: s.withdrawUse},
		{Method: "POST", Pattern: "/api/v1/folders", Action: "folder.register", auth: userOnly, Perms: perms(policy.FolderManage), Body: datause.NewFolder{}, h: s.registerFolder},
		{Method: "GET", Pattern: "/api/v1/folders", Action: "folder.list", auth: userOnly, Perms: perms(policy.FolderRead), h: s.listFolders},
		{Method: "GET", Pattern: "/api/v1/folders/reconciliation", Action: "folder.reconcile", auth: userOnly, Perms: perms(policy.FolderRead), h: s.reconcileFolders},
		{Method: "GET", Pattern: "/api/v1/folders/reconciliations", Action: "folder.reconciliations", auth: userOnly, Perms: perms(policy.FolderRead), h: s.listReconciliations},
		{Method: "PATCH", Pattern: "/api/v1/folders/{id}", Action: "folder.update", auth: userOnly, Perms: perms(policy.FolderManage), Body: datause.FolderChanges{}, h: s.changeFolder},
		{Method: "POST", Pattern: "/api/v1/folders/{id}/lend", Action: "folder.lend", auth: userOnly, Perms: perms(policy.FolderManage), Body: datause.NewLoan{}, h: s.lendFolder},
		{Method: "POST", Pattern: "/api/v1/folders/{id}/return", Action: "folder.return", auth: userOnly, Perms: perms(policy.FolderManage), h: s.returnFolder},
		{Method: "POST", Pattern: "/api/v1/copies", Action: "copy.record", auth: userOnly, Perms: perms(policy.CopyManage), Body: datause.NewCopy{}, h: s.recordCopy},
		{Method: "GET", Pattern: "/api/v1/copies", Action: "copy.list", auth: userOnly, Perms: perms(policy.CopyManage), h: s.listCopies},

		// External partners (合作单位, SPEC §8, issue 12): agreements are
		// four-eyes requests a security officer decides.
		{Method: "GET", Pattern: "/api/v1/partners", Action: "partner.list", auth: userOnly, Perms: perms(policy.PartnerRead), h: s.listPartners},
		{Method: "POST", Pattern: "/api/v1/partners", Action: "partner.create", auth: userOnly, Perms: perms(policy.PartnerManage), Body: partners.NewPartner{}, h: s.createPartner},
		{Method: "GET", Pattern: "/api/v1/partners/{id}", Action: "partner.read", auth: userOnly, Perms: perms(policy.PartnerRead), h: s.getPartner},
		{Method: "POST", Pattern: "/api/v1/partners/{id}/accounts", Action: "partner.link_account", auth: userOnly, Perms: perms(policy.PartnerManage), Body: partners.LinkAccount{}, h: s.linkPartnerAccount},
		{Method: "POST", Pattern: "/api/v1/partners/{id}/agreements", Action: "approval.request", auth: userOnly, Perms: perms(policy.PartnerManage), Body: partners.NewAgreement{}, h: s.askAgreement},
		{Method: "GET", Pattern: "/api/v1/partners/{id}/activity", Action: "partner.activity", auth: userOnly, Perms: perms(policy.PartnerRead), h: s.partnerActivity},
		{Method: "POST", Pattern: "/api/v1/agreements/{id}/extend", Action: "approval.request", auth: userOnly, Perms: perms(policy.PartnerManage), Body: partners.Extension{}, h: s.extendAgreement},
		{Method: "POST", Pattern: "/api/v1/agreements/{id}/terminate", Action: "partner.agreement_terminate", auth: userOnly, Perms: perms(policy.PartnerManage), h: s.terminateAgreement},
		{Method: "POST", Pattern: "/api/v1/agreements/{id}/deletion-confirmation", Action: "partner.deletion_confirm", auth: userOnly, Perms: perms(policy.PartnerManage), Body: partners.NewDeletionConfirmation{}, h: s.confirmDeletion},
		// De-identification jobs (SPEC §8, issue 12).
		{Method: "POST", Pattern: "/api/v1/deid/jobs", Action: "approval.request", auth: userOnly, Perms: perms(policy.DeidRun), Body: deidjobs.NewJob{}, h: s.askDeidJob},
		{Method: "GET", Pattern: "/api/v1/deid/jobs", Action: "deid.list", auth: userOnly, Perms: perms(policy.DeidRead, policy.DeidRun, policy.DeidApprove), h: s.listDeidJobs},
		{Method: "GET", Pattern: "/api/v1/deid/jobs/{id}", Action: "deid.read", auth: userOnly, Perms: perms(policy.DeidRead, policy.DeidRun, policy.DeidApprove), h: s.getDeidJob},
		{Method: "GET", Pattern: "/api/v1/deid/jobs/{id}/manifest", Action: "deid.read", auth: userOnly, Perms: perms(policy.DeidRead, policy.DeidRun, policy.DeidApprove), h: s.getDeidManifest},
		{Method: "GET", Pattern: "/api/v1/deid/jobs/{id}/output", Action: "deid.download", auth: userOnly, Perms: perms(policy.DeidRead), h: s.downloadDeidOutput},
		// Exports (SPEC §8, issue 12): one patient at once, more than one
		// through a four-eyes request (exports.bulk); the file encrypted,
		// its key shown once, downloadable a limited number of times.
		{Method: "POST", Pattern: "/api/v1/exports", Action: "export.request", auth: userOnly, Perms: perms(policy.RecordExport), Body: exports.NewExport{}, h: s.createExport},
		{Method: "GET", Pattern: "/api/v1/exports", Action: "export.list", auth: userOnly, Perms: perms(policy.RecordExport, policy.ExportApprove), h: s.listExports},
		{Method: "GET", Pattern: "/api/v1/exports/{id}", Action: "export.read", auth: userOnly, Perms: perms(policy.RecordExport, policy.ExportApprove), h: s.getExport},
		{Method: "POST", Pattern: "/api/v1/exports/{id}/file", Action: "export.build", auth: userOnly, Perms: perms(policy.RecordExport), h: s.buildExport},
		{Method: "GET", Pattern: "/api/v1/exports/{id}/file", Action: "export.download", auth: userOnly, Perms: perms(policy.RecordExport), h: s.downloadExport},

		// Backups and restore drills (SPEC §9, issue 11).
		{Method: "GET", Pattern: "/api/v1/backups", Action: "backup.status", auth: userOnly, Perms: perms(policy.BackupRead), h: s.backupHealth},
		{Method: "GET", Pattern: "/api/v1/backups/drills", Action: "backup.drills", auth: userOnly, Perms: perms(policy.BackupRead), h: s.listDrills},

		// Daily inspections (巡查, issue 13): one a day, signed by its
		// inspector and countersigned by someone else.
		{Method: "GET", Pattern: "/api/v1/inspections", Action: "inspection.list", auth: userOnly, Perms: perms(policy.InspectionRead), h: s.listInspectionDays},
		{Method: "POST", Pattern: "/api/v1/inspections", Action: "inspection.record", auth: userOnly, Perms: perms(policy.InspectionPerform), Body: inspections.NewInspection{}, h: s.recordInspection},
		{Method: "GET", Pattern: "/api/v1/inspections/today", Action: "inspection.today", auth: userOnly, Perms: perms(policy.InspectionRead), h: s.inspectionToday},
		{Method: "GET", Pattern: "/api/v1/inspections/weeks", Action: "inspection.weeks", auth: userOnly, Perms: perms(policy.InspectionRead), h: s.inspectionWeeks},
		{Method: "GET", Pattern: "/api/v1/inspections/templates", Action: "inspection.templates", auth: userOnly, Perms: perms(policy.InspectionRead), h: s.listInspectionTemplates},
		{Method: "POST", Pattern: "/api/v1/inspections/templates", Action: "inspection.template_save", auth: userOnly, Perms: perms(policy.InspectionManage), Body: inspections.NewTemplate{}, h: s.saveInspectionTemplate},
		{Method: "GET", Pattern: "/api/v1/inspections/{id}", Action: "inspection.read", auth: userOnly, Perms: perms(policy.InspectionRead), h: s.getInspection},
		{Method: "POST", Pattern: "/api/v1/inspections/{id}/review", Action: "inspection.review", auth: userOnly, Perms: perms(policy.InspectionReview), Body: inspections.Review{}, h: s.reviewInspection},
		// The removable media register (issue 13): loans signed by the
		// lender and then by the named borrower.
		{Method: "GET", Pattern: "/api/v1/media", Action: "media.list", auth: userOnly, Perms: perms(policy.MediaRead), h: s.listMedia},
		{Method: "POST", Pattern: "/api/v1/media", Action: "media.register", auth: userOnly, Perms: perms(policy.MediaManage), Body: media.NewDevice{}, h: s.registerMedia},
		{Method: "GET", Pattern: "/api/v1/media/loans", Action: "media.loans", auth: userOnly, Perms: perms(policy.MediaRead, policy.MediaBorrow), h: s.listMediaLoans},
		{Method: "GET", Pattern: "/api/v1/media/{id}", Action: "media.read", auth: userOnly, Perms: perms(policy.MediaRead), h: s.getMedia},
		{Method: "POST", Pattern: "/api/v1/media/{id}/loans", Action: "media.lend", auth: userOnly, Perms: perms(policy.MediaManage), Body: media.NewLoan{}, h: s.lendMedia},
		{Method: "POST", Pattern: "/api/v1/media/{id}/erasures", Action: "media.erase", auth: userOnly, Perms: perms(policy.MediaManage), Body: media.NewErasure{}, h: s.eraseMedia},
		{Method: "POST", Pattern: "/api/v1/media/{id}/disposal", Action: "media.dispose", auth: userOnly, Perms: perms(policy.MediaManage), Body: media.NewDisposal{}, h: s.disposeMedia},
		{Method: "POST", Pattern: "/api/v1/media/loans/{id}/sign", Action: "media.loan_sign", auth: userOnly, Perms: perms(policy.MediaBorrow), h: s.signMediaLoan},
		{Method: "POST", Pattern: "/api/v1/media/loans/{id}/cancel", Action: "media.loan_cancel", auth: userOnly, Perms: perms(policy.MediaManage), h: s.cancelMediaLoan},
		{Method: "POST", Pattern: "/api/v1/media/loans/{id}/return", Action: "media.return", auth: userOnly, Perms: perms(policy.MediaManage), h: s.returnMedia},
		// Training and staff assessment (培训考核, SPEC §10, issue 13): the
		// register, and every member of staff's own record and letter.
		{Method: "GET", Pattern: "/api/v1/trainings", Action: "training.coverage", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.trainingCoverage},
		{Method: "GET", Pattern: "/api/v1/trainings/summary", Action: "training.summary", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.trainingSummary},
		{Method: "GET", Pattern: "/api/v1/trainings/me", Action: "training.record_read", auth: userOnly, h: s.myTraining},
		{Method: "GET", Pattern: "/api/v1/trainings/people/{id}", Action: "training.record_read", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.personTraining},
		{Method: "GET", Pattern: "/api/v1/trainings/settings", Action: "training.settings_read", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.trainingSettings},
		{Method: "PUT", Pattern: "/api/v1/trainings/settings", Action: "training.settings_set", auth: userOnly, Perms: perms(policy.TrainingManage), Body: trainingSettingsRequest{}, h: s.setTrainingSettings},
		{Method: "GET", Pattern: "/api/v1/trainings/courses", Action: "training.course_list", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.listCourses},
		{Method: "POST", Pattern: "/api/v1/trainings/courses", Action: "training.course_create", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.NewCourse{}, h: s.createCourse},
		{Method: "GET", Pattern: "/api/v1/trainings/courses/{id}", Action: "training.course_read", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.getCourse},
		{Method: "PATCH", Pattern: "/api/v1/trainings/courses/{id}", Action: "training.course_update", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.CourseChanges{}, h: s.updateCourse},
		{Method: "PUT", Pattern: "/api/v1/trainings/courses/{id}/required", Action: "training.course_require", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.Requirement{}, h: s.requireCourse},
		{Method: "GET", Pattern: "/api/v1/trainings/sessions", Action: "training.session_list", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.listTrainingSessions},
		{Method: "POST", Pattern: "/api/v1/trainings/sessions", Action: "training.session_create", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.NewSession{}, h: s.createTrainingSession},
		{Method: "GET", Pattern: "/api/v1/trainings/sessions/{id}", Action: "training.session_read", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.getTrainingSession},
		{Method: "POST", Pattern: "/api/v1/trainings/sessions/{id}/enrolments", Action: "training.enrol", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.Enrolment{}, h: s.enrolTraining},
		{Method: "PUT", Pattern: "/api/v1/trainings/sessions/{id}/results/{user_id}", Action: "training.result", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.NewResult{}, h: s.recordTrainingResult},
		{Method: "GET", Pattern: "/api/v1/trainings/letters", Action: "training.letter_list", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.listLetters},
		{Method: "POST", Pattern: "/api/v1/trainings/letters", Action: "training.letter_publish", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.NewLetter{}, h: s.publishLetter},
		{Method: "GET", Pattern: "/api/v1/trainings/letters/mine", Action: "training.letter_read", auth: userOnly, h: s.myLetter},
		{Method: "POST", Pattern: "/api/v1/trainings/letters/{version}/signatures", Action: "training.letter_sign", auth: userOnly, Body: training.SignLetter{}, h: s.signLetter},
		{Method: "GET", Pattern: "/api/v1/trainings/retraining", Action: "training.retraining_list", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.listRetraining},
		{Method: "POST", Pattern: "/api/v1/trainings/retraining", Action: "training.retraining_order", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.NewOrder{}, h: s.orderRetraining},
		{Method: "POST", Pattern: "/api/v1/trainings/retraining/{id}/cancel", Action: "training.retraining_cancel", auth: userOnly, Perms: perms(policy.TrainingManage), h: s.cancelRetraining},
		{Method: "GET", Pattern: "/api/v1/trainings/assessments", Action: "training.assessment_list", auth: userOnly, Perms: perms(policy.TrainingRead), h: s.listAssessments},
		{Method: "POST", Pattern: "/api/v1/trainings/assessments", Action: "training.assessment_compute", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.NewAssessments{}, h: s.computeAssessments},
		{Method: "POST", Pattern: "/api/v1/trainings/assessments/{id}/appeal", Action: "training.assessment_appeal", auth: userOnly, Body: training.AssessmentAppeal{}, h: s.appealAssessment},
		{Method: "POST", Pattern: "/api/v1/trainings/assessments/{id}/decision", Action: "training.assessment_review", auth: userOnly, Perms: perms(policy.TrainingManage), Body: training.AppealDecision{}, h: s.decideAssessmentAppeal},
		// The asset register (资产台账, issue 13).
		{Method: "GET", Pattern: "/api/v1/assets", Action: "asset.list", auth: userOnly, Perms: perms(policy.AssetRead), h: s.listAssets},
		{Method: "POST", Pattern: "/api/v1/assets", Action: "asset.create", auth: userOnly, Perms: perms(policy.AssetManage), Body: assets.NewAsset{}, h: s.createAsset},
		{Method: "POST", Pattern: "/api/v1/assets/import", Action: "asset.import", auth: userOnly, Perms: perms(policy.AssetManage), h: s.importAssets},
		{Method: "GET", Pattern: "/api/v1/assets/{id}", Action: "asset.read", auth: userOnly, Perms: perms(policy.AssetRead), h: s.getAsset},
		{Method: "PATCH", Pattern: "/api/v1/assets/{id}", Action: "asset.update", auth: userOnly, Perms: perms(policy.AssetManage), Body: assets.Changes{}, h: s.updateAsset},
		// Vulnerabilities (漏洞管理, issue 13): scanner reports imported per
		// asset; exceptions and early lifts of suspensions are four-eyes
		// requests a security officer decides.
		{Method: "POST", Pattern: "/api/v1/vulns/import", Action: "vuln.import", auth: userOnly, Perms: perms(policy.VulnManage), h: s.importVulns},
		{Method: "GET", Pattern: "/api/v1/vulns", Action: "vuln.list", auth: userOnly, Perms: perms(policy.VulnRead), h: s.listVulns},
		{Method: "GET", Pattern: "/api/v1/vulns/cadence", Action: "vuln.cadence", auth: userOnly, Perms: perms(policy.VulnRead), h: s.vulnCadence},
		{Method: "GET", Pattern: "/api/v1/vulns/summary", Action: "vuln.summary", auth: userOnly, Perms: perms(policy.VulnRead), h: s.vulnSummary},
		{Method: "GET", Pattern: "/api/v1/vulns/scans", Action: "vuln.scans", auth: userOnly, Perms: perms(policy.VulnRead), h: s.listVulnScans},
		{Method: "GET", Pattern: "/api/v1/vulns/{id}", Action: "vuln.read", auth: userOnly, Perms: perms(policy.VulnRead), h: s.getVuln},
		{Method: "POST", Pattern: "/api/v1/vulns/{id}/status", Action: "vuln.transition", auth: userOnly, Perms: perms(policy.VulnManage), Body: vulns.Transition{}, h: s.setVulnStatus},
		{Method: "POST", Pattern: "/api/v1/vulns/{id}/exception", Action: "approval.request", auth: userOnly, Perms: perms(policy.VulnManage), Body: vulns.NewException{}, h: s.askVulnException},
		{Method: "POST", Pattern: "/api/v1/vulns/{id}/suspension", Action: "vuln.suspend", auth: userOnly, Perms: perms(policy.VulnSuspend), Body: vulns.NewSuspension{}, h: s.suspendForVuln},
		{Method: "GET", Pattern: "/api/v1/suspensions", Action: "vuln.suspension_list", auth: userOnly, Perms: perms(policy.VulnRead), h: s.listSuspensions},
		{Method: "POST", Pattern: "/api/v1/suspensions/{id}/lift", Action: "approval.request", auth: userOnly, Perms: perms(policy.VulnSuspend), Body: liftRequest{}, h: s.askSuspensionLift},
		// The compliance checks (合规检查, issue 14): the report (JSON, or
		// PDF), the checks' history and the score's trend, runs on demand,
		// the evidence of the attested checks and its second signature.
		{Method: "GET", Pattern: "/api/v1/compliance/report", Action: "compliance.report", auth: userOnly, Perms: perms(policy.ComplianceRead), h: s.complianceReport},
		{Method: "GET", Pattern: "/api/v1/compliance/catalogue", Action: "compliance.catalogue", auth: userOnly, Perms: perms(policy.ComplianceRead), h: s.complianceCatalogue},
		{Method: "GET", Pattern: "/api/v1/compliance/checks", Action: "compliance.report", auth: userOnly, Perms: perms(policy.ComplianceRead), h: s.complianceChecks},
		{Method: "GET", Pattern: "/api/v1/compliance/checks/{id}", Action: "compliance.history", auth: userOnly, Perms: perms(policy.ComplianceRead), h: s.complianceHistory},
		{Method: "GET", Pattern: "/api/v1/compliance/scores", Action: "compliance.scores", auth: userOnly, Perms: perms(policy.ComplianceRead), h: s.complianceScores},
		{Method: "GET", Pattern: "/api/v1/compliance/runs", Action: "compliance.runs", auth: userOnly, Perms: perms(policy.ComplianceRead), h: s.complianceRuns},
		{Method: "POST", Pattern: "/api/v1/compliance/runs", Action: "compliance.run", auth: userOnly, Perms: perms(policy.ComplianceRun), h: s.complianceRun},
		{Method: "GET", Pattern: "/api/v1/compliance/checks/{id}/attestations", Action: "compliance.attestations", auth: userOnly, Perms: perms(policy.ComplianceRead), h: s.complianceAttestations},
		{Method: "POST", Pattern: "/api/v1/compliance/checks/{id}/attestations", Action: "compliance.attest", auth: userOnly, Perms: perms(policy.ComplianceAttest), h: s.complianceAttest},
		{Method: "POST", Pattern: "/api/v1/compliance/attestations/{id}/review", Action: "compliance.attestation_review", auth: userOnly, Perms: perms(policy.ComplianceReview), Body: attestationReview{}, h: s.complianceReview},
		{Method: "GET", Pattern: "/api/v1/compliance/attestations/{id}/file", Action: "compliance.attestation_file", auth: userOnly, Perms: perms(policy.ComplianceRead), h: s.complianceFile},

		// The risk register (风险评估, issue 13): risks on the 5 × 5 matrix,
		// their reviews and the leadership's acceptance of high risks, the
		// heat map, risk assessments and new systems' checklists.
		{Method: "GET", Pattern: "/api/v1/risks", Action: "risk.list", auth: userOnly, Perms: perms(policy.RiskRead), h: s.listRisks},
		{Method: "POST", Pattern: "/api/v1/risks", Action: "risk.create", auth: userOnly, Perms: perms(policy.RiskManage), Body: risks.NewRisk{}, h: s.createRisk},
		{Method: "GET", Pattern: "/api/v1/risks/heatmap", Action: "risk.heatmap", auth: userOnly, Perms: perms(policy.RiskRead), h: s.riskHeatMap},
		{Method: "GET", Pattern: "/api/v1/risks/{id}", Action: "risk.read", auth: userOnly, Perms: perms(policy.RiskRead), h: s.getRisk},
		{Method: "PATCH", Pattern: "/api/v1/risks/{id}", Action: "risk.update", auth: userOnly, Perms: perms(policy.RiskManage), Body: risks.RiskChanges{}, h: s.updateRisk},
		{Method: "POST", Pattern: "/api/v1/risks/{id}/review", Action: "risk.review", auth: userOnly, Perms: perms(policy.RiskManage), Body: risks.Review{}, h: s.reviewRisk},
		{Method: "POST", Pattern: "/api/v1/risks/{id}/acceptance", Action: "risk.accept", auth: userOnly, Perms: perms(policy.RiskAccept), Body: risks.AcceptanceDecision{}, h: s.decideRiskAcceptance},
		{Method: "POST", Pattern: "/api/v1/risks/{id}/close", Action: "risk.close", auth: userOnly, Perms: perms(policy.RiskManage), Body: risks.Closing{}, h: s.closeRisk},
		{Method: "GET", Pattern: "/api/v1/risk-assessments", Action: "risk.assessment_list", auth: userOnly, Perms: perms(policy.RiskRead), h: s.listRiskAssessments},
		{Method: "POST", Pattern: "/api/v1/risk-assessments", Action: "risk.assessment_create", auth: userOnly, Perms: perms(policy.RiskManage), Body: risks.NewAssessment{}, h: s.createAssessment},
		{Method: "GET", Pattern: "/api/v1/risk-assessments/{id}", Action: "risk.assessment_read", auth: userOnly, Perms: perms(policy.RiskRead), h: s.getAssessment},
		{Method: "POST", Pattern: "/api/v1/risk-assessments/{id}/complete", Action: "risk.assessment_complete", auth: userOnly, Perms: perms(policy.RiskManage), Body: risks.AssessmentCompletion{}, h: s.completeAssessment},
		{Method: "GET", Pattern: "/api/v1/system-introductions", Action: "risk.introduction_list", auth: userOnly, Perms: perms(policy.RiskRead), h: s.listIntroductions},
		{Method: "POST", Pattern: "/api/v1/system-introductions", Action: "risk.introduction_create", auth: userOnly, Perms: perms(policy.RiskManage), Body: risks.NewIntroduction{}, h: s.createIntroduction},
		{Method: "GET", Pattern: "/api/v1/system-introductions/{id}", Action: "risk.introduction_read", auth: userOnly, Perms: perms(policy.RiskRead), h: s.getIntroduction},
		{Method: "POST", Pattern: "/api/v1/system-introductions/{id}/items/{item}", Action: "risk.introduction_check", auth: userOnly, Perms: perms(policy.RiskManage), Body: risks.ItemCheck{}, h: s.checkIntroductionItem},
		{Method: "POST", Pattern: "/api/v1/system-introductions/{id}/approve", Action: "risk.introduction_approve", auth: userOnly, Perms: perms(policy.RiskAccept), Body: risks.GoLive{}, h: s.approveGoLive},

		// The rectification register (整改) and the quarterly compliance
		// check (季度合规检查, issue 14): items from failing checks,
		// quarterly checks, internal and third-party audits; the owner's
		// progress, verification by another; the monthly review; the
		// quarterly runs published to the department heads. Reading is
		// decided by the service (a department head's own department, an
		// owner's own items), so the routes name no permission for it.
		{Method: "GET", Pattern: "/api/v1/rectifications", Action: "rectification.list", auth: userOnly, h: s.listRectifications},
		{Method: "POST", Pattern: "/api/v1/rectifications", Action: "rectification.create", auth: userOnly, Perms: perms(policy.RectificationManage), Body: rectify.NewItem{}, h: s.createRectification},
		{Method: "POST", Pattern: "/api/v1/rectifications/import", Action: "rectification.import", auth: userOnly, Perms: perms(policy.RectificationManage), h: s.importRectifications},
		{Method: "GET", Pattern: "/api/v1/rectifications/monthly", Action: "rectification.monthly", auth: userOnly, Perms: perms(policy.RectificationRead), h: s.rectificationMonthly},
		{Method: "GET", Pattern: "/api/v1/rectifications/reviews", Action: "rectification.review_list", auth: userOnly, Perms: perms(policy.RectificationRead), h: s.listRectificationReviews},
		{Method: "POST", Pattern: "/api/v1/rectifications/reviews", Action: "rectification.review", auth: userOnly, Perms: perms(policy.RectificationReview), Body: rectify.NewReview{}, h: s.recordRectificationReview},
		{Method: "GET", Pattern: "/api/v1/rectifications/{id}", Action: "rectification.read", auth: userOnly, h: s.getRectification},
		{Method: "PATCH", Pattern: "/api/v1/rectifications/{id}", Action: "rectification.update", auth: userOnly, Perms: perms(policy.RectificationManage), Body: rectify.ItemChanges{}, h: s.updateRectification},
		{Method: "POST", Pattern: "/api/v1/rectifications/{id}/start", Action: "rectification.start", auth: userOnly, Body: rectify.Progress{}, h: s.rectificationProgress(false)},
		{Method: "POST", Pattern: "/api/v1/rectifications/{id}/done", Action: "rectification.done", auth: userOnly, Body: rectify.Progress{}, h: s.rectificationProgress(true)},
		{Method: "POST", Pattern: "/api/v1/rectifications/{id}/verify", Action: "rectification.verify", auth: userOnly, Perms: perms(policy.RectificationVerify), Body: rectify.Verification{}, h: s.rectificationVerification(true)},
		{Method: "POST", Pattern: "/api/v1/rectifications/{id}/reopen", Action: "rectification.reopen", auth: userOnly, Perms: perms(policy.RectificationVerify), Body: rectify.Verification{}, h: s.rectificationVerification(false)},
		{Method: "GET", Pattern: "/api/v1/rectifications/{id}/evidence/{seq}", Action: "rectification.evidence_read", auth: userOnly, h: s.getRectificationEvidence},
		{Method: "GET", Pattern: "/api/v1/compliance/quarterly", Action: "compliance.quarterly_list", auth: userOnly, Perms: perms(policy.ComplianceRead, policy.ComplianceQuarterly, policy.ComplianceQuarterlyResults), h: s.listQuarterlyRuns},
		{Method: "POST", Pattern: "/api/v1/compliance/quarterly", Action: "compliance.quarterly_start", auth: userOnly, Perms: perms(policy.ComplianceQuarterly), Body: rectify.NewRun{}, h: s.startQuarterlyRun},
		{Method: "GET", Pattern: "/api/v1/compliance/quarterly/{id}", Action: "compliance.quarterly_read", auth: userOnly, Perms: perms(policy.ComplianceRead, policy.ComplianceQuarterly, policy.ComplianceQuarterlyResults), h: s.getQuarterlyRun},
		{Method: "POST", Pattern: "/api/v1/compliance/quarterly/{id}/findings", Action: "compliance.quarterly_finding", auth: userOnly, Perms: perms(policy.ComplianceQuarterly), Body: rectify.FindingResult{}, h: s.recordQuarterlyFinding},
		{Method: "POST", Pattern: "/api/v1/compliance/quarterly/{id}/publish", Action: "compliance.quarterly_publish", auth: userOnly, Perms: perms(policy.ComplianceQuarterly), h: s.publishQuarterlyRun},

		// Emergency plans and drills (应急预案与演练, issue 13): the plan
		// library and its workflow under separation of duties, the yearly
		// review; drills, their cadence, gaps and improvement items.
		{Method: "GET", Pattern: "/api/v1/plans", Action: "plan.list", auth: userOnly, Perms: perms(policy.PlanRead), h: s.listPlans},
		{Method: "POST", Pattern: "/api/v1/plans", Action: "plan.create", auth: userOnly, Perms: perms(policy.PlanManage), Body: plans.NewPlan{}, h: s.createPlan},
		{Method: "GET", Pattern: "/api/v1/plans/{id}", Action: "plan.read", auth: userOnly, Perms: perms(policy.PlanRead), h: s.getPlan},
		{Method: "POST", Pattern: "/api/v1/plans/{id}/versions", Action: "plan.version_create", auth: userOnly, Perms: perms(policy.PlanManage), h: s.newPlanVersion},
		{Method: "PUT", Pattern: "/api/v1/plans/{id}/versions/{version}", Action: "plan.draft_update", auth: userOnly, Perms: perms(policy.PlanManage), Body: plans.DraftChanges{}, h: s.updatePlanDraft},
		{Method: "POST", Pattern: "/api/v1/plans/{id}/versions/{version}/submit", Action: "plan.submit", auth: userOnly, Perms: perms(policy.PlanManage), Body: plans.Note{}, h: s.submitPlan},
		{Method: "POST", Pattern: "/api/v1/plans/{id}/versions/{version}/review", Action: "plan.review", auth: userOnly, Perms: perms(policy.PlanReview), Body: plans.Decision{}, h: s.reviewPlan},
		{Method: "POST", Pattern: "/api/v1/plans/{id}/versions/{version}/approve", Action: "plan.approve", auth: userOnly, Perms: perms(policy.PlanApprove), Body: plans.Decision{}, h: s.approvePlan},
		{Method: "POST", Pattern: "/api/v1/plans/{id}/annual-review", Action: "plan.annual_review", auth: userOnly, Perms: perms(policy.PlanReview), Body: plans.Note{}, h: s.annualPlanReview},
		{Method: "GET", Pattern: "/api/v1/drills", Action: "drill.list", auth: userOnly, Perms: perms(policy.PlanRead), h: s.listExerciseDrills},
		{Method: "POST", Pattern: "/api/v1/drills", Action: "drill.record", auth: userOnly, Perms: perms(policy.DrillManage), Body: plans.NewDrill{}, h: s.recordDrill},
		{Method: "GET", Pattern: "/api/v1/drills/status", Action: "drill.status", auth: userOnly, Perms: perms(policy.PlanRead), h: s.drillStatus},
		{Method: "GET", Pattern: "/api/v1/drills/{id}", Action: "drill.read", auth: userOnly, Perms: perms(policy.PlanRead), h: s.getDrill},
		{Method: "POST", Pattern: "/api/v1/drills/{id}/improvements/{improvement_id}/done", Action: "drill.improvement_done", auth: userOnly, Perms: perms(policy.DrillManage), Body: plans.ImprovementCompletion{}, h: s.completeImprovement},

		// The leadership's posture reports (安全态势报告, issue 14): weekly,
		// monthly and quarterly, generated on schedule and on demand,
		// signed in the audit log by their PDF's SHA-256.
		{Method: "GET", Pattern: "/api/v1/reports", Action: "report.list", auth: userOnly, Perms: perms(policy.ReportRead), h: s.listPostureReports},
		{Method: "POST", Pattern: "/api/v1/reports", Action: "report.generate", auth: userOnly, Perms: perms(policy.ReportGenerate), Body: reports.Request{}, h: s.generatePostureReport},
		{Method: "GET", Pattern: "/api/v1/reports/{id}", Action: "report.read", auth: userOnly, Perms: perms(policy.ReportRead), h: s.getPostureReport},
		{Method: "GET", Pattern: "/api/v1/reports/{id}/pdf", Action: "report.download", auth: userOnly, Perms: perms(policy.ReportRead), h: s.reportDocument(reports.FormatPDF)},
		{Method: "GET", Pattern: "/api/v1/reports/{id}/html", Action: "report.download", auth: userOnly, Perms: perms(policy.ReportRead), h: s.reportDocument(reports.FormatHTML)},
	}
}

// perms lists the permissions of which a route's caller needs one.
func perms(ps ...policy.Permission) []policy.Permission { return ps }
