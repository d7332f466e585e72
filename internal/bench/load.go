package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LoadOptions say how to read.
type LoadOptions struct {
	// Concurrency is the number of workers (each with its own keep-alive
	// connection) in a closed loop, and the least number in an open loop.
	Concurrency int
	// Duration is how long reads are measured, after Warmup, during which
	// the same load runs unmeasured.
	Duration, Warmup time.Duration
	// Rate, if positive, makes an open loop: reads are scheduled at Rate a
	// second whatever the server does, and each read's latency counts from
	// its scheduled time, so that time spent queueing behind a slow answer
	// is measured rather than hidden (no coordinated omission). Zero makes a
	// closed loop: every worker reads as fast as it is answered.
	Rate float64
	// Progress, if not nil, receives a line when the measurement starts.
	Progress io.Writer
}

// OpenLoopWorkers is how many workers an open loop at rate reads a second
// uses: at least concurrency, and enough to keep the schedule while reads
// take up to 50 ms each (Little's law: rate × 50 ms in flight).
func OpenLoopWorkers(rate float64, concurrency int) int {
	return min(4096, max(concurrency, int(math.Ceil(rate*0.05))))
}

// Result is what a run of reads measured.
type Result struct {
	Mode     string  // "closed" or "open"
	Workers  int     // concurrent workers, each with one connection
	Rate     float64 // reads a second scheduled (open loop)
	Duration time.Duration
	// Elapsed is the measured window: from the end of the warm-up to the
	// last answer of a read started in it.
	Elapsed time.Duration
	Reads   int64 // answered with a 2xx status in the window
	// Errors counts failed reads in the window by cause: "HTTP 403",
	// "timeout", "connection reset", …; "not sent" counts reads an open
	// loop scheduled but never sent because it fell too far behind.
	Errors map[string]int64
	// ErrorSample is one transport error's message, if there was one.
	ErrorSample string
	// Latency is of the successful reads: from sending to the end of the
	// answer in a closed loop, from the scheduled time in an open loop.
	Latency Percentiles
	// ProcessCPU is the CPU time this process used per second of the run
	// (warm-up included), in CPUs; MachineCPU is the same for the whole
	// machine (from /proc/stat, 0 where unknown). A MachineCPU well above
	// ProcessCPU means something else was running.
	ProcessCPU, MachineCPU float64
	// Service is, in an open loop, the time from actually sending a read
	// to the end of its answer (what a closed-loop tool would show).
	Service Percentiles
}

// Failed is the number of failed reads.
func (r *Result) Failed() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// ReadsPerSecond is the throughput of successful reads.
func (r *Result) ReadsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Reads) / r.Elapsed.Seconds()
}

// ErrorRate is the share of failed reads among all reads attempted.
func (r *Result) ErrorRate() float64 {
	f := r.Failed()
	if r.Reads+f == 0 {
		return 0
	}
	return float64(f) / float64(r.Reads+f)
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

// worker is one reader: a doctor's credentials, its own random numbers,
// and what it measured.
type worker struct {
	client   *http.Client
	urls     []string // one per record, shared read-only
	auth     []string // the Authorization header's value
	rng      *mrand.Rand
	lat, svc []time.Duration
	errs     map[string]int64
	sample   string
	lastDone time.Time
}

// ownConnection returns a client with a connection of its own: c with a
// copy of its transport that keeps one connection open.
func ownConnection(c *http.Client) *http.Client {
	t, ok := c.Transport.(*http.Transport)
	if !ok {
		return c
	}
	t = t.Clone()
	t.MaxConnsPerHost, t.MaxIdleConnsPerHost, t.MaxIdleConns = 1, 1, 1
	return &http.Client{Transport: t, Timeout: c.Timeout}
}

// read reads one random record and reports its status (0 for a transport
// error, whose class it returns).
func (w *worker) read(ctx context.Context) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", w.urls[w.rng.IntN(len(w.urls))], nil)
	if err != nil {
		return 0, "", err
	}
	req.Header["Authorization"] = w.auth
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, classify(err), err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, classify(err), err
	}
	return resp.StatusCode, "", nil
}

// classify names a transport error's cause without its addresses.
func classify(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return "transport error"
}

// note records one read's outcome if it belongs to the measured window.
func (w *worker) note(measured bool, status int, class string, err error, lat, svc time.Duration, done time.Time) {
	if !measured {
		return
	}
	switch {
	case status >= 200 && status < 300:
		w.lat = append(w.lat, lat)
		if svc >= 0 {
			w.svc = append(w.svc, svc)
		}
	case status != 0:
		w.errs["HTTP "+strconv.Itoa(status)]++
	default:
		w.errs[class]++
		if w.sample == "" {
			w.sample = err.Error()
		}
	}
	if done.After(w.lastDone) {
		w.lastDone = done
	}
}

// Run reads records of h as its doctors, over c, and measures. Worker i
// reads as doctor i mod len(h.Doctors), choosing a record at random each
// time among those of the doctor's department.
func Run(ctx context.Context, c *Client, h *Hospital, o LoadOptions) (*Result, error) {
	if o.Concurrency < 1 || o.Duration <= 0 || o.Warmup < 0 || o.Rate < 0 {
		return nil, errors.New("bench: concurrency and duration must be positive")
	}
	if len(h.Doctors) == 0 || len(h.Records) == 0 {
		return nil, errors.New("bench: the hospital has no doctors or no records")
	}
	res := &Result{Mode: "closed", Workers: o.Concurrency, Duration: o.Duration, Errors: map[string]int64{}}
	if o.Rate > 0 {
		res.Mode, res.Rate, res.Workers = "open", o.Rate, OpenLoopWorkers(o.Rate, o.Concurrency)
	}
	urls := make([]string, len(h.Records))
	for i, id := range h.Records {
		urls[i] = c.Base + "/api/v1/records/" + id
	}
	expect := o.Duration.Seconds() * 500 // a guess at a closed-loop worker's reads
	if o.Rate > 0 {
		expect = o.Duration.Seconds() * o.Rate / float64(res.Workers)
	}
	workers := make([]*worker, res.Workers)
	for i := range workers {
		workers[i] = &worker{client: ownConnection(c.HTTP), urls: urls, auth: []string{"Bearer " + h.Doctors[i%len(h.Doctors)].Token},
			rng:  mrand.New(mrand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano()))),
			lat:  make([]time.Duration, 0, int(min(expect*1.2, 1<<20))+16),
			errs: map[string]int64{}}
		if o.Rate > 0 {
			workers[i].svc = make([]time.Duration, 0, cap(workers[i].lat))
		}
	}

	// Every worker opens its connection (TLS handshake included) before the
	// clock starts, so that no handshake lands in the measurement.
	defer func() {
		for _, w := range workers {
			w.client.CloseIdleConnections()
		}
	}()
	err := parallel(ctx, len(workers), 8, func(ctx context.Context, i int) error {
		if _, class, err := workers[i].read(ctx); class != "" {
			return fmt.Errorf("bench: first read: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Grace is how long after the window an open loop may still send reads
	// it has fallen behind on, and how long reads may take to finish.
	grace := max(2*time.Second, o.Duration/10)
	cpu0, busy0 := processCPU(), machineBusy()
	t0 := time.Now()
	measureStart := t0.Add(o.Warmup)
	end := measureStart.Add(o.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end.Add(grace+30*time.Second))
	defer cancel()
	if o.Progress != nil {
		go func() {
			select {
			case <-time.After(o.Warmup):
				if ctx.Err() == nil {
					io.WriteString(o.Progress, "load: warm-up over, measuring for "+o.Duration.String()+"\n")
				}
			case <-runCtx.Done():
			}
		}()
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
					status, class, err := w.read(runCtx)
					done := time.Now()
					if runCtx.Err() != nil && status == 0 {
						return
					}
					w.note(!s.Before(measureStart), status, class, err, done.Sub(s), -1, done)
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
					measured := !sched.Before(measureStart)
					now := time.Now()
					if now.After(end.Add(grace)) {
						if measured {
							w.errs["not sent"]++
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
					status, class, err := w.read(runCtx)
					done := time.Now()
					if runCtx.Err() != nil && status == 0 {
						return
					}
					w.note(measured, status, class, err, done.Sub(sched), done.Sub(s), done)
				}
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if wall := time.Since(t0).Seconds(); wall > 0 {
		res.ProcessCPU = (processCPU() - cpu0).Seconds() / wall
		if busy0 > 0 {
			res.MachineCPU = (machineBusy() - busy0).Seconds() / wall
		}
	}

	var lat, svc []time.Duration
	last := end
	for _, w := range workers {
		lat = append(lat, w.lat...)
		svc = append(svc, w.svc...)
		for k, v := range w.errs {
			res.Errors[k] += v
		}
		if res.ErrorSample == "" {
			res.ErrorSample = w.sample
		}
		if w.lastDone.After(last) {
			last = w.lastDone
		}
	}
	res.Reads = int64(len(lat))
	res.Elapsed = last.Sub(measureStart)
	res.Latency = summarise(lat)
	res.Service = summarise(svc)
	return res, nil
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time all CPUs of the machine have spent on
// anything but idling and waiting for I/O, from /proc/stat (0 if unknown).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		if i != 3 && i != 4 && i < 8 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ is 100 on Linux
}
