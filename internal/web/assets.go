package web

import (
	"errors"
	"io"
	"net/http"

	"medguard"
	"medguard/internal/assets"
)

// The asset register (资产台账, issue 13): servers, applications,
// workstations, mobile, medical, network and security devices; one by one
// or from a CSV file. The service decides and logs; these handlers decode
// and answer.

func (s *Server) listAssets(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	query := assets.Query{Kind: q.Get("kind"), Department: q.Get("department"), Status: q.Get("status"), Label: q.Get("label"),
		Text: q.Get("q"), After: after, Limit: limit}
	switch v := q.Get("records_system"); v {
	case "":
	case "true", "false":
		b := v == "true"
		query.RecordsSystem = &b
	default:
		return medguard.InvalidField("records_system", "records_system must be true or false")
	}
	switch v := q.Get("past_end_of_support"); v {
	case "", "false":
	case "true":
		query.PastEndOfSupport = true
	default:
		return medguard.InvalidField("past_end_of_support", "past_end_of_support must be true or false")
	}
	items, next, err := s.Assets.List(r.Context(), c, query)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(items, next))
}

func (s *Server) createAsset(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req assets.NewAsset
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Assets.Create(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) getAsset(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	a, err := s.Assets.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

func (s *Server) updateAsset(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	var req assets.Changes
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Assets.Update(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

// importAssets takes the register as a CSV file: the body itself (text/csv,
// UTF-8), at most assets.MaxImportBytes.
func (s *Server) importAssets(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	body, err := readBody(w, r, assets.MaxImportBytes)
	if err != nil {
		return err
	}
	sum, err := s.Assets.Import(r.Context(), c, body)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sum)
}

// readBody reads a file sent as the body itself (not multipart), up to
// limit bytes, refusing a larger one (413) and a multipart form (415).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if mt := r.Header.Get("Content-Type"); len(mt) >= 10 && mt[:10] == "multipart/" {
		return nil, &medguard.Error{Kind: medguard.Unsupported, Message: "send the file itself as the body, not a multipart form"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &medguard.Error{Kind: medguard.TooLarge, Field: "report", Message: "the body is larger than the limit"}
		}
		return nil, &medguard.Error{Kind: medguard.Malformed, Message: "the body could not be read"}
	}
	if len(body) == 0 {
		return nil, &medguard.Error{Kind: medguard.Malformed, Message: "the body is empty: send the file"}
	}
	return body, nil
}
