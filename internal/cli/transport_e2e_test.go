package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"medguard/internal/cli"
	"medguard/internal/detect"
	"medguard/internal/siem"
	"medguard/internal/storage/storagetest"
	"medguard/internal/transport"
)

// serverCertificate makes a self-signed certificate for 127.0.0.1 and
// writes it to a PEM file that a client may trust as its CA.
func serverCertificate(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "siem.xxyy-hospital.cn"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// serve refuses to start with a link that would be plain without an
// explicit opt-in, and says which flag is at fault.
func TestServeRefusesPlainLinks(t *testing.T) {
	secret := map[string]string{"MEDGUARD_ALERT_WEBHOOK_SECRET": "告警共享密钥-2026-abcdef"}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--siem", "tcp://127.0.0.1:514"}, []string{"--siem", "--siem-insecure", "tls://"}},
		{[]string{"--siem", "tls://127.0.0.1:6514", "--siem-insecure"}, []string{"--siem", "tcp://"}},
		{[]string{"--siem-insecure"}, []string{"--siem-insecure", "without --siem"}},
		{[]string{"--siem", "tls://127.0.0.1:6514?tls_min=1.1"}, []string{"--siem", "tls_min"}},
		{[]string{"--alert-webhook", "http://alerts.xxyy-hospital.cn/medguard"}, []string{"--alert-webhook", "https://"}},
		{[]string{"--alert-smtp", "smtp+plain://mail.xxyy-hospital.cn", "--alert-email-to", "security@xxyy-hospital.cn"},
			[]string{"--alert-smtp", "smtp (STARTTLS) or smtps"}},
		{[]string{"--alert-smtp", "smtps://medguard:Mima2026@mail.xxyy-hospital.cn", "--alert-email-to", "security@xxyy-hospital.cn"},
			[]string{"--alert-smtp", "MEDGUARD_ALERT_SMTP_PASSWORD"}},
		{[]string{"--alert-ca", "/nonexistent/ca.pem"}, []string{"--alert-ca", "without --alert-webhook"}},
		{[]string{"--alert-webhook", "https://alerts.xxyy-hospital.cn/medguard", "--alert-ca", "/nonexistent/ca.pem"}, []string{"--alert-ca"}},
	} {
		var stderr bytes.Buffer
		err := cli.Run(context.Background(), append([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, tt.args...),
			func(k string) string { return secret[k] }, io.Discard, &stderr)
		if err == nil {
			t.Errorf("serve %q started", tt.args)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("serve %q: %v; want it to say %q", tt.args, err, w)
			}
		}
		if strings.Contains(err.Error(), "Mima2026") {
			t.Errorf("serve %q: the error shows the password: %v", tt.args, err)
		}
	}
}

// With the explicit opt-in, a plain SIEM link is allowed, warned of at
// start and counted in /metrics; the API's link is TLS. A PostgreSQL
// database reached with sslmode=disable (as in CI) is warned of and
// counted too.
func TestServeCountsPlainLinks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	s := startEnv(t, map[string]string{"MEDGUARD_SIEM_INSECURE": "true"}, "--siem", "tcp://"+ln.Addr().String())
	_, _, body := s.do("GET", "/metrics", "", nil)
	for _, want := range []string{`medguard_insecure_links{link="siem"} 1`, `medguard_insecure_links{link="api"} 0`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"msg":"a link is not encrypted","link":"siem"`) || !strings.Contains(logs, `"opt_in":"--siem-insecure"`) {
		t.Errorf("no warning of the plain SIEM link:\n%s", logs)
	}
	if strings.Contains(logs, `"msg":"a link is not encrypted","link":"api"`) {
		t.Errorf("the API's link is reported plain:\n%s", logs)
	}
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		if bytes.Contains(body, []byte(`link="database"`)) {
			t.Errorf("SQLite is counted as a link:\n%s", body)
		}
		return
	}
	u, _ := url.Parse(dsn)
	if u.Query().Get("sslmode") != "disable" {
		return
	}
	if !bytes.Contains(body, []byte(`medguard_insecure_links{link="database"} 1`)) {
		t.Errorf("/metrics does not count the plain database link")
	}
	if !strings.Contains(logs, `"link":"database"`) || !strings.Contains(logs, `"opt_in":"sslmode=disable"`) {
		t.Errorf("no warning of the plain database link:\n%s", logs)
	}
}

// App.Transport lists every link with whether it is encrypted, for the
// compliance report.
func TestTransportStatus(t *testing.T) {
	ctx := context.Background()
	cfg := cli.Config{DataDir: t.TempDir(),
		SIEM: &siem.Config{Address: "10.20.0.8:514", Network: siem.NetworkTCP, Insecure: true},
		Notifier: &detect.Notifier{Webhook: "https://alerts.xxyy-hospital.cn/medguard", Secret: []byte("告警共享密钥-2026-abcdef"),
			SMTP: "localhost:465", SMTPImplicitTLS: true, To: []string{"security@xxyy-hospital.cn"}}}
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn != "" {
		cfg.DB = storagetest.FreshSchema(t, dsn)
	}
	app, err := cli.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	st := app.Transport.Status()
	want := map[string]transport.Link{
		transport.SIEM: {Name: "siem", Target: "10.20.0.8:514", Encrypted: false, Protocol: "plain TCP", OptIn: "--siem-insecure",
			Note: "the audit log goes to the SIEM in clear (tcp:// with --siem-insecure); use tls://"},
		transport.Webhook: {Name: "webhook", Target: "alerts.xxyy-hospital.cn", Encrypted: true, Protocol: "HTTPS, TLS 1.2 or later"},
		transport.SMTP: {Name: "smtp", Target: "localhost:465", Encrypted: true, Protocol: "implicit TLS (SMTPS), TLS 1.2 or later",
			Local: true},
	}
	for name, w := range want {
		if got, ok := st.Link(name); !ok || got != w {
			t.Errorf("link %s: %+v, want %+v", name, got, w)
		}
	}
	db, hasDB := st.Link(transport.Database)
	switch {
	case dsn == "" && hasDB:
		t.Errorf("SQLite is listed as a link: %+v", db)
	case dsn != "" && (!hasDB || db.Target == ""):
		t.Errorf("PostgreSQL is not listed: %+v", st)
	case dsn != "" && strings.Contains(dsn, "sslmode=disable") && (db.Encrypted || db.OptIn != "sslmode=disable"):
		t.Errorf("PostgreSQL with sslmode=disable: %+v", db)
	}
	plain := st.Plain()
	if len(plain) == 0 || plain[0].Name != "database" && plain[0].Name != "siem" {
		t.Errorf("plain links: %+v", plain)
	}
}

// Alerts reach a webhook whose certificate chains to --alert-ca, and
// never a mail server that does not offer STARTTLS: serve logs why.
func TestServeNotifiesOnlyOverTLS(t *testing.T) {
	hook := make(chan *http.Request, 16)
	wh := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hook <- r }))
	defer wh.Close()
	caPath := filepath.Join(t.TempDir(), "webhook-ca.pem")
	os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: wh.Certificate().Raw}), 0o600)

	// A mail server that speaks only in clear.
	mail, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mail.Close()
	var mu sync.Mutex
	var commands []string
	go func() {
		for {
			c, err := mail.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprint(c, "220 mail.xxyy-hospital.cn ESMTP\r\n")
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					mu.Lock()
					commands = append(commands, strings.TrimSpace(line))
					mu.Unlock()
					fmt.Fprint(c, "250 ok\r\n")
				}
			}()
		}
	}()

	s := startEnv(t, map[string]string{"MEDGUARD_ALERT_WEBHOOK_SECRET": "告警共享密钥-2026-abcdef"},
		"--alert-webhook", wh.URL+"/medguard", "--alert-ca", caPath,
		"--alert-smtp", mail.Addr().String(), "--alert-email-to", "security@xxyy-hospital.cn")
	// Ten failed sign-ins from one address raise failed_signin_ip.
	for i := range 10 {
		s.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": fmt.Sprintf("nobody%d", i), "password": "Wrong#Pass2026"})
	}
	select {
	case r := <-hook:
		if r.TLS == nil || r.Header.Get("X-Medguard-Signature") == "" {
			t.Fatalf("webhook request: TLS %v, signature %q", r.TLS, r.Header.Get("X-Medguard-Signature"))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the webhook got no alert\n%s", s.logs)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.logs.String(), "does not offer STARTTLS") {
		if time.Now().After(deadline) {
			t.Fatalf("no failure to mail logged\n%s", s.logs)
		}
		time.Sleep(20 * time.Millisecond) // polling the log, not timing anything
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range commands {
		if v, _, _ := strings.Cut(strings.ToUpper(c), " "); v != "EHLO" {
			t.Fatalf("the mail server got %q in clear: %q", c, commands)
		}
	}
}
