package web

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/trail"
)

func uintParam(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, medguard.InvalidField(name, "%s must be a non-negative whole number", name)
	}
	return n, nil
}

// auditEntries serves entries [start, end) as JSON lines (SPEC §5):
// {"index": I, "leaf": "<base64>", "entry": {…}}; at most 1,000 a call.
func (s *Server) auditEntries(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	start, err := uintParam(r, "start", 0)
	if err != nil {
		return err
	}
	end, err := uintParam(r, "end", start+audit.MaxEntries)
	if err != nil {
		return err
	}
	es, err := s.Trail.Entries(r.Context(), c, start, end)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, e := range es {
		if err := enc.Encode(e); err != nil {
			return nil // the client went away
		}
	}
	return nil
}

// auditSearch serves GET /api/v1/audit/search?actor=&patient=&action=&from=&to=.
func (s *Server) auditSearch(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	q := r.URL.Query()
	from, err := parseTime("from", q.Get("from"))
	if err != nil {
		return err
	}
	to, err := parseTime("to", q.Get("to"))
	if err != nil {
		return err
	}
	_, limit, err := page(r)
	if err != nil {
		return err
	}
	var before uint64
	if cur := q.Get("cursor"); cur != "" {
		after, _, err := page(r)
		if err != nil {
			return err
		}
		if before, err = strconv.ParseUint(after, 10, 63); err != nil {
			return medguard.InvalidField("cursor", "cursor is not one this server gave out")
		}
	}
	es, next, err := s.Trail.Search(r.Context(), c, trail.Query{Actor: q.Get("actor"), PatientID: q.Get("patient"),
		Action: q.Get("action"), From: from, To: to, Before: before, Limit: limit})
	if err != nil {
		return err
	}
	cursor := ""
	if next > 0 {
		cursor = strconv.FormatUint(next, 10)
	}
	return writeJSON(w, http.StatusOK, list(es, cursor))
}

// auditCheckpoint serves the latest signed checkpoint (a C2SP tlog-checkpoint
// note) as text/plain.
func (s *Server) auditCheckpoint(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	cp, err := s.Trail.Checkpoint(r.Context(), c)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = io.WriteString(w, cp.Note)
	return err
}

// auditVerifierKey serves the note verifier key (name+hash+base64key).
func (s *Server) auditVerifierKey(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	key, err := s.Trail.VerifierKey(r.Context(), c)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err = io.WriteString(w, key+"\n")
	return err
}

// Proof is an RFC 6962 proof: its hashes, base64.
type Proof struct {
	Hashes [][]byte `json:"hashes"`
}

func requiredUint(r *http.Request, name string) (uint64, error) {
	if r.URL.Query().Get(name) == "" {
		return 0, medguard.InvalidField(name, "%s is required", name)
	}
	return uintParam(r, name, 0)
}

// auditInclusion serves GET /api/v1/audit/proof/inclusion?index=I&size=N.
func (s *Server) auditInclusion(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	index, err := requiredUint(r, "index")
	if err != nil {
		return err
	}
	size, err := requiredUint(r, "size")
	if err != nil {
		return err
	}
	p, err := s.Trail.InclusionProof(r.Context(), c, index, size)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, Proof{Hashes: nonNilHashes(p)})
}

// auditConsistency serves GET /api/v1/audit/proof/consistency?old=M&new=N.
func (s *Server) auditConsistency(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	old, err := requiredUint(r, "old")
	if err != nil {
		return err
	}
	size, err := requiredUint(r, "new")
	if err != nil {
		return err
	}
	p, err := s.Trail.ConsistencyProof(r.Context(), c, old, size)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, Proof{Hashes: nonNilHashes(p)})
}

func nonNilHashes(p [][]byte) [][]byte {
	if p == nil {
		return [][]byte{}
	}
	return p
}
