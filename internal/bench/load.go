package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// LoadOptions say how to load the server.
type LoadOptions struct {
	// Concurrency is the number of workers (each with its own keep-alive
	// connection) in a closed loop, and the least number in an open loop.
	Concurrency int
	// Duration is how long operations are measured, after Warmup, during
	// which the same load runs unmeasured.
	Duration, Warmup time.Duration
	// Rate, if positive, makes an open loop: operations are scheduled at
	// Rate a second whatever the server does, and each one's latency counts
	// from its scheduled time, so that time spent queueing behind a slow
	// answer is measured rather than hidden (no coordinated omission). Zero
	// makes a closed loop: every worker sends as soon as it is answered.
	Rate float64
	// Mix is the share of each kind of operation; the zero Mix reads only.
	Mix Mix
	// Progress, if not nil, receives a line when the measurement starts.
	Progress io.Writer
	// Processes are other processes (a fleet's servers, say) whose CPU
	// time is sampled with this process's: Result.CPU.Pids.
	Processes []int
	// Started, if not nil, is called when the measured window starts,
	// right after the CPU is sampled; it has returned before Run does
	// whenever Result.CPU.Wall is positive.
	Started func()
}

// OpenLoopWorkers is how many workers an open loop at rate reads a second
// uses: at least concurrency, and enough to keep the schedule while reads
// take up to 50 ms each (Little's law: rate × 50 ms in flight).
func OpenLoopWorkers(rate float64, concurrency int) int {
	return min(4096, max(concurrency, int(math.Ceil(rate*0.05))))
}

// Result is what a run measured.
type Result struct {
	Mode     string  // "closed" or "open"
	Workers  int     // concurrent workers, each with one connection
	Rate     float64 // operations a second scheduled (open loop)
	Mix      Mix
	Duration time.Duration
	// Elapsed is the measured window: from the end of the warm-up to the
	// last answer of an operation started in it.
	Elapsed time.Duration
	Ops     int64 // answered with a 2xx status in the window
	// Errors counts failed operations in the window by cause: "HTTP 403",
	// "timeout", "connection reset", …; "not sent" counts operations an
	// open loop scheduled but never sent because it fell too far behind.
	Errors map[string]int64
	// ErrorSample is one transport error's message, if there was one.
	ErrorSample string
	// Latency is of the successful operations: from sending to the end of
	// the answer in a closed loop, from the scheduled time in an open loop.
	Latency Percentiles
	// Service is, in an open loop, the time from actually sending an
	// operation to the end of its answer (what a closed-loop tool would
	// show).
	Service Percentiles
	// Kinds are the figures of each kind of the mix, in order.
	Kinds []KindResult
	// CPU is what this process, this machine's PostgreSQL and the whole
	// machine used in the measured window.
	CPU CPUUse
	// ProcessCPU is the CPU time this process used per second of the
	// measured window, in CPUs; MachineCPU is the same for the whole
	// machine (from /proc/stat, 0 where unknown). A MachineCPU well above
	// ProcessCPU means something else was running.
	ProcessCPU, MachineCPU float64
	// answers are the measured successes' ends and latencies.
	answers []answer
}

// answer is one successful operation: its kind, when it ended and its
// latency.
type answer struct {
	kind Kind
	end  time.Time
	took time.Duration
}

// KindResult is what a run measured of one kind of operation.
type KindResult struct {
	Kind    Kind
	Ops     int64
	Errors  map[string]int64
	Latency Percentiles
}

// Failed is the number of failed operations.
func (r *Result) Failed() int64 { return sum(r.Errors) }

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// OpsPerSecond is the throughput of successful operations.
func (r *Result) OpsPerSecond() float64 { return r.perSecond(r.Ops) }

func (r *Result) perSecond(n int64) float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(n) / r.Elapsed.Seconds()
}

// ErrorRate is the share of failed operations among all attempted.
func (r *Result) ErrorRate() float64 {
	f := r.Failed()
	if r.Ops+f == 0 {
		return 0
	}
	return float64(f) / float64(r.Ops+f)
}

// Percentiles summarise latencies.
type Percentiles struct {
	N                        int
	Mean                     time.Duration
	P50, P90, P99, P999, Max time.Duration
}

// summarise sorts d and returns its percentiles (nearest rank).
func summarise(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	var sum float64
	for _, v := range d {
		sum += float64(v)
	}
	return Percentiles{N: len(d), Mean: time.Duration(sum / float64(len(d))),
		P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: d[len(d)-1]}
}

// Run loads the server with operations on h as its doctors, over c, and
// measures. Worker i acts as doctor i mod len(h.Doctors); each operation's
// kind is drawn from o.Mix, and its record or patient at random among the
// department's.
func Run(ctx context.Context, c *Client, h *Hospital, o LoadOptions) (*Result, error) {
	if o.Concurrency < 1 || o.Duration <= 0 || o.Warmup < 0 || o.Rate < 0 {
		return nil, errors.New("bench: concurrency and duration must be positive")
	}
	if len(h.Doctors) == 0 || len(h.Records) == 0 {
		return nil, errors.New("bench: the hospital has no doctors or no records")
	}
	mix := o.Mix.orDefault()
	if (mix[Create] > 0 || mix[Update] > 0 || mix[Chart] > 0 || mix[Search] > 0) && (len(h.PatientIDs) == 0 || len(h.searches) != len(h.PatientIDs)) {
		return nil, errors.New("bench: the hospital has no patients to write for or search")
	}
	res := &Result{Mode: "closed", Workers: o.Concurrency, Duration: o.Duration, Mix: mix, Errors: map[string]int64{}}
	if o.Rate > 0 {
		res.Mode, res.Rate, res.Workers = "open", o.Rate, OpenLoopWorkers(o.Rate, o.Concurrency)
	}
	urls := newHospitalURLs(c.Base, h)
	expect := o.Duration.Seconds() * 500 // a guess at a closed-loop worker's operations
	if o.Rate > 0 {
		expect = o.Duration.Seconds() * o.Rate / float64(res.Workers)
	}
	workers := make([]*worker, res.Workers)
	for i := range workers {
		w := &worker{client: ownConnection(c.HTTP), urls: urls, auth: []string{"Bearer " + h.Doctors[i%len(h.Doctors)].Token},
			rng: mrand.New(mrand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano())))}
		w.answers = make([]answer, 0, int(min(expect*1.2, 1<<20))+16)
		for _, k := range mix.Kinds() {
			w.errs[k] = map[string]int64{}
		}
		if o.Rate > 0 {
			w.svc = make([]time.Duration, 0, int(min(expect*1.2, 1<<20))+16)
		}
		if mix[Update] > 0 {
			// The worker updates, with their version, the records of index
			// i mod workers: no other worker writes them.
			for j := i; j < len(h.Records) && len(w.owned) < maxOwned; j += len(workers) {
				o := owned{url: urls.records[j]}
				if j < len(h.versions) {
					o.version = h.versions[j]
				}
				w.owned = append(w.owned, o)
			}
		}
		workers[i] = w
	}

	// Every worker opens its connection (TLS handshake included) with one
	// read before the clock starts, so that no handshake lands in the
	// measurement; one that is to update records but has none of its own
	// (more workers than records) creates one.
	defer func() {
		for _, w := range workers {
			w.client.CloseIdleConnections()
		}
	}()
	err := parallel(ctx, len(workers), 8, func(ctx context.Context, i int) error {
		w := workers[i]
		if _, class, err := w.do(ctx, Read); class != "" {
			return fmt.Errorf("bench: first read: %w", err)
		}
		if mix[Update] > 0 && len(w.owned) == 0 {
			if status, _, err := w.do(ctx, Create); status != http.StatusCreated {
				return fmt.Errorf("bench: a record to update: HTTP %d %v", status, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Grace is how long after the window an open loop may still send
	// operations it has fallen behind on, and how long they may take.
	grace := max(2*time.Second, o.Duration/10)
	t0 := time.Now()
	measureStart := t0.Add(o.Warmup)
	end := measureStart.Add(o.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end.Add(grace+30*time.Second))
	defer cancel()
	// The CPU is sampled when the warm-up ends, and again when the last
	// worker has finished.
	cpu0 := make(chan CPUSample, 1)
	startWindow := func() {
		s0 := SampleCPU(o.Processes...)
		if o.Started != nil {
			o.Started()
		}
		cpu0 <- s0
		if o.Progress != nil && o.Warmup > 0 && ctx.Err() == nil {
			io.WriteString(o.Progress, "load: warm-up over, measuring for "+o.Duration.String()+"\n")
		}
	}
	if o.Warmup == 0 {
		startWindow()
	} else {
		timer := time.AfterFunc(o.Warmup, startWindow)
		defer timer.Stop()
	}

	var wg sync.WaitGroup
	if o.Rate <= 0 {
		for _, w := range workers {
			wg.Go(func() {
				for runCtx.Err() == nil {
					s := time.Now()
					if !s.Before(end) {
						return
					}
					k := mix.pick(w.rng.Float64())
					status, class, err := w.do(runCtx, k)
					done := time.Now()
					if runCtx.Err() != nil && status == 0 {
						return
					}
					w.note(!s.Before(measureStart), k, status, class, err, done.Sub(s), -1, done)
				}
			})
		}
	} else {
		var slot atomic.Int64
		perSlot := float64(time.Second) / o.Rate
		for _, w := range workers {
			wg.Go(func() {
				timer := time.NewTimer(time.Hour)
				defer timer.Stop()
				for runCtx.Err() == nil {
					sched := t0.Add(time.Duration(float64(slot.Add(1)-1) * perSlot))
					if !sched.Before(end) {
						return
					}
					k := mix.pick(w.rng.Float64())
					measured := !sched.Before(measureStart)
					now := time.Now()
					if now.After(end.Add(grace)) {
						if measured {
							w.errs[k]["not sent"]++
						}
						continue
					}
					if d := sched.Sub(now); d > 0 {
						timer.Reset(d)
						select {
						case <-timer.C:
						case <-runCtx.Done():
							return
						}
					}
					s := time.Now()
					status, class, err := w.do(runCtx, k)
					done := time.Now()
					if runCtx.Err() != nil && status == 0 {
						return
					}
					w.note(measured, k, status, class, err, done.Sub(sched), done.Sub(s), done)
				}
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case s0 := <-cpu0:
		res.CPU = SampleCPU(o.Processes...).Since(s0)
		res.ProcessCPU, res.MachineCPU = res.CPU.CPUs(res.CPU.Process), res.CPU.CPUs(res.CPU.Machine)
	default: // the warm-up never ended: no operation was measured
	}

	for _, w := range workers {
		res.answers = append(res.answers, w.answers...)
	}
	var all, svc []time.Duration
	last := end
	for _, k := range mix.Kinds() {
		var lat []time.Duration
		kr := KindResult{Kind: k, Errors: map[string]int64{}}
		for _, a := range res.answers {
			if a.kind == k {
				lat = append(lat, a.took)
			}
		}
		for _, w := range workers {
			for e, v := range w.errs[k] {
				kr.Errors[e] += v
				res.Errors[e] += v
			}
		}
		all = append(all, lat...)
		kr.Ops = int64(len(lat))
		kr.Latency = summarise(lat)
		res.Kinds = append(res.Kinds, kr)
	}
	for _, w := range workers {
		svc = append(svc, w.svc...)
		if res.ErrorSample == "" {
			res.ErrorSample = w.sample
		}
		if w.lastDone.After(last) {
			last = w.lastDone
		}
	}
	res.Ops = int64(len(all))
	res.Elapsed = last.Sub(measureStart)
	res.Latency = summarise(all)
	res.Service = summarise(svc)
	return res, nil
}
