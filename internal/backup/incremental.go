package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"

	"medguard/internal/audit"
	"medguard/internal/retention"
	"medguard/internal/storage"
)

// CreateIncremental seals the continuous stream for a data directory whose
// server does not ship it itself: it runs the stream once (Litestream
// ships every transaction since the last run, from its state in
// DATA/backup/litestream) and writes a signed manifest sealing the
// generation's segments. A server started with --backup-to seals its own
// stream on its schedule (Stream.Seal).
func CreateIncremental(ctx context.Context, opt CreateOptions) (*Result, error) {
	s, err := OpenStream(ctx, StreamOptions{DataDir: opt.DataDir, Targets: opt.Targets, Recipient: opt.Recipient, Cipher: opt.Cipher})
	if err != nil {
		return nil, err
	}
	res, err := s.Seal(ctx, opt)
	return res, errors.Join(err, s.Close(context.Background()))
}

// latestCheckpoint reads the newest signed checkpoint of the audit log in
// the data directory's database.
func latestCheckpoint(ctx context.Context, dataDir string) (AuditState, error) {
	db, err := storage.Open(ctx, "sqlite:"+filepath.Join(dataDir, "medguard.db"), "")
	if err != nil {
		return AuditState{}, err
	}
	defer db.Close()
	cps, err := audit.StoredCheckpoints(ctx, db)
	if err != nil {
		return AuditState{}, err
	}
	if len(cps) == 0 {
		return AuditState{}, nil
	}
	c := cps[len(cps)-1]
	return AuditState{Size: c.Size, Root: c.Root, Checkpoint: c.Note}, nil
}

// Seal makes an incremental backup: the audit log's newest checkpoint is
// read, every transaction committed so far is shipped, and a signed
// manifest lists every segment of the generation (so each incremental
// backup restores on its own), with the checkpoints and signing key.
func (s *Stream) Seal(ctx context.Context, opt CreateOptions) (*Result, error) {
	return s.seal(ctx, opt, s.Sync)
}

// Finish ends the stream's generation: it ships every transaction
// committed so far, stops the stream, and seals the whole generation (its
// last incremental backup). If it fails before the stream is stopped
// (Closed is false), the stream still ships; after, the generation's
// segments are all shipped but its newest ones may be unsealed.
func (s *Stream) Finish(ctx context.Context, opt CreateOptions) (*Result, error) {
	return s.seal(ctx, opt, s.Close)
}

func (s *Stream) seal(ctx context.Context, opt CreateOptions, ship func(context.Context) error) (*Result, error) {
	start := time.Now()
	cp, err := latestCheckpoint(ctx, opt.DataDir)
	if err != nil {
		return nil, err
	}
	now := opt.now()
	id := newID(now, Incremental)
	local, err := localTransitions(ctx, opt.DataDir)
	if err != nil {
		return nil, fmt.Errorf("backup: the audit log's key rotations: %w", err)
	}
	m := &Manifest{ID: id, Kind: Incremental, CreatedAt: now, Database: "sqlite", Base: s.Generation(), Audit: cp,
		Cipher: opt.cipher(), KeyWrap: KeyWrap, Recipient: fmt.Sprint(opt.Recipient), Signer: opt.Signer.VerifierKey(),
		KeyTransitions: notes(local)}
	key := newBackupKey()
	wrapped, err := wrapKey(key, opt.Recipient)
	if err != nil {
		return nil, err
	}
	prefix := backupsDir + id + "/"
	tmp := snapshotDir(opt.DataDir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	m.Pieces = append(m.Pieces, Piece{Name: prefix + "key.age", Size: int64(len(wrapped)), SHA256: sum(wrapped), Role: "key"})
	for _, t := range opt.Targets {
		if err := ensureVerifier(ctx, t, opt.Signer.VerifierKey(), local); err != nil {
			return nil, err
		}
		if err := putBytes(ctx, t, prefix+"key.age", wrapped); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct{ src, name, role string }{
		{filepath.Join(opt.DataDir, "keys", "audit-log.key"), "audit-log.key.sio", "signing-key"},
		{filepath.Join(opt.DataDir, "checkpoints.log"), "checkpoints.sio", "checkpoints"},
	} {
		p, err := encryptFile(ctx, m.Cipher, f.src, key, prefix+f.name, f.role, tmp, opt.Targets)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		m.Pieces = append(m.Pieces, p)
	}
	// The checkpoints were copied before the stream is shipped: every one
	// of them is of a tree the stream holds.
	if err := ship(ctx); err != nil {
		return nil, fmt.Errorf("backup: shipping the stream: %w", err)
	}
	// The ledger is copied after the stream is shipped: it holds every
	// destruction the shipped transactions hold.
	p, err := encryptFile(ctx, m.Cipher, filepath.Join(opt.DataDir, retention.LedgerFile), key, prefix+ledgerPiece, "ledger", tmp, opt.Targets)
	switch {
	case err == nil:
		m.Pieces = append(m.Pieces, p)
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if err := ShipLedger(ctx, opt.DataDir, opt.Recipient, opt.Targets); err != nil {
		return nil, err
	}
	t0 := opt.Targets[0]
	objs, err := segmentsOf(ctx, t0, s.Generation())
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		p, err := pieceOf(ctx, t0, o, "stream")
		if err != nil {
			return nil, err
		}
		if _, _, _, ts, ok := parseSegment(o.Name); ok && time.UnixMilli(ts).After(m.DataAsOf) {
			m.DataAsOf = time.UnixMilli(ts).UTC()
		}
		m.Pieces = append(m.Pieces, p)
	}
	if len(m.Pieces) == 0 || m.Pieces[len(m.Pieces)-1].Role != "stream" {
		return nil, errors.New("backup: the stream has shipped nothing yet")
	}
	signed, err := opt.Signer.sign(manifestHeader, m)
	if err != nil {
		return nil, err
	}
	res := &Result{Manifest: m}
	for _, t := range opt.Targets {
		if err := putBytes(ctx, t, prefix+manifestName, signed); err != nil {
			return nil, err
		}
		res.URLs = append(res.URLs, BackupURL(t, id))
	}
	res.Took = time.Since(start)
	return res, nil
}

// restoreStream rebuilds the database from an incremental backup's
// segments with Litestream's restore (up to at, if not zero).
func restoreStream(ctx context.Context, t Target, m *Manifest, id Identity, dbPath string, at time.Time) error {
	only := map[string]Piece{}
	for _, p := range m.Pieces {
		if p.Role == "stream" {
			only[p.Name] = p
		}
	}
	c := &streamClient{targets: []Target{t}, gen: m.Base, identity: id, only: only}
	r := litestream.NewReplicaWithClient(nil, c)
	opt := litestream.RestoreOptions{OutputPath: dbPath, Timestamp: at}
	if err := r.Restore(ctx, opt); err != nil {
		return fmt.Errorf("backup: replaying the stream: %w", err)
	}
	return nil
}

// BackupAt chooses the backup on a target that restores the data as of
// when: the newest seal (incremental backup) whose stream generation covers
// that moment — from the generation's first segment to the newest it
// sealed — replayed to it (replay is true); else the newest backup whose
// data is as of when or earlier, restored whole. Generations rotate with
// every full backup, so a moment is in the generation that was current
// then, sealed by that generation's last seal.
func BackupAt(ctx context.Context, t Target, verifierKey string, when time.Time) (id string, replay bool, err error) {
	entries, err := List(ctx, t, verifierKey)
	if err != nil {
		return "", false, err
	}
	// The one holding the most: the newest data.
	var best, covering *Manifest
	for _, e := range entries {
		m := e.Manifest
		if m == nil {
			continue
		}
		if !m.DataAsOf.After(when) && (best == nil || !m.DataAsOf.Before(best.DataAsOf)) {
			best = m
		}
		if m.Kind == Incremental && !streamStart(m).After(when) && !m.DataAsOf.Before(when) &&
			(covering == nil || !m.DataAsOf.Before(covering.DataAsOf)) {
			covering = m
		}
	}
	if covering != nil {
		return covering.ID, true, nil
	}
	if best == nil {
		return "", false, fmt.Errorf("backup: no backup on %s holds data as of %s", t.URL(), when.Format(time.RFC3339))
	}
	return best.ID, false, nil
}

// streamStart is when an incremental backup's stream generation starts:
// its first segment (the generation's snapshot).
func streamStart(m *Manifest) time.Time {
	var first time.Time
	for _, p := range m.Pieces {
		if p.Role == "stream" {
			if _, _, _, ts, ok := parseSegment(p.Name); ok && (first.IsZero() || time.UnixMilli(ts).Before(first)) {
				first = time.UnixMilli(ts).UTC()
			}
		}
	}
	if first.IsZero() {
		return m.DataAsOf
	}
	return first
}
