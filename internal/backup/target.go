package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrNotFound is returned by a Target for an object it does not hold.
var ErrNotFound = errors.New("backup: not found")

// Object is a stored object: its name under the target's root and size.
type Object struct {
	Name string
	Size int64
}

// Target is a place backups are written to: a local directory (another
// disk) or an S3-compatible bucket. Names are slash-separated paths under
// the target's root. Put is atomic: a reader sees the whole object or
// nothing, so a backup killed half-way leaves pieces but never a half piece
// under its final name.
type Target interface {
	// URL is the target as the operator wrote it (no secrets).
	URL() string
	// Media is "disk" or "object-store"; OffSite is true for a store that
	// is not on this machine (S3 on another host).
	Media() string
	OffSite() bool
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// List lists the objects whose names start with prefix, by name.
	List(ctx context.Context, prefix string) ([]Object, error)
	Delete(ctx context.Context, name string) error
}

// OpenTarget opens a target from its URL: a directory path (or file://…),
// or s3://BUCKET[/PREFIX]?endpoint=HOST:PORT[&region=R][&insecure=1]
// with the credentials in getenv's MEDGUARD_BACKUP_S3_ACCESS_KEY and
// MEDGUARD_BACKUP_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY).
func OpenTarget(spec string, getenv func(string) string) (Target, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	switch {
	case strings.HasPrefix(spec, "s3://"):
		return openS3(spec, getenv)
	case strings.HasPrefix(spec, "file://"):
		return openDir(strings.TrimPrefix(spec, "file://"))
	case strings.Contains(spec, "://"):
		return nil, fmt.Errorf("backup target %q: want a directory or s3://BUCKET/PREFIX?endpoint=HOST:PORT", spec)
	}
	return openDir(spec)
}

// dirTarget is a local directory.
type dirTarget struct{ root string }

func openDir(dir string) (*dirTarget, error) {
	if dir == "" {
		return nil, errors.New("backup target: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("backup target: %w", err)
	}
	return &dirTarget{root: abs}, nil
}

func (d *dirTarget) URL() string   { return d.root }
func (d *dirTarget) Media() string { return "disk" }
func (d *dirTarget) OffSite() bool { return false }

func (d *dirTarget) path(name string) (string, error) {
	clean := path.Clean("/" + name)
	if clean == "/" || clean != "/"+name {
		return "", fmt.Errorf("backup: bad object name %q", name)
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), nil
}

// Put writes to a temporary file, syncs it, and renames it into place.
func (d *dirTarget) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	err = writeAtomic(p, r)
	if ce := (*copyError)(nil); errors.As(err, &ce) {
		return ce.err
	}
	return err
}

func (d *dirTarget) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return f, err
}

func (d *dirTarget) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(d.root, p)
		rel = filepath.ToSlash(rel)
		if !strings.HasPrefix(rel, prefix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		out = append(out, Object{Name: rel, Size: info.Size()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func (d *dirTarget) Delete(ctx context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// s3Target is a bucket (and a prefix in it) of an S3-compatible store.
type s3Target struct {
	url    string
	client *minio.Client
	bucket string
	prefix string
	host   string
}

func openS3(spec string, getenv func(string) string) (*s3Target, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("backup target %q: want s3://BUCKET/PREFIX?endpoint=HOST:PORT", spec)
	}
	if u.User != nil {
		return nil, errors.New("backup target: put the S3 keys in MEDGUARD_BACKUP_S3_ACCESS_KEY and MEDGUARD_BACKUP_S3_SECRET_KEY, not in the URL")
	}
	q := u.Query()
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	access := firstNonEmpty(getenv("MEDGUARD_BACKUP_S3_ACCESS_KEY"), getenv("AWS_ACCESS_KEY_ID"))
	secret := firstNonEmpty(getenv("MEDGUARD_BACKUP_S3_SECRET_KEY"), getenv("AWS_SECRET_ACCESS_KEY"))
	if access == "" || secret == "" {
		return nil, fmt.Errorf("backup target %s: set MEDGUARD_BACKUP_S3_ACCESS_KEY and MEDGUARD_BACKUP_S3_SECRET_KEY", spec)
	}
	secure := q.Get("insecure") != "1"
	c, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Secure: secure,
		Region: q.Get("region"), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return nil, fmt.Errorf("backup target %s: %w", spec, err)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &s3Target{url: spec, client: c, bucket: u.Host, prefix: prefix, host: endpoint}, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *s3Target) URL() string   { return s.url }
func (s *s3Target) Media() string { return "object-store" }

// OffSite is true unless the store's endpoint is on this machine.
func (s *s3Target) OffSite() bool {
	h := s.host
	if i := strings.LastIndex(h, ":"); i >= 0 {
		h = h[:i]
	}
	return h != "127.0.0.1" && h != "localhost" && h != "[::1]"
}

func (s *s3Target) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+name, r, size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return err
}

func (s *s3Target) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	o, err := s.client.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	// GetObject is lazy: Stat makes a missing object an error now.
	if _, err := o.Stat(); err != nil {
		o.Close()
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		return nil, err
	}
	return o, nil
}

func (s *s3Target) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		out = append(out, Object{Name: strings.TrimPrefix(o.Key, s.prefix), Size: o.Size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *s3Target) Delete(ctx context.Context, name string) error {
	return s.client.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{})
}

// putBytes stores a small object.
func putBytes(ctx context.Context, t Target, name string, b []byte) error {
	return t.Put(ctx, name, bytes.NewReader(b), int64(len(b)))
}

// getBytes reads a small object whole (at most limit bytes).
func getBytes(ctx context.Context, t Target, name string, limit int64) ([]byte, error) {
	rc, err := t.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("backup: %s is larger than %d bytes", name, limit)
	}
	return b, nil
}
