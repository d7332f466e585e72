package backup

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"medguard/internal/storage"
)

// Identity is an age identity that opens backup keys.
type Identity = age.Identity

// The continuous stream: Litestream (as a library) turns each committed
// transaction of the write-ahead log into an LTX file; streamClient, its
// replica client, encrypts each one under a fresh key wrapped to the age
// recipient (so the server never holds a key that reads what it shipped)
// and writes it to every target, under stream/GEN/. An incremental backup
// is a signed manifest sealing a generation's segments up to a moment.
const streamDir = "stream/"

// segmentMagic starts a stream segment: then the length of the wrapped key
// (uint16), the age-wrapped key, and the DARE stream of the LTX file.
var segmentMagic = []byte("MGSEG1\n")

// streamClient is a litestream.ReplicaClient over medguard's targets.
type streamClient struct {
	targets   []Target
	gen       string
	recipient age.Recipient
	cipher    string       // the cipher of the segments written
	identity  age.Identity // restore only
	// only, when set (restore), limits the segments to a manifest's.
	only map[string]Piece
	// onWrite is told of each segment written (its time), for the lag.
	onWrite func(at time.Time)
	mu      sync.Mutex
	logger  *slog.Logger
}

func (c *streamClient) Type() string                   { return "medguard" }
func (c *streamClient) Init(ctx context.Context) error { return nil }
func (c *streamClient) SetLogger(l *slog.Logger)       { c.logger = l }

func (c *streamClient) prefix() string { return streamDir + c.gen + "/" }

// segmentName names an LTX file: level, TXIDs, the LTX header's time and
// the LTX file's size (Litestream reads it by offset and size).
func (c *streamClient) segmentName(level int, min, max ltx.TXID, ts, size int64) string {
	return fmt.Sprintf("%s%d/%s-%s-%d-%d.ltx.sio", c.prefix(), level, min.String(), max.String(), ts, size)
}

func parseSegment(name string) (level int, min, max ltx.TXID, ts int64, ok bool) {
	level, min, max, ts, _, ok = parseSegmentSize(name)
	return
}

func parseSegmentSize(name string) (level int, min, max ltx.TXID, ts, size int64, ok bool) {
	parts := strings.Split(name, "/")
	if len(parts) < 2 || !strings.HasSuffix(name, ".ltx.sio") {
		return
	}
	l, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		return
	}
	f := strings.Split(strings.TrimSuffix(parts[len(parts)-1], ".ltx.sio"), "-")
	if len(f) != 4 {
		return
	}
	a, err1 := ltx.ParseTXID(f[0])
	b, err2 := ltx.ParseTXID(f[1])
	t, err3 := strconv.ParseInt(f[2], 10, 64)
	n, err4 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return
	}
	return l, a, b, t, n, true
}

func (c *streamClient) infos(ctx context.Context, level int) ([]*ltx.FileInfo, error) {
	var objs []Object
	if c.only != nil {
		for _, p := range c.only {
			objs = append(objs, Object{Name: p.Name, Size: p.Size})
		}
	} else {
		var err error
		// The first target that answers tells the position; a target
		// that was down gets every segment again when it is back (see
		// WriteLTXFile).
		var errs []error
		for _, t := range c.targets {
			if objs, err = t.List(ctx, fmt.Sprintf("%s%d/", c.prefix(), level)); err == nil {
				break
			}
			errs = append(errs, err)
		}
		if len(errs) == len(c.targets) {
			return nil, errors.Join(errs...)
		}
	}
	var out []*ltx.FileInfo
	for _, o := range objs {
		l, min, max, ts, size, ok := parseSegmentSize(o.Name)
		if !ok || l != level {
			continue
		}
		out = append(out, &ltx.FileInfo{Level: l, MinTXID: min, MaxTXID: max, Size: size, CreatedAt: time.UnixMilli(ts).UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MinTXID < out[j].MinTXID })
	return out, nil
}

func (c *streamClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	all, err := c.infos(ctx, level)
	if err != nil {
		return nil, err
	}
	var out []*ltx.FileInfo
	for _, i := range all {
		if i.MinTXID >= seek {
			out = append(out, i)
		}
	}
	return ltx.NewFileInfoSliceIterator(out), nil
}

func (c *streamClient) find(ctx context.Context, level int, min, max ltx.TXID) (string, error) {
	all, err := c.infos(ctx, level)
	if err != nil {
		return "", err
	}
	for _, i := range all {
		if i.MinTXID == min && i.MaxTXID == max {
			return c.segmentName(level, min, max, i.CreatedAt.UnixMilli(), i.Size), nil
		}
	}
	return "", os.ErrNotExist
}

func (c *streamClient) OpenLTXFile(ctx context.Context, level int, min, max ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if c.identity == nil {
		return nil, errors.New("backup: the stream is write-only here: reading it needs the backup identity")
	}
	name, err := c.find(ctx, level, min, max)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, t := range c.targets {
		b, err := readSegment(ctx, t, name, c.identity, c.only)
		if err != nil {
			lastErr = err
			continue
		}
		if offset > int64(len(b)) {
			offset = int64(len(b))
		}
		b = b[offset:]
		if size > 0 && size < int64(len(b)) {
			b = b[:size]
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return nil, lastErr
}

// readSegment reads and decrypts one segment, checking it against the
// manifest's piece when given.
func readSegment(ctx context.Context, t Target, name string, id age.Identity, only map[string]Piece) ([]byte, error) {
	raw, err := getBytes(ctx, t, name, 1<<30)
	if err != nil {
		return nil, err
	}
	if only != nil {
		p, ok := only[name]
		if !ok || p.Size != int64(len(raw)) || p.SHA256 != sum(raw) {
			return nil, fmt.Errorf("backup: segment %s changed since the manifest", name)
		}
	}
	if !bytes.HasPrefix(raw, segmentMagic) || len(raw) < len(segmentMagic)+2 {
		return nil, fmt.Errorf("backup: %s is not a stream segment", name)
	}
	rest := raw[len(segmentMagic):]
	n := int(binary.BigEndian.Uint16(rest))
	if len(rest) < 2+n {
		return nil, fmt.Errorf("backup: %s is truncated", name)
	}
	key, err := unwrapKey(rest[2:2+n], id)
	if err != nil {
		return nil, err
	}
	dec, err := decryptReader(key, name, bytes.NewReader(rest[2+n:]))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(dec)
}

// WriteLTXFile encrypts the LTX file under a fresh key and writes it to
// every target; if one fails, the error makes Litestream retry it (and
// every later one) in order, so a target that was down catches up.
func (c *streamClient) WriteLTXFile(ctx context.Context, level int, min, max ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	plain, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	hdr, _, err := ltx.PeekHeader(bytes.NewReader(plain))
	if err != nil {
		return nil, fmt.Errorf("backup: LTX header: %w", err)
	}
	name := c.segmentName(level, min, max, hdr.Timestamp, int64(len(plain)))
	key := newBackupKey()
	wrapped, err := wrapKey(key, c.recipient)
	if err != nil {
		return nil, err
	}
	enc, err := encryptReader(cmp.Or(c.cipher, Cipher), key, name, bytes.NewReader(plain))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write(segmentMagic)
	binary.Write(&buf, binary.BigEndian, uint16(len(wrapped)))
	buf.Write(wrapped)
	if _, err := io.Copy(&buf, enc); err != nil {
		return nil, err
	}
	var errs []error
	for _, t := range c.targets {
		if err := putBytes(ctx, t, name, buf.Bytes()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.URL(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	at := time.UnixMilli(hdr.Timestamp).UTC()
	if c.onWrite != nil {
		c.onWrite(at)
	}
	return &ltx.FileInfo{Level: level, MinTXID: min, MaxTXID: max, Size: int64(len(plain)), CreatedAt: at}, nil
}

func (c *streamClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	for _, i := range a {
		name := c.segmentName(i.Level, i.MinTXID, i.MaxTXID, i.CreatedAt.UnixMilli(), i.Size)
		for _, t := range c.targets {
			if err := t.Delete(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *streamClient) DeleteAll(ctx context.Context) error {
	for _, t := range c.targets {
		objs, err := t.List(ctx, c.prefix())
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := t.Delete(ctx, o.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// StreamOptions configure a continuous stream.
type StreamOptions struct {
	DataDir   string
	Targets   []Target
	Recipient age.Recipient
	// Generation names the stream; empty takes the one recorded in
	// DATA/backup/generation, or starts one.
	Generation string
	// NewGeneration starts a new generation (the schedule does, with
	// every full backup): its first segment is a snapshot of the whole
	// database taken when it first ships.
	NewGeneration bool
	// Now is the clock a new generation is named by (time.Now if nil).
	Now    func() time.Time
	Logger *slog.Logger
	// SyncInterval is how often committed transactions are shipped
	// (default 1s).
	SyncInterval time.Duration
	// Cipher seals the segments: CipherAES (the default, when empty) or
	// CipherSM4.
	Cipher string
}

// Stream ships the database's write-ahead log to the targets continuously.
type Stream struct {
	opt    StreamOptions
	ldb    *litestream.DB
	client *streamClient
	mu     sync.Mutex
	last   time.Time // the newest shipped transaction's time
	err    error     // the last shipping error (nil once shipping works again)
	errAt  time.Time
	closed bool
}

// metaDir is where Litestream keeps its local state (LTX files not yet
// shipped, its position): DATA/backup/litestream. metaOwner names the
// generation that state belongs to.
func metaDir(dataDir string) string { return filepath.Join(dataDir, "backup", "litestream") }
func metaOwner(dataDir string) string {
	return filepath.Join(dataDir, "backup", "litestream.generation")
}
func genFile(dataDir string) string { return filepath.Join(dataDir, "backup", "generation") }

// genTimeLayout names a generation by the moment it started, then a
// random suffix (two generations in one second differ).
const genTimeLayout = "20060102T150405Z"

func newGeneration(now time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return now.UTC().Format(genTimeLayout) + "-" + hex.EncodeToString(b)
}

// GenerationStart is when a generation started (from its name).
func GenerationStart(gen string) (time.Time, bool) {
	if len(gen) < len(genTimeLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(genTimeLayout, gen[:len(genTimeLayout)])
	return t, err == nil
}

// CurrentGeneration is the generation recorded in DATA/backup/generation
// ("" if none).
func CurrentGeneration(dataDir string) string {
	b, err := os.ReadFile(genFile(dataDir))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// chooseGeneration decides the generation a stream ships into. Litestream's
// local state (metaDir) belongs to exactly one generation, named in
// metaOwner: a generation is only ever continued with its own state. A
// fresh state in a generation already holding segments would start again
// at transaction 1 beside them, so whenever the state does not belong to
// the recorded generation — or a new one is asked for — a new generation
// starts with an empty state. The steps are ordered so that a crash between
// any two leaves either the old generation with its own state, or a reason
// to start another new one: owner removed; state removed (a rename, atomic);
// owner written; generation written.
func chooseGeneration(opt StreamOptions) (string, error) {
	dataDir := opt.DataDir
	gen := opt.Generation
	if gen == "" {
		gen = CurrentGeneration(dataDir)
	}
	owner := ""
	if b, err := os.ReadFile(metaOwner(dataDir)); err == nil {
		owner = strings.TrimSpace(string(b))
	}
	_, metaErr := os.Stat(metaDir(dataDir))
	if gen != "" && owner == "" && metaErr == nil && !opt.NewGeneration {
		// State from before owners were written: it is this generation's.
		if err := writeFileSync(metaOwner(dataDir), []byte(gen+"\n")); err != nil {
			return "", err
		}
		owner = gen
	}
	if gen != "" && owner == gen && !opt.NewGeneration {
		return gen, nil
	}
	now := time.Now()
	if opt.Now != nil {
		now = opt.Now()
	}
	next := newGeneration(now)
	if err := os.Remove(metaOwner(dataDir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := syncDir(filepath.Dir(metaOwner(dataDir))); err != nil {
		return "", err
	}
	old := metaDir(dataDir) + ".old"
	if err := os.RemoveAll(old); err != nil {
		return "", err
	}
	if err := os.Rename(metaDir(dataDir), old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.RemoveAll(old); err != nil {
		return "", err
	}
	if err := writeFileSync(metaOwner(dataDir), []byte(next+"\n")); err != nil {
		return "", err
	}
	if err := writeFileSync(genFile(dataDir), []byte(next+"\n")); err != nil {
		return "", err
	}
	return next, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// OpenStream starts shipping: Litestream reads the WAL as transactions
// commit (every SyncInterval) and the client writes each to the targets.
func OpenStream(ctx context.Context, opt StreamOptions) (*Stream, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.SyncInterval <= 0 {
		opt.SyncInterval = time.Second
	}
	if err := os.MkdirAll(filepath.Join(opt.DataDir, "backup"), 0o700); err != nil {
		return nil, err
	}
	gen, err := chooseGeneration(opt)
	if err != nil {
		return nil, fmt.Errorf("backup: continuous stream: %w", err)
	}
	opt.Generation = gen
	s := &Stream{opt: opt}
	s.client = &streamClient{targets: opt.Targets, gen: opt.Generation, recipient: opt.Recipient, cipher: opt.Cipher, logger: opt.Logger,
		onWrite: func(at time.Time) {
			s.mu.Lock()
			if at.After(s.last) {
				s.last = at
			}
			s.err = nil
			s.mu.Unlock()
		}}
	ldb := litestream.NewDB(filepath.Join(opt.DataDir, "medguard.db"))
	ldb.SetMetaPath(metaDir(opt.DataDir))
	ldb.Logger = opt.Logger
	ldb.MonitorInterval = opt.SyncInterval
	ldb.BusyTimeout = streamBusyTimeout
	r := litestream.NewReplicaWithClient(ldb, s.client)
	r.SyncInterval = opt.SyncInterval
	ldb.Replica = r
	if err := ldb.Open(); err != nil {
		return nil, fmt.Errorf("backup: continuous stream: %w", err)
	}
	// The DB starts its replica's monitor itself on its first sync.
	s.ldb = ldb
	return s, nil
}

// Generation is the stream's generation.
func (s *Stream) Generation() string { return s.opt.Generation }

// streamBusyTimeout is how long Litestream's own connection waits for the
// database's write lock (its default is 1 s). It writes only to start a
// WAL that a checkpoint emptied; under a stream of commits back to back —
// the server's group commit under load — the lock is free only for moments
// between them, and a wait of 1 s was seen to miss them all.
const streamBusyTimeout = 10 * time.Second

// busyTries is how many times Sync tries when Litestream's write still
// finds the database busy.
const busyTries = 3

// Sync ships every transaction committed before it was called. When
// Litestream's own write finds the database busy, it is tried again (a
// busy database is the server at work, not a failure to report).
func (s *Stream) Sync(ctx context.Context) error {
	var err error
	for try := 1; ; try++ {
		err = s.ldb.Sync(ctx)
		if err == nil {
			err = s.ldb.Replica.Sync(ctx)
		}
		if err == nil || !storage.IsBusy(err) || try == busyTries {
			break
		}
		select {
		case <-time.After(time.Duration(try) * 100 * time.Millisecond):
			continue
		case <-ctx.Done(): // the caller gives up: it gets the busy error
		}
		break
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err, s.errAt = err, time.Now()
	}
	return err
}

// Shipped is the moment up to which every committed transaction is on
// the targets — the newest shipped transaction's time, or the last time
// the replica was found caught up, whichever is later — and the last
// shipping error (nil if the last attempt worked).
func (s *Stream) Shipped() (time.Time, error) {
	caught := s.ldb.LastSuccessfulSyncAt()
	s.mu.Lock()
	defer s.mu.Unlock()
	if caught.After(s.last) && s.err == nil {
		return caught, nil
	}
	return s.last, s.err
}

// Close ships what is left and stops (once; later calls do nothing).
func (s *Stream) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.ldb.Replica.Stop(false)
	return s.ldb.Close(ctx)
}

// Closed tells whether Close was called.
func (s *Stream) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// segmentsOf lists a generation's segments on a target.
func segmentsOf(ctx context.Context, t Target, gen string) ([]Object, error) {
	return t.List(ctx, streamDir+gen+"/")
}

// pieceOf reads an object whole to hash it.
func pieceOf(ctx context.Context, t Target, o Object, role string) (Piece, error) {
	rc, err := t.Get(ctx, o.Name)
	if err != nil {
		return Piece{}, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return Piece{}, err
	}
	p := Piece{Name: o.Name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Role: role}
	if _, min, max, _, ok := parseSegment(o.Name); ok {
		p.MinTXID, p.MaxTXID = uint64(min), uint64(max)
	}
	return p, nil
}
