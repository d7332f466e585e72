package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"medguard/internal/audit"
	load "medguard/internal/bench"
	"medguard/internal/storage"
)

const benchAuditSynopsis = `usage: medguard bench audit [--db DSN] [--entries 1000000] [--batch 10000] [--json] [--cpuprofile FILE]

Measures the audit log directly through its library, without HTTP: a fresh
log — SQLite in a temporary directory, or a fresh schema in the PostgreSQL
database --db names (created, then dropped) — gets --entries entries appended
--batch at a time (audit.Log.AppendBatch, one transaction each, durable
before the call returns: SQLite synchronous=FULL, PostgreSQL as its
synchronous_commit says). The entries look like a hospital's: 3,000 members of
staff, 200,000 patients, reads, lists, searches and writes.

Then the search index is left to catch up, the log is closed, and the whole
of it is verified as "medguard audit verify" does (audit.Verify: every leaf
re-hashed, the tree recomputed and compared with its head and the index).

Reported: entries appended a second (entries over the time spent inside
AppendBatch), each transaction's commit latency (p50, p99, max), the CPUs
this process and PostgreSQL (when on this machine) used and the CPU time per
entry (building the entries included), the peak RSS while appending; the
index's catch-up time; verify's rate (entries a second), its CPU per entry
and the process's peak RSS during it (VmHWM, reset before verify where Linux
allows). --json adds one JSON line.`

// benchAudit runs "medguard bench audit".
func benchAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("bench audit", stderr)
	var dsn, cpuProfile string
	var entries, batch int
	var asJSON bool
	fs.StringVar(&dsn, "db", "", "PostgreSQL to measure on (postgres://…; a fresh schema is created and dropped); empty: SQLite in a temporary directory")
	fs.IntVar(&entries, "entries", 1_000_000, "entries to append")
	fs.IntVar(&batch, "batch", 10_000, "entries a transaction (one AppendBatch call each)")
	fs.BoolVar(&asJSON, "json", false, "also print the figures as one JSON line")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the appends and verify to this file")
	fs.Usage = func() { usage(stderr, fs.FlagSet, benchAuditSynopsis) }
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("bench audit: unexpected argument %q", fs.Arg(0))}
	case entries < 1 || batch < 1:
		return usageError{errors.New("--entries and --batch must be at least 1")}
	}

	db, database, cleanup, err := benchAuditDB(ctx, dsn)
	if err != nil {
		return err
	}
	defer func() {
		if err := cleanup(); err != nil {
			fmt.Fprintf(stderr, "bench: cleaning up: %v\n", err)
		}
	}()
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	run := load.AuditRun{Database: database, Entries: int64(entries), Batch: batch}
	run.Durable, run.LocalPostgres = durability(ctx, db, "the server")
	if err := appendAuditEntries(ctx, db, &run, stderr); err != nil {
		return err
	}

	fmt.Fprintf(stderr, "audit: verifying %d entries …\n", entries)
	stopWatch := load.WatchMemory()
	cpu0 := load.SampleCPU()
	vr, err := audit.Verify(ctx, db, audit.VerifyOptions{})
	run.VerifyCPU = load.SampleCPU().Since(cpu0)
	run.VerifyMemory = stopWatch()
	if err != nil {
		return fmt.Errorf("bench audit: verify: %w", err)
	}
	run.Verified, run.Verify = vr.Size, vr.Took
	if cpuProfile != "" {
		pprof.StopCPUProfile()
		fmt.Fprintf(stderr, "bench: CPU profile written to %s (go tool pprof -top %s)\n", cpuProfile, cpuProfile)
	}

	rep := load.NewAuditReport(run)
	rep.WriteText(stdout)
	if asJSON {
		fmt.Fprintln(stdout, rep.JSON())
	}
	if vr.Size != uint64(entries) {
		return fmt.Errorf("bench audit: verify saw %d entries, %d were appended", vr.Size, entries)
	}
	return nil
}

// benchAuditDB opens a fresh database holding only the audit log's tables:
// SQLite in a temporary directory, or a fresh schema in the PostgreSQL
// database dsn. cleanup closes it and removes it all.
func benchAuditDB(ctx context.Context, dsn string) (db *storage.DB, database string, cleanup func() error, err error) {
	s, err := newBenchScratch(ctx, "medguard-bench-audit-", dsn)
	if err != nil {
		return nil, "", nil, err
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if db, err = storage.Open(ctx, s.dsn, s.dir); err != nil {
		return nil, "", nil, err
	}
	s.add(db.Close)
	if err := db.Migrate(ctx, audit.Schema()); err != nil {
		return nil, "", nil, err
	}
	return db, s.database, s.close, nil
}

// appendAuditEntries appends run.Entries entries to a log over db,
// run.Batch a transaction, and notes what it measured in run: each
// AppendBatch call's duration, the CPU and memory used, and how long the
// search index took to catch up afterwards.
func appendAuditEntries(ctx context.Context, db *storage.DB, run *load.AuditRun, stderr io.Writer) error {
	l, err := audit.Open(ctx, db, audit.Options{MaxBatch: run.Batch})
	if err != nil {
		return err
	}
	defer l.Close()
	gen := newAuditEntries(run.Entries)
	transactions := int((run.Entries + int64(run.Batch) - 1) / int64(run.Batch))
	every := max(1, transactions/10)
	fmt.Fprintf(stderr, "audit: appending %d entries, %d a transaction, on %s …\n", run.Entries, run.Batch, run.Database)
	batch := make([]*audit.Entry, 0, run.Batch)
	stopWatch := load.WatchMemory()
	cpu0 := load.SampleCPU()
	var inside time.Duration
	for done := int64(0); done < run.Entries; {
		batch = batch[:0]
		for range min(int64(run.Batch), run.Entries-done) {
			batch = append(batch, gen.next())
		}
		s := time.Now()
		if _, err := l.AppendBatch(ctx, batch); err != nil {
			stopWatch()
			return fmt.Errorf("bench audit: append: %w", err)
		}
		took := time.Since(s)
		inside += took
		run.Commits = append(run.Commits, took)
		done += int64(len(batch))
		if len(run.Commits)%every == 0 && done < run.Entries {
			fmt.Fprintf(stderr, "audit: %d of %d entries, %.0f entries/s so far\n", done, run.Entries, float64(done)/inside.Seconds())
		}
	}
	run.AppendCPU = load.SampleCPU().Since(cpu0)
	run.AppendMemory = stopWatch()
	s := time.Now()
	if err := l.CatchUp(ctx); err != nil {
		return fmt.Errorf("bench audit: search index: %w", err)
	}
	run.IndexCatchUp = time.Since(s)
	return l.Close()
}

// auditEntries makes entries that look like a hospital's: 3,000 members of
// staff, 200,000 patients (pseudonymous ids), the common actions, one
// entry a millisecond ending now.
type auditEntries struct {
	i     int
	start time.Time
	rng   *mrand.Rand
}

func newAuditEntries(n int64) *auditEntries {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &auditEntries{start: now.Add(-time.Duration(n) * time.Millisecond), rng: mrand.New(mrand.NewPCG(15, 2026))}
}

var (
	benchAuditActions = []struct{ action, target string }{
		{"record.read", "record"}, {"record.read", "record"}, {"record.read", "record"}, {"record.read", "record"},
		{"patient.read", "patient"}, {"record.list", "patient"}, {"patient.list", "patient"}, {"patient.search_match", "patient"},
		{"record.create", "record"}, {"record.update", "record"},
	}
	benchAuditDepartments = []string{"NEIKE", "WAIKE", "FUKE", "ERKE", "JIZHEN", "XINNEI", "SHENJING", "ZHONGLIU"}
	benchAuditRoles       = [][]string{{"doctor"}, {"doctor"}, {"nurse"}, {"dept_head"}, {"records_clerk"}}
)

func (g *auditEntries) next() *audit.Entry {
	i := g.i
	g.i++
	staff := g.rng.IntN(3000)
	a := benchAuditActions[g.rng.IntN(len(benchAuditActions))]
	patient := "pat" + strconv.Itoa(100000+g.rng.IntN(200000))
	target := patient
	if a.target == "record" {
		target = "rec" + strconv.Itoa(10000000+g.rng.IntN(5000000))
	}
	e := &audit.Entry{
		Time: g.start.Add(time.Duration(i) * time.Millisecond), Actor: "staff" + strconv.Itoa(1000+staff),
		ActorDepartment: benchAuditDepartments[staff%len(benchAuditDepartments)], ActorRoles: benchAuditRoles[staff%len(benchAuditRoles)],
		IP: "10.1." + strconv.Itoa(staff/250) + "." + strconv.Itoa(staff%250), Action: a.action, TargetType: a.target,
		TargetID: target, PatientID: patient, Purpose: "treatment", Decision: audit.Allow, Rule: "allow.same_department",
		Outcome: audit.Success, RequestID: "bench-" + strconv.Itoa(i),
	}
	if a.target == "record" {
		e.Classification = "general"
	}
	return e
}
