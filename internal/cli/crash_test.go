package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"medguard/internal/audit"
	"medguard/internal/cli"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"

	"github.com/pquerna/otp/totp"
)

// crashChildEnv makes the test binary run "medguard serve" with the
// arguments in it (JSON), so that the parent can kill a real process.
const crashChildEnv = "MEDGUARD_CRASH_CHILD_ARGS"

// TestCrashChild is not a test: it is the server process of
// TestCrashLosesNoAnsweredWrite and TestOneServerKilledBehindTheBalancer.
func TestCrashChild(t *testing.T) {
	raw := os.Getenv(crashChildEnv)
	if raw == "" {
		t.Skip("run by TestCrashLosesNoAnsweredWrite")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := cli.Run(ctx, args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// child is "medguard serve" running as a separate process.
type child struct {
	cmd    *exec.Cmd
	base   string
	client *http.Client
	stderr *testkit.Buffer
}

func startChild(t *testing.T, dir string, args ...string) *child {
	t.Helper()
	return startChildEnv(t, dir, nil, args...)
}

// startChildEnv starts "medguard serve" as a separate process with env
// added to its environment.
func startChildEnv(t *testing.T, dir string, env map[string]string, args ...string) *child {
	t.Helper()
	argv, _ := json.Marshal(append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--checkpoint-every", "50ms"}, args...))
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(argv), "MEDGUARD_ADMIN_PASSWORD="+adminPassword, "MEDGUARD_SECURITY_PASSWORD="+securityPassword)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stderr: &testkit.Buffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "serving https://"); i >= 0 {
				addr <- strings.Fields(sc.Text()[i+len("serving "):])[0]
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("serve exited before serving:\n%s", c.stderr)
		}
		c.base = a
	case <-time.After(90 * time.Second):
		t.Fatalf("serve did not start:\n%s", c.stderr)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return c
}

// send makes one request; err is set when no answer came (the process died).
func (c *child) send(method, path, token string, body any) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out, err
}

// adminTOTP is the administrator's TOTP secret and last used step, kept
// across the servers of one test (the first enrols it).
type adminTOTP struct {
	secret string
	step   int64
}

// signIn signs the administrator in with a full session: enrolling TOTP
// the first time, later with a code of a step not used yet.
func (c *child) signIn(t *testing.T, a *adminTOTP) string {
	t.Helper()
	body := map[string]string{"username": "admin", "password": adminPassword}
	if a.secret != "" {
		a.step = max(time.Now().Unix()/30, a.step+1)
		code, _ := totp.GenerateCode(a.secret, time.Unix(a.step*30, 0))
		body["totp"] = code
	}
	var v struct {
		Token      string `json:"token"`
		Enrollment bool   `json:"mfa_enrollment_required"`
		Secret     string `json:"secret"`
	}
	call := func(path, token string, body any) {
		st, _, out, err := c.send("POST", path, token, body)
		if err != nil || st != 200 {
			t.Fatalf("%s: %d %v %s\n%s", path, st, err, out, c.stderr)
		}
		json.Unmarshal(out, &v)
	}
	call("/api/v1/auth/login", "", body)
	if !v.Enrollment {
		return v.Token
	}
	tok := v.Token
	call("/api/v1/auth/totp", tok, nil)
	a.secret, a.step = v.Secret, time.Now().Unix()/30
	code, _ := totp.GenerateCode(a.secret, time.Now())
	call("/api/v1/auth/totp/confirm", tok, map[string]string{"code": code})
	return v.Token
}

// acked is a write the server answered.
type acked struct {
	code, requestID string
	index           uint64
}

// writeHooks say what writeDepartments does with what it meets.
type writeHooks struct {
	stop     func() bool                       // asked before each request: stop now?
	noAnswer func(code string, err error) bool // a request that got no answer: go on?
	refused  func(st int, h http.Header) bool  // an answer other than 201: expected (go on)? nil: none is
	stopped  func()                            // the test failed: called before the client stops
	answered func(acked)                       // a write answered with success
}

// writeDepartments is one client creating departments through c (codes
// prefix + "N0", "N1", …; named 急诊科 + code) until hk.stop says so, or
// a request goes unanswered and hk.noAnswer says to stop; every write
// answered with success goes to hk.answered, with the audit index its
// answer named.
func writeDepartments(t *testing.T, c *child, token, prefix string, hk writeHooks) {
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		if hk.stopped != nil {
			hk.stopped()
		}
	}
	for i := 0; hk.stop == nil || !hk.stop(); i++ {
		code := fmt.Sprintf("%sN%d", prefix, i)
		st, h, out, err := c.send("POST", "/api/v1/departments", token, map[string]string{"code": code, "name": "急诊科" + code})
		switch {
		case err != nil:
			if !hk.noAnswer(code, err) {
				return
			}
			continue
		case st != 201 && hk.refused != nil && hk.refused(st, h):
			continue
		case st != 201:
			fail("%s: %d %s", code, st, out)
			return
		}
		idx, err := strconv.ParseUint(h.Get("X-Audit-Index"), 10, 64)
		if err != nil {
			fail("%s: X-Audit-Index %q", code, h.Get("X-Audit-Index"))
			return
		}
		hk.answered(acked{code: code, requestID: h.Get("X-Request-Id"), index: idx})
	}
}

// wantListed checks that a list of departments (GET /api/v1/departments)
// holds every answered one, by the name writeDepartments gave it.
func wantListed(t *testing.T, body []byte, acks []acked) {
	t.Helper()
	var list struct{ Items []struct{ Code, Name string } }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, d := range list.Items {
		have[d.Code] = d.Name
	}
	for _, a := range acks {
		if have[a.code] != "急诊科"+a.code {
			t.Fatalf("answered department %s missing (%q)", a.code, have[a.code])
		}
	}
}

// noteAnswered is a writeHooks.answered that adds each write to *acks
// (under mu) and then tells then how many there are.
func noteAnswered(mu *sync.Mutex, acks *[]acked, then func(n int)) func(acked) {
	return func(a acked) {
		mu.Lock()
		*acks = append(*acks, a)
		n := len(*acks)
		mu.Unlock()
		if then != nil {
			then(n)
		}
	}
}

// wantKilled waits for the child to end and fails the test unless SIGKILL
// ended it.
func (c *child) wantKilled(t *testing.T) {
	t.Helper()
	err := c.cmd.Wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the server was not killed by SIGKILL: %v\n%s", err, c.stderr)
	}
}

// wantAnswered checks that every answered department's creation is in the
// log at the index its answer named, and returns the highest.
func wantAnswered(t *testing.T, db *storage.DB, acks []acked) uint64 {
	t.Helper()
	last := uint64(0)
	for _, a := range acks {
		got, err := audit.ReadEntries(context.Background(), db, a.index, a.index+1)
		if err != nil || len(got) != 1 {
			t.Fatalf("entry %d of %s: %v", a.index, a.code, err)
		}
		if e := got[0].Entry; e.RequestID != a.requestID || e.Action != "department.create" || e.Outcome != audit.Success {
			t.Fatalf("entry %d is %+v, want the answered request %s", a.index, e, a.requestID)
		}
		last = max(last, a.index)
	}
	return last
}

// A server killed with SIGKILL while it is answering writes loses none it
// answered: after the crash every acknowledged write and its audit entry are
// there, "medguard audit verify" passes, and the server starts again.
func TestCrashLosesNoAnsweredWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server process")
	}
	dir := t.TempDir()
	var dbArgs []string
	dsn := ""
	if pg := os.Getenv(storagetest.PostgresEnv); pg != "" {
		dsn = storagetest.FreshSchema(t, pg)
		dbArgs = []string{"--db", dsn}
	}
	crashLosesNoAnsweredWrite(t, dir, dsn, dbArgs)
}

// TestCrashWithContinuousBackupLosesNoAnsweredWrite is the same crash with
// the WAL shipped continuously (serve --backup-to DIR --backup-continuous,
// Litestream reading the WAL beside the server): every answered write is
// in the data directory after the kill, and the server starts again and
// resumes shipping.
func TestCrashWithContinuousBackupLosesNoAnsweredWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server process")
	}
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("--backup-to backs up SQLite data directories; PostgreSQL's are pgBackRest's")
	}
	dir := t.TempDir()
	idFile := filepath.Join(t.TempDir(), "id.txt")
	runCLI(t, "backup", "keygen", "--data", dir, "--identity-out", idFile)
	target := t.TempDir()
	acks := crashLosesNoAnsweredWrite(t, dir, "", []string{"--backup-to", target, "--backup-continuous"})
	if t.Failed() {
		return
	}
	// The stream, resumed after the crash and sealed, restores with every
	// answered write.
	out := runCLI(t, "backup", "create", "--incremental", "--data", dir, "--to", target)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	restored := filepath.Join(t.TempDir(), "restored")
	runCLI(t, "backup", "restore", lines[len(lines)-1], "--data", restored, "--backup-identity", idFile,
		"--key-file", filepath.Join(dir, "keys", "medguard.keys"))
	app, err := cli.Open(context.Background(), cli.Config{DataDir: restored})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	have := map[string]bool{}
	for _, a := range acks {
		if d, err := app.Identity.DepartmentByCode(context.Background(), a.code); err == nil && d.Name == "急诊科"+a.code {
			have[a.code] = true
		}
	}
	if len(have) != len(acks) {
		t.Errorf("the restored stream holds %d of the %d answered writes", len(have), len(acks))
	}
}

func crashLosesNoAnsweredWrite(t *testing.T, dir, dsn string, dbArgs []string) []acked {
	srv := startChild(t, dir, dbArgs...)
	var admin adminTOTP
	token := srv.signIn(t, &admin)

	// Eight clients write departments until the server has answered
	// killAfter of them; then it is killed mid-stream, with requests in flight.
	const workers, killAfter = 8, 300
	var (
		mu     sync.Mutex
		acks   []acked
		killed = make(chan struct{})
		once   sync.Once
		wg     sync.WaitGroup
	)
	kill := func() {
		once.Do(func() {
			// Said before it is done: a client whose request the kill
			// cuts off may look at killed the moment the server is gone.
			close(killed)
			srv.cmd.Process.Signal(syscall.SIGKILL)
		})
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			writeDepartments(t, srv, token, fmt.Sprintf("C%d", w), writeHooks{
				noAnswer: func(code string, err error) bool {
					select {
					case <-killed:
					default:
						t.Errorf("%s: %v", code, err)
						kill()
					}
					return false
				},
				stopped: kill,
				answered: noteAnswered(&mu, &acks, func(n int) {
					if n >= killAfter {
						kill()
					}
				}),
			})
		}(w)
	}
	wg.Wait()
	srv.wantKilled(t)
	if t.Failed() {
		return acks
	}
	t.Logf("%d writes answered before the kill", len(acks))

	// The log verifies as a whole, against every checkpoint it signed.
	var out, errOut bytes.Buffer
	verify := []string{"audit", "verify", "--data", dir}
	if dsn != "" {
		verify = append(verify, "--db", dsn)
	}
	if err := cli.Run(context.Background(), verify, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("audit verify after the crash: %v\n%s%s", err, out.String(), errOut.String())
	}

	// Every answered write has its entry, at the index the answer named.
	ctx := context.Background()
	db, err := storage.Open(ctx, dsn, dir)
	if err != nil {
		t.Fatal(err)
	}
	wantAnswered(t, db, acks)
	db.Close()

	// The server starts again on the same data and has every answered write.
	again := startChild(t, dir, dbArgs...)
	token = again.signIn(t, &admin)
	st, _, body, err := again.send("GET", "/api/v1/departments", token, nil)
	if err != nil || st != 200 {
		t.Fatalf("departments after restart: %d %v", st, err)
	}
	wantListed(t, body, acks)
	again.cmd.Process.Signal(syscall.SIGTERM)
	if err := again.cmd.Wait(); err != nil {
		t.Fatalf("graceful stop after restart: %v\n%s", err, again.stderr)
	}
	return acks
}
