package web

import (
	"net/http"

	"medguard"
)

// Backups (SPEC §9): the backups' health and the restore drills, read
// through backuphealth (policy backup.read, audited). Without a backup
// schedule the answer is configured:false and no drills, not an error.

func (s *Server) backupHealth(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	h, err := s.Backups.Health(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (s *Server) listDrills(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	ds, next, err := s.Backups.Drills(r.Context(), c, after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list(ds, next))
}
