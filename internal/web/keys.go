package web

import (
	"net/http"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
)

// keyStatus serves the state of the key-encryption keys and of a rotation
// (GET /api/v1/keys): to those who may rotate keys, and to the security
// officers who approve a rotation. It names versions and counts, never a
// secret.
func (s *Server) keyStatus(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	action := policy.KeyRotate
	if !policy.PermissionsOf(c.Actor.Roles)[policy.KeyRotate] {
		action = policy.ApprovalDecide
	}
	var st *keys.KEKStatus
	_, _, err := s.Gate.Enter(r.Context(), gate.Passage{Call: c, Action: action, AuditAction: "keys.status",
		Resource: policy.Resource{Type: "kek"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		st, err = s.Keys.Status(r.Context())
		return nil, err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}
