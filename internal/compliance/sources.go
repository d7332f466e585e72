package compliance

import (
	"context"
	"time"
)

// The measures read the other registers through these small interfaces,
// implemented by adapters in internal/cli over the registers' own read
// methods. None of them returns patient data: staff, keys, codes, counts,
// dates and opaque ids only. A source left nil makes its checks
// not_applicable, saying so.

// Account is a member of staff's account as the access checks see it.
type Account struct {
	ID, Username, DisplayName, Department string
	Roles                                 []string
	Active                                bool
	CreatedAt                             time.Time
	DeactivatedAt                         *time.Time
	// LiveSessions counts the sessions neither ended nor expired.
	LiveSessions int
	// RolesAfterDeparture are the roles granted at or after the account
	// was deactivated.
	RolesAfterDeparture []string
	// TOTP is true once the account enrolled a second factor.
	TOTP bool
	// LastSignIn is the start of the account's newest session (nil: never).
	LastSignIn *time.Time
	// LastActive is, for an account with no sign-in in the last 90 days,
	// its newest action in the audit log within them (nil: none).
	LastActive *time.Time
}

// APIKey is a system's API key as the access checks see it.
type APIKey struct {
	ID, Name, Status string
	// OwnerID, OwnerUsername and OwnerDepartment name who made the key;
	// OwnerActive is false once they left.
	OwnerID, OwnerUsername, OwnerDepartment string
	OwnerActive                             bool
	Revoked                                 bool
}

// Staff is the directory of staff and keys (internal/identity).
type Staff interface {
	Accounts(ctx context.Context) ([]Account, error)
	APIKeys(ctx context.Context) ([]APIKey, error)
}

// ColumnScan is what a scan of one stored sensitive column found.
type ColumnScan struct {
	Table, Column string
	// Values counts the stored (non-null) values, Sealed those in the
	// cipher envelope.
	Values, Sealed int
	// Unsealed are the opaque row ids of values that are not (at most 20).
	Unsealed []string
}

// Fields scans the stored sensitive columns (internal/records).
type Fields interface {
	ScanSealed(ctx context.Context) ([]ColumnScan, error)
}

// Link is one network link of the running server, or a backup target.
type Link struct {
	Name, Target, Protocol, Note string
	Encrypted                    bool
}

// Links are the running server's links (internal/transport and the
// backup targets).
type Links interface {
	Links(ctx context.Context) ([]Link, error)
}

// AuditState is the audit log's verification, done now, and its
// retention.
type AuditState struct {
	Verified   bool
	VerifiedAt time.Time
	Size       uint64
	Problem    string
	// RetentionDays is the recorded retention period.
	RetentionDays int
}

// AuditLog verifies the audit log (internal/audit).
type AuditLog interface {
	VerifyAudit(ctx context.Context) (AuditState, error)
}

// SIEMState is the forwarder's state (nil source or Configured false: no
// SIEM).
type SIEMState struct {
	Configured  bool
	Destination string
	Connected   bool
	Standby     bool
	Lag         uint64
	Problem     string
}

// SIEM is the audit log's forwarding (internal/siem).
type SIEM interface {
	SIEMState(ctx context.Context) (SIEMState, error)
}

// BackupTarget is one backup target's last backup.
type BackupTarget struct {
	URL, Media string
	OffSite    bool
	LastBackup *time.Time
	LastError  string
}

// RestoreDrill is a restore drill.
type RestoreDrill struct {
	ID      string
	At      time.Time
	OK      bool
	RTOMet  bool
	Problem string
}

// BackupState is the backups' health.
type BackupState struct {
	Configured             bool
	Targets                []BackupTarget
	Copies, Media, OffSite int
	Met321                 bool
	LastDrill              *RestoreDrill
}

// Backups is the backups' health (internal/backuphealth).
type Backups interface {
	BackupState(ctx context.Context) (BackupState, error)
}

// Overdue is an item of a register past its deadline: a vulnerability,
// a risk or a plan to review, a break-glass review, an archiving.
type Overdue struct {
	ID, Title, Owner, Department, Severity string
	DueAt                                  time.Time
	// DoneAt is set for an item done late (an admission archived after
	// its due date).
	DoneAt *time.Time
}

// Standing is a member of staff's training standing.
type Standing struct {
	UserID, Username, DisplayName, Department string
	// Current: owes nothing. Overdue: the twice-yearly training is
	// overdue. LetterOwed: the commitment letter in force is unsigned.
	Current, Overdue, LetterOwed bool
}

// Registers are the security office's and the archive's registers.
type Registers interface {
	// OverdueVulns lists open vulnerabilities past due at now.
	OverdueVulns(ctx context.Context, now time.Time) ([]Overdue, error)
	// TrainingStandings lists every active member of staff's standing.
	TrainingStandings(ctx context.Context) ([]Standing, error)
	// OverdueBreakGlass lists break-glass events unreviewed past their
	// review period.
	OverdueBreakGlass(ctx context.Context, now time.Time) ([]Overdue, error)
	// LateArchives lists admissions discharged since since that were
	// archived late or are past due unarchived.
	LateArchives(ctx context.Context, since, now time.Time) ([]Overdue, error)
	// LatestReconciliation is the newest daily paper–electronic
	// reconciliation (nil: none yet).
	LatestReconciliation(ctx context.Context) (*Reconciliation, error)
	// InspectionDays lists the statuses of the last n ended hospital days
	// since inspections began.
	InspectionDays(ctx context.Context, n int) ([]InspectionDay, error)
	// OverdueRiskReviews and OverduePlanReviews list the reviews past due.
	OverdueRiskReviews(ctx context.Context, now time.Time) ([]Overdue, error)
	OverduePlanReviews(ctx context.Context, now time.Time) ([]Overdue, error)
	// DrillCadences is each kind of drill's cadence now.
	DrillCadences(ctx context.Context) ([]DrillCadence, error)
}

// Reconciliation is a daily paper–electronic reconciliation.
type Reconciliation struct {
	Day                                             string
	Rate                                            float64
	Folders, Inpatients, Matched                    int
	FoldersWithoutElectronic, PatientsWithoutFolder int
}

// InspectionDay is a hospital day of the daily inspection.
type InspectionDay struct {
	Day, Status, Inspector, Reviewer string
}

// Inspection day statuses (internal/inspections).
const (
	DaySigned         = "signed"
	DayAwaitingReview = "awaiting_review"
	DayMissed         = "missed"
)

// DrillCadence is a kind of drill's cadence.
type DrillCadence struct {
	Kind        string
	Started     bool
	Missed      []string
	LastDrillAt *time.Time
}

// Sources are what the measures read. A nil field makes the checks it
// feeds not_applicable (source not wired).
type Sources struct {
	Staff     Staff
	Fields    Fields
	Links     Links
	Audit     AuditLog
	SIEM      SIEM
	Backups   Backups
	Registers Registers
}
