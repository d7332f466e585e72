package siem_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
	"golang.org/x/mod/sumdb/note"

	"medguard/internal/audit"
	"medguard/internal/siem"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// patience bounds every wait for something the forwarder does in the
// background. It is a deadline for a hung test, not a timing assertion.
const patience = 15 * time.Second

var t0 = time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC)

// openLog returns a fresh database with an open audit log.
func openLog(t *testing.T) (*storage.DB, *audit.Log) {
	t.Helper()
	db := storagetest.Open(t, audit.Schema(), siem.Schema())
	log, err := audit.Open(context.Background(), db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return db, log
}

// appendEntries appends n entries of a hospital's day, numbered from first:
// doctors and nurses reading records, some refused by the policy, some
// break-glass accesses in the emergency department, a laboratory system's
// API key writing results.
func appendEntries(t *testing.T, log *audit.Log, first, n int) {
	t.Helper()
	actors := []struct{ name, dept, role string }{
		{"zhangwei", "CARD", "doctor"}, {"lina", "CARD", "nurse"}, {"wangfang", "ONCO", "doctor"},
		{"liuyang", "EMER", "doctor"}, {"chenjing", "PEDS", "dept_head"}, {"apikey:检验科LIS", "LAB", ""},
	}
	es := make([]*audit.Entry, n)
	for k := range es {
		i := first + k
		a := actors[i%len(actors)]
		e := &audit.Entry{
			Time: t0.Add(time.Duration(i) * 1500 * time.Millisecond), Actor: a.name, ActorDepartment: a.dept,
			IP: fmt.Sprintf("10.12.%d.%d", i%200, 1+i%250), Action: "record.read", TargetType: "record",
			TargetID: fmt.Sprintf("01jd4x2k7m9q3r5t8v%08d", i), PatientID: fmt.Sprintf("01jd4x0b1c2d3e4f5g%08d", i%977),
			Purpose: "treatment", Decision: audit.Allow, Rule: "allow.same_department", Outcome: audit.Success,
			RequestID: fmt.Sprintf("req-%06d", i),
		}
		if a.role != "" {
			e.ActorRoles = []string{a.role}
		} else {
			e.Action, e.Rule = "record.create", "allow.api_scope"
		}
		switch {
		case i%7 == 3:
			e.Decision, e.Rule, e.Outcome = audit.Deny, "deny.other_department", audit.Denied
		case i%11 == 5 && a.dept == "EMER":
			e.BreakGlass, e.Rule, e.Purpose = true, "allow.break_glass", "emergency"
		}
		es[k] = e
	}
	if _, err := log.AppendBatch(context.Background(), es); err != nil {
		t.Fatal(err)
	}
}

// leaves returns the stored leaves of the log, by index.
func leaves(t *testing.T, db *storage.DB) [][]byte {
	t.Helper()
	size, _, err := audit.HeadOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for uint64(len(out)) < size {
		got, err := audit.ReadEntries(context.Background(), db, uint64(len(out)), size)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			out = append(out, s.Leaf)
		}
	}
	return out
}

// signedCheckpoint returns a checkpoint of the log's current head, signed
// with a new key, and the key's verifier.
func signedCheckpoint(t *testing.T, db *storage.DB) (audit.Checkpoint, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "xxyy-hospital.cn/medguard")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	size, root, err := audit.HeadOf(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := signer.Sign(size, root)
	if err != nil {
		t.Fatal(err)
	}
	return audit.Checkpoint{Size: size, Root: root, Note: string(msg), SignedAt: t0.Add(time.Hour)}, vkey
}

// testOptions make a forwarder quick to retry, so that tests do not wait
// for the production backoff.
func testOptions() siem.Options {
	return siem.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		PollInterval: 100 * time.Millisecond, StandbyRetry: 20 * time.Millisecond,
		DialTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second}
}

// start runs f until the returned function (also run at cleanup) stops it.
func start(t *testing.T, f *siem.Forwarder) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds, failing the test after patience.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// receiver is a SIEM stand-in. It accepts connections, parses what arrives
// on each with go-syslog's strict RFC 5424 parser (octet counting or LF
// framing), and keeps the messages by connection.
type receiver struct {
	t       *testing.T
	ln      net.Listener
	framing string
	// closeAfter, if set, makes the receiver drop its first connection
	// once that many messages arrived on it, with whatever is still unread.
	closeAfter int

	mu      sync.Mutex
	conns   [][]*rfc5424.SyslogMessage
	sockets []net.Conn
	dropped []*atomic.Bool // set when the receiver closed the connection itself
	errs    []string
	arrived chan struct{}
}

// listen starts a receiver on addr ("127.0.0.1:0" for any port), with TLS
// if tc is not nil.
func listen(t *testing.T, addr, framing string, tc *tls.Config, lc *net.ListenConfig, closeAfter int) *receiver {
	t.Helper()
	if lc == nil {
		lc = &net.ListenConfig{}
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	r := &receiver{t: t, ln: ln, framing: framing, closeAfter: closeAfter, arrived: make(chan struct{}, 1)}
	go r.serve()
	t.Cleanup(r.close)
	return r
}

func (r *receiver) addr() string { return r.ln.Addr().String() }

func (r *receiver) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		id := len(r.conns)
		r.conns = append(r.conns, nil)
		r.sockets = append(r.sockets, c)
		r.dropped = append(r.dropped, new(atomic.Bool))
		dropped := r.dropped[id]
		r.mu.Unlock()
		go r.read(id, c, dropped)
	}
}

func (r *receiver) read(id int, c net.Conn, dropped *atomic.Bool) {
	defer c.Close()
	listener := func(res *syslog.Result) {
		if dropped.Load() {
			return
		}
		r.mu.Lock()
		if res.Error != nil {
			r.errs = append(r.errs, fmt.Sprintf("connection %d: %v", id, res.Error))
		} else {
			r.conns[id] = append(r.conns[id], res.Message.(*rfc5424.SyslogMessage))
		}
		n := len(r.conns[id])
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
		if id == 0 && r.closeAfter > 0 && n == r.closeAfter {
			dropped.Store(true)
			c.Close()
		}
	}
	if r.framing != siem.FramingLF {
		octetcounting.NewParser(syslog.WithListener(listener), syslog.WithMachineOptions(rfc5424.WithCompliantMsg())).Parse(c)
		return
	}
	// LF framing: each line is a message, parsed by the same strict machine.
	// (go-syslog's own nontransparent parser needs a module that go.mod
	// does not list.)
	machine := rfc5424.NewMachine(rfc5424.WithCompliantMsg())
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m, err := machine.Parse(sc.Bytes())
		listener(&syslog.Result{Message: m, Error: err})
	}
}

// dropConnections closes every open connection, as a SIEM restarting does.
func (r *receiver) dropConnections() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.sockets {
		r.dropped[i].Store(true)
		c.Close()
	}
}

func (r *receiver) close() {
	r.ln.Close()
	r.dropConnections()
}

// snapshot returns the messages received so far, by connection.
func (r *receiver) snapshot() [][]*rfc5424.SyslogMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]*rfc5424.SyslogMessage, len(r.conns))
	for i, c := range r.conns {
		out[i] = append([]*rfc5424.SyslogMessage(nil), c...)
	}
	return out
}

// waitFor waits until cond holds for the messages received.
func (r *receiver) waitFor(what string, cond func(conns [][]*rfc5424.SyslogMessage) bool) [][]*rfc5424.SyslogMessage {
	r.t.Helper()
	timeout := time.NewTimer(patience)
	defer timeout.Stop()
	for {
		conns := r.snapshot()
		if cond(conns) {
			return conns
		}
		select {
		case <-r.arrived:
		case <-timeout.C:
			r.t.Fatalf("gave up waiting for %s; received %s", what, describe(conns))
		}
	}
}

// waitForEntries waits until every entry below n arrived.
func (r *receiver) waitForEntries(n int) [][]*rfc5424.SyslogMessage {
	r.t.Helper()
	return r.waitFor(fmt.Sprintf("entries 0 to %d", n-1), func(conns [][]*rfc5424.SyslogMessage) bool {
		seen := map[uint64]bool{}
		for _, c := range conns {
			for _, i := range entryIndexes(c) {
				seen[i] = true
			}
		}
		for i := range n {
			if !seen[uint64(i)] {
				return false
			}
		}
		return true
	})
}

// parseErrors returns the messages that did not parse.
func (r *receiver) parseErrors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// entryIndexes returns the index of each audit entry among msgs, in order
// (math.MaxUint64 for one without a readable index).
func entryIndexes(msgs []*rfc5424.SyslogMessage) []uint64 {
	var out []uint64
	for _, m := range msgs {
		if m.MsgID == nil || *m.MsgID != "audit" {
			continue
		}
		i, err := strconv.ParseUint((*m.StructuredData)["audit@32473"]["index"], 10, 64)
		if err != nil {
			i = math.MaxUint64
		}
		out = append(out, i)
	}
	return out
}

// describe summarises what each connection received, for failures.
func describe(conns [][]*rfc5424.SyslogMessage) string {
	var parts []string
	for i, c := range conns {
		idx := entryIndexes(c)
		switch len(idx) {
		case 0:
			parts = append(parts, fmt.Sprintf("connection %d: %d messages, no entries", i, len(c)))
		default:
			parts = append(parts, fmt.Sprintf("connection %d: %d messages, entries %d..%d (%d)", i, len(c), idx[0], idx[len(idx)-1], len(idx)))
		}
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// checkRun checks that the entries of one connection are consecutive
// indexes starting at from, and returns the index after the last.
func checkRun(t *testing.T, conn int, idx []uint64, from uint64) uint64 {
	t.Helper()
	for k, i := range idx {
		if i != from+uint64(k) {
			t.Fatalf("connection %d: entry %d at position %d, want %d (out of order or missing)", conn, i, k, from+uint64(k))
		}
	}
	return from + uint64(len(idx))
}

// pki is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type pki struct {
	caFile, certFile, keyFile string // the CA, and the client's certificate and key
	server                    tls.Certificate
	pool                      *x509.CertPool
	serverCert, serverKey     string // the server's PEM files, for rsyslog
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "某医院信息科 测试 CA", Organization: []string{"某医院"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage, ips []net.IP) (certPEM, keyPEM []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := &pki{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	serverPEM, serverKey := issue(2, "siem.xxyy-hospital.cn", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.serverCert, p.serverKey = write("server.pem", serverPEM), write("server.key", serverKey)
	if p.server, err = tls.X509KeyPair(serverPEM, serverKey); err != nil {
		t.Fatal(err)
	}
	clientPEM, clientKey := issue(3, "medguard-01", x509.ExtKeyUsageClientAuth, nil)
	p.certFile, p.keyFile = write("client.pem", clientPEM), write("client.key", clientKey)
	return p
}

// destination is a TLS destination at addr that trusts p's CA and presents
// p's client certificate (TLS 1.3, the default).
func (p *pki) destination(addr string) siem.Config {
	return siem.Config{Address: addr, Network: siem.NetworkTLS, CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile}
}

// serverConfig is the receiver's TLS configuration; it requires the
// client certificate.
func (p *pki) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}
