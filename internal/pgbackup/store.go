package pgbackup

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// store reads a repository's files as pgBackRest stored them (compressed
// and encrypted), by their path relative to the repository: medguard
// hashes them for its manifests and reads the archive's times. It never
// writes into a repository; pgBackRest does.
type store interface {
	// list lists the files under dir (relative), relative to the
	// repository, sorted; a missing dir is fs.ErrNotExist.
	list(ctx context.Context, dir string) ([]storeFile, error)
	// hash reads one file; a missing one is fs.ErrNotExist.
	hash(ctx context.Context, rel string) (File, error)
}

type storeFile struct {
	Path    string // relative, with slashes
	ModTime time.Time
}

// openStore opens repository repo of the configuration.
func openStore(c Config, repo int) (store, error) {
	if repoOr1(repo) == 1 {
		return posixStore{root: c.Repo}, nil
	}
	r := c.Repo2
	if repo != 2 || r == nil {
		return nil, fmt.Errorf("pgbackup: repository %d is not configured", repo)
	}
	if r.Type != "s3" {
		return posixStore{root: r.Path}, nil
	}
	return newS3Store(r)
}

// posixStore is a repository in a directory.
type posixStore struct{ root string }

func (p posixStore) list(_ context.Context, dir string) ([]storeFile, error) {
	var out []storeFile
	err := filepath.WalkDir(filepath.Join(p.root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(p.root, path)
			fi, err := d.Info()
			if err != nil {
				return err
			}
			out = append(out, storeFile{Path: filepath.ToSlash(rel), ModTime: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgbackup: listing %s: %w", dir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (p posixStore) hash(_ context.Context, rel string) (File, error) {
	f, err := hashFile(filepath.Join(p.root, filepath.FromSlash(rel)))
	f.Path = rel
	return f, err
}

// s3Store is a repository in a bucket of an S3-compatible store, read
// with minio-go over TLS, with the certificate authority pgBackRest uses.
type s3Store struct {
	client *minio.Client
	bucket string
	prefix string // the repository's path in the bucket, "" or "path/"
}

func newS3Store(r *Repo2) (*s3Store, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: r.NoVerifyTLS} // #nosec G402 -- only when the configuration says repo2-storage-verify-tls=n, as pgBackRest does
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return nil, fmt.Errorf("pgbackup: repo2's certificate authority: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("pgbackup: repo2's certificate authority %s holds no PEM certificate", r.CAFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	c, err := minio.New(net.JoinHostPort(r.Endpoint, strconv.Itoa(r.Port)), &minio.Options{
		Creds: credentials.NewStaticV4(r.Key, r.KeySecret, ""), Secure: true, Region: r.Region,
		BucketLookup: minio.BucketLookupPath, Transport: tr})
	if err != nil {
		return nil, fmt.Errorf("pgbackup: repo2: %w", err)
	}
	prefix := strings.Trim(r.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &s3Store{client: c, bucket: r.Bucket, prefix: prefix}, nil
}

func (s *s3Store) list(ctx context.Context, dir string) ([]storeFile, error) {
	var out []storeFile
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + path.Clean(dir) + "/", Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("pgbackup: listing %s in bucket %s: %w", dir, s.bucket, o.Err)
		}
		if strings.HasSuffix(o.Key, "/") {
			continue
		}
		out = append(out, storeFile{Path: strings.TrimPrefix(o.Key, s.prefix), ModTime: o.LastModified})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pgbackup: listing %s in bucket %s: %w", dir, s.bucket, fs.ErrNotExist)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (s *s3Store) hash(ctx context.Context, rel string) (File, error) {
	o, err := s.client.GetObject(ctx, s.bucket, s.prefix+rel, minio.GetObjectOptions{})
	if err != nil {
		return File{Path: rel}, err
	}
	defer o.Close()
	h := sha256.New()
	n, err := io.Copy(h, o)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return File{Path: rel}, fmt.Errorf("%s: %w", rel, fs.ErrNotExist)
		}
		return File{Path: rel}, err
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// isNotExist is a missing file or directory in either kind of store.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
