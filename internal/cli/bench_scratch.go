package cli

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"medguard/internal/identity"
)

// benchScratch is what a benchmark sets up to throw away: a temporary
// directory, a fresh PostgreSQL schema when it runs on PostgreSQL, and
// whatever is added to it; close undoes it all, the last first.
type benchScratch struct {
	dir      string
	dsn      string // the fresh schema's DSN; "" on SQLite
	database string // "sqlite" or "postgres"
	undo     []func() error
}

// newBenchScratch makes a temporary directory named prefix… and, when db
// is a postgres:// DSN, a fresh schema in that database.
func newBenchScratch(ctx context.Context, prefix, db string) (*benchScratch, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	s := &benchScratch{dir: dir, database: "sqlite"}
	s.add(func() error { return os.RemoveAll(dir) })
	if db != "" {
		dsn, drop, err := benchSchema(ctx, db)
		if err != nil {
			s.close()
			return nil, err
		}
		s.dsn, s.database = dsn, "postgres"
		s.add(drop)
	}
	return s, nil
}

// settle has PostgreSQL write out, before the load, what the set-up left
// in its buffers (CHECKPOINT): otherwise the checkpoint that the set-up's
// WAL starts runs through the measured window, and its final syncs stall
// commits — a burst no server in its steady state sees. Checkpoints the
// load itself causes still fall where they fall. It returns what was done,
// for the report ("" on SQLite, whose server checkpoints its WAL every
// second).
func (s *benchScratch) settle(ctx context.Context) string {
	if s.dsn == "" {
		return ""
	}
	db, err := sql.Open("pgx", s.dsn)
	if err != nil {
		return "no CHECKPOINT after the set-up: " + err.Error()
	}
	defer db.Close()
	t0 := time.Now()
	if _, err := db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		return "no CHECKPOINT after the set-up (" + err.Error() + "): a checkpoint may run during the load"
	}
	return fmt.Sprintf("CHECKPOINT after the set-up (%s)", time.Since(t0).Round(time.Millisecond))
}

// add has close call undo (before what was added earlier).
func (s *benchScratch) add(undo func() error) { s.undo = append(s.undo, undo) }

// close undoes everything, the last added first, once.
func (s *benchScratch) close() error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		errs = append(errs, s.undo[i]())
	}
	s.undo = nil
	return errors.Join(errs...)
}

// benchServeFlags are "medguard serve"'s defaults, but for where the
// throw-away installation's data lives, its database and cipher.
func benchServeFlags(data, dsn, cipher string) (*serveFlags, error) {
	fs := newFlags("serve", io.Discard)
	var sf serveFlags
	sf.register(fs)
	if err := fs.Parse(nil); err != nil {
		return nil, err
	}
	sf.data, sf.db, sf.cipher = data, dsn, cipher
	return &sf, nil
}

// passwords are the administrators' passwords of a throw-away
// installation: --admin-password and --security-password, or one-time
// ones.
func (f *benchFlags) passwords() (admin, security string) {
	admin, security = f.adminPassword, f.securityPassword
	if admin == "" {
		admin = onetimePassword()
	}
	if security == "" {
		security = onetimePassword()
	}
	return admin, security
}

// prepareBenchApp creates a throw-away installation's administrators and
// relaxes its read-volume rules (relaxReadVolumeRules).
func prepareBenchApp(ctx context.Context, app *App, admin, security string) error {
	for _, a := range identity.BootstrapAccounts(admin, security) {
		if _, err := app.Identity.Bootstrap(ctx, a); err != nil {
			return fmt.Errorf("bench: creating the %s: %w", a.Username, err)
		}
	}
	return relaxReadVolumeRules(ctx, app)
}

// benchCertificate makes a self-signed certificate for 127.0.0.1 in
// dir/tls and returns its files and a pool that trusts it.
func benchCertificate(dir string) (certPath, keyPath string, pool *x509.CertPool, err error) {
	certPath, keyPath, err = selfSigned(filepath.Join(dir, "tls"), "127.0.0.1", time.Now())
	if err != nil {
		return "", "", nil, fmt.Errorf("TLS certificate: %w", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return "", "", nil, err
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certPath, keyPath, pool, nil
}
