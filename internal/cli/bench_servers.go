package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	load "medguard/internal/bench"
	"medguard/internal/keys"
)

// benchFleet is what a load benchmark's --servers N measures: N
// "medguard serve" processes on one PostgreSQL schema, behind an HAProxy.
type benchFleet struct {
	servers []*benchChild
	proxy   *HAProxy
	direct  *http.Client // to each server itself, for its /metrics
}

// benchChild is one "medguard serve" process of the fleet.
type benchChild struct {
	base string // https://127.0.0.1:PORT
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error
}

// startBenchServers makes a fresh schema in the PostgreSQL database --db
// names, sets up the installation there (the bootstrap accounts, the
// read-volume rules relaxed as for the in-process server), starts
// --servers "medguard serve" processes on it — each with a data directory
// of its own, all with the same key file, audit signing key and TLS
// certificate, given as serve takes them (MEDGUARD_KEYS,
// MEDGUARD_AUDIT_KEY, --tls-cert) — and an HAProxy in front of them that
// tells them the clients' addresses with the PROXY protocol (as
// docs/operations.md configures it), and waits until the balancer
// answers. close stops them all and drops the schema.
func startBenchServers(ctx context.Context, f *benchFlags, stderr io.Writer) (t *benchTarget, err error) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return nil, errors.New("bench --servers: haproxy is not installed (Debian: apt-get install haproxy)")
	}
	exe := f.serveBinary
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("bench --servers: finding this executable: %w", err)
		}
	}
	alg, err := keys.ParseAlgorithm(f.cipher)
	if err != nil {
		return nil, usageError{fmt.Errorf("--cipher: %w", err)}
	}
	s, err := newBenchScratch(ctx, "medguard-bench-", f.db)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	// What the servers share besides the database.
	skey, _, err := note.GenerateKey(rand.Reader, "medguard-bench")
	if err != nil {
		return nil, err
	}
	env := map[string]string{"MEDGUARD_KEYS": string(keys.NewKeyFile(alg, time.Now()).Marshal()), "MEDGUARD_AUDIT_KEY": skey}
	certPath, keyPath, pool, err := benchCertificate(s.dir)
	if err != nil {
		return nil, err
	}
	password, securityPassword := f.passwords()
	durable, err := setUpBenchSchema(ctx, f, s.dir, s.dsn, env, password, securityPassword)
	if err != nil {
		return nil, err
	}

	// The servers take the PROXY protocol from the balancer, which reaches
	// them from 127.0.0.1, and so refuse that address's connections
	// without its header: the bench's own look at each server comes from
	// 127.0.0.2 (Linux routes all of 127/8 to loopback), which they serve
	// as a direct client.
	fleet := &benchFleet{direct: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool},
			DialContext: (&net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}}
	s.add(func() error { fleet.direct.CloseIdleConnections(); return nil })
	childEnv := []string{}
	for _, kv := range os.Environ() {
		// The servers take no setting from the bench's environment twins
		// (MEDGUARD_DB, MEDGUARD_LISTEN, …): only what is given here.
		if !strings.HasPrefix(kv, "MEDGUARD_") {
			childEnv = append(childEnv, kv)
		}
	}
	for k, v := range env {
		childEnv = append(childEnv, k+"="+v)
	}
	var backends []HAProxyBackend
	for i := 0; i < f.servers; i++ {
		c, err := startBenchChild(ctx, exe, childEnv, "--data", filepath.Join(s.dir, fmt.Sprintf("server%d", i+1)), "--db", s.dsn,
			"--listen", "127.0.0.1:0", "--cipher", f.cipher, "--tls-cert", certPath, "--tls-key", keyPath,
			"--signin-rate", "60000", "--signin-burst", "10000", "--log-level", "warn", "--shutdown-timeout", "5s",
			"--proxy-protocol", "127.0.0.1/32")
		if c != nil {
			s.add(c.stop)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: server %d: %w", i+1, err)
		}
		fleet.servers = append(fleet.servers, c)
		backends = append(backends, HAProxyBackend{Addr: strings.TrimPrefix(c.base, "https://"), CA: certPath, ProxyProtocol: true})
		fmt.Fprintf(stderr, "bench: server %d (pid %d) serving %s\n", i+1, c.cmd.Process.Pid, c.base)
	}
	for i, c := range fleet.servers {
		if err := waitReady(ctx, fleet.direct, c.base, c.done); err != nil {
			return nil, fmt.Errorf("bench: server %d: %w\n%s", i+1, err, c.out)
		}
	}
	if fleet.proxy, err = StartHAProxy(s.dir, backends); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	s.add(func() error { fleet.proxy.Stop(); return nil })
	base := "https://" + fleet.proxy.Addr
	// Through the balancer, a connection a request: every server in turn.
	probe := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}}}
	for i := 0; i < 2*f.servers; i++ {
		if err := waitReady(ctx, probe, base, nil); err != nil {
			return nil, fmt.Errorf("bench: the balancer: %w\n%s", err, fleet.proxy.Output())
		}
	}
	fmt.Fprintf(stderr, "bench: %s (pid %d) balancing over them at %s\n", fleet.proxy.Version, fleet.proxy.Pid(), base)
	return &benchTarget{base: base, tls: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool},
		admin: password, security: securityPassword, database: "postgres", cipher: alg.String(), durable: durable,
		fleet: fleet, settle: s.settle, close: s.close}, nil
}

// setUpBenchSchema opens the installation once in this process, as serve
// would, to create the bootstrap accounts and relax the read-volume rules
// before the servers start; it returns what makes commits durable.
func setUpBenchSchema(ctx context.Context, f *benchFlags, dir, dsn string, env map[string]string, password, securityPassword string) (string, error) {
	sf, err := benchServeFlags(filepath.Join(dir, "setup"), dsn, f.cipher)
	if err != nil {
		return "", err
	}
	cfg, err := sf.config(func(k string) string { return env[k] }, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		return "", usageError{err}
	}
	app, err := Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer app.Close()
	if err := prepareBenchApp(ctx, app, password, securityPassword); err != nil {
		return "", err
	}
	durable, _ := durability(ctx, app.DB, "the servers")
	return durable, nil
}

// startBenchChild starts "exe serve args…" and waits for the line that
// says where it serves. The child is returned even on error, to be
// stopped.
func startBenchChild(ctx context.Context, exe string, env []string, args ...string) (*benchChild, error) {
	c := &benchChild{out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	c.cmd = exec.Command(exe, append([]string{"serve"}, args...)...)
	c.cmd.Env = env
	c.cmd.Stderr = c.out
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(c.out, line)
			if _, rest, ok := strings.Cut(line, " serving https://"); ok && strings.HasPrefix(line, "medguard ") {
				a, _, _ := strings.Cut(rest, " ")
				select {
				case addr <- a:
				default:
				}
			}
		}
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	select {
	case a := <-addr:
		c.base = "https://" + a
		return c, nil
	case <-c.done:
		return c, fmt.Errorf("serve exited (%v):\n%s", c.err, c.out)
	case <-time.After(2 * time.Minute):
		return c, fmt.Errorf("serve did not start within 2 minutes:\n%s", c.out)
	case <-ctx.Done():
		return c, ctx.Err()
	}
}

// stop ends the server (SIGTERM, then SIGKILL after 15 s) and waits for it.
func (c *benchChild) stop() error {
	stopProcess(c.cmd, c.done, 15*time.Second)
	return nil
}

// waitReady polls base/readyz until it answers 200 (for a minute), or
// exited is closed.
func waitReady(ctx context.Context, client *http.Client, base string, exited <-chan struct{}) error {
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("it exited")
		case <-time.After(50 * time.Millisecond): // polling readiness, not timing anything
		}
	}
	return fmt.Errorf("%s/readyz not ready within a minute: %s", base, last)
}

// pids are the fleet's processes whose CPU is measured: the servers and
// the balancer.
func (fl *benchFleet) pids() []int {
	pids := []int{fl.proxy.Pid()}
	for _, c := range fl.servers {
		pids = append(pids, c.cmd.Process.Pid)
	}
	return pids
}

// resetPeaks resets the servers' peak RSS marks where Linux allows, and
// reports whether it could.
func (fl *benchFleet) resetPeaks() bool {
	ok := true
	for _, c := range fl.servers {
		ok = load.ResetPeakRSS(c.cmd.Process.Pid) && ok
	}
	return ok
}

// serverCounts is what a server's /metrics counted so far: the
// operations of the mix answered with success, and its audit log's work.
// ok is false where the server could not be asked.
type serverCounts struct {
	ok  bool
	ops float64
	// metrics holds the counters of auditCounters, by name as written
	// there (labels included).
	metrics map[string]float64
}

// auditCounters are the /metrics lines (name and labels) a fleet's report
// gives per server: how its audit entries were committed, and what
// detection read back from the database (the other servers' entries, and
// its own between theirs).
const (
	metricAuditEntries = "medguard_audit_entries_total"
	metricAlone        = `medguard_audit_commits_total{path="statement"}`
	metricLocked       = `medguard_audit_commits_total{path="transaction"}`
	metricIndexReads   = "medguard_audit_index_end_reads_total"
	metricReadBack     = "medguard_detect_entries_read_total"
)

var auditCounters = []string{metricAuditEntries, metricAlone, metricLocked, metricIndexReads, metricReadBack}

// counts reads each server's /metrics (served to loopback clients): the
// operations of mix's kinds it answered with success, and auditCounters.
func (fl *benchFleet) counts(ctx context.Context, mix load.Mix) []serverCounts {
	routes := map[string]bool{}
	for _, k := range mix.Kinds() {
		routes[`route="`+k.Route()+`"`] = true
	}
	var n []serverCounts
	for _, c := range fl.servers {
		n = append(n, fl.countsOf(ctx, c.base, routes))
	}
	return n
}

// countsOf reads the /metrics of the server at base: the requests of
// routes (`route="…"` labels) it answered with a 2xx status, and
// auditCounters.
func (fl *benchFleet) countsOf(ctx context.Context, base string, routes map[string]bool) serverCounts {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := fl.direct.Do(req)
	if err != nil {
		return serverCounts{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return serverCounts{}
	}
	out := serverCounts{ok: true, metrics: map[string]float64{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, value, ok := strings.Cut(line, " "); ok && slices.Contains(auditCounters, name) {
			out.metrics[name], _ = strconv.ParseFloat(strings.TrimSpace(value), 64)
			continue
		}
		labels, ok := strings.CutPrefix(line, "medguard_http_requests_total{")
		if !ok || !strings.Contains(labels, `code="2`) {
			continue
		}
		labels, value, _ := strings.Cut(labels, "} ")
		for l := range strings.SplitSeq(labels, ",") {
			if routes[l] {
				v, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
				out.ops += v
			}
		}
	}
	return out
}

// addTo adds the fleet's figures to rep: first and last are what each
// server had counted (counts) when the window started and when the load
// ended.
func (fl *benchFleet) addTo(rep *load.Report, first, last []serverCounts, peakReset bool) {
	var servers []load.FleetServer
	for i, c := range fl.servers {
		s := load.FleetServer{Pid: c.cmd.Process.Pid}
		if i < len(first) && i < len(last) && first[i].ok && last[i].ok {
			a, b := first[i], last[i]
			d := func(name string) int64 { return int64(b.metrics[name] - a.metrics[name]) }
			s.Ops = int64(b.ops - a.ops)
			s.Audit = &load.FleetAudit{Entries: d(metricAuditEntries), StatementCommits: d(metricAlone),
				LockedCommits: d(metricLocked), IndexEndReads: d(metricIndexReads), ReadBack: d(metricReadBack)}
		}
		servers = append(servers, s)
	}
	rep.AddFleet(servers, fl.proxy.Pid(), fl.proxy.Version, "https://"+fl.proxy.Addr, peakReset)
}
