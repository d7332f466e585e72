package datause

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/storage"
)

// The states of a paper folder.
const (
	OnShelf   = "on_shelf"
	Lent      = "lent"
	Missing   = "missing"
	Destroyed = "destroyed"
)

// FolderStatuses lists the states of a paper folder.
var FolderStatuses = []string{OnShelf, Lent, Missing, Destroyed}

// LoanPurposes are why a paper folder is lent.
var LoanPurposes = []string{"treatment", "quality_control", "research", "legal", "audit", "patient_request"}

// Folder is a paper folder (纸质病案) in the records office's registry.
type Folder struct {
	ID      string `json:"id"`
	Barcode string `json:"barcode"`
	// PatientID is the electronic patient the folder belongs to, if the
	// archive knows one (by id, or by the 病案号 written on the folder).
	PatientID string `json:"patient_id,omitempty"`
	// MRNTail is the last four characters of the 病案号 on the folder.
	MRNTail   string    `json:"mrn_tail,omitempty"`
	Location  string    `json:"location"`
	Status    string    `json:"status"`
	Loan      *Loan     `json:"loan,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Loan is the lending of a paper folder to a member of staff.
type Loan struct {
	ID         string `json:"id"`
	FolderID   string `json:"folder_id"`
	BorrowerID string `json:"borrower_id"`
	Borrower   string `json:"borrower"`
	Purpose    string `json:"purpose"`
	// SignedName is the borrower's full name as the borrower typed it,
	// at SignedAt: the signature (签收) of the loan.
	SignedName string     `json:"signed_name"`
	SignedAt   time.Time  `json:"signed_at"`
	LentBy     string     `json:"lent_by"`
	LentAt     time.Time  `json:"lent_at"`
	DueAt      time.Time  `json:"due_at"`
	ReturnedAt *time.Time `json:"returned_at,omitempty"`
	ReturnedBy string     `json:"returned_by,omitempty"`
	Overdue    bool       `json:"overdue"`
}

// NewFolder registers a paper folder: its barcode, where it is shelved,
// and the patient — by id, or by the 病案号 written on it (which may name
// no electronic patient yet: the reconciliation lists it).
type NewFolder struct {
	Barcode   string `json:"barcode"`
	PatientID string `json:"patient_id,omitempty"`
	MRN       string `json:"mrn,omitempty"`
	Location  string `json:"location"`
}

// FolderChanges moves a folder or marks it missing, found or destroyed.
type FolderChanges struct {
	Location *string `json:"location,omitempty"`
	Status   *string `json:"status,omitempty"`
}

// NewLoan lends a folder: to whom, why, until when, and the borrower's
// signature (their full name as the system knows it, typed by them).
type NewLoan struct {
	BorrowerID string    `json:"borrower_id"`
	Purpose    string    `json:"purpose"`
	DueAt      time.Time `json:"due_at"`
	Signature  string    `json:"signature"`
}

var barcodePattern = regexp.MustCompile(`^[A-Za-z0-9-]{4,32}$`)

func location(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || len([]rune(v)) > 64 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 }) {
		return v, medguard.InvalidField("location", "location (shelf) must be 1-64 characters")
	}
	return v, nil
}

var errNoFolder = &medguard.Error{Kind: medguard.NotFound, Message: "no such paper folder"}

func folderResource(f *Folder) policy.Resource {
	return policy.Resource{Type: "paper_folder", ID: f.ID, PatientID: f.PatientID}
}

// RegisterFolder adds a paper folder to the registry (folder.manage).
func (s *Service) RegisterFolder(ctx context.Context, call *medguard.Call, in NewFolder) (*Folder, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	in.Barcode = strings.TrimSpace(in.Barcode)
	if !barcodePattern.MatchString(in.Barcode) {
		return nil, medguard.InvalidField("barcode", "barcode must be 4-32 letters, digits or '-'")
	}
	var err error
	if in.Location, err = location(in.Location); err != nil {
		return nil, err
	}
	tail := ""
	switch {
	case in.PatientID == "" && in.MRN == "":
		return nil, medguard.InvalidField("patient_id", "patient_id or mrn is required")
	case in.PatientID != "":
		if ok, err := s.records.PatientExists(ctx, in.PatientID); err != nil {
			return nil, err
		} else if !ok {
			return nil, medguard.InvalidField("patient_id", "no such patient")
		}
	}
	if in.MRN != "" {
		if in.MRN, err = records.NormalizeMRN(in.MRN); err != nil {
			return nil, err
		}
		tail = in.MRN[max(0, len(in.MRN)-4):]
		id, err := s.records.PatientByMRN(ctx, in.MRN)
		if err != nil {
			return nil, medguard.Wrap("datause.RegisterFolder", err)
		}
		switch {
		case in.PatientID == "":
			in.PatientID = id
		case id != in.PatientID:
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "mrn", Message: "the 病案号 is not the patient's"}
		}
	}
	id := medguard.NewID(now)
	var mrn []byte
	if in.MRN != "" {
		if mrn, err = s.seal(ctx, "paper_folders", id, "mrn", in.MRN); err != nil {
			return nil, err
		}
	}
	f := &Folder{ID: id, Barcode: in.Barcode, PatientID: in.PatientID, MRNTail: tail, Location: in.Location, Status: OnShelf,
		CreatedAt: now, UpdatedAt: now}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.FolderManage, AuditAction: "folder.register",
		Resource: folderResource(f)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO paper_folders (id, barcode, patient_id, mrn, mrn_tail, location, status,
				created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				id, in.Barcode, sql.NullString{String: in.PatientID, Valid: in.PatientID != ""}, mrn, tail, in.Location, OnShelf,
				call.Actor.Name, medguard.Millis(now), medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Field: "barcode", Message: "another folder has this barcode"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

const folderColumns = `id, barcode, patient_id, mrn_tail, location, status, created_at, updated_at`
const loanColumns = `id, folder_id, borrower_id, borrower, purpose, signature, signed_at, lent_by, lent_at, due_at, returned_at,
	returned_by`

func scanFolder(sc interface{ Scan(...any) error }) (*Folder, error) {
	var f Folder
	var patient sql.NullString
	var created, updated int64
	if err := sc.Scan(&f.ID, &f.Barcode, &patient, &f.MRNTail, &f.Location, &f.Status, &created, &updated); err != nil {
		return nil, err
	}
	f.PatientID, f.CreatedAt, f.UpdatedAt = patient.String, medguard.FromMillis(created), medguard.FromMillis(updated)
	return &f, nil
}

func (s *Service) scanLoan(ctx context.Context, sc interface{ Scan(...any) error }, now time.Time) (*Loan, error) {
	var l Loan
	var sig []byte
	var signed, lent, due int64
	var returned sql.NullInt64
	var returnedBy sql.NullString
	if err := sc.Scan(&l.ID, &l.FolderID, &l.BorrowerID, &l.Borrower, &l.Purpose, &sig, &signed, &l.LentBy, &lent, &due,
		&returned, &returnedBy); err != nil {
		return nil, err
	}
	var err error
	if l.SignedName, err = s.open(ctx, "folder_loans", l.ID, "signature", sig); err != nil {
		return nil, err
	}
	l.SignedAt, l.LentAt, l.DueAt, l.ReturnedBy = medguard.FromMillis(signed), medguard.FromMillis(lent), medguard.FromMillis(due), returnedBy.String
	if returned.Valid {
		t := medguard.FromMillis(returned.Int64)
		l.ReturnedAt = &t
	}
	l.Overdue = l.ReturnedAt == nil && !now.Before(l.DueAt)
	return &l, nil
}

// openLoan returns the folder's loan not yet returned, or nil.
func (s *Service) openLoan(ctx context.Context, folderID string, now time.Time) (*Loan, error) {
	l, err := s.scanLoan(ctx, s.db.QueryRowContext(ctx, `SELECT `+loanColumns+` FROM folder_loans WHERE folder_id = $1
		AND returned_at IS NULL ORDER BY lent_at DESC LIMIT 1`, folderID), now)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return l, err
}

// loadFolder reads a folder and its open loan; an attempt on a missing one
// is logged and answered 404.
func (s *Service) loadFolder(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Folder, error) {
	var f *Folder
	err := error(errNoFolder)
	if medguard.ValidID(id) {
		var lerr error
		f, lerr = scanFolder(s.db.QueryRowContext(ctx, `SELECT `+folderColumns+` FROM paper_folders WHERE id = $1`, id))
		switch {
		case errors.Is(lerr, sql.ErrNoRows):
		case lerr != nil:
			return nil, medguard.Wrap("datause.loadFolder", lerr)
		default:
			err = nil
			if f.Loan, err = s.openLoan(ctx, f.ID, s.clock.Now()); err != nil {
				return nil, medguard.Wrap("datause.loadFolder", err)
			}
		}
	}
	if err != nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "paper_folder", ID: id}}, err)
	}
	return f, nil
}

// ChangeFolder moves a folder (location) or marks it missing, found (on
// shelf) or destroyed (folder.manage). A lent folder is returned first,
// unless it is missing.
func (s *Service) ChangeFolder(ctx context.Context, call *medguard.Call, id string, ch FolderChanges) (*Folder, error) {
	if ch.Location == nil && ch.Status == nil {
		return nil, medguard.InvalidField("status", "nothing to change")
	}
	if ch.Location != nil {
		loc, err := location(*ch.Location)
		if err != nil {
			return nil, err
		}
		ch.Location = &loc
	}
	if ch.Status != nil && (!slices.Contains(FolderStatuses, *ch.Status) || *ch.Status == Lent) {
		return nil, medguard.InvalidField("status", "status must be on_shelf, missing or destroyed (lending is POST …/lend)")
	}
	f, err := s.loadFolder(ctx, call, policy.FolderManage, "folder.update", id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.FolderManage, AuditAction: "folder.update",
		Resource: folderResource(f)}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case f.Status == Destroyed:
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the folder was destroyed"}
		case ch.Status != nil && f.Status == Lent && *ch.Status != Missing:
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the folder is lent: return it first"}
		}
		prev := f.Status
		if ch.Location != nil {
			f.Location = *ch.Location
		}
		if ch.Status != nil {
			f.Status = *ch.Status
		}
		f.UpdatedAt = now
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE paper_folders SET location = $1, status = $2, updated_at = $3 WHERE id = $4 AND status = $5`,
				f.Location, f.Status, medguard.Millis(now), f.ID, prev)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the folder changed meanwhile"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// LendFolder lends a folder on the shelf to a member of staff until a due
// date, with the borrower's signature (folder.manage).
func (s *Service) LendFolder(ctx context.Context, call *medguard.Call, id string, in NewLoan) (*Folder, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	if !slices.Contains(LoanPurposes, in.Purpose) {
		return nil, medguard.InvalidField("purpose", "purpose must be one of %s", strings.Join(LoanPurposes, ", "))
	}
	switch {
	case in.DueAt.IsZero():
		return nil, medguard.InvalidField("due_at", "due_at is required")
	case !in.DueAt.After(now):
		return nil, medguard.InvalidField("due_at", "due_at must be in the future")
	case in.DueAt.Sub(now) > s.cfg.MaxLoan:
		return nil, medguard.InvalidField("due_at", "a loan may last at most %d days", int(s.cfg.MaxLoan.Hours()/24))
	}
	var borrower *identity.User
	var err error
	if medguard.ValidID(in.BorrowerID) {
		borrower, err = s.identity.UserByID(ctx, in.BorrowerID)
	}
	if borrower == nil || err != nil || borrower.Status != identity.Active {
		return nil, medguard.InvalidField("borrower_id", "no active member of staff has this id")
	}
	in.Signature = strings.Join(strings.Fields(in.Signature), " ")
	switch {
	case in.Signature == "":
		return nil, medguard.InvalidField("signature", "the borrower signs by typing their full name")
	case in.Signature != strings.Join(strings.Fields(borrower.DisplayName), " "):
		return nil, medguard.InvalidField("signature", "the signature is not the borrower's full name")
	}
	f, err := s.loadFolder(ctx, call, policy.FolderManage, "folder.lend", id)
	if err != nil {
		return nil, err
	}
	loanID := medguard.NewID(now)
	sig, err := s.seal(ctx, "folder_loans", loanID, "signature", in.Signature)
	if err != nil {
		return nil, err
	}
	due := in.DueAt.UTC().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.FolderManage, AuditAction: "folder.lend",
		Resource: folderResource(f)}, func(policy.Decision) (audit.Mutation, error) {
		if f.Status != OnShelf {
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the folder is " + f.Status + ", not on the shelf"}
		}
		f.Status, f.UpdatedAt = Lent, now
		f.Loan = &Loan{ID: loanID, FolderID: f.ID, BorrowerID: borrower.ID, Borrower: borrower.Username, Purpose: in.Purpose,
			SignedName: in.Signature, SignedAt: now, LentBy: call.Actor.Name, LentAt: now, DueAt: due}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE paper_folders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4`,
				Lent, medguard.Millis(now), f.ID, OnShelf)
			if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the folder was lent meanwhile"}); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO folder_loans (id, folder_id, borrower_id, borrower, purpose, signature, signed_at,
				lent_by, lent_at, due_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, loanID, f.ID, borrower.ID,
				borrower.Username, in.Purpose, sig, medguard.Millis(now), call.Actor.Name, medguard.Millis(now), medguard.Millis(due))
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// ReturnFolder takes a lent (or missing) folder back onto the shelf
// (folder.manage).
func (s *Service) ReturnFolder(ctx context.Context, call *medguard.Call, id string) (*Folder, error) {
	f, err := s.loadFolder(ctx, call, policy.FolderManage, "folder.return", id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.FolderManage, AuditAction: "folder.return",
		Resource: folderResource(f)}, func(policy.Decision) (audit.Mutation, error) {
		if f.Loan == nil {
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the folder is not lent"}
		}
		prev := f.Status
		f.Status, f.UpdatedAt = OnShelf, now
		f.Loan.ReturnedAt, f.Loan.ReturnedBy, f.Loan.Overdue = &now, call.Actor.Name, false
		loanID := f.Loan.ID
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE folder_loans SET returned_at = $1, returned_by = $2 WHERE id = $3 AND returned_at IS NULL`,
				medguard.Millis(now), call.Actor.Name, loanID)
			if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the folder was returned meanwhile"}); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE paper_folders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4`,
				OnShelf, medguard.Millis(now), f.ID, prev)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// FolderQuery filters the registry.
type FolderQuery struct {
	Status    string // one of FolderStatuses, or "" for all
	Overdue   bool   // only folders lent past their due date
	PatientID string
}

// ListFolders lists the registry, newest first, each with its open loan
// (folder.read). It shows barcodes, shelves and patient ids: no
// demographics.
func (s *Service) ListFolders(ctx context.Context, call *medguard.Call, q FolderQuery) ([]Folder, error) {
	if q.Status != "" && !slices.Contains(FolderStatuses, q.Status) {
		return nil, medguard.InvalidField("status", "status must be one of %s", strings.Join(FolderStatuses, ", "))
	}
	if q.PatientID != "" && !medguard.ValidID(q.PatientID) {
		return nil, medguard.InvalidField("patient_id", "patient_id is not an id")
	}
	where, args := `1 = 1`, []any{}
	if q.Status != "" {
		args = append(args, q.Status)
		where += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	if q.PatientID != "" {
		args = append(args, q.PatientID)
		where += fmt.Sprintf(` AND patient_id = $%d`, len(args))
	}
	now := s.clock.Now()
	out := []Folder{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.FolderRead, AuditAction: "folder.list",
		Resource: policy.Resource{Type: "paper_folder", PatientID: q.PatientID}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+folderColumns+` FROM paper_folders WHERE `+where+` ORDER BY id DESC LIMIT 1000`, args...)
		if err != nil {
			return nil, err
		}
		var fs []*Folder
		for rows.Next() {
			f, err := scanFolder(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			fs = append(fs, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, f := range fs {
			if f.Status == Lent {
				if f.Loan, err = s.openLoan(ctx, f.ID, now); err != nil {
					return nil, err
				}
			}
			if q.Overdue && (f.Loan == nil || !f.Loan.Overdue) {
				continue
			}
			out = append(out, *f)
		}
		return nil, nil
	})
	return out, err
}

// OverdueRule is the detection rule of the alerts raised for a paper
// folder lent past its due date: the alert's key is the folder's id.
const OverdueRule = "folder_overdue"

// OverdueLoan is a lent folder past its due date, announced once.
type OverdueLoan struct {
	FolderID string
	Barcode  string
	LoanID   string
	Borrower string
	DueAt    time.Time
}

// OnOverdue adds a hook told once of every loan that becomes overdue (the
// detection engine raises an alert).
func (s *Service) OnOverdue(hook func(context.Context, OverdueLoan)) { s.onOverdue.Add(hook) }

// system is medguard itself, announcing overdue loans.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}

// CheckOverdue announces the loans that are overdue now and were not
// announced before: each is logged (folder.overdue, as the system) and
// passed to the OnOverdue hooks, once — also when several servers check at
// the same time (the notice is claimed in the database).
func (s *Service) CheckOverdue(ctx context.Context) ([]OverdueLoan, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	rows, err := s.db.QueryContext(ctx, `SELECT l.id, l.folder_id, f.barcode, l.borrower, l.due_at FROM folder_loans l
		JOIN paper_folders f ON f.id = l.folder_id
		WHERE l.returned_at IS NULL AND l.due_at <= $1 AND l.overdue_notified_at IS NULL ORDER BY l.due_at`, medguard.Millis(now))
	if err != nil {
		return nil, medguard.Wrap("datause.CheckOverdue", err)
	}
	var due []OverdueLoan
	for rows.Next() {
		var o OverdueLoan
		var at int64
		if err := rows.Scan(&o.LoanID, &o.FolderID, &o.Barcode, &o.Borrower, &at); err != nil {
			rows.Close()
			return nil, medguard.Wrap("datause.CheckOverdue", err)
		}
		o.DueAt = medguard.FromMillis(at)
		due = append(due, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("datause.CheckOverdue", err)
	}
	fresh, err := gate.Announce(ctx, s.gate, due, func(o OverdueLoan) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "folder.overdue", TargetType: "paper_folder", TargetID: o.FolderID,
			Allowed: true, Rule: "allow.system.deadline:folder_due"}
	}, func(ctx context.Context, tx *sql.Tx, o OverdueLoan) error {
		res, err := tx.ExecContext(ctx, `UPDATE folder_loans SET overdue_notified_at = $1 WHERE id = $2 AND overdue_notified_at IS NULL`,
			medguard.Millis(now), o.LoanID)
		return storage.Affected(res, err, gate.ErrAnnounced)
	})
	s.onOverdue.Tell(ctx, fresh...)
	return fresh, err
}

// Run checks for overdue loans, and runs the day's reconciliation if it
// has not run yet, at once and then every interval until ctx ends,
// passing failures to onError (may be nil).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		_, err := s.CheckOverdue(ctx)
		if _, rerr := s.ReconcileDaily(ctx); err == nil {
			err = rerr
		}
		return err
	}, onError)
}
