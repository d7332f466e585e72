package cli_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"medguard/internal/cli"
	"medguard/internal/storage/storagetest"
)

// needHAProxy skips a test without haproxy, unless MEDGUARD_TEST_HAPROXY=1
// (CI) says it must be there.
func needHAProxy(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("MEDGUARD_TEST_HAPROXY") == "1" {
			t.Fatal("MEDGUARD_TEST_HAPROXY=1 but haproxy is not installed")
		}
		t.Skip("needs haproxy (Debian: apt-get install haproxy), or set MEDGUARD_TEST_HAPROXY=1 to fail without it")
	}
}

// behindBalancer starts haproxy (TCP mode: TLS passes through to each
// server) in front of servers, and returns a client of the balancer's
// address that trusts every server's certificate and opens a connection
// per request, so that round robin spreads the requests over the servers.
// It shares the servers' staff book. The balancer tells the servers who
// the client is with the PROXY protocol, from 127.0.0.1 (the servers are
// started with --proxy-protocol 127.0.0.1/32); its client connects from
// 127.0.0.2, the address the servers must see.
func behindBalancer(t *testing.T, servers ...*server) *server {
	t.Helper()
	h, pool := startBalancer(t, true, servers...)
	lb := &server{t: t, base: "https://" + h.Addr, book: servers[0].book,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
	for i := 0; ; i++ {
		if st, _, _ := lb.do("GET", "/readyz", "", nil); st == 200 {
			break
		}
		if i > 200 {
			t.Fatalf("the balancer never answered ready\n%s", h.Output())
		}
		time.Sleep(20 * time.Millisecond) // polling readiness, not timing anything
	}
	return lb
}

// startBalancer starts haproxy in front of servers (TCP mode, each
// server's /readyz checked; with proxy, the PROXY protocol), stopped when
// the test ends, and returns it with a pool of the servers' certificates.
func startBalancer(t *testing.T, proxy bool, servers ...*server) (*cli.HAProxy, *x509.CertPool) {
	t.Helper()
	needHAProxy(t)
	var backends []cli.HAProxyBackend
	pool := x509.NewCertPool()
	for _, s := range servers {
		ca := filepath.Join(s.dir, "tls", "cert.pem")
		pemBytes, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pemBytes)
		backends = append(backends, cli.HAProxyBackend{Addr: strings.TrimPrefix(s.base, "https://"), CA: ca, ProxyProtocol: proxy})
	}
	h, err := cli.StartHAProxy(t.TempDir(), backends)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Stop()
		if t.Failed() {
			t.Logf("haproxy's output:\n%s", h.Output())
		}
	})
	return h, pool
}

// answered is how many requests of route a server answered with code, from
// its own /metrics (medguard_http_requests_total).
func (s *server) answered(route, code string) int {
	return int(s.metric("medguard_http_requests_total", `route="`+route+`"`, `code="`+code+`"`))
}

// metric is the sum of a server's series of the metric name whose labels
// include every one of labels, from its /metrics.
func (s *server) metric(name string, labels ...string) float64 {
	s.t.Helper()
	st, _, body := s.do("GET", "/metrics", "", nil)
	if st != 200 {
		s.t.Fatalf("metrics: %d", st)
	}
	return sumMetric(body, name, labels...)
}

// sumMetric is the sum of the series of the metric name in a /metrics
// body whose labels include every one of labels.
func sumMetric(body []byte, name string, labels ...string) float64 {
	sum := 0.0
	sc := bufio.NewScanner(bytes.NewReader(body))
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}

// Two servers on one PostgreSQL behind a real load balancer, used through
// the balancer only: the staff sign in and work as on one server; both
// servers answer; a bulk reader spread over them is frozen at the same read
// as on one and refused by both; a deactivation and a removed role made
// through one server are in force on the other at its next request; the
// servers know the clients by their own address, which the balancer gives
// them with the PROXY protocol, and refuse the balancer's address without
// it and believe no one else's header; and the servers' audit entries form
// one tree.
func TestServersBehindLoadBalancer(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) == "" {
		t.Skip("servers share PostgreSQL: set MEDGUARD_TEST_POSTGRES")
	}
	needHAProxy(t)
	a, b, schema, skey := twoServers(t, "--checkpoint-every", "50ms", "--proxy-protocol", "127.0.0.1/32")
	lb := behindBalancer(t, a, b)

	// Signing in (password, enrolment, confirmation) and setting up, one
	// connection a request: round robin sends the steps to both servers.
	admin := lb.admin()
	lb.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	lb.staff("zhangwei", "张建国", "CARD", "doctor", staffPassword)
	linaID := lb.staff("lina", "李娜", "CARD", "doctor", staffPassword)
	wangID := lb.staff("wangfang", "王芳", "CARD", "doctor", staffPassword)
	doc := lb.token("zhangwei", staffPassword)
	var recs []string
	for i := 0; i < 60; i++ {
		p := lb.json(201, "POST", "/api/v1/patients", doc, map[string]any{"name": fmt.Sprintf("病人%02d", i), "gender": "male"})
		recs = append(recs, lb.json(201, "POST", "/api/v1/patients/"+p["id"].(string)+"/records", doc, map[string]any{
			"type": "progress_note", "department": "CARD", "title": "病程记录", "text": "胸闷较前缓解，继续观察。"})["id"].(string))
	}

	// The doctor reads the patients' records through the balancer: frozen
	// at the 51st patient, as on one server, and then refused by both.
	const route = "GET /api/v1/records/{id}"
	frozen := false
	for i, id := range recs {
		st, _, body := lb.do("GET", "/api/v1/records/"+id, doc, nil)
		if st == 423 {
			if i != 50 {
				t.Fatalf("frozen at read %d", i+1)
			}
			frozen = true
			break
		}
		if st != 200 {
			t.Fatalf("read %d: %d %s", i+1, st, body)
		}
	}
	if !frozen {
		t.Fatal("60 patients read through the balancer, never frozen")
	}
	a.problem(423, "GET", "/api/v1/records/"+recs[0], doc, nil)
	b.problem(423, "GET", "/api/v1/records/"+recs[0], doc, nil)
	// Both servers answered reads: each counts its own.
	na, nb := a.answered(route, "200"), b.answered(route, "200")
	if na == 0 || nb == 0 || na+nb != 50 {
		t.Fatalf("reads answered: %d by one server, %d by the other, want 50 over both", na, nb)
	}
	// To freeze at the same read, each counted the other's entries, which
	// its /metrics shows.
	for _, s := range []*server{a, b} {
		if n := s.metric("medguard_detect_entries_read_total"); n == 0 {
			t.Errorf("a server read back none of the other's entries for detection")
		}
	}

	// A deactivation made through the balancer holds on both servers at
	// their next request (each has served the doctor before).
	lina := lb.token("lina", staffPassword)
	a.json(200, "GET", "/api/v1/records/"+recs[1], lina, nil)
	b.json(200, "GET", "/api/v1/records/"+recs[2], lina, nil)
	lb.json(200, "POST", "/api/v1/users/"+linaID+"/deactivate", admin, nil)
	a.problem(401, "GET", "/api/v1/records/"+recs[1], lina, nil)
	b.problem(401, "GET", "/api/v1/records/"+recs[2], lina, nil)

	// So does a role removed.
	wang := lb.token("wangfang", staffPassword)
	a.json(200, "GET", "/api/v1/records/"+recs[3], wang, nil)
	b.json(200, "GET", "/api/v1/records/"+recs[4], wang, nil)
	if st, _, body := lb.do("DELETE", "/api/v1/users/"+wangID+"/roles/doctor", admin, nil); st != 204 {
		t.Fatalf("removing the role: %d %s", st, body)
	}
	a.problem(403, "GET", "/api/v1/records/"+recs[3], wang, nil)
	b.problem(403, "GET", "/api/v1/records/"+recs[4], wang, nil)

	// Each server knew the clients by their address, 127.0.0.2, which the
	// balancer (127.0.0.1) gave it in the PROXY header; the test's own
	// requests to each server came from 127.0.0.4. The balancer's address
	// without a header is refused, and a header from another address is
	// not believed (TLS gets it).
	security := lb.security()
	for _, action := range []string{"auth.login", "record.read", "patient.create"} {
		ips := map[string]int{}
		for _, it := range lb.json(200, "GET", "/api/v1/audit/search?action="+action+"&limit=200", security, nil)["items"].([]any) {
			ip, _ := it.(map[string]any)["entry"].(map[string]any)["ip"].(string)
			ips[ip]++
		}
		if ips["127.0.0.2"] == 0 || ips["127.0.0.1"] != 0 || len(ips) > 2 || len(ips) == 2 && ips["127.0.0.4"] == 0 {
			t.Errorf("%s entries by address: %v", action, ips)
		}
	}
	for _, s := range []*server{a, b} {
		if !s.from("127.0.0.1", "").refused("/readyz") {
			t.Errorf("%s served a connection from the balancer's address without a PROXY header", s.base)
		}
		if !s.from("127.0.0.2", "10.9.9.9").refused("/readyz") {
			t.Errorf("%s believed a PROXY header from 127.0.0.2, which is not the balancer", s.base)
		}
	}

	// One audit tree, consistent with the checkpoints each server signed.
	rep, outside := verifyOneTree(t, schema, skey, a, b)
	// 120 creations and 51 reads at least, besides the sign-ins and staff.
	if rep.Size < 171 || rep.External != len(outside) {
		t.Fatalf("report %+v", rep)
	}
}
