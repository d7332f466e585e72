// Package storage opens medguard's database — embedded SQLite or PostgreSQL —
// and runs the schema migrations that the capability packages own.
//
// It isolates the differences between the two engines: connection set-up,
// pragmas, row locking and error codes. It knows nothing of patients, users
// or audit entries, and it never decides access: the capability packages own
// their tables and the gate decides who may touch them.
package storage

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"golang.org/x/sys/unix"
	"modernc.org/sqlite"

	"medguard"
)

// Dialect names the database engine.
type Dialect string

// The engines medguard runs on.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is medguard's database. Reads go to a pool of connections; writes go
// through transactions on the write pool. On SQLite the write pool has one
// connection, so writers queue in Go rather than spinning on SQLite's lock,
// and the read pool is opened query-only.
type DB struct {
	Dialect Dialect
	read    *sql.DB
	write   *sql.DB
	// checkpointer, on SQLite, moves the WAL into the database file from its
	// own connection, so that commits never wait for a checkpoint.
	checkpointer *sql.DB
	stopCkpt     chan struct{}
	ckptDone     chan struct{}
	// walShared: another reader of the WAL resets it (see ShareWAL).
	walShared atomic.Bool
	// bulk, on SQLite, reads whole tables (verification, export) through
	// memory-mapped I/O; it is opened on first use.
	bulkOnce sync.Once
	bulk     *sql.DB
	bulkErr  error
	path     string
	// stmts caches prepared read statements by their text (SQLite; pgx
	// caches statements per connection itself).
	stmts  sync.Map
	nstmts atomic.Int32
	// Where is a description of the database safe to print: the SQLite file
	// or the PostgreSQL host and database, without the password.
	Where string
	// sslMode is the PostgreSQL DSN's sslmode, or PGSSLMODE's.
	sslMode string
}

// Connection is how a server reaches its database, for the register of
// links in transit (package transport).
type Connection struct {
	// Network is false for SQLite, a file the process opens itself: no
	// link at all. The other fields are PostgreSQL's.
	Network bool
	// Target is the server's HOST:PORT, or the Unix socket's path.
	Target string
	// TLS is true when the connection negotiated TLS, and TLSVersion
	// says which ("TLS 1.3").
	TLS        bool
	TLSVersion string
	// Local is true for a Unix socket or a loopback address: the link
	// does not leave the machine (a plain one is still not encrypted).
	Local bool
	// SSLMode is the DSN's sslmode, or PGSSLMODE's; empty when neither
	// says, which means "prefer": TLS if the server offers it, else plain.
	SSLMode string
}

// Connection reports how the database is reached, as a connection of the
// pool shows it: asked of the client's end, so that a pooler between
// medguard and PostgreSQL cannot make a plain link look encrypted. The
// pool's connections are made alike, with the same sslmode.
func (db *DB) Connection(ctx context.Context) (Connection, error) {
	if db.Dialect != Postgres {
		return Connection{}, nil
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return Connection{}, fmt.Errorf("storage: %w", err)
	}
	defer conn.Close()
	c := Connection{Network: true, SSLMode: db.sslMode}
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("storage: unexpected PostgreSQL connection %T", dc)
		}
		nc := sc.Conn().PgConn().Conn()
		switch a := nc.RemoteAddr().(type) {
		case *net.UnixAddr:
			c.Target, c.Local = a.Name, true
		case *net.TCPAddr:
			c.Target, c.Local = a.String(), a.IP.IsLoopback()
		default:
			c.Target = nc.RemoteAddr().String()
		}
		if tc, ok := nc.(*tls.Conn); ok {
			c.TLS, c.TLSVersion = true, tls.VersionName(tc.ConnectionState().Version)
		}
		return nil
	})
	return c, err
}

// Open opens the database named by dsn. An empty dsn or one starting with
// "sqlite:" opens (creating if needed) the SQLite file DATA/medguard.db, or the
// file named after "sqlite:"; "postgres://" and "postgresql://" open PostgreSQL.
func Open(ctx context.Context, dsn, dataDir string) (*DB, error) {
	switch {
	case dsn == "" || strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			path = filepath.Join(dataDir, "medguard.db")
		}
		return openSQLite(ctx, path)
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	}
	return nil, medguard.Errorf(medguard.Invalid, "database: want an empty value, sqlite:PATH or postgres://…")
}

// sqlitePragmas make SQLite durable (every commit is synced to the WAL before
// it returns), keep temporary data in memory rather than in temp files, and
// overwrite deleted content.
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"synchronous(FULL)",
	"foreign_keys(1)",
	"temp_store(MEMORY)",
	"secure_delete(1)",
	// A WAL that was reset is cut back to this size (64 MiB).
	"journal_size_limit(67108864)",
}

// sqliteConn is the kind of SQLite connection a DSN opens.
type sqliteConn int

const (
	sqliteWriter       sqliteConn = iota // the one writing connection
	sqliteReader                         // a query-only reading connection
	sqliteCheckpointer                   // moves the WAL into the database file
	sqliteBulk                           // query-only, memory-mapped, for whole-table scans
)

func sqliteDSN(path string, kind sqliteConn) string {
	q := url.Values{}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p)
	}
	switch kind {
	case sqliteWriter:
		// The writer leaves checkpoints to the checkpointer — one inside a
		// commit holds up every request waiting for its audit entry —
		// except as a backstop: when a stream of writes never lets the
		// checkpointer finish, the writer checkpoints once the WAL passes
		// walLimitFrames, which bounds the WAL (SQLite restarts it after a
		// complete checkpoint).
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walLimitFrames))
		q.Add("_pragma", "cache_size(-16000)")
		q.Set("_txlock", "immediate")
	case sqliteReader:
		q.Add("_pragma", "query_only(1)")
		q.Add("_pragma", "cache_size(-8000)")
	case sqliteCheckpointer:
		q.Add("_pragma", "cache_size(-1000)")
	case sqliteBulk:
		// Memory-mapped reads make long sequential scans of large rows
		// about a third faster; for the random point reads of requests
		// they are slower (each page is re-initialised), so only bulk
		// scans use them.
		q.Add("_pragma", "query_only(1)")
		q.Add("_pragma", "cache_size(-2000)")
		q.Add("_pragma", "mmap_size(4294967296)")
	}
	return "file:" + path + "?" + q.Encode()
}

// checkpointEvery is how often the checkpointer moves the WAL into the
// database file.
const checkpointEvery = time.Second

// walLimitFrames is the WAL length (in pages) past which the checkpointer
// resets it: 64 MiB of 4 KiB pages.
const walLimitFrames = 16384

// checkpoint runs PASSIVE checkpoints until Close: they copy committed WAL
// frames into the database without blocking the writer or the readers.
// Under a steady stream of writes a passive checkpoint may never find a
// moment when the whole WAL is copied, and SQLite restarts the WAL only
// then: so when it has grown past walLimitFrames, a TRUNCATE checkpoint
// waits for the writer (briefly: the passive one has copied nearly all of
// it) and resets it, keeping the WAL — and the disk it takes — bounded.
func (db *DB) checkpoint() {
	defer close(db.ckptDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-db.stopCkpt:
			return
		case <-t.C:
			var busy, frames, copied int
			if err := db.checkpointer.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
				continue
			}
			if frames > walLimitFrames && !db.walShared.Load() {
				db.checkpointer.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
			}
		}
	}
}

// ShareWAL hands the resetting of SQLite's WAL to another reader of it:
// the continuous backup (Litestream), which holds a read transaction on
// the WAL while it ships it and truncates the WAL itself once shipped.
// The checkpointer then runs PASSIVE checkpoints only — a TRUNCATE one
// would hold the write lock while it waits for that reader, whose own
// checkpoint waits for the write lock: every commit would stall behind
// them. PostgreSQL: nothing to do.
func (db *DB) ShareWAL() { db.walShared.Store(true) }

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	// Create the file with owner-only permissions before SQLite does.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	f.Close()
	write, err := sql.Open("sqlite", sqliteDSN(path, sqliteWriter))
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", sqliteDSN(path, sqliteReader))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	read.SetConnMaxIdleTime(5 * time.Minute)
	ckpt, err := sql.Open("sqlite", sqliteDSN(path, sqliteCheckpointer))
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	ckpt.SetMaxOpenConns(1)
	db := &DB{Dialect: SQLite, read: read, write: write, checkpointer: ckpt, Where: path, path: path,
		stopCkpt: make(chan struct{}), ckptDone: make(chan struct{})}
	go db.checkpoint()
	return db, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, medguard.Errorf(medguard.Invalid, "database: not a valid postgres:// URL")
	}
	where := u.Host + u.Path
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	db.SetMaxOpenConns(maxPostgresConnections)
	db.SetMaxIdleConns(maxPostgresConnections)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: connect to %s: %w", where, redact(err, u))
	}
	mode := u.Query().Get("sslmode")
	if mode == "" {
		mode = os.Getenv("PGSSLMODE")
	}
	return &DB{Dialect: Postgres, read: db, write: db, Where: where, sslMode: mode}, nil
}

// maxPostgresConnections bounds a PostgreSQL pool that KeepConnections
// has not sized (tools, tests): connections are opened as needed and closed
// after five idle minutes.
const maxPostgresConnections = 32

// KeepConnections makes a PostgreSQL pool of n connections, opens them all
// now and keeps them open: a server calls it once at start. A pool that opens
// connections on demand opens them at the worst moment — a burst of
// requests, or the first busy minute after a quiet one — and each costs
// PostgreSQL a new backend process (a fork, its catalog caches, its plans):
// measured here (perf, `bench reads --rate 1000`), a dozen opened at once
// took both CPUs for half a second while every request waited. Beyond n,
// requests wait for a connection of the pool rather than crowd the database.
// A connection the server loses (PostgreSQL restarted) is replaced when next
// needed. SQLite: nothing to do (its pools are fixed and local).
func (db *DB) KeepConnections(ctx context.Context, n int) error {
	if n < 1 {
		return medguard.Errorf(medguard.Invalid, "database connections: want at least 1, not %d", n)
	}
	if db.Dialect != Postgres {
		return nil
	}
	db.write.SetMaxOpenConns(n)
	db.write.SetMaxIdleConns(n)
	db.write.SetConnMaxIdleTime(0)
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := db.write.Conn(ctx)
		if err == nil {
			err = c.PingContext(ctx)
		}
		if err != nil {
			if c != nil {
				c.Close()
			}
			return fmt.Errorf("storage: open %d connections to %s: %w", n, db.Where, err)
		}
		conns = append(conns, c)
	}
	return nil
}

// redact removes a password that a driver error might echo.
func redact(err error, u *url.URL) error {
	if p, ok := u.User.Password(); ok && p != "" && strings.Contains(err.Error(), p) {
		return errors.New(strings.ReplaceAll(err.Error(), p, "***"))
	}
	return err
}

// Close closes both pools.
func (db *DB) Close() error {
	db.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	var err error
	if db.checkpointer != nil {
		close(db.stopCkpt)
		<-db.ckptDone
		// Leave a small WAL behind: move everything into the database file.
		_, err = db.checkpointer.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		err = errors.Join(err, db.checkpointer.Close())
	}
	if db.bulk != nil {
		err = errors.Join(err, db.bulk.Close())
	}
	err = errors.Join(err, db.write.Close())
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return db.write.PingContext(ctx)
}

// Shared says whether other servers may write to this database while this
// one runs: PostgreSQL may be shared by several servers behind a load
// balancer; an embedded SQLite file has one server. What a server keeps in
// memory of a shared database can be overtaken by another's writes, and a
// task only one server should do needs a lease.
func (db *DB) Shared() bool { return db.Dialect == Postgres }

// StringAgg is the SQL of an aggregate joining column's values with commas
// (string_agg on PostgreSQL, group_concat on SQLite). The order of the
// values is not defined: sort them after splitting.
func (db *DB) StringAgg(column string) string {
	if db.Dialect == Postgres {
		return "string_agg(" + column + ", ',')"
	}
	return "group_concat(" + column + ", ',')"
}

// Bulk returns the reader for whole-table scans: on SQLite a separate,
// memory-mapped pool; on PostgreSQL the database itself.
func (db *DB) Bulk() Reader {
	if db.Dialect != SQLite {
		return db
	}
	db.bulkOnce.Do(func() {
		db.bulk, db.bulkErr = sql.Open("sqlite", sqliteDSN(db.path, sqliteBulk))
		if db.bulkErr == nil {
			db.bulk.SetMaxOpenConns(4)
		}
	})
	if db.bulkErr != nil {
		return db
	}
	return db.bulk
}

// Reader runs read-only queries.
type Reader interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// maxStatements bounds the prepared-statement cache.
const maxStatements = 512

// stmt returns the cached prepared read statement for query, preparing it
// on first use, or nil (PostgreSQL, a full cache, or a query that does not
// prepare — the plain path then reports the error).
func (db *DB) stmt(ctx context.Context, query string) *sql.Stmt {
	if db.Dialect != SQLite {
		return nil
	}
	if v, ok := db.stmts.Load(query); ok {
		return v.(*sql.Stmt)
	}
	if db.nstmts.Load() >= maxStatements {
		return nil
	}
	st, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if v, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt)
	}
	db.nstmts.Add(1)
	return st
}

// QueryContext runs a read-only query.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := db.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.read.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a read-only query returning at most one row.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := db.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.read.QueryRowContext(ctx, query, args...)
}

// ExecContext runs one statement that changes data, in its own transaction.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := db.write.ExecContext(ctx, query, args...)
	return res, MapError(err)
}

// InTx runs fn in a write transaction, committing if fn returns nil and
// rolling back otherwise. Errors from the database are mapped to medguard
// kinds (a unique violation becomes a Conflict).
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return MapError(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return MapError(err)
	}
	return MapError(tx.Commit())
}

// ForUpdate is the row-locking suffix for a SELECT inside a transaction:
// " FOR UPDATE" on PostgreSQL; nothing on SQLite, whose write transactions
// already exclude each other.
func (db *DB) ForUpdate() string {
	if db.Dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// ForShare is the shared row-locking suffix for a SELECT inside a
// transaction (" FOR SHARE" on PostgreSQL: the row may not change until
// the transaction ends; nothing on SQLite, as ForUpdate). A nil db is
// SQLite's.
func (db *DB) ForShare() string {
	if db != nil && db.Dialect == Postgres {
		return " FOR SHARE"
	}
	return ""
}

// HasTable reports whether the database has a table of that name (on
// PostgreSQL, in its search path): for code that reads a database written
// by an earlier version — a backup restored, a log verified before its
// server was upgraded — which may lack a table a later migration adds.
func (db *DB) HasTable(ctx context.Context, name string) (bool, error) {
	q := `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = $1`
	if db.Dialect == Postgres {
		q = `SELECT to_regclass($1) IS NOT NULL`
	}
	var ok bool
	err := db.QueryRowContext(ctx, q, name).Scan(&ok)
	return ok, err
}

// HasColumn reports whether the table has a column of that name: for
// code that reads a database written by an earlier version (see HasTable),
// which may lack a column a later migration adds.
func (db *DB) HasColumn(ctx context.Context, table, column string) (bool, error) {
	q := `SELECT count(*) > 0 FROM pragma_table_info($1) WHERE name = $2`
	if db.Dialect == Postgres {
		q = `SELECT count(*) > 0 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`
	}
	var ok bool
	err := db.QueryRowContext(ctx, q, table, column).Scan(&ok)
	return ok, err
}

// Conn returns a dedicated connection of the write pool, for session-level
// state such as PostgreSQL advisory locks that elect one server of several
// for a task. On SQLite it takes the single write connection: hold it only
// briefly.
func (db *DB) Conn(ctx context.Context) (*sql.Conn, error) {
	return db.write.Conn(ctx)
}

// PrepareWrite prepares a statement on the write pool, for statements that
// write transactions run often (use it in a transaction with tx.StmtContext).
func (db *DB) PrepareWrite(ctx context.Context, query string) (*sql.Stmt, error) {
	return db.write.PrepareContext(ctx, query)
}

// Placeholders returns a VALUES list of rows groups of cols placeholders,
// "($1, $2), ($3, $4)" on PostgreSQL. On SQLite it uses positional "?"
// markers, because SQLite looks "$N" names up one by one, which is slow for
// statements with thousands of parameters.
func (db *DB) Placeholders(cols, rows int) string {
	var sb strings.Builder
	n := 1
	for r := 0; r < rows; r++ {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				sb.WriteString(", ")
			}
			if db.Dialect == SQLite {
				sb.WriteByte('?')
			} else {
				sb.WriteByte('$')
				sb.WriteString(strconv.Itoa(n))
			}
			n++
		}
		sb.WriteByte(')')
	}
	return sb.String()
}

// FreeSpace returns the free space of the file system holding an embedded
// database, and false for PostgreSQL (whose server watches its own disk).
func (db *DB) FreeSpace() (uint64, bool) {
	if db.Dialect != SQLite || db.path == "" {
		return 0, false
	}
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(db.path), &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}

// Stats reports the connection pool statistics of the write pool.
func (db *DB) Stats() sql.DBStats { return db.write.Stats() }

// SQLite error codes (extended result codes) that medguard maps.
const (
	sqliteConstraintUnique     = 2067
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintForeignKey = 787
	sqliteConstraintTrigger    = 1811
	sqliteBusy                 = 5 // the primary code: SQLITE_BUSY and its extended codes
)

// IsBusy reports whether err is SQLite's SQLITE_BUSY (any of its extended
// codes): the database was locked by another connection for longer than
// the connection waits — a write worth trying again.
func IsBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqliteBusy
}

// Unreachable reports whether err says the database could not be reached
// or the connection to it was lost — PostgreSQL restarted, failed over or
// ended the connection, the network between dropped it, SQLite stayed
// locked beyond the wait — rather than that the statement was wrong: the
// same request may succeed a moment later. (A write whose connection was
// lost while it committed may have been made.)
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// Class 08: connection exception; 57P01–57P03: the server is
		// shutting down, crashed, or not yet accepting connections;
		// 53300: too many connections.
		return strings.HasPrefix(pg.Code, "08") || pg.Code == "57P01" || pg.Code == "57P02" || pg.Code == "57P03" ||
			pg.Code == "53300"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.As(err, &ce) || errors.As(err, &ne) || IsBusy(err)
}

// MapError turns engine-specific errors into medguard errors: unique and
// primary-key violations become Conflict; foreign-key violations become
// Invalid; everything else is returned as it is.
func MapError(err error) error {
	if err == nil {
		return nil
	}
	var me *medguard.Error
	if errors.As(err, &me) {
		return err
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23505":
			return &medguard.Error{Kind: medguard.Conflict, Message: "already exists", Err: err}
		case "23503":
			return &medguard.Error{Kind: medguard.Invalid, Message: "refers to something that does not exist", Err: err}
		}
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqliteConstraintUnique, sqliteConstraintPrimaryKey:
			return &medguard.Error{Kind: medguard.Conflict, Message: "already exists", Err: err}
		case sqliteConstraintForeignKey:
			return &medguard.Error{Kind: medguard.Invalid, Message: "refers to something that does not exist", Err: err}
		}
	}
	return err
}

// IsConflict reports whether err is a uniqueness conflict.
func IsConflict(err error) bool { return medguard.IsKind(MapError(err), medguard.Conflict) }

// Affected returns err if the statement failed, ifNone if it changed no
// row (the row was missing or no longer in the state the statement
// required), and nil otherwise.
func Affected(res sql.Result, err error, ifNone error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ifNone
	}
	return nil
}

// NullString returns a NULL for the empty string.
func NullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// Refused reports whether err is the database's own answer to a statement
// — a constraint, an expression that failed — after which nothing of the
// statement was applied, as opposed to an error on the way (a connection
// lost), after which it may have been. PostgreSQL ending the connection
// (57P01, a restart or pg_terminate_backend) is its own answer too, but
// may come after the statement committed: not a refusal.
func Refused(err error) bool {
	var pg *pgconn.PgError
	var se *sqlite.Error
	return errors.As(err, &pg) && !Unreachable(err) || errors.As(err, &se)
}
