package audit_test

import (
	"context"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"medguard"
	"medguard/internal/audit"
)

// rotated is a log of 10 entries signed by the first key, rotated at size
// 11 (the rotation's own entry), then 5 more entries signed by the next.
type rotated struct {
	*tamperable
	old, next *audit.Signer
	nextSkey  string
	nextCps   *audit.Checkpoints
}

func newRotated(t *testing.T) *rotated {
	t.Helper()
	ctx := context.Background()
	tb := newTamperable(t, 10, 5)
	r := &rotated{tamperable: tb, old: tb.signer}
	var err error
	if r.nextSkey, r.next, err = audit.GenerateSigner(tb.signer.Origin()); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.log.Append(ctx, entry(10), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.cps.Transition(ctx, r.next); err != nil {
		t.Fatal(err)
	}
	// Again: a rotation resumed after a crash finds its own transition.
	if _, err := tb.cps.Transition(ctx, r.next); err != nil {
		t.Fatalf("resumed transition: %v", err)
	}
	r.nextCps = audit.NewCheckpoints(tb.log, r.next, tb.file, medguard.SystemClock{})
	for i := 11; i < 16; i++ {
		if _, err := tb.log.Append(ctx, entry(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.nextCps.Latest(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rotated) verifyWith(t *testing.T, key string, extra ...audit.Checkpoint) (*audit.VerifyReport, error) {
	t.Helper()
	return audit.Verify(context.Background(), r.db, audit.VerifyOptions{VerifierKey: key,
		Checkpoints: append(r.external(t), extra...)})
}

func TestKeyRotationTransitionIsCoSigned(t *testing.T) {
	r := newRotated(t)
	stored, err := audit.StoredCheckpoints(context.Background(), r.db)
	if err != nil {
		t.Fatal(err)
	}
	var tr *audit.Checkpoint
	for i := range stored {
		if stored[i].Size == 11 {
			tr = &stored[i]
		}
	}
	if tr == nil {
		t.Fatalf("no transition checkpoint at size 11: %v", stored)
	}
	// Both keys signed it, as public tools see it; each alone opens it as
	// an ordinary checkpoint of size 11.
	for _, k := range []string{r.old.VerifierKey(), r.next.VerifierKey()} {
		v, err := note.NewVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open([]byte(tr.Note), note.VerifierList(v))
		if err != nil || len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 1 {
			t.Fatalf("%s: %v %+v", audit.KeyName(k), err, n)
		}
		if _, size, _, err := audit.OpenCheckpoint([]byte(tr.Note), k); err != nil || size != 11 {
			t.Fatalf("%s: size %d, %v", audit.KeyName(k), size, err)
		}
	}
	// Same origin, distinct keys: the hash tells them apart.
	if audit.KeyName(r.old.VerifierKey()) == audit.KeyName(r.next.VerifierKey()) || r.old.Origin() != r.next.Origin() {
		t.Fatalf("%s %s", r.old.VerifierKey(), r.next.VerifierKey())
	}
	tn, ok, err := audit.ParseTransition([]byte(tr.Note))
	if err != nil || !ok || tn.Previous != r.old.VerifierKey() || tn.Next != r.next.VerifierKey() || tn.Size != 11 {
		t.Fatalf("%+v %v %v", tn, ok, err)
	}
}

func TestKeyRotationChainVerifies(t *testing.T) {
	r := newRotated(t)
	// From the auditor's original key, forwards; from the installed key,
	// backwards: the same chain either way.
	for _, key := range []string{r.old.VerifierKey(), r.next.VerifierKey()} {
		rep, err := r.verifyWith(t, key)
		if err != nil {
			t.Fatalf("from %s: %v", audit.KeyName(key), err)
		}
		if rep.Size != 16 || len(rep.Keys) != 2 {
			t.Fatalf("from %s: %d entries, chain %v", audit.KeyName(key), rep.Size, rep.Keys)
		}
		k0, k1 := rep.Keys[0], rep.Keys[1]
		if k0.VerifierKey != r.old.VerifierKey() || !k0.Retired || k0.From != 0 || k0.To != 11 ||
			k1.VerifierKey != r.next.VerifierKey() || k1.Retired || k1.From != 11 {
			t.Fatalf("from %s: chain\n%s", audit.KeyName(key), rep.Keys)
		}
		if rep.Checkpoints < 4 {
			t.Fatalf("checkpoints matched: %d", rep.Checkpoints)
		}
	}
	// A key the log never used verifies nothing.
	_, other, _ := audit.GenerateSigner(r.old.Origin())
	if _, err := r.verifyWith(t, other.VerifierKey()); !errors.Is(err, audit.ErrBadCheckpoint) {
		t.Fatalf("an unrelated key: %v", err)
	}
}

func TestKeyRotationRefusesAForgedKey(t *testing.T) {
	r := newRotated(t)
	ctx := context.Background()
	size, root, err := r.log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A key no transition introduces signs a true checkpoint: refused.
	forgedSkey, forged, _ := audit.GenerateSigner(r.old.Origin())
	msg, err := forged.Sign(size, root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.verifyWith(t, r.old.VerifierKey(), audit.Checkpoint{Size: size, Root: root, Note: string(msg)})
	if !errors.Is(err, audit.ErrBadCheckpoint) || !strings.Contains(err.Error(), "signed only by "+audit.KeyName(forged.VerifierKey())) {
		t.Fatalf("a checkpoint signed by a forged key: %v", err)
	}

	// A transition to the forged key signed only by the forged key: a
	// rotation needs the retiring key's signature.
	fs, err := note.NewSigner(forgedSkey)
	if err != nil {
		t.Fatal(err)
	}
	text := r.next.Origin() + "\n16\n" + b64(root) + "\nprevious-key " + r.next.VerifierKey() + "\nnext-key " + forged.VerifierKey() + "\n"
	bad, err := note.Sign(&note.Note{Text: text}, fs)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.verifyWith(t, r.old.VerifierKey(), audit.Checkpoint{Size: 16, Note: string(bad)})
	if !errors.Is(err, audit.ErrBadCheckpoint) || !strings.Contains(err.Error(), "not signed by the key it retires") {
		t.Fatalf("a transition signed by the new key only: %v", err)
	}

	// The retired key signs beyond the size at which it was retired (it
	// leaked, say): refused.
	late, err := r.old.Sign(size, root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.verifyWith(t, r.old.VerifierKey(), audit.Checkpoint{Size: size, Root: root, Note: string(late)})
	if !errors.Is(err, audit.ErrBadCheckpoint) || !strings.Contains(err.Error(), "retired at size 11") {
		t.Fatalf("a checkpoint signed by the retired key after its retirement: %v", err)
	}

	// The retired key makes a second transition (to a key of its own): the
	// keys forked.
	_, other, _ := audit.GenerateSigner(r.old.Origin())
	root11, err := r.log.RootAt(ctx, 11)
	if err != nil {
		t.Fatal(err)
	}
	fork, err := r.old.SignTransition(11, root11, other)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.verifyWith(t, r.old.VerifierKey(), audit.Checkpoint{Size: 11, Note: string(fork)})
	if !errors.Is(err, audit.ErrBadCheckpoint) || !strings.Contains(err.Error(), "forked") {
		t.Fatalf("two transitions from one key: %v", err)
	}

	// The server refuses the retired key, and a key of another log.
	stored, _ := audit.StoredCheckpoints(ctx, r.db)
	latest := stored[len(stored)-1]
	if err := audit.CheckSigner(latest, r.next); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	if err := audit.CheckSigner(latest, forged); err == nil {
		t.Fatal("a foreign key accepted")
	}
	for _, cp := range stored {
		if cp.Size == 11 {
			if err := audit.CheckSigner(cp, r.old); err == nil || !strings.Contains(err.Error(), "retired") {
				t.Fatalf("the retired key, at the transition: %v", err)
			}
			if err := audit.CheckSigner(cp, r.next); err != nil {
				t.Fatalf("the new key, at the transition: %v", err)
			}
		}
	}
}

func TestKeyHistory(t *testing.T) {
	r := newRotated(t)
	rep, err := r.verifyWith(t, r.old.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit-log.history")
	if err := rep.Keys.CheckHistory(nil); err == nil {
		t.Fatal("an empty history matched a rotated chain")
	}
	for range 2 { // appending twice keeps one line
		if err := audit.AppendKeyHistory(path, rep.Keys[0]); err != nil {
			t.Fatal(err)
		}
	}
	h, err := audit.ReadKeyHistory(path)
	if err != nil || len(h) != 1 {
		t.Fatalf("%v %v", h, err)
	}
	if err := rep.Keys.CheckHistory(h); err != nil {
		t.Fatal(err)
	}
	h[0].To = 15
	if err := rep.Keys.CheckHistory(h); err == nil || !strings.Contains(err.Error(), "sizes 0 to 15") {
		t.Fatalf("a changed history: %v", err)
	}
	h[0] = rep.Keys[1]
	if err := rep.Keys.CheckHistory(h); err == nil {
		t.Fatal("the current key listed as retired")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
