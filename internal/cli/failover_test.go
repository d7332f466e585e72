package cli_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// One server of two on one PostgreSQL, behind HAProxy, killed with SIGKILL
// while the staff write through the balancer (a machine lost at night):
//   - the other server goes on answering: connections the balancer sends
//     to the dead one before its health check notices are retried on the
//     live one (retries, redispatch), so only the requests the dead server
//     held when it died go unanswered;
//   - no write either server answered is lost: each is there, with its
//     audit entry at the index its answer named;
//   - the killed server, started again on its data directory, serves and
//     appends to the same tree;
//   - the log is one tree that verifies against every checkpoint both
//     servers signed, the dead one's included.
func TestOneServerKilledBehindTheBalancer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server process")
	}
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("servers share PostgreSQL: set MEDGUARD_TEST_POSTGRES")
	}
	needHAProxy(t)
	schema := storagetest.FreshSchema(t, dsn)
	env, skey := fleetKeys(t)
	a := startEnv(t, env, "--db", schema, "--checkpoint-every", "50ms")
	bDir := t.TempDir()
	b := startChildEnv(t, bDir, env, "--db", schema)

	h, pool := startBalancer(t, false, a, &server{t: t, dir: bDir, base: b.base})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the killed server's log:\n%s", b.stderr)
		}
	})
	// A connection a request: round robin spreads them over both servers.
	lb := &child{base: "https://" + h.Addr, client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
	token := a.admin()

	// Eight clients create departments through the balancer; once 150 are
	// answered, b is killed, and they go on for 3 s — beyond the 2 s the
	// health check takes to find b down (inter 1s, fall 2) — and until 300
	// more are answered.
	const workers, killAfter, more = 8, 150, 300
	var (
		mu       sync.Mutex
		acks     []acked
		cut      int // requests that got no answer
		answered float64
		killedAt time.Time
		killed   = make(chan struct{})
		once     sync.Once
		wg       sync.WaitGroup
	)
	kill := func() {
		once.Do(func() {
			answered = childMetric(t, b, "medguard_http_requests_total", `route="POST /api/v1/departments"`, `code="201"`)
			mu.Lock()
			killedAt = time.Now()
			mu.Unlock()
			close(killed)
			b.cmd.Process.Signal(syscall.SIGKILL)
		})
	}
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !killedAt.IsZero() && len(acks) >= killAfter+more && time.Since(killedAt) > 3*time.Second
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			writeDepartments(t, lb, token, fmt.Sprintf("F%d", w), writeHooks{
				stop: done,
				noAnswer: func(code string, err error) bool {
					select {
					case <-killed:
						mu.Lock()
						cut++
						mu.Unlock()
						return true
					default:
						t.Errorf("%s before the kill: %v", code, err)
						return false
					}
				},
				answered: noteAnswered(&mu, &acks, func(n int) {
					if n >= killAfter {
						kill()
					}
				}),
			})
		}(w)
	}
	wg.Wait()
	b.wantKilled(t)
	if t.Failed() {
		return
	}
	t.Logf("%d writes answered, %d by b before it was killed; %d requests cut off by the kill", len(acks), int(answered), cut)
	if answered == 0 {
		t.Fatal("the balancer sent b no writes before the kill")
	}
	// Only what b held when it died: at most one request a client.
	if cut > workers {
		t.Errorf("%d requests went unanswered after the kill, more than the %d in flight", cut, workers)
	}

	// Every answered write has its entry, at the index the answer named.
	ctx := context.Background()
	db, err := storage.Open(ctx, schema, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	last := wantAnswered(t, db, acks)
	st, _, body := a.do("GET", "/api/v1/departments", token, nil)
	if st != 200 {
		t.Fatalf("departments: %d %s", st, body)
	}
	wantListed(t, body, acks)

	// b, started again on its data directory, appends to the same tree.
	again := startChildEnv(t, bDir, env, "--db", schema)
	st, hdr, out, err := again.send("POST", "/api/v1/departments", token, map[string]string{"code": "BACK", "name": "康复科"})
	if err != nil || st != 201 {
		t.Fatalf("a write on b after its restart: %d %v %s\n%s", st, err, out, again.stderr)
	}
	if idx, _ := strconv.ParseUint(hdr.Get("X-Audit-Index"), 10, 64); idx <= last {
		t.Fatalf("b's entry after its restart is at %d, not after %d", idx, last)
	}
	again.cmd.Process.Signal(syscall.SIGTERM)
	if err := again.cmd.Wait(); err != nil {
		t.Fatalf("b's graceful stop: %v\n%s", err, again.stderr)
	}
	// One tree, consistent with every checkpoint a and b signed.
	rep, outside := verifyOneTree(t, schema, skey, a, &server{dir: bDir, stop: func() {}})
	if rep.Size <= last || rep.External != len(outside) {
		t.Fatalf("report %+v", rep)
	}
}

// childMetric is the sum of a child server's series of the metric name
// whose labels include every one of labels, from its /metrics.
func childMetric(t *testing.T, c *child, name string, labels ...string) float64 {
	t.Helper()
	st, _, body, err := c.send("GET", "/metrics", "", nil)
	if err != nil || st != 200 {
		t.Errorf("metrics: %d %v", st, err)
		return 0
	}
	return sumMetric(body, name, labels...)
}

// PostgreSQL drops every connection of both servers three times (a
// failover of the database, a restart for an upgrade, a cut in the
// network) while clients write to both: the servers reconnect by
// themselves; a request caught by a drop is answered 503 with Retry-After
// (the database was out of reach: not a 500, a fault of the server's),
// never with a success that is not durable, and nothing else fails; every
// write answered with success is there with its audit entry at the index
// its answer named; and the log is one tree that verifies against every
// checkpoint both servers signed.
func TestServersRideOutDroppedConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("writes for several seconds")
	}
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("servers share PostgreSQL: set MEDGUARD_TEST_POSTGRES")
	}
	schema := storagetest.FreshSchema(t, dsn)
	// The servers' connections carry a name of their own, by which they
	// are dropped.
	named := storagetest.Named(t, schema, "fleet")
	env, skey := fleetKeys(t)
	a := startEnv(t, env, "--db", named, "--checkpoint-every", "50ms")
	b := startEnv(t, env, "--db", named, "--checkpoint-every", "50ms")
	b.book = a.book
	token := a.admin()
	drop := func() int { return storagetest.EndConnections(t, dsn, named) }

	// Four clients a server create departments; after every 100 answered,
	// the connections are dropped, three times, and the clients go on
	// until 100 more are answered after the last drop.
	const perServer, every, drops = 4, 100, 3
	var (
		mu          sync.Mutex
		acks        []acked
		unavailable int   // writes answered 503
		dropped     []int // connections dropped each time
		wg          sync.WaitGroup
		stop        = make(chan struct{})
	)
	for w := 0; w < 2*perServer; w++ {
		srv := a
		if w%2 == 1 {
			srv = b
		}
		c := &child{base: srv.base, client: srv.client}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			writeDepartments(t, c, token, fmt.Sprintf("D%d", w), writeHooks{
				stop: func() bool {
					select {
					case <-stop:
						return true
					default:
						return false
					}
				},
				noAnswer: func(code string, err error) bool {
					t.Errorf("%s: no answer: %v", code, err)
					return false
				},
				refused: func(st int, h http.Header) bool {
					if st != 503 || h.Get("Retry-After") == "" {
						return false
					}
					mu.Lock()
					unavailable++
					mu.Unlock()
					return true
				},
				answered: noteAnswered(&mu, &acks, nil),
			})
		}(w)
	}
	answered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}
	waitFor := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for answered() < n {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%d writes answered, %d awaited: the servers did not recover (%d answered 503)\n%s\n%s", answered(), n, unavailable, a.logs, b.logs)
			}
			time.Sleep(5 * time.Millisecond) // polling the clients' progress, not timing anything
		}
	}
	for k := 1; k <= drops; k++ {
		waitFor(k * every)
		dropped = append(dropped, drop())
	}
	waitFor((drops + 1) * every)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d writes answered, %d answered 503; connections dropped %v", len(acks), unavailable, dropped)
	for _, n := range dropped {
		if n == 0 {
			t.Fatalf("no connection of the servers was dropped: %v", dropped)
		}
	}

	db, err := storage.Open(context.Background(), schema, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	last := wantAnswered(t, db, acks)
	rep, outside := verifyOneTree(t, schema, skey, a, b)
	if rep.Size <= last || rep.External != len(outside) {
		t.Fatalf("report %+v", rep)
	}
}
