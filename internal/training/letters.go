package training

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Letter is a version of the commitment letter (安全承诺书) every member of
// staff signs before starting, and again when the hospital publishes a
// version it says must be signed anew.
type Letter struct {
	Version int    `json:"version"`
	Title   string `json:"title"`
	Body    string `json:"body"`
	// SHA256 is the checksum of the text (title, a blank line, body): a
	// signature names it, so that it is bound to the exact words signed.
	SHA256 string `json:"sha256"`
	// Resign says everyone must sign this version, also those who signed
	// an earlier one (the first version always is).
	Resign bool `json:"resign"`
	// EffectiveFrom is when signing it becomes a condition of record
	// access.
	EffectiveFrom time.Time `json:"effective_from"`
	PublishedBy   string    `json:"published_by"`
	PublishedAt   time.Time `json:"published_at"`
	// Signed counts the people who signed this version.
	Signed int `json:"signed"`
}

// NewLetter publishes a new version of the commitment letter.
type NewLetter struct {
	Title         string    `json:"title"`
	Body          string    `json:"body"`
	Resign        bool      `json:"resign"`
	EffectiveFrom time.Time `json:"effective_from,omitzero"`
}

// Signature is a member of staff's signature of a version of the letter:
// when, the checksum of the words they signed, and the audit entry that
// records it.
type Signature struct {
	UserID     string    `json:"user_id"`
	Username   string    `json:"username"`
	Version    int       `json:"version"`
	SHA256     string    `json:"sha256"`
	SignedAt   time.Time `json:"signed_at"`
	AuditIndex uint64    `json:"audit_index"`
}

// SignLetter signs a version: the checksum of the text as shown to the
// signer (Letter.SHA256).
type SignLetter struct {
	SHA256 string `json:"sha256"`
}

// MyLetter is the letter as a member of staff reads it before signing:
// the newest version, and their signatures.
type MyLetter struct {
	Letter     *Letter     `json:"letter"`
	Signatures []Signature `json:"signatures"`
	// Owed says the version in force is not signed yet.
	Owed bool `json:"owed"`
}

// MaxLetterBody is the longest letter text, in characters.
const MaxLetterBody = 20000

var errNoLetter = &medguard.Error{Kind: medguard.NotFound, Message: "no commitment letter is published"}

func letterSum(title, body string) string {
	h := sha256.Sum256([]byte(title + "\n\n" + body))
	return hex.EncodeToString(h[:])
}

// PublishLetter publishes a new version of the commitment letter
// (training.manage). The first version must be signed by everyone; a
// later one by everyone only if Resign says so (otherwise it is for new
// staff, and those who signed an earlier one may sign it). Signing it
// becomes a condition of record access from EffectiveFrom (default now;
// a later day gives the staff time to sign, warned meanwhile).
func (s *Service) PublishLetter(ctx context.Context, call *medguard.Call, in NewLetter) (*Letter, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if in.Title, err = medguard.Line("title", in.Title, 100, true); err != nil {
		return nil, err
	}
	if in.Body, err = medguard.Text("body", in.Body, MaxLetterBody, true); err != nil {
		return nil, err
	}
	if in.EffectiveFrom.IsZero() {
		in.EffectiveFrom = now
	}
	in.EffectiveFrom = in.EffectiveFrom.UTC().Truncate(time.Millisecond)
	if in.EffectiveFrom.Before(now.Add(-time.Minute)) || in.EffectiveFrom.After(now.AddDate(1, 0, 0)) {
		return nil, medguard.InvalidField("effective_from", "effective_from must be between now and a year from now")
	}
	l := &Letter{Title: in.Title, Body: in.Body, SHA256: letterSum(in.Title, in.Body), Resign: in.Resign,
		EffectiveFrom: in.EffectiveFrom, PublishedBy: call.Actor.Name, PublishedAt: now}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.letter_publish",
		Resource: policy.Resource{Type: "commitment_letter"}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(max(version), 0) + 1 FROM training_letters`).Scan(&l.Version); err != nil {
				return err
			}
			if l.Version == 1 {
				l.Resign = true
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO training_letters (version, title, body, sha256, resign, effective_from,
				published_by, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, l.Version, l.Title, l.Body, l.SHA256,
				boolInt(l.Resign), medguard.Millis(l.EffectiveFrom), call.Actor.Name, medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Message: "another version was published at the same time; try again"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	return l, nil
}

const letterColumns = `l.version, l.title, l.body, l.sha256, l.resign, l.effective_from, l.published_by, l.published_at,
	(SELECT count(*) FROM training_signatures g WHERE g.version = l.version)`

func scanLetter(sc interface{ Scan(...any) error }) (*Letter, error) {
	var l Letter
	var resign int
	var eff, pub int64
	if err := sc.Scan(&l.Version, &l.Title, &l.Body, &l.SHA256, &resign, &eff, &l.PublishedBy, &pub, &l.Signed); err != nil {
		return nil, err
	}
	l.Resign, l.EffectiveFrom, l.PublishedAt = resign != 0, medguard.FromMillis(eff), medguard.FromMillis(pub)
	return &l, nil
}

func (s *Service) letters(ctx context.Context) ([]Letter, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+letterColumns+` FROM training_letters l ORDER BY l.version DESC`)
	if err != nil {
		return nil, medguard.Wrap("training.letters", err)
	}
	defer rows.Close()
	out := []Letter{}
	for rows.Next() {
		l, err := scanLetter(rows)
		if err != nil {
			return nil, medguard.Wrap("training.letters", err)
		}
		out = append(out, *l)
	}
	return out, medguard.Wrap("training.letters", rows.Err())
}

// ListLetters lists the versions of the commitment letter, newest first,
// with how many signed each (training.read).
func (s *Service) ListLetters(ctx context.Context, call *medguard.Call) ([]Letter, error) {
	var out []Letter
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.letter_list",
		Resource: policy.Resource{Type: "commitment_letter"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		out, err = s.letters(ctx)
		return nil, err
	})
	return out, err
}

func (s *Service) signatures(ctx context.Context, where string, arg any) ([]Signature, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, username, version, sha256, signed_at, audit_index FROM training_signatures
		WHERE `+where+` ORDER BY version DESC, username`, arg)
	if err != nil {
		return nil, medguard.Wrap("training.signatures", err)
	}
	defer rows.Close()
	out := []Signature{}
	for rows.Next() {
		var g Signature
		var at, idx int64
		if err := rows.Scan(&g.UserID, &g.Username, &g.Version, &g.SHA256, &at, &idx); err != nil {
			return nil, medguard.Wrap("training.signatures", err)
		}
		g.SignedAt, g.AuditIndex = medguard.FromMillis(at), uint64(idx)
		out = append(out, g)
	}
	return out, medguard.Wrap("training.signatures", rows.Err())
}

func selfResource(call *medguard.Call, typ string) policy.Resource {
	return policy.Resource{Type: typ, ID: call.Actor.ID, SubjectUserID: call.Actor.ID}
}

// MyLetter returns the newest commitment letter and the caller's
// signatures (training.self: anyone, for themselves).
func (s *Service) MyLetter(ctx context.Context, call *medguard.Call) (*MyLetter, error) {
	out := &MyLetter{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingSelf, AuditAction: "training.letter_read",
		Resource: selfResource(call, "commitment_letter")}, func(policy.Decision) (audit.Mutation, error) {
		ls, err := s.letters(ctx)
		if err != nil {
			return nil, err
		}
		if len(ls) == 0 {
			return nil, errNoLetter
		}
		out.Letter = &ls[0]
		if out.Signatures, err = s.signatures(ctx, `user_id = $1`, call.Actor.ID); err != nil {
			return nil, err
		}
		if st, ok := s.StandingOf(&call.Actor); ok {
			for _, o := range st.Obligations {
				out.Owed = out.Owed || o.Kind == ObligationLetter
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Sign signs a version of the commitment letter for oneself
// (training.self): the newest version only, named by the checksum of the
// words shown, once. Nobody signs for someone else.
func (s *Service) Sign(ctx context.Context, call *medguard.Call, version int, in SignLetter) (*Signature, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	in.SHA256 = strings.ToLower(strings.TrimSpace(in.SHA256))
	if len(in.SHA256) != 64 {
		return nil, medguard.InvalidField("sha256", "sha256 must be the 64 hexadecimal digits of the letter shown")
	}
	ls, err := s.letters(ctx)
	if err != nil {
		return nil, err
	}
	g := &Signature{UserID: call.Actor.ID, Username: call.Actor.Name, Version: version, SHA256: in.SHA256, SignedAt: now}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingSelf, AuditAction: "training.letter_sign",
		Resource: selfResource(call, "commitment_letter")}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case len(ls) == 0:
			return nil, errNoLetter
		case version != ls[0].Version:
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "not_current", Message: "only the newest version of the letter is signed"}
		case in.SHA256 != ls[0].SHA256:
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "text_changed", Message: "the letter's text is not the one shown: read it again"}
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			g.AuditIndex = index
			_, err := tx.ExecContext(ctx, `INSERT INTO training_signatures (user_id, version, username, sha256, signed_at, audit_index)
				VALUES ($1, $2, $3, $4, $5, $6)`, call.Actor.ID, version, call.Actor.Name, in.SHA256, medguard.Millis(now), int64(index))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Code: "signed", Message: "you signed this version already"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	s.settle(ctx, call.Actor.ID)
	return g, nil
}
