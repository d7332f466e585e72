package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	load "medguard/internal/bench"
	"medguard/internal/storage"
)

// loadBench is a benchmark that loads a server over HTTPS with a mix of a
// doctor's operations: "reads" (reads only), "writes" and "mixed".
type loadBench struct {
	name     string // "reads", "writes", "mixed"
	synopsis string
	// flags registers the benchmark's own flags and returns what gives the
	// mix once they are parsed.
	flags func(fs *flagSet) (mix func() (load.Mix, error))
}

// check validates the flags every load benchmark shares.
func (f *benchFlags) check() error {
	switch {
	case f.concurrency < 1 || f.doctors < 1 || f.patients < 1 || f.records < 1 || f.setupConcurrency < 1:
		return errors.New("--concurrency, --doctors, --patients, --records and --setup-concurrency must be at least 1")
	case f.duration <= 0 || f.warmup < 0 || f.rate < 0:
		return errors.New("--duration must be positive; --warmup and --rate must not be negative")
	case f.url != "" && f.db != "":
		return errors.New("--db and --url do not go together: --db is for the throw-away server")
	case f.url != "" && (f.adminPassword == "" || f.securityPassword == ""):
		return errors.New("--url needs --admin-password and --security-password (or MEDGUARD_ADMIN_PASSWORD, MEDGUARD_SECURITY_PASSWORD)")
	case f.url == "" && (f.ca != "" || f.insecure):
		return errors.New("--ca and --insecure are for --url")
	case f.servers < 0:
		return errors.New("--servers must not be negative")
	case f.servers > 0 && f.url != "":
		return errors.New("--servers and --url do not go together: --servers starts servers of its own")
	case f.servers > 0 && f.db == "":
		return errors.New("--servers needs --db postgres://…: servers share one PostgreSQL, never SQLite")
	case f.servers > 0 && f.backupTo != "":
		return errors.New("--backup-to is for the in-process server, not --servers")
	case f.servers == 0 && f.serveBinary != "":
		return errors.New("--serve-binary is for --servers")
	}
	return nil
}

// benchTargetFor is the server a load benchmark runs against: --servers
// "medguard serve" processes behind an HAProxy, the one at --url, or a
// throw-away one in this process.
func benchTargetFor(ctx context.Context, f *benchFlags, stderr io.Writer) (*benchTarget, error) {
	switch {
	case f.servers > 0:
		fmt.Fprintf(stderr, "bench: starting %d servers on a fresh PostgreSQL schema, behind HAProxy …\n", f.servers)
		return startBenchServers(ctx, f, stderr)
	case f.url != "":
		return remoteTarget(f)
	}
	fmt.Fprintln(stderr, "bench: starting a throw-away server in this process …")
	return startBenchServer(ctx, f)
}

// benchHospital sets up the benchmark's hospital on t through the API and
// returns it with the client that set it up (whose transport every worker
// copies, with a connection of its own).
func benchHospital(ctx context.Context, t *benchTarget, f *benchFlags, stderr io.Writer) (*load.Client, *load.Hospital, error) {
	transport := load.NewTransport(f.setupConcurrency, t.tls)
	client := &load.Client{Base: t.base, HTTP: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
	fmt.Fprintf(stderr, "bench: setting up %d doctors, %d patients and %d records through the API at %s …\n",
		f.doctors, f.patients, f.records, t.base)
	h, err := load.Setup(ctx, client, load.SetupOptions{AdminUser: f.adminUser, AdminPassword: t.admin,
		AdminTOTPSecret: f.adminTOTP, SecurityUser: f.securityUser, SecurityPassword: t.security, SecurityTOTPSecret: f.securityTOTP,
		Doctors: f.doctors, Patients: f.patients, Records: f.records, Parallel: f.setupConcurrency, Progress: stderr})
	if err != nil {
		transport.CloseIdleConnections()
		return nil, nil, fmt.Errorf("bench: setting up: %w", err)
	}
	return client, h, nil
}

// durability says what makes a commit of db durable, for the report of
// server ("the server", "the servers"), and whether db is PostgreSQL on
// this machine.
func durability(ctx context.Context, db *storage.DB, server string) (durable string, localPostgres bool) {
	if db.Dialect != storage.Postgres {
		return "SQLite in WAL mode, synchronous=FULL: every commit is synced before the answer", false
	}
	durable = "PostgreSQL"
	var sc string
	if err := db.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&sc); err == nil {
		durable += ", synchronous_commit=" + sc
		if sc == "off" {
			durable += " (answered writes can be lost in a crash: these figures flatter " + server + ")"
		}
	}
	conn, err := db.Connection(ctx)
	return durable, err == nil && conn.Local
}

// diskProbed is the disk probe's outcome.
type diskProbed struct {
	result *load.DiskResult
	err    error
}

// runLoadBench runs benchmark b: parses its flags, gets the server and
// sets up the hospital, loads it and reports.
func runLoadBench(ctx context.Context, b loadBench, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("bench "+b.name, stderr)
	var f benchFlags
	f.register(fs)
	mixOf := b.flags(fs)
	fs.Usage = func() { usage(stderr, fs.FlagSet, b.synopsis) }
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("bench %s: unexpected argument %q", b.name, fs.Arg(0))}
	}
	if err := f.check(); err != nil {
		return usageError{err}
	}
	mix, err := mixOf()
	if err != nil {
		return usageError{err}
	}

	t, err := benchTargetFor(ctx, &f, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if err := t.close(); err != nil {
			fmt.Fprintf(stderr, "bench: cleaning up: %v\n", err)
		}
	}()
	client, h, err := benchHospital(ctx, t, &f, stderr)
	if err == nil && t.settle != nil {
		if done := t.settle(ctx); done != "" {
			fmt.Fprintln(stderr, "bench: "+done)
			t.durable += "; " + done
		}
	}
	if err != nil {
		return err
	}
	defer client.HTTP.CloseIdleConnections()

	lo := load.LoadOptions{Concurrency: f.concurrency, Duration: f.duration, Warmup: f.warmup, Rate: f.rate, Mix: mix, Progress: stderr}
	// A fleet's processes are sampled with the load generator's CPU, and
	// the operations each server answered, and its audit log's commits,
	// read from its /metrics when the measured window starts and when the
	// load ends.
	var first, last []serverCounts
	var peakReset bool
	if t.fleet != nil {
		peakReset = t.fleet.resetPeaks()
		lo.Processes = t.fleet.pids()
		lo.Started = func() { first = t.fleet.counts(ctx, mix) }
	}
	// The disk probe runs through the measured window, beside the load.
	var probe chan diskProbed
	if f.diskProbe != "" {
		probe = make(chan diskProbed, 1)
		started := lo.Started
		lo.Started = func() {
			if started != nil {
				started()
			}
			go func() {
				d, err := load.DiskSyncs(ctx, load.ProbeOptions(f.diskProbe, f.duration))
				probe <- diskProbed{d, err}
			}()
		}
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if f.trace != "" {
		tf, err := os.Create(f.trace)
		if err != nil {
			return err
		}
		defer tf.Close()
		if err := trace.Start(tf); err != nil {
			return err
		}
		defer trace.Stop()
	}
	if f.memProfile != "" {
		if err := writeAllocs(f.memProfile + ".base"); err != nil {
			return err
		}
	}
	var stopWatch func() load.Memory
	if t.inProc {
		stopWatch = load.WatchMemory()
	}
	// What is scheduled: "reads", or "operations" of the mix shown.
	unit, shown := "operations", " ("+mix.String()+")"
	if mix.Bench() == "reads" {
		unit, shown = "reads", ""
	}
	if f.rate > 0 {
		fmt.Fprintf(stderr, "load: open loop, %g %s/s scheduled%s, %d workers, %s warm-up …\n",
			f.rate, unit, shown, load.OpenLoopWorkers(f.rate, f.concurrency), f.warmup)
	} else {
		fmt.Fprintf(stderr, "load: closed loop%s, %d workers, %s warm-up …\n", shown, f.concurrency, f.warmup)
	}
	res, err := load.Run(ctx, client, h, lo)
	if t.fleet != nil && err == nil {
		last = t.fleet.counts(ctx, mix)
	}
	var mem *load.Memory
	if stopWatch != nil {
		m := stopWatch()
		mem = &m
	}
	if f.cpuProfile != "" {
		pprof.StopCPUProfile()
		fmt.Fprintf(stderr, "bench: CPU profile written to %s (go tool pprof -top %s)\n", f.cpuProfile, f.cpuProfile)
	}
	if f.memProfile != "" && err == nil {
		if err := writeAllocs(f.memProfile); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: allocation profiles written (go tool pprof -sample_index=alloc_space -base %s.base %s)\n", f.memProfile, f.memProfile)
	}
	if f.trace != "" {
		trace.Stop()
		fmt.Fprintf(stderr, "bench: execution trace written to %s (go tool trace %s)\n", f.trace, f.trace)
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}

	rep := load.NewReport(h, lo, res, mem)
	if probe != nil && res.CPU.Wall > 0 {
		p := <-probe
		if p.err != nil {
			return fmt.Errorf("bench: disk probe: %w", p.err)
		}
		rep.Disk = load.NewDiskProbe(p.result, res)
	}
	rep.Server, rep.Database, rep.Cipher, rep.LocalPostgres = t.base, t.database, t.cipher, t.localPostgres
	if t.inProc {
		rep.Server = "in-process"
	}
	rep.WriteText(stdout)
	if t.durable != "" {
		fmt.Fprintf(stdout, "  %-10s %s\n\n", "durability", t.durable)
	}
	if rep.Disk != nil {
		rep.Disk.WriteText(stdout)
	}
	if t.fleet != nil {
		if res.CPU.Wall <= 0 { // lo.Started was not called
			return errors.New("bench: the measurement's start was not seen")
		}
		t.fleet.addTo(rep, first, last, peakReset)
		rep.Fleet.WriteText(stdout)
	}
	if f.json {
		fmt.Fprintln(stdout, rep.JSON())
	}
	switch {
	case res.Ops == 0:
		return fmt.Errorf("bench %s: no %s succeeded", b.name, strings.TrimSuffix(unit, "s"))
	case res.ErrorRate() > 0.001:
		return fmt.Errorf("bench %s: %.3f %% of %s failed (more than 0.1 %%)", b.name, res.ErrorRate()*100, unit)
	}
	return nil
}

// loadSynopsis is what the load benchmarks' help says of the server, the
// hospital, the loops and the report, after the benchmark's own lines.
const loadSynopsis = `The server: without --url, a throw-away installation is made in a temporary
directory — SQLite, or a fresh schema in the PostgreSQL database --db names
(created, then dropped) — and served in this process over real HTTPS, as for
"medguard bench reads" (see its --help); with --url, an existing server is
used, and --admin-password and --security-password set the hospital up.
With --db postgres://… --servers N, the load goes through an HAProxy to N
"medguard serve" processes on the fresh schema, as for reads, and each
server's CPU, peak RSS and operations answered, haproxy's and PostgreSQL's
CPU and the CPU per operation of them all are reported besides.

The hospital is set up through the API only: a department, --doctors doctors
who sign in and enrol TOTP, --patients patients and --records records (about
1-2 KB of Chinese text each). Each worker acts as one doctor of the
department over a keep-alive connection of its own, opened (with one read)
before the clock starts.

Two loops, as for reads: --rate 0 is a closed loop of --concurrency workers;
--rate R schedules R operations a second and counts each one's latency from
its scheduled time (no coordinated omission).

Reported: operations a second, latency p50, p90, p99, p99.9 and max, errors
by status — overall and for each kind of operation — the CPUs this process,
PostgreSQL (when it runs on this machine) and the whole machine used, the
CPU time per operation, and for an in-process server the process's peak RSS
and Go heap. --json adds one JSON line. The command fails if more than
0.1 % of operations failed.`

// writeAllocs writes the allocation profile (every allocation since the
// process started, sampled) to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
