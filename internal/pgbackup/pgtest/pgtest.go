// Package pgtest starts throw-away PostgreSQL clusters for tests of
// package pgbackup and of "medguard backup-pg": each in its own temporary
// directory, on a free port, with its own Unix socket, run as the
// "postgres" OS user when the tests run as root. It never touches the
// machine's shared cluster, and it is for tests only.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// Required reports whether CI demands pgBackRest (MEDGUARD_TEST_PGBACKREST=1):
// then a missing tool fails the test instead of skipping it.
func Required() bool { return os.Getenv("MEDGUARD_TEST_PGBACKREST") == "1" }

// Tools finds PostgreSQL's server binaries (the newest version under
// /usr/lib/postgresql) and pgbackrest, or skips (fails in CI) without them.
// MEDGUARD_TEST_PGBACKREST=0 skips: the clusters these tests start are
// their own, whatever database the suite runs on, so CI runs them in one
// pass only.
func Tools(t testing.TB) (binDir string) {
	t.Helper()
	if os.Getenv("MEDGUARD_TEST_PGBACKREST") == "0" {
		t.Skip("MEDGUARD_TEST_PGBACKREST=0: the pgBackRest tests run in another pass")
	}
	miss := func(what string) {
		if Required() {
			t.Fatalf("MEDGUARD_TEST_PGBACKREST=1 but %s", what)
		}
		t.Skipf("%s (install the Debian packages postgresql and pgbackrest; CI sets MEDGUARD_TEST_PGBACKREST=1)", what)
	}
	if _, err := exec.LookPath("pgbackrest"); err != nil {
		miss("pgbackrest is not installed")
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		miss("no PostgreSQL server binaries under /usr/lib/postgresql")
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			miss("the tests run as root and there is no postgres OS user to run PostgreSQL as")
		}
	}
	return filepath.Dir(dirs[len(dirs)-1])
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// RunAs is the OS user that runs PostgreSQL and pgbackrest in tests:
// "postgres" when the tests run as root, else the tests' own user ("").
func RunAs() string {
	if os.Geteuid() == 0 {
		return "postgres"
	}
	return ""
}

// Dir makes a temporary directory the PostgreSQL user may use, removed
// when the test ends.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "medguard-pgbackup-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	Own(t, dir)
	return dir
}

// Own gives path to the PostgreSQL user (when running as root).
func Own(t testing.TB, path string) {
	t.Helper()
	if RunAs() == "" {
		return
	}
	u, err := user.Lookup(RunAs())
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// Command runs a program as the PostgreSQL user.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if u := RunAs(); u != "" {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", u, "--", name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

// FreePort returns a TCP port nothing listens on at the moment.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Cluster is a running throw-away PostgreSQL cluster.
type Cluster struct {
	BinDir string
	Data   string
	Port   int
	Socket string // the Unix socket directory
	t      testing.TB
}

// Init creates a cluster in DIR/name (trust authentication, listening on
// 127.0.0.1:port, or a free port if 0, and a socket in dir) with the extra
// postgresql.conf lines, and starts it.
func Init(t testing.TB, binDir, dir, name string, port int, conf ...string) *Cluster {
	t.Helper()
	if port == 0 {
		port = FreePort(t)
	}
	c := &Cluster{BinDir: binDir, Data: filepath.Join(dir, name), Port: port, Socket: dir, t: t}
	out, err := Command(context.Background(), filepath.Join(binDir, "initdb"), "-D", c.Data, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-instructions").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	lines := append([]string{fmt.Sprintf("port = %d", c.Port), "listen_addresses = '127.0.0.1'",
		fmt.Sprintf("unix_socket_directories = '%s'", dir), "fsync = off", "max_connections = 50"}, conf...)
	f, err := os.OpenFile(filepath.Join(c.Data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n# test cluster\n%s\n", strings.Join(lines, "\n"))
	f.Close()
	c.Start()
	return c
}

// Attach describes a data directory restored elsewhere, listening on port
// (as its postgresql.auto.conf says), without starting it.
func Attach(t testing.TB, binDir, data string, port int, socket string) *Cluster {
	return &Cluster{BinDir: binDir, Data: data, Port: port, Socket: socket, t: t}
}

// Start starts the cluster and waits until it accepts connections and has
// left recovery; the test's end stops it.
func (c *Cluster) Start() {
	c.t.Helper()
	out, err := Command(context.Background(), filepath.Join(c.BinDir, "pg_ctl"), "-D", c.Data, "-l", c.Data+".log",
		"-w", "-t", "300", "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(c.Data + ".log")
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	c.t.Cleanup(c.Stop)
	if err := c.WaitPromoted(5 * time.Minute); err != nil {
		log, _ := os.ReadFile(c.Data + ".log")
		c.t.Fatalf("%v\n%s", err, log)
	}
}

// WaitPromoted waits until the server answers and is out of recovery.
func (c *Cluster) WaitPromoted(limit time.Duration) error {
	db, err := sql.Open("pgx", c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(limit)
	for {
		var inRecovery bool
		err := db.QueryRow("SELECT pg_is_in_recovery()").Scan(&inRecovery)
		if err == nil && !inRecovery {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: the cluster in %s is still in recovery or not answering: %v", c.Data, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the cluster (fast shutdown); stopping twice is harmless.
func (c *Cluster) Stop() {
	if _, err := os.Stat(filepath.Join(c.Data, "postmaster.pid")); err != nil {
		return
	}
	Command(context.Background(), filepath.Join(c.BinDir, "pg_ctl"), "-D", c.Data, "-m", "fast", "-w", "stop").Run()
}

// DSN is the URL of database db on the cluster.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Exec runs statements on database db.
func (c *Cluster) Exec(db string, stmts ...string) {
	c.t.Helper()
	conn, err := sql.Open("pgx", c.DSN(db))
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.Exec(s); err != nil {
			c.t.Fatalf("%s: %v", s, err)
		}
	}
}
