package cli_test

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// directSource is the address a test's own client connects to a server
// from: any (127.0.0.1), unless the server takes the PROXY protocol from
// 127.0.0.1 — the balancer's address in these tests, whose connections
// must then begin with a header —: then 127.0.0.4, which it serves as any
// other client (Linux routes all of 127/8 to loopback).
func directSource(args []string) net.Addr {
	for i := 0; i+1 < len(args); i++ {
		if args[i] != "--proxy-protocol" {
			continue
		}
		for _, s := range strings.Split(args[i+1], ",") {
			if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && p.Contains(netip.MustParseAddr("127.0.0.1")) {
				return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 4)}
			}
		}
	}
	return nil
}

// from is s as a client whose connections come from the loopback address
// source and, unless claim is "", begin with a PROXY protocol v2 header
// saying they are from claim (an IP address): a balancer's connections,
// or a forger's.
func (s *server) from(source, claim string) *server {
	s.t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	tr := s.client.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || claim == "" {
			return c, err
		}
		client := &net.TCPAddr{IP: net.ParseIP(claim), Port: 50123}
		h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
			SourceAddr: client, DestinationAddr: c.RemoteAddr()}
		if client.IP.To4() == nil {
			h.TransportProtocol = proxyproto.TCPv6
		}
		if _, err := h.WriteTo(c); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	c := *s
	c.client, c.stop = &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
	return &c
}

// refused reports whether a GET of path fails before any answer (the
// connection closed, or TLS refused).
func (s *server) refused(path string) bool {
	resp, err := s.client.Get(s.base + path)
	if err != nil {
		return true
	}
	resp.Body.Close()
	return false
}

// A server that takes the PROXY protocol from its balancer (127.0.0.1
// here; no balancer needed: the test sends the headers) knows each
// client by the address the balancer's header gives, for everything that
// goes by the address: the audit entries, the access log, the sign-in
// budget, --intranet (and so --remote-hours) and /metrics' loopback
// check. The balancer's address without a header is refused, and a
// header from any other address is not believed.
func TestProxyProtocol(t *testing.T) {
	// Remote sign-in hours for the administrator that exclude now.
	hours := "admin=01:00-02:00"
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	if h := time.Now().In(shanghai).Hour(); h >= 1 && h <= 2 {
		hours = "admin=13:00-14:00"
	}
	s := start(t, "--proxy-protocol", "127.0.0.1/32", "--remote-hours", hours, "--signin-rate", "1", "--signin-burst", "3")
	admin, security := s.admin(), s.security() // signed in directly, from 127.0.0.4 (intranet): one attempt each

	// A ward's PC outside the intranet (203.0.113.7), through the balancer.
	ward := s.from("127.0.0.1", "203.0.113.7")
	// The administrator's password is right, but from there it is a remote
	// sign-in outside the administrator's hours.
	if p := ward.problem(403, "POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": adminPassword}); p["rule"] != nil && p["rule"] != "deny.remote_signin_hours" {
		t.Fatalf("remote sign-in: %v", p)
	}
	// Nor can a client behind the balancer choose its address by a header:
	// without --trusted-proxies, X-Forwarded-For is not read, whoever sends
	// it — here an intranet address that the remote hours would let in.
	spoof, err := http.NewRequest("POST", s.base+"/api/v1/auth/login",
		strings.NewReader(`{"username":"admin","password":"`+adminPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	spoof.Header.Set("Content-Type", "application/json")
	spoof.Header.Set("X-Forwarded-For", "10.1.2.3")
	resp, err := s.from("127.0.0.1", "203.0.113.9").client.Do(spoof)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("a remote sign-in claiming an intranet address by X-Forwarded-For: %d, want 403", resp.StatusCode)
	}
	// The ward's budget (3) is its own: spent there, and not at another
	// PC behind the same balancer.
	ward.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "wuming", "password": "Cuowu#Mima2026"})
	ward.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "wuming", "password": "Cuowu#Mima2026"})
	ward.problem(429, "POST", "/api/v1/auth/login", "", map[string]string{"username": "wuming", "password": "Cuowu#Mima2026"})
	s.from("127.0.0.1", "203.0.113.8").problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "wuming", "password": "Cuowu#Mima2026"})
	// The balancer's connections come from loopback, but the ward's do not:
	// no /metrics without a token.
	ward.problem(401, "GET", "/metrics", "", nil)
	if st, _, _ := s.do("GET", "/metrics", "", nil); st != 200 {
		t.Fatalf("/metrics from 127.0.0.4: %d", st)
	}
	// The ward works, known by its address.
	ward.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})

	// The balancer's address without a header is refused; so is a header
	// from an address that is not the balancer's (TLS gets the header).
	if !s.from("127.0.0.1", "").refused("/readyz") {
		t.Fatal("a connection from the balancer's address without a PROXY header was served")
	}
	if !s.from("127.0.0.2", "10.9.9.9").refused("/readyz") {
		t.Fatal("a PROXY header from 127.0.0.2, which is not the balancer, was believed")
	}
	if st, _, _ := s.from("127.0.0.2", "").do("GET", "/readyz", "", nil); st != 200 {
		t.Fatalf("a client of 127.0.0.2 without a header: %d", st)
	}

	// The audit log has each where it came from; never the balancer.
	where := map[string]map[string]int{} // action → ip → entries
	remote := 0                          // the administrator's remote sign-in, denied
	for _, action := range []string{"auth.login", "department.create"} {
		where[action] = map[string]int{}
		for _, it := range s.json(200, "GET", "/api/v1/audit/search?action="+action+"&limit=100", security, nil)["items"].([]any) {
			e := it.(map[string]any)["entry"].(map[string]any)
			ip, _ := e["ip"].(string)
			where[action][ip]++
			if ip == "203.0.113.7" && e["actor"] == "admin" && e["rule"] == "deny.remote_signin_hours" {
				remote++
			}
		}
	}
	if l := where["auth.login"]; remote != 1 || l["203.0.113.7"] < 3 || l["203.0.113.8"] != 1 || l["203.0.113.9"] != 1 ||
		l["127.0.0.4"] < 2 || l["127.0.0.1"] != 0 || l["10.1.2.3"] != 0 {
		t.Fatalf("sign-in entries by address: %v; the remote one denied for its hours: %d", l, remote)
	}
	if d := where["department.create"]; d["203.0.113.7"] != 1 || len(d) != 1 {
		t.Fatalf("department entries by address: %v", d)
	}
	// So has the access log; the refusals are logged with the real
	// addresses.
	logs := s.logs.String()
	if !strings.Contains(logs, `"ip":"203.0.113.7"`) || !strings.Contains(logs, `"ip":"127.0.0.4"`) || strings.Contains(logs, `"ip":"127.0.0.1"`) {
		t.Fatalf("access log:\n%s", logs)
	}
	if !strings.Contains(logs, "TLS handshake error from 127.0.0.2:") {
		t.Fatalf("the forged header's refusal is not logged with its real address:\n%s", logs)
	}
	if !strings.Contains(logs, "TLS handshake error from 127.0.0.1:") || !strings.Contains(logs, "proxy protocol signature not present") {
		t.Fatalf("the balancer's connection without a header is not logged as such:\n%s", logs)
	}
}

// With both --proxy-protocol and --trusted-proxies, X-Forwarded-For is
// read only on connections whose PROXY header names a trusted proxy (a
// front proxy that ends TLS, behind the balancer); any other client's
// header is ignored, so no client chooses its address.
func TestProxyProtocolWithTrustedProxies(t *testing.T) {
	s := start(t, "--proxy-protocol", "127.0.0.1/32", "--trusted-proxies", "203.0.113.0/24")
	security := s.security()
	failedLogin := func(c *server, forwarded string) {
		t.Helper()
		req, err := http.NewRequest("POST", c.base+"/api/v1/auth/login",
			strings.NewReader(`{"username":"wuming","password":"Cuowu#Mima2026"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", forwarded)
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("a wrong password: %d", resp.StatusCode)
		}
	}
	// The front proxy, trusted: its client's address is believed.
	failedLogin(s.from("127.0.0.1", "203.0.113.50"), "198.51.100.7")
	// A client of the balancer that is not a trusted proxy: its header is not.
	failedLogin(s.from("127.0.0.1", "198.51.100.8"), "10.1.2.3")
	ips := map[string]int{}
	for _, it := range s.json(200, "GET", "/api/v1/audit/search?action=auth.login&limit=100", security, nil)["items"].([]any) {
		e := it.(map[string]any)["entry"].(map[string]any)
		if e["actor"] == "wuming" {
			ip, _ := e["ip"].(string)
			ips[ip]++
		}
	}
	if ips["198.51.100.7"] != 1 || ips["198.51.100.8"] != 1 || len(ips) != 2 {
		t.Fatalf("failed sign-ins by address: %v (want 198.51.100.7 and 198.51.100.8 once each)", ips)
	}
}
