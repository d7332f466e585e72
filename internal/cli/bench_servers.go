package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/storage"
)

// benchFleet is what "bench reads --servers N" measures: N "medguard
// serve" processes on one PostgreSQL schema, behind an HAProxy.
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
// docs/operations.md configures it), and waits until the balancer answers. close stops them all and drops the
// schema.
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
	var cleanups []func() error
	cleanup := func() error {
		var errs []error
		for i := len(cleanups) - 1; i >= 0; i-- {
			errs = append(errs, cleanups[i]())
		}
		cleanups = nil
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	dir, err := os.MkdirTemp("", "medguard-bench-")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() error { return os.RemoveAll(dir) })
	dsn, drop, err := benchSchema(ctx, f.db)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, drop)

	// What the servers share besides the database.
	skey, _, err := note.GenerateKey(rand.Reader, "medguard-bench")
	if err != nil {
		return nil, err
	}
	env := map[string]string{"MEDGUARD_KEYS": string(keys.NewKeyFile(alg, time.Now()).Marshal()), "MEDGUARD_AUDIT_KEY": skey}
	certPath, keyPath, err := selfSigned(filepath.Join(dir, "tls"), "127.0.0.1", time.Now())
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)

	password, securityPassword := f.adminPassword, f.securityPassword
	if password == "" {
		password = onetimePassword()
	}
	if securityPassword == "" {
		securityPassword = onetimePassword()
	}
	durable, err := setUpBenchSchema(ctx, f, dir, dsn, env, password, securityPassword)
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
	cleanups = append(cleanups, func() error { fleet.direct.CloseIdleConnections(); return nil })
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
		c, err := startBenchChild(ctx, exe, childEnv, "--data", filepath.Join(dir, fmt.Sprintf("server%d", i+1)), "--db", dsn,
			"--listen", "127.0.0.1:0", "--cipher", f.cipher, "--tls-cert", certPath, "--tls-key", keyPath,
			"--signin-rate", "60000", "--signin-burst", "10000", "--log-level", "warn", "--shutdown-timeout", "5s",
			"--proxy-protocol", "127.0.0.1/32")
		if c != nil {
			cleanups = append(cleanups, c.stop)
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
	if fleet.proxy, err = StartHAProxy(dir, backends); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	cleanups = append(cleanups, func() error { fleet.proxy.Stop(); return nil })
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
		fleet: fleet, close: cleanup}, nil
}

// setUpBenchSchema opens the installation once in this process, as serve
// would, to create the bootstrap accounts and relax the read-volume rules
// before the servers start; it returns what makes commits durable.
func setUpBenchSchema(ctx context.Context, f *benchFlags, dir, dsn string, env map[string]string, password, securityPassword string) (string, error) {
	sfs := newFlags("serve", io.Discard)
	var sf serveFlags
	sf.register(sfs)
	if err := sfs.Parse(nil); err != nil {
		return "", err
	}
	sf.data, sf.db, sf.cipher = filepath.Join(dir, "setup"), dsn, f.cipher
	cfg, err := sf.config(func(k string) string { return env[k] }, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		return "", usageError{err}
	}
	app, err := Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer app.Close()
	for _, a := range identity.BootstrapAccounts(password, securityPassword) {
		if _, err := app.Identity.Bootstrap(ctx, a); err != nil {
			return "", fmt.Errorf("bench: creating the %s: %w", a.Username, err)
		}
	}
	if err := relaxReadVolumeRules(ctx, app); err != nil {
		return "", err
	}
	durable := "PostgreSQL"
	if app.DB.Dialect == storage.Postgres {
		var sc string
		if err := app.DB.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&sc); err == nil {
			durable = "PostgreSQL, synchronous_commit=" + sc
			if sc == "off" {
				durable += " (answered writes can be lost in a crash: these figures flatter the servers)"
			}
		}
	}
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
	select {
	case <-c.done:
		return nil
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
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

// fleetSample is what the fleet's processes had used at one moment.
type fleetSample struct {
	at       time.Time
	cpu      map[int]time.Duration // servers' and haproxy's CPU time by pid
	postgres map[int]time.Duration // PostgreSQL's processes' CPU time by pid
	reads    []float64             // record reads each server answered (its /metrics)
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// procCPU is a process's CPU time (user and system) from /proc/PID/stat.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: the fields are
	// counted after its closing one (state is field 3; utime, stime 14, 15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+s) * clockTick, true
}

// postgresCPU is the CPU time of every process named "postgres" now.
func postgresCPU() map[int]time.Duration {
	out := map[int]time.Duration{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if d, ok := procCPU(pid); ok {
			out[pid] = d
		}
	}
	return out
}

// procPeakRSS is a process's peak resident set size (VmHWM) in bytes.
func procPeakRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// resetPeaks resets the servers' peak RSS marks where Linux allows, and
// reports whether it could.
func (fl *benchFleet) resetPeaks() bool {
	ok := true
	for _, c := range fl.servers {
		ok = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", c.cmd.Process.Pid), []byte("5"), 0) == nil && ok
	}
	return ok
}

// sample reads the fleet's CPU times and the servers' read counters.
func (fl *benchFleet) sample(ctx context.Context) fleetSample {
	s := fleetSample{at: time.Now(), cpu: map[int]time.Duration{}, postgres: postgresCPU()}
	pids := []int{fl.proxy.Pid()}
	for _, c := range fl.servers {
		pids = append(pids, c.cmd.Process.Pid)
	}
	for _, pid := range pids {
		s.cpu[pid], _ = procCPU(pid)
	}
	for _, c := range fl.servers {
		s.reads = append(s.reads, fl.recordReads(ctx, c.base))
	}
	return s
}

// recordReads is how many record reads a server answered with 200, from
// its /metrics (served to loopback clients); -1 if unknown.
func (fl *benchFleet) recordReads(ctx context.Context, base string) float64 {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := fl.direct.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return -1
	}
	var n float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "medguard_http_requests_total{") && strings.Contains(line, `code="200"`) &&
			strings.Contains(line, `route="GET /api/v1/records/{id}"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += v
		}
	}
	return n
}

// measureStart is the load's progress writer, which takes the fleet's
// first sample when the load generator says the measurement starts.
type measureStart struct {
	w    io.Writer
	once sync.Once
	take func()
}

func (m *measureStart) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("warm-up over")) {
		m.once.Do(m.take)
	}
	return m.w.Write(p)
}

// fleetReport is what the fleet's processes used while reads were
// measured.
type fleetReport struct {
	Servers      []fleetProcess `json:"servers"`
	HAProxy      fleetProcess   `json:"haproxy"`
	Postgres     fleetProcess   `json:"postgres"`
	PGProcesses  int            `json:"postgres_processes"`
	MeasuredS    float64        `json:"measured_s"`
	CPUSeconds   float64        `json:"cpu_s"`
	CPUPerReadMs float64        `json:"cpu_per_read_ms"`
	PeakReset    bool           `json:"peak_rss_reset"`
	Balancer     string         `json:"balancer"`
}

// fleetProcess is one process's (or PostgreSQL's processes') share.
type fleetProcess struct {
	Pid       int     `json:"pid,omitempty"`
	CPUSecs   float64 `json:"cpu_s"`
	CPUs      float64 `json:"cpus"`
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	Reads     int64   `json:"reads,omitempty"`
}

// report compares two samples; reads is what the load generator counted.
func (fl *benchFleet) report(a, b fleetSample, reads int64, peakReset bool) *fleetReport {
	wall := b.at.Sub(a.at).Seconds()
	r := &fleetReport{MeasuredS: roundTo(wall, 2), PeakReset: peakReset, Balancer: fl.proxy.Version}
	share := func(pid int, d time.Duration) fleetProcess {
		p := fleetProcess{Pid: pid, CPUSecs: roundTo(d.Seconds(), 2)}
		if wall > 0 {
			p.CPUs = roundTo(d.Seconds()/wall, 2)
		}
		return p
	}
	var total time.Duration
	for i, c := range fl.servers {
		pid := c.cmd.Process.Pid
		d := b.cpu[pid] - a.cpu[pid]
		total += d
		p := share(pid, d)
		p.PeakRSSMB = roundTo(float64(procPeakRSS(pid))/(1<<20), 1)
		if a.reads[i] >= 0 && b.reads[i] >= 0 {
			p.Reads = int64(b.reads[i] - a.reads[i])
		}
		r.Servers = append(r.Servers, p)
	}
	pid := fl.proxy.Pid()
	r.HAProxy = share(pid, b.cpu[pid]-a.cpu[pid])
	total += b.cpu[pid] - a.cpu[pid]
	// PostgreSQL's processes at the end: a connection opened during the
	// measurement counts from its start.
	var pg time.Duration
	for pid, d := range b.postgres {
		pg += d - a.postgres[pid]
	}
	r.Postgres, r.PGProcesses = share(0, pg), len(b.postgres)
	total += pg
	r.CPUSeconds = roundTo(total.Seconds(), 2)
	if reads > 0 {
		r.CPUPerReadMs = roundTo(total.Seconds()*1000/float64(reads), 3)
	}
	return r
}

func roundTo(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// write prints the fleet's figures under the load generator's.
func (r *fleetReport) write(w io.Writer, balancer string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("  %-10s %d × \"medguard serve\" on one PostgreSQL schema, behind %s at %s", "servers", len(r.Servers), r.Balancer, balancer)
	p("  %-10s (TCP mode: TLS passed through to the servers, the clients' addresses in PROXY protocol v2 headers;", "")
	p("  %-10s round robin over connections)", "")
	p("")
	p("  what each process used during the %.1f s measured (from /proc):", r.MeasuredS)
	p("  %-24s %9s  %6s  %10s  %10s", "process", "CPU s", "CPUs", "peak RSS", "reads")
	for i, s := range r.Servers {
		p("  %-24s %9.2f  %6.2f  %7.1f MB  %10s", fmt.Sprintf("server %d (pid %d)", i+1, s.Pid), s.CPUSecs, s.CPUs, s.PeakRSSMB, thousands(float64(s.Reads)))
	}
	p("  %-24s %9.2f  %6.2f", fmt.Sprintf("haproxy (pid %d)", r.HAProxy.Pid), r.HAProxy.CPUSecs, r.HAProxy.CPUs)
	p("  %-24s %9.2f  %6.2f", fmt.Sprintf("postgres (%d processes)", r.PGProcesses), r.Postgres.CPUSecs, r.Postgres.CPUs)
	p("  %-24s %9.2f", "total", r.CPUSeconds)
	p("")
	p("  CPU per read: %.3f ms (servers, haproxy and PostgreSQL; not the load generator, nor anything else on the machine)", r.CPUPerReadMs)
	since := "since each server started (setting up included)"
	if r.PeakReset {
		since = "from the start of the load (warm-up included)"
	}
	p("  peak RSS is VmHWM %s; all PostgreSQL's processes count, whatever they served", since)
	p("")
}

// thousands writes v rounded with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// withFleet adds the fleet's figures to the report's JSON line.
func withFleet(line string, r *fleetReport) string {
	b, err := json.Marshal(r)
	if err != nil || !strings.HasSuffix(line, "}") {
		return line
	}
	return strings.TrimSuffix(line, "}") + `,"fleet":` + string(b) + "}"
}
