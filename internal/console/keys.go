package console

import (
	"encoding/json"
	"net/http"

	"medguard/internal/approvals"
	"medguard/internal/policy"
)

// Keys (密钥, SPEC §9) as the information engineer and the security officer
// watch them: where the root keys (KEKs) live, each version's state and
// how many data keys it wraps, a rotation's progress, and — for those who
// may rotate keys — the form that asks for a rotation (four eyes: a
// security officer approves it in the approvals inbox).

func init() {
	register(
		Page{Method: "GET", Path: "/keys", Any: []policy.Permission{policy.KeyRotate, policy.ApprovalDecide},
			Nav: &Nav{Key: "nav.keys", Order: 85}, Handle: keysPage},
		Page{Method: "POST", Path: "/keys/rotate", Any: []policy.Permission{policy.KeyRotate}, Handle: requestKeyRotation},
	)
}

func keysPage(rq *Request) error { return renderKeys(rq, http.StatusOK, "", nil) }

func renderKeys(rq *Request, status int, reason string, fe *formError) error {
	if rq.Deps.KeyStatus == nil {
		return rq.Render(status, "keys", "keys.title", map[string]any{"Missing": true})
	}
	st, err := rq.Deps.KeyStatus(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	done := 100
	if st.Rotating && st.DataKeys > 0 {
		done = int(100 * (st.DataKeys - st.Remaining) / st.DataKeys)
	}
	return rq.Render(status, "keys", "keys.title", map[string]any{"Status": st, "Done": done,
		"CanRotate": rq.Can(policy.KeyRotate), "Reason": reason, "Error": fe})
}

func requestKeyRotation(rq *Request) error {
	reason := rq.form("reason")
	if reason == "" {
		return renderKeys(rq, http.StatusUnprocessableEntity, reason, &formError{Key: "keys.error.reason"})
	}
	_, err := rq.Deps.Approvals.Request(rq.Context(), rq.Call, approvals.NewRequest{Kind: approvals.KeysRotate,
		Payload: json.RawMessage(`{}`), Reason: reason})
	if err != nil {
		if fe, ok := rq.asFormError(err, "keys.error"); ok {
			return renderKeys(rq, http.StatusUnprocessableEntity, reason, fe)
		}
		return err
	}
	return rq.Redirect("/keys", "keys_rotation_requested")
}
