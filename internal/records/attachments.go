package records

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/policy"
)

// AttachmentInfo describes an attachment without its content.
type AttachmentInfo struct {
	ID          string    `json:"id"`
	RecordID    string    `json:"record_id"`
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
}

// Attachment is an attachment with its content, decrypted.
type Attachment struct {
	AttachmentInfo
	Content []byte
}

// AttachmentTypes are the content types medguard accepts, by what the
// content is (sniffed), not by what the client says it is.
var AttachmentTypes = []string{"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"}

// sniff returns the content type of b from its first bytes.
func sniff(b []byte) string {
	if bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*")) {
		return "image/tiff"
	}
	t, _, _ := strings.Cut(http.DetectContentType(b), ";")
	return t
}

// CheckFilename validates an attachment's file name: a plain name (no
// folders, no "..", no control characters), at most 200 characters. Path
// traversal is refused, not silently rewritten.
func CheckFilename(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", medguard.InvalidField("filename", "filename is required")
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > 200:
		return "", medguard.InvalidField("filename", "filename must be at most 200 characters of valid text")
	case strings.ContainsAny(name, `/\`) || name == "." || name == ".." || strings.Contains(name, ".."):
		return "", medguard.InvalidField("filename", "filename must be a plain file name, without folders or '..'")
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == ':' || r == '*' || r == '?' || r == '"' || r == '<' || r == '>' || r == '|' {
			return "", medguard.InvalidField("filename", "filename must not contain control characters or any of : * ? \" < > |")
		}
	}
	return name, nil
}

// Upload is an attachment as the client sent it.
type Upload struct {
	Filename     string
	DeclaredType string
	Content      []byte
}

// AddAttachment attaches a file (PDF or image) to a record. The caller is
// admitted before the file is read: read is called only once the access
// policy allowed the write, so that nobody without the right makes the
// server take in a body. Its name and content are sealed with the
// patient's key.
func (s *Service) AddAttachment(ctx context.Context, call *medguard.Call, recordID string, read func() (Upload, error)) (*AttachmentInfo, error) {
	r, err := s.loadRecord(ctx, recordID, 0)
	if err != nil {
		return nil, s.missing(ctx, call, policy.RecordWrite, "record", recordID, err)
	}
	pass, err := s.passage(ctx, call, policy.RecordWrite, r.resource())
	if err != nil {
		return nil, err
	}
	pass.AuditAction = "record.attachment_add"
	now := s.clock.Now().Truncate(time.Millisecond)
	id := medguard.NewID(now)
	var out *AttachmentInfo
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		up, err := read()
		if err != nil {
			return nil, err
		}
		content, declaredType := up.Content, up.DeclaredType
		name, err := CheckFilename(up.Filename)
		if err != nil {
			return nil, err
		}
		if len(content) == 0 {
			return nil, medguard.InvalidField("file", "the file is empty")
		}
		if int64(len(content)) > s.cfg.MaxAttachment {
			return nil, &medguard.Error{Kind: medguard.TooLarge, Field: "file", Message: "the file is larger than the limit"}
		}
		typ := sniff(content)
		allowed := false
		for _, t := range AttachmentTypes {
			allowed = allowed || t == typ
		}
		if !allowed {
			return nil, medguard.InvalidField("file", "only PDF and image files (PNG, JPEG, GIF, WebP, BMP, TIFF) are accepted")
		}
		declared, _, _ := strings.Cut(declaredType, ";")
		declared = strings.TrimSpace(declared)
		if declared != "" && declared != "application/octet-stream" && declared != typ {
			return nil, medguard.InvalidField("file", "the file's content is not of the type it claims")
		}
		if err := r.gone(); err != nil {
			return nil, err
		}
		k, err := s.keys.Current(ctx, r.owner())
		if err != nil {
			return nil, medguard.Wrap("records.AddAttachment", err)
		}
		sealedName := k.SealString(loc("attachments", id, "filename"), name)
		sealedContent := k.Seal(loc("attachments", id, "content"), content)
		out = &AttachmentInfo{ID: id, RecordID: recordID, Filename: name, ContentType: typ, Size: int64(len(content)),
			CreatedBy: call.Actor.Name, CreatedAt: now}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO attachments (id, record_id, patient_id, filename, content, content_type,
				size, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				id, recordID, r.patientID, sealedName, sealedContent, typ, len(content), call.Actor.Name, medguard.Millis(now))
			return err
		}, nil
	})
	return out, err
}

// attachmentsOf lists a record's attachments with their names decrypted.
func (s *Service) attachmentsOf(ctx context.Context, recordID, owner string) ([]AttachmentInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, filename, content_type, size, created_by, created_at FROM attachments
		WHERE record_id = $1 ORDER BY id`, recordID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AttachmentInfo{}
	for rows.Next() {
		a := AttachmentInfo{RecordID: recordID}
		var name []byte
		var created int64
		if err := rows.Scan(&a.ID, &name, &a.ContentType, &a.Size, &a.CreatedBy, &created); err != nil {
			return nil, err
		}
		if a.Filename, err = s.keys.OpenString(ctx, owner, loc("attachments", a.ID, "filename"), name); err != nil {
			return nil, err
		}
		a.CreatedAt = medguard.FromMillis(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// GetAttachment returns an attachment with its content, under the same rules
// as reading its record (break-glass included).
func (s *Service) GetAttachment(ctx context.Context, call *medguard.Call, id string) (*Attachment, error) {
	var recordID string
	var err error
	if medguard.ValidID(id) {
		err = s.db.QueryRowContext(ctx, `SELECT record_id FROM attachments WHERE id = $1`, id).Scan(&recordID)
	}
	if recordID == "" || errors.Is(err, sql.ErrNoRows) {
		return nil, s.missing(ctx, call, policy.RecordRead, "attachment", id,
			&medguard.Error{Kind: medguard.NotFound, Message: "no such attachment"})
	}
	if err != nil {
		return nil, medguard.Wrap("records.GetAttachment", err)
	}
	r, err := s.loadRecord(ctx, recordID, 0)
	if err != nil {
		return nil, err
	}
	pass, err := s.passage(ctx, call, policy.RecordRead, r.resource())
	if err != nil {
		return nil, err
	}
	var w *window
	if pass, w, err = s.withWindow(ctx, pass); err != nil {
		return nil, err
	}
	pass.AuditAction = "record.attachment_read"
	pass.Resource.Type, pass.Resource.ID = "attachment", id
	pass.Resource.RecordID = recordID
	now := s.clock.Now().Truncate(time.Millisecond)
	var out *Attachment
	_, _, err = s.gate.Enter(ctx, pass, func(d policy.Decision) (audit.Mutation, error) {
		if err := r.gone(); err != nil {
			return nil, err
		}
		var name, content []byte
		var created int64
		a := Attachment{AttachmentInfo: AttachmentInfo{ID: id, RecordID: recordID}}
		if err := s.db.QueryRowContext(ctx, `SELECT filename, content, content_type, size, created_by, created_at
			FROM attachments WHERE id = $1`, id).Scan(&name, &content, &a.ContentType, &a.Size, &a.CreatedBy, &created); err != nil {
			return nil, err
		}
		owner := r.owner()
		var err error
		if a.Filename, err = s.keys.OpenString(ctx, owner, loc("attachments", id, "filename"), name); err != nil {
			return nil, err
		}
		if a.Content, err = s.keys.Open(ctx, owner, loc("attachments", id, "content"), content); err != nil {
			return nil, err
		}
		a.CreatedAt = medguard.FromMillis(created)
		out = &a
		if !d.BreakGlass {
			return nil, nil
		}
		var notice *BreakGlassNotice
		return s.breakGlass(ctx, pass.Call, w, touch{patientID: r.patientID, action: "record.attachment_read", recordID: r.id,
			departments: []string{r.department}}, now, &notice)
	})
	return out, err
}
