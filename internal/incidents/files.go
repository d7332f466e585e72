package incidents

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
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

// External evidence files (外部证据): what the audit log cannot hold — an
// excerpt of another system's log, a screenshot, a vendor's report — kept
// with the incident. The name and content are sealed with the incident's
// data key (nothing in clear at rest); the content's SHA-256, its size and
// type are kept in clear beside them, frozen like the audit-entry evidence
// (the database refuses changing or deleting either), and named on the
// incident's timeline. Reading a file passes the gate as a read of the
// incident (incident.read, logged as incident.file_read) and checks the
// content against its SHA-256 first.

// EvidenceFile is an external evidence file, without its content.
type EvidenceFile struct {
	ID          string    `json:"id"`
	IncidentID  string    `json:"incident_id"`
	Kind        string    `json:"kind"`
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	AttachedBy  string    `json:"attached_by"`
	AttachedAt  time.Time `json:"attached_at"`
	AuditIndex  uint64    `json:"audit_index"`
}

// Kinds of evidence file.
const (
	FileLogExcerpt   = "log_excerpt"
	FileScreenshot   = "screenshot"
	FileVendorReport = "vendor_report"
	FileOther        = "other"
)

// FileKinds lists the kinds of evidence file.
var FileKinds = []string{FileLogExcerpt, FileScreenshot, FileVendorReport, FileOther}

// MaxEvidenceFile is the largest evidence file, in bytes (10 MiB): a log
// excerpt, a screenshot or a report, not a disk image.
const MaxEvidenceFile = 10 << 20

// EvidenceFileTypes are the content types accepted, by what the content
// is (sniffed), not by what the client says: PDF, images and plain UTF-8
// text (log excerpts, CSV, JSON).
var EvidenceFileTypes = []string{"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}

// FileUpload is an evidence file as the client sent it.
type FileUpload struct {
	Kind         string
	Filename     string
	DeclaredType string
	Content      []byte
}

var errNoFile = &medguard.Error{Kind: medguard.NotFound, Message: "no such evidence file"}

// sniffType is the content type of an evidence file from its bytes.
func sniffType(b []byte) string {
	t, _, _ := strings.Cut(http.DetectContentType(b), ";")
	if t == "text/plain" && !utf8.Valid(b) {
		return "application/octet-stream"
	}
	return t
}

// declaredMatches reports whether the type a client declared agrees with
// the sniffed one (text may be declared as any text type or JSON).
func declaredMatches(declared, sniffed string) bool {
	declared, _, _ = strings.Cut(declared, ";")
	declared = strings.ToLower(strings.TrimSpace(declared))
	switch {
	case declared == "" || declared == "application/octet-stream" || declared == sniffed:
		return true
	case sniffed == "text/plain":
		return strings.HasPrefix(declared, "text/") || declared == "application/json" || declared == "application/x-ndjson"
	}
	return false
}

// AttachFile adds an external evidence file to an open incident. The
// caller is admitted (incident.manage) before read is called, so that
// nobody without the right makes the server take in a body.
func (s *Service) AttachFile(ctx context.Context, call *medguard.Call, id string, read func() (FileUpload, error)) (*EvidenceFile, error) {
	var f *EvidenceFile
	_, err := s.change(ctx, call, id, "incident.file_attach", func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		up, err := read()
		if err != nil {
			return nil, err
		}
		if up.Kind == "" {
			up.Kind = FileOther
		}
		if !slices.Contains(FileKinds, up.Kind) {
			return nil, medguard.InvalidField("kind", "kind must be one of %s", strings.Join(FileKinds, ", "))
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
		typ := sniffType(up.Content)
		if !slices.Contains(EvidenceFileTypes, typ) {
			return nil, medguard.InvalidField("file", "only PDF, images (PNG, JPEG, GIF, WebP) and UTF-8 text are accepted")
		}
		if !declaredMatches(up.DeclaredType, typ) {
			return nil, medguard.InvalidField("file", "the file's content is not of the type it claims")
		}
		sum := sha256.Sum256(up.Content)
		f = &EvidenceFile{ID: medguard.NewID(now), IncidentID: id, Kind: up.Kind, Filename: name, ContentType: typ,
			Size: int64(len(up.Content)), SHA256: hex.EncodeToString(sum[:]), AttachedBy: call.Actor.Name, AttachedAt: now}
		sealedName := k.SealString(loc("incident_files", f.ID, "filename"), name)
		sealedContent := k.Seal(loc("incident_files", f.ID, "content"), up.Content)
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := stillOpen(ctx, tx, `UPDATE incidents SET status = status WHERE id = $1 AND status = 'open'`, id); err != nil {
				return err
			}
			f.AuditIndex = index
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_files (id, incident_id, kind, sha256, size, content_type,
				filename, content, attached_by, attached_at, audit_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				f.ID, id, f.Kind, f.SHA256, f.Size, f.ContentType, sealedName, sealedContent, f.AttachedBy,
				medguard.Millis(now), int64(index)); err != nil {
				return err
			}
			return addUpdate(ctx, tx, k, id, index, "evidence_file", "file "+f.ID+" "+f.Kind+" sha256:"+f.SHA256+" ("+
				strconv.FormatInt(f.Size, 10)+" bytes)", call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

const fileColumns = `id, incident_id, kind, sha256, size, content_type, filename, attached_by, attached_at, audit_index`

func (s *Service) scanFile(ctx context.Context, sc interface{ Scan(...any) error }) (*EvidenceFile, error) {
	var f EvidenceFile
	var name []byte
	var at, index int64
	if err := sc.Scan(&f.ID, &f.IncidentID, &f.Kind, &f.SHA256, &f.Size, &f.ContentType, &name, &f.AttachedBy, &at, &index); err != nil {
		return nil, err
	}
	f.AttachedAt, f.AuditIndex = medguard.FromMillis(at), uint64(index)
	var err error
	f.Filename, err = s.keys.OpenString(ctx, incidentOwner(f.IncidentID), loc("incident_files", f.ID, "filename"), name)
	return &f, err
}

// filesOf lists an incident's evidence files, names decrypted.
func (s *Service) filesOf(ctx context.Context, incidentID string) ([]EvidenceFile, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+fileColumns+` FROM incident_files WHERE incident_id = $1 ORDER BY audit_index`, incidentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []EvidenceFile{}
	for rows.Next() {
		f, err := s.scanFile(ctx, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *f)
	}
	return out, rows.Err()
}

// GetFile returns an evidence file and its content, to those who may read
// the incident — and its commander — (logged as incident.file_read). The content is checked
// against the SHA-256 recorded when it was attached.
func (s *Service) GetFile(ctx context.Context, call *medguard.Call, id, fileID string) (*EvidenceFile, []byte, error) {
	var f *EvidenceFile
	var content []byte
	var sealed []byte
	var lerr error
	if !medguard.ValidID(id) || !medguard.ValidID(fileID) {
		lerr = errNoFile
	} else {
		var err error
		f, err = s.scanFile(ctx, s.db.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM incident_files
			WHERE id = $1 AND incident_id = $2`, fileID, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			lerr = errNoFile
		case err != nil:
			return nil, nil, medguard.Wrap("incidents.GetFile", err)
		}
	}
	var commander sql.NullString
	if lerr == nil {
		if err := s.db.QueryRowContext(ctx, `SELECT commander_id FROM incidents WHERE id = $1`, id).Scan(&commander); err != nil {
			return nil, nil, medguard.Wrap("incidents.GetFile", err)
		}
	}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.IncidentRead, AuditAction: "incident.file_read",
		Resource: policy.Resource{Type: "incident", ID: id, Missing: lerr != nil, Commander: commander.String}},
		func(policy.Decision) (audit.Mutation, error) {
			if lerr != nil {
				return nil, lerr
			}
			if err := s.db.QueryRowContext(ctx, `SELECT content FROM incident_files WHERE id = $1`, fileID).Scan(&sealed); err != nil {
				return nil, err
			}
			b, err := s.keys.Open(ctx, incidentOwner(id), loc("incident_files", fileID, "content"), sealed)
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) != f.SHA256 {
				return nil, medguard.Errorf(medguard.Internal, "evidence file %s does not match its SHA-256", fileID)
			}
			content = b
			return nil, nil
		})
	if err != nil {
		return nil, nil, err
	}
	return f, content, nil
}
