package compliance

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// Attestation is the evidence of an attested check: a file (a photo, a
// test report) and a note attached by a responsible person, signed by a
// second person, in force until it expires.
type Attestation struct {
	ID          string     `json:"id"`
	CheckID     string     `json:"check_id"`
	Kind        string     `json:"kind"`
	Filename    string     `json:"filename"`
	ContentType string     `json:"content_type"`
	Size        int64      `json:"size"`
	SHA256      string     `json:"sha256"`
	Note        string     `json:"note,omitempty"`
	AttachedBy  string     `json:"attached_by"`
	AttachedAt  time.Time  `json:"attached_at"`
	ReviewedBy  string     `json:"reviewed_by,omitempty"`
	ReviewedAt  *time.Time `json:"reviewed_at,omitempty"`
	ReviewNote  string     `json:"review_note,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	// State is awaiting_review, in_force or expired.
	State string `json:"state"`
}

// The states of an attestation.
const (
	AttestationAwaitingReview = "awaiting_review"
	AttestationInForce        = "in_force"
	AttestationExpired        = "expired"
)

// The kinds of evidence file.
const (
	EvidencePhoto  = "photo"
	EvidenceReport = "report"
	EvidenceOther  = "other"
)

// EvidenceKinds lists the kinds of evidence file.
var EvidenceKinds = []string{EvidencePhoto, EvidenceReport, EvidenceOther}

// MaxEvidenceFile is the largest evidence file (10 MiB).
const MaxEvidenceFile = 10 << 20

// EvidenceFileTypes are the content types accepted, sniffed from the
// bytes: PDF, images and plain UTF-8 text.
var EvidenceFileTypes = []string{"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}

// MaxNote is the longest note, in characters.
const MaxNote = 2000

// Upload is an evidence file as the client sent it, with its note.
type Upload struct {
	Kind     string
	Filename string
	Content  []byte
	Note     string
}

func sniff(b []byte) string {
	t, _, _ := strings.Cut(http.DetectContentType(b), ";")
	if t == "text/plain" && !utf8.Valid(b) {
		return "application/octet-stream"
	}
	return t
}

func (s *Service) text() keys.SystemText { return keys.SystemText{Keyring: s.keys, Name: keyName} }

// Attest attaches evidence to an attested check (compliance.attest). The
// caller is admitted before read is called, so that nobody without the
// right makes the server take in a body. The evidence counts once a
// second person signs it (Review).
func (s *Service) Attest(ctx context.Context, call *medguard.Call, checkID string, read func() (Upload, error)) (*Attestation, error) {
	c, ok := s.cfg.Catalogue.Check(checkID)
	var a *Attestation
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ComplianceAttest, AuditAction: "compliance.attest",
		Resource: policy.Resource{Type: "compliance_check", ID: checkID}}, func(policy.Decision) (audit.Mutation, error) {
		if !ok {
			return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such compliance check"}
		}
		if c.Kind != Attested {
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "check_measured",
				Message: "this check is measured from live data; evidence cannot replace it"}
		}
		up, err := read()
		if err != nil {
			return nil, err
		}
		if up.Kind == "" {
			up.Kind = EvidenceOther
		}
		if !slices.Contains(EvidenceKinds, up.Kind) {
			return nil, medguard.InvalidField("kind", "kind must be one of %s", strings.Join(EvidenceKinds, ", "))
		}
		name, err := records.CheckFilename(up.Filename)
		if err != nil {
			return nil, err
		}
		switch {
		case len(up.Content) == 0:
			return nil, medguard.InvalidField("file", "the file is empty")
		case len(up.Content) > MaxEvidenceFile:
			return nil, &medguard.Error{Kind: medguard.TooLarge, Field: "file", Message: "an evidence file is at most 10 MiB"}
		}
		typ := sniff(up.Content)
		if !slices.Contains(EvidenceFileTypes, typ) {
			return nil, medguard.InvalidField("file", "only PDF, images (PNG, JPEG, GIF, WebP) and UTF-8 text are accepted")
		}
		note, err := medguard.Text("note", up.Note, MaxNote, true)
		if err != nil {
			return nil, err
		}
		now := s.clock.Now().Truncate(time.Millisecond)
		sum := sha256.Sum256(up.Content)
		a = &Attestation{ID: medguard.NewID(now), CheckID: checkID, Kind: up.Kind, Filename: name, ContentType: typ,
			Size: int64(len(up.Content)), SHA256: hex.EncodeToString(sum[:]), Note: note, AttachedBy: call.Actor.Name,
			AttachedAt: now, State: AttestationAwaitingReview}
		k, err := s.keys.SystemKey(ctx, keyName)
		if err != nil {
			return nil, err
		}
		sealedName := k.SealString(keys.Location{Table: "compliance_attestations", Row: a.ID, Column: "filename"}, name)
		sealedContent := k.Seal(keys.Location{Table: "compliance_attestations", Row: a.ID, Column: "content"}, up.Content)
		sealedNote := k.SealString(keys.Location{Table: "compliance_attestations", Row: a.ID, Column: "note"}, note)
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO compliance_attestations (id, check_id, kind, content_type, size, sha256, filename,
				content, note, attached_by_id, attached_by, attached_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				a.ID, checkID, a.Kind, typ, a.Size, a.SHA256, sealedName, sealedContent, sealedNote, call.Actor.ID, call.Actor.Name,
				medguard.Millis(now))
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Review signs an attestation (compliance.review): never by the person
// who attached it (deny.separation_of_duties). It is in force from now
// for the check's validity.
func (s *Service) Review(ctx context.Context, call *medguard.Call, id, note string) (*Attestation, error) {
	a, attacherID, err := s.attestation(ctx, id)
	if err != nil && !medguard.IsKind(err, medguard.NotFound) {
		return nil, err
	}
	var signers []string
	if attacherID != "" {
		signers = []string{attacherID}
	}
	checkID := ""
	if a != nil {
		checkID = a.CheckID
	}
	_, _, gerr := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ComplianceReview, AuditAction: "compliance.attestation_review",
		Resource: policy.Resource{Type: "compliance_attestation", ID: id, Signers: signers}}, func(policy.Decision) (audit.Mutation, error) {
		if err != nil {
			return nil, err
		}
		if a.ReviewedAt != nil {
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "already_reviewed", Message: "this evidence is already signed"}
		}
		n, err := medguard.Text("note", note, MaxNote, false)
		if err != nil {
			return nil, err
		}
		c, _ := s.cfg.Catalogue.Check(checkID)
		now := s.clock.Now().Truncate(time.Millisecond)
		exp := now.AddDate(0, 0, c.ValidDays)
		sealed, err := s.text().Seal(ctx, "compliance_attestations", id, "review_note", n)
		if err != nil {
			return nil, err
		}
		a.ReviewedBy, a.ReviewedAt, a.ReviewNote, a.ExpiresAt, a.State = call.Actor.Name, &now, n, &exp, AttestationInForce
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE compliance_attestations SET reviewed_by_id = $1, reviewed_by = $2, reviewed_at = $3,
				review_note = $4, expires_at = $5 WHERE id = $6 AND reviewed_at IS NULL`, call.Actor.ID, call.Actor.Name, medguard.Millis(now),
				sealed, medguard.Millis(exp), id)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return errors.Join(err, &medguard.Error{Kind: medguard.Conflict, Code: "already_reviewed", Message: "this evidence is already signed"})
			}
			return nil
		}, nil
	})
	if gerr != nil {
		return nil, gerr
	}
	return a, nil
}

const attestationColumns = `id, check_id, kind, content_type, size, sha256, filename, note, attached_by_id, attached_by, attached_at,
	reviewed_by, reviewed_at, review_note, expires_at`

func (s *Service) scanAttestation(ctx context.Context, sc interface{ Scan(...any) error }, now time.Time) (*Attestation, string, error) {
	var a Attestation
	var attacherID string
	var name, note, reviewNote []byte
	var attached int64
	var reviewedBy sql.NullString
	var reviewed, expires sql.NullInt64
	if err := sc.Scan(&a.ID, &a.CheckID, &a.Kind, &a.ContentType, &a.Size, &a.SHA256, &name, &note, &attacherID, &a.AttachedBy, &attached,
		&reviewedBy, &reviewed, &reviewNote, &expires); err != nil {
		return nil, "", err
	}
	a.AttachedAt, a.ReviewedBy = medguard.FromMillis(attached), reviewedBy.String
	t := s.text()
	var err error
	if a.Filename, err = t.Open(ctx, "compliance_attestations", a.ID, "filename", name); err != nil {
		return nil, "", err
	}
	if a.Note, err = t.Open(ctx, "compliance_attestations", a.ID, "note", note); err != nil {
		return nil, "", err
	}
	if a.ReviewNote, err = t.Open(ctx, "compliance_attestations", a.ID, "review_note", reviewNote); err != nil {
		return nil, "", err
	}
	a.State = AttestationAwaitingReview
	if reviewed.Valid {
		a.ReviewedAt = tptr(medguard.FromMillis(reviewed.Int64))
		a.ExpiresAt = tptr(medguard.FromMillis(expires.Int64))
		a.State = AttestationInForce
		if !now.Before(*a.ExpiresAt) {
			a.State = AttestationExpired
		}
	}
	return &a, attacherID, nil
}

func (s *Service) attestation(ctx context.Context, id string) (*Attestation, string, error) {
	a, by, err := s.scanAttestation(ctx, s.db.QueryRowContext(ctx, `SELECT `+attestationColumns+` FROM compliance_attestations WHERE id = $1`, id),
		s.clock.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", &medguard.Error{Kind: medguard.NotFound, Message: "no such evidence"}
	}
	return a, by, err
}

func (s *Service) attestations(ctx context.Context, where string, args ...any) ([]Attestation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+attestationColumns+` FROM compliance_attestations `+where+` ORDER BY attached_at DESC, id DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := s.clock.Now()
	out := []Attestation{}
	for rows.Next() {
		a, _, err := s.scanAttestation(ctx, rows, now)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// Attestations lists a check's evidence from the newest (compliance.read).
func (s *Service) Attestations(ctx context.Context, call *medguard.Call, checkID string) ([]Attestation, error) {
	var out []Attestation
	err := s.read(ctx, call, "compliance.attestations", checkID, func() error {
		if _, ok := s.cfg.Catalogue.Check(checkID); !ok {
			return &medguard.Error{Kind: medguard.NotFound, Message: "no such compliance check"}
		}
		var err error
		out, err = s.attestations(ctx, `WHERE check_id = $1`, checkID)
		return err
	})
	return out, err
}

// AttestationFile returns an evidence file's content, checked against its
// SHA-256 (compliance.read).
func (s *Service) AttestationFile(ctx context.Context, call *medguard.Call, id string) (*Attestation, []byte, error) {
	var a *Attestation
	var content []byte
	err := s.read(ctx, call, "compliance.attestation_file", id, func() error {
		var err error
		if a, _, err = s.attestation(ctx, id); err != nil {
			return err
		}
		var sealed []byte
		if err := s.db.QueryRowContext(ctx, `SELECT content FROM compliance_attestations WHERE id = $1`, id).Scan(&sealed); err != nil {
			return err
		}
		if content, err = s.keys.Open(ctx, "system:"+keyName, keys.Location{Table: "compliance_attestations", Row: id, Column: "content"}, sealed); err != nil {
			return err
		}
		sum := sha256.Sum256(content)
		if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(a.SHA256)) != 1 {
			return medguard.Errorf(medguard.Internal, "evidence file %s does not match its SHA-256", id)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return a, content, nil
}

// inForce returns, by check, the newest attestation: signed and in force
// if there is one, else the newest attached.
func (s *Service) inForce(ctx context.Context, now time.Time) (map[string]*Attestation, error) {
	all, err := s.attestations(ctx, ``)
	if err != nil {
		return nil, err
	}
	out := map[string]*Attestation{}
	for i := range all {
		a := &all[i]
		cur := out[a.CheckID]
		switch {
		case cur == nil:
			out[a.CheckID] = a
		case cur.State != AttestationInForce && a.State == AttestationInForce:
			out[a.CheckID] = a
		}
	}
	return out, nil
}

// attested sets an attested check's result from its evidence.
func attested(r *Result, a *Attestation, now time.Time) {
	r.Status = NeedsEvidence
	switch {
	case a == nil:
		r.Value, r.Reason = "—", "no evidence attached"
	case a.State == AttestationAwaitingReview:
		r.Value, r.Reason = "—", "evidence attached by "+a.AttachedBy+" waits for a second person's signature"
	case a.State == AttestationExpired:
		r.Value, r.Reason = a.ExpiresAt.Format(time.DateOnly), "the signed evidence expired: attach new evidence"
	default:
		r.Status, r.Value = Pass, a.ExpiresAt.Format(time.DateOnly)
	}
	if a != nil {
		c := *a
		// The run's results are kept in clear: the sealed file name and
		// notes stay out of them.
		c.Note, c.ReviewNote, c.Filename = "", "", ""
		r.Evidence.Attestation = &c
		r.Evidence.Items = []Item{{Kind: ItemAttestation, ID: a.ID, Who: a.AttachedBy, Detail: a.Kind + " sha256:" + a.SHA256[:12], At: tptr(a.AttachedAt)}}
	}
	r.Numerator = nil
	_ = now
}
