package media

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// The ways a device is erased: overwritten (多次覆写), its encryption key
// destroyed (密钥销毁), degaussed (消磁).
const (
	Overwrite   = "overwrite"
	CryptoErase = "crypto_erase"
	Degauss     = "degauss"
)

// ErasureMethods lists the ways a device is erased.
var ErasureMethods = []string{Overwrite, CryptoErase, Degauss}

// The ways a device is disposed of: destroyed (物理销毁), degaussed and
// destroyed (消磁后销毁), returned to its vendor after erasure (返还厂商).
const (
	PhysicalDestruction = "physical_destruction"
	DegaussAndDestroy   = "degauss_and_destroy"
	VendorReturn        = "vendor_return"
)

// DisposalMethods lists the ways a device is disposed of.
var DisposalMethods = []string{PhysicalDestruction, DegaussAndDestroy, VendorReturn}

// Erasure is a device's erasure: how, by whom, before which witness.
type Erasure struct {
	ID       string    `json:"id"`
	DeviceID string    `json:"device_id"`
	Method   string    `json:"method"`
	ErasedBy string    `json:"erased_by"`
	ErasedAt time.Time `json:"erased_at"`
	Witness  string    `json:"witness"`
	Note     string    `json:"note,omitempty"`
}

// Disposal is a device's disposal: how, by whom, before which witness.
type Disposal struct {
	Method     string    `json:"method"`
	DisposedBy string    `json:"disposed_by"`
	DisposedAt time.Time `json:"disposed_at"`
	Witness    string    `json:"witness"`
	Note       string    `json:"note,omitempty"`
}

// NewErasure records an erasure: the method, the witness (a username:
// someone other than the caller, who erased it) and a note.
type NewErasure struct {
	Method  string `json:"method"`
	Witness string `json:"witness"`
	Note    string `json:"note,omitempty"`
}

// NewDisposal records a disposal, as NewErasure.
type NewDisposal struct {
	Method  string `json:"method"`
	Witness string `json:"witness"`
	Note    string `json:"note,omitempty"`
}

func (s *Service) erasuresOf(ctx context.Context, deviceID string) ([]Erasure, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, method, erased_by, erased_at, witness, note FROM media_erasures
		WHERE device_id = $1 ORDER BY erased_at DESC, id DESC LIMIT 1000`, deviceID)
	if err != nil {
		return nil, medguard.Wrap("media.erasures", err)
	}
	defer rows.Close()
	out := []Erasure{}
	for rows.Next() {
		e := Erasure{DeviceID: deviceID}
		var at int64
		var n []byte
		if err := rows.Scan(&e.ID, &e.Method, &e.ErasedBy, &at, &e.Witness, &n); err != nil {
			return nil, medguard.Wrap("media.erasures", err)
		}
		e.ErasedAt = medguard.FromMillis(at)
		if e.Note, err = s.open(ctx, "media_erasures", e.ID, "note", n); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, medguard.Wrap("media.erasures", rows.Err())
}

// Erase records a device's erasure by the caller (media.manage) before a
// witness who is someone else (deny.same_signatory): after every return,
// before the device is lent again; a device in the store may be erased
// again. The device is then in the store.
func (s *Service) Erase(ctx context.Context, call *medguard.Call, deviceID string, in NewErasure) (*Erasure, error) {
	if !slices.Contains(ErasureMethods, in.Method) {
		return nil, medguard.InvalidField("method", "method must be one of %s", strings.Join(ErasureMethods, ", "))
	}
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxNote, false); err != nil {
		return nil, err
	}
	w, err := s.person(ctx, "witness", in.Witness)
	if err != nil {
		return nil, err
	}
	d, err := s.load(ctx, call, policy.MediaManage, "media.erase", deviceID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	id := medguard.NewID(now)
	sealed, err := s.seal(ctx, "media_erasures", id, "note", in.Note)
	if err != nil {
		return nil, err
	}
	e := &Erasure{ID: id, DeviceID: d.ID, Method: in.Method, ErasedBy: call.Actor.Name, ErasedAt: now, Witness: w.Username, Note: in.Note}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.MediaManage, AuditAction: "media.erase",
		Resource: policy.Resource{Type: "media", ID: d.ID, SubjectUserID: w.ID}}, func(policy.Decision) (audit.Mutation, error) {
		if d.Status != Available && d.Status != AwaitingErasure {
			return nil, deviceNot(d.Status)
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE media_devices SET status = $1 WHERE id = $2 AND status IN ($1, $3)`,
				Available, d.ID, AwaitingErasure)
			if err := storage.Affected(res, err, deviceNot(Lent)); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO media_erasures (id, device_id, method, erased_by, erased_at, witness, note)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, d.ID, in.Method, call.Actor.Name, medguard.Millis(now), w.Username, sealed)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Dispose records a device's disposal by the caller (media.manage) before
// a witness who is someone else (deny.same_signatory): only a device in
// the store, erased since its last loan. It stays in the register,
// disposed of.
func (s *Service) Dispose(ctx context.Context, call *medguard.Call, deviceID string, in NewDisposal) (*Disposal, error) {
	if !slices.Contains(DisposalMethods, in.Method) {
		return nil, medguard.InvalidField("method", "method must be one of %s", strings.Join(DisposalMethods, ", "))
	}
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxNote, false); err != nil {
		return nil, err
	}
	w, err := s.person(ctx, "witness", in.Witness)
	if err != nil {
		return nil, err
	}
	d, err := s.load(ctx, call, policy.MediaManage, "media.dispose", deviceID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	sealed, err := s.seal(ctx, "media_devices", d.ID, "disposal_note", in.Note)
	if err != nil {
		return nil, err
	}
	out := &Disposal{Method: in.Method, DisposedBy: call.Actor.Name, DisposedAt: now, Witness: w.Username, Note: in.Note}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.MediaManage, AuditAction: "media.dispose",
		Resource: policy.Resource{Type: "media", ID: d.ID, SubjectUserID: w.ID}}, func(policy.Decision) (audit.Mutation, error) {
		if d.Status != Available {
			return nil, deviceNot(d.Status)
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE media_devices SET status = $1, disposal_method = $2, disposed_by = $3, disposed_at = $4,
				disposal_witness = $5, disposal_note = $6 WHERE id = $7 AND status = $8`, Disposed, in.Method, call.Actor.Name,
				medguard.Millis(now), w.Username, sealed, d.ID, Available)
			return storage.Affected(res, err, deviceNot(Lent))
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
