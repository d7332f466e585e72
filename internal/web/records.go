package web

// Clinical records: versions and attachments.

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"medguard"
	"medguard/internal/records"
)

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.NewRecord
	if err := decode(r, &req); err != nil {
		return err
	}
	rec, err := s.Records.CreateRecord(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, rec)
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	rs, next, err := s.Records.ListRecords(r.Context(), c, r.PathValue("id"), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(rs, next))
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	rec, err := s.Records.GetRecord(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"v`+strconv.Itoa(rec.Version)+`"`)
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) updateRecord(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req records.RecordChanges
	if err := decode(r, &req); err != nil {
		return err
	}
	rec, err := s.Records.UpdateRecord(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"v`+strconv.Itoa(rec.Version)+`"`)
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	vs, err := s.Records.ListVersions(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(vs, ""))
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil {
		return medguard.InvalidField("version", "version must be a positive number")
	}
	rec, err := s.Records.GetRecordVersion(r.Context(), c, r.PathValue("id"), v)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

// maxUploads is how many attachment bodies the server reads at once; more
// wait briefly, then get 429 (each may hold 20 MiB, and memory is finite).
const maxUploads = 2

// uploadTime is how long an admitted upload's body may take to arrive.
const uploadTime = 5 * time.Minute

// admitUpload takes one of the few slots of bodies read at once (waiting
// at most 2 s) and gives the request the upload's read deadline; release
// frees the slot.
func (s *Server) admitUpload(w http.ResponseWriter) (release func(), err error) {
	select {
	case s.uploads <- struct{}{}:
	case <-time.After(2 * time.Second):
		return nil, &medguard.Error{Kind: medguard.RateLimited, Message: "too many uploads at once; try again"}
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(uploadTime))
	return func() { <-s.uploads }, nil
}

// multipartUpload admits a multipart upload (admitUpload) whose file may
// be at most limit bytes, and returns its reader.
func (s *Server) multipartUpload(w http.ResponseWriter, r *http.Request, limit int64) (*multipart.Reader, func(), error) {
	release, err := s.admitUpload(w)
	if err != nil {
		return nil, nil, err
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		release()
		return nil, nil, &medguard.Error{Kind: medguard.Malformed, Message: "the multipart body could not be read"}
	}
	return mr, release, nil
}

// addAttachment takes one file as multipart/form-data (field "file"). The
// caller is admitted before the body is read (the route's permission, then
// the access policy on the record); the body is read into memory up to the
// limit, never written to a temporary file, so that no clear copy of it
// touches the disk, and only a few bodies are read at once.
func (s *Server) addAttachment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return &medguard.Error{Kind: medguard.Unsupported, Message: "send the file as multipart/form-data in the field \"file\""}
	}
	limit := s.Records.Config().MaxAttachment
	a, err := s.Records.AddAttachment(r.Context(), c, r.PathValue("id"), func() (records.Upload, error) {
		mr, release, err := s.multipartUpload(w, r, limit)
		if err != nil {
			return records.Upload{}, err
		}
		defer release()
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return records.Upload{}, medguard.InvalidField("file", "the field \"file\" is missing")
			}
			if err != nil {
				return records.Upload{}, bodyError(err)
			}
			if part.FormName() != "file" {
				part.Close()
				continue
			}
			content, err := io.ReadAll(io.LimitReader(part, limit+1))
			if err != nil {
				return records.Upload{}, bodyError(err)
			}
			if int64(len(content)) > limit {
				return records.Upload{}, &medguard.Error{Kind: medguard.TooLarge, Field: "file", Message: "the file is larger than the limit"}
			}
			return records.Upload{Filename: rawFilename(part), DeclaredType: part.Header.Get("Content-Type"), Content: content}, nil
		}
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

// rawFilename is the file name as the client sent it. (Part.FileName strips
// folders silently; medguard refuses such names instead.)
func rawFilename(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &medguard.Error{Kind: medguard.TooLarge, Field: "file", Message: "the body is larger than the limit"}
	}
	return &medguard.Error{Kind: medguard.Malformed, Message: "the multipart body could not be read"}
}

func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	a, err := s.Records.GetAttachment(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", a.ContentType)
	w.Header().Set("Content-Disposition", "attachment; filename=\"attachment\"; filename*=UTF-8''"+url.PathEscape(a.Filename))
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Content)))
	_, err = w.Write(a.Content)
	return err
}
