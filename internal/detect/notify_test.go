package detect_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"medguard/internal/detect"
)

var alert = detect.Alert{ID: "06h0alert", Rule: "bulk_read_user", Action: detect.ActFreeze, Username: "zhangwei",
	Key: "zhangwei", Count: 51, Threshold: 51, Frozen: true, Status: detect.StatusNew, CreatedAt: t0,
	Explanation: "bulk_read_user: 51 patients' records read by zhangwei"}

// trusting returns a pool holding the certificate of srv, an httptest TLS
// server.
func trusting(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

// The webhook's body is signed, over HTTPS: a receiver with the secret can
// check it.
func TestWebhookIsSigned(t *testing.T) {
	secret := []byte("告警共享密钥-2026")
	got := make(chan error, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, _ := strconv.ParseInt(r.Header.Get("X-Medguard-Timestamp"), 10, 64)
		var v struct{ Alert detect.Alert }
		switch {
		case r.TLS == nil:
			got <- errString("not over TLS")
		case r.Header.Get("X-Medguard-Signature") != detect.Sign(secret, ts, body):
			got <- errString("bad signature")
		case json.Unmarshal(body, &v) != nil || v.Alert.Username != "zhangwei":
			got <- errString("bad body: " + string(body))
		default:
			got <- nil
		}
	}))
	defer srv.Close()
	// The default client, trusting the receiver's CA.
	n := &detect.Notifier{Webhook: srv.URL, Secret: secret, RootCAs: trusting(srv)}
	if err := n.Send(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// A client of the caller's.
	n = &detect.Notifier{Webhook: srv.URL, Secret: secret, Client: srv.Client()}
	if err := n.Send(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// A signature made with another secret does not match.
	if detect.Sign([]byte("other"), 1, []byte("{}")) == detect.Sign(secret, 1, []byte("{}")) {
		t.Fatal("signature ignores the secret")
	}
}

// The webhook is never called in clear: not at an http:// URL, not after a
// redirect to one, and not at a server whose certificate is not trusted.
func TestWebhookIsNeverPlain(t *testing.T) {
	var plainHits, tlsHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plainHits.Add(1) }))
	defer plain.Close()
	redirecting := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tlsHits.Add(1)
		http.Redirect(w, r, plain.URL+"/alerts", http.StatusTemporaryRedirect) // 307 keeps the body
	}))
	defer redirecting.Close()
	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tlsHits.Add(100) }))
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	untrusted.StartTLS()
	defer untrusted.Close()

	secret := []byte("告警共享密钥-2026")
	for _, tt := range []struct {
		name string
		n    *detect.Notifier
		want string
	}{
		{"http URL", &detect.Notifier{Webhook: plain.URL, Secret: secret, Attempts: 1}, "https://"},
		{"http URL with the caller's client", &detect.Notifier{Webhook: plain.URL, Secret: secret, Client: plain.Client(), Attempts: 1}, "https://"},
		{"redirect to http", &detect.Notifier{Webhook: redirecting.URL, Secret: secret, RootCAs: trusting(redirecting), Attempts: 1}, "redirected to http://"},
		{"redirect to http with the caller's client", &detect.Notifier{Webhook: redirecting.URL, Secret: secret, Client: redirecting.Client(), Attempts: 1}, "redirected to http://"},
		{"untrusted certificate", &detect.Notifier{Webhook: untrusted.URL, Secret: secret, Attempts: 1}, "certificate"},
	} {
		err := tt.n.Send(context.Background(), alert)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want an error saying %q", tt.name, err, tt.want)
		}
	}
	if n := plainHits.Load(); n != 0 {
		t.Fatalf("the plain HTTP receiver was called %d times", n)
	}
	if n := tlsHits.Load(); n != 2 {
		t.Fatalf("the TLS receivers were called %d times, want the redirecting one twice", n)
	}
}

func TestCheckWebhook(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"https://alerts.xxyy-hospital.cn/medguard", true},
		{"HTTPS://10.20.0.9:8443/hook?token=x", true},
		{"http://alerts.xxyy-hospital.cn/medguard", false},
		{"ftp://alerts.xxyy-hospital.cn/", false},
		{"alerts.xxyy-hospital.cn/medguard", false},
		{"https:///medguard", false},
		{"https:alerts", false},
		{"", false},
	} {
		if err := detect.CheckWebhook(tt.url); (err == nil) != tt.ok {
			t.Errorf("CheckWebhook(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// selfSigned makes a self-signed certificate for 127.0.0.1 and localhost,
// and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail.xxyy-hospital.cn", Organization: []string{"某医院信息科"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// How a fake mail server treats TLS.
type smtpMode int

const (
	offersSTARTTLS  smtpMode = iota // offers STARTTLS and does it
	noSTARTTLS                      // plain only: does not offer STARTTLS
	refusesSTARTTLS                 // offers STARTTLS, then answers 454
	implicitTLS                     // TLS from the first byte (SMTPS)
)

// fakeSMTP is a mail server on 127.0.0.1 that records every command it
// receives, in clear or over TLS, and the mail.
type fakeSMTP struct {
	ln   net.Listener
	mode smtpMode
	cert tls.Certificate
	// ended receives once per conversation, when it ends.
	ended chan struct{}

	mu     sync.Mutex
	clear  []string // commands received in clear
	secure []string // commands received over TLS
	rcpts  []string
	data   strings.Builder
}

func startSMTP(t *testing.T, mode smtpMode, cert tls.Certificate) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSMTP{ln: ln, mode: mode, cert: cert, ended: make(chan struct{}, 16)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.converse(c)
			s.ended <- struct{}{}
		}
	}()
	return s
}

func (s *fakeSMTP) addr() string { return s.ln.Addr().String() }

// waitEnded waits for the end of a conversation.
func (s *fakeSMTP) waitEnded(t *testing.T) {
	t.Helper()
	select {
	case <-s.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the SMTP conversation did not end")
	}
}

func (s *fakeSMTP) converse(c net.Conn) {
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := &tls.Config{Certificates: []tls.Certificate{s.cert}}
	secure := s.mode == implicitTLS
	if secure {
		c = tls.Server(c, tc)
	}
	r := bufio.NewReader(c)
	say := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	say("220 mail.xxyy-hospital.cn ESMTP test")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		upper := strings.ToUpper(cmd)
		s.mu.Lock()
		if secure {
			s.secure = append(s.secure, cmd)
		} else {
			s.clear = append(s.clear, cmd)
		}
		s.mu.Unlock()
		switch {
		case strings.HasPrefix(upper, "EHLO"), strings.HasPrefix(upper, "HELO"):
			ext := []string{"mail.xxyy-hospital.cn", "8BITMIME"}
			if !secure && (s.mode == offersSTARTTLS || s.mode == refusesSTARTTLS) {
				ext = append(ext, "STARTTLS")
			}
			if secure {
				ext = append(ext, "AUTH PLAIN")
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				say("250" + sep + e)
			}
		case upper == "STARTTLS":
			if secure || s.mode != offersSTARTTLS {
				say("454 4.7.0 TLS not available")
				continue
			}
			say("220 2.0.0 ready to start TLS")
			t := tls.Server(c, tc)
			if err := t.Handshake(); err != nil {
				return
			}
			c, r, secure = t, bufio.NewReader(t), true
		case strings.HasPrefix(upper, "AUTH PLAIN"):
			say("235 2.7.0 accepted")
		case strings.HasPrefix(upper, "MAIL FROM:"):
			say("250 ok")
		case strings.HasPrefix(upper, "RCPT TO:"):
			s.mu.Lock()
			s.rcpts = append(s.rcpts, strings.TrimSpace(cmd[8:]))
			s.mu.Unlock()
			say("250 ok")
		case upper == "DATA":
			say("354 go ahead")
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
				s.mu.Lock()
				s.data.WriteString(l)
				s.mu.Unlock()
			}
			say("250 queued")
		case upper == "QUIT":
			say("221 bye")
			return
		default:
			say("502 unknown")
		}
	}
}

// commands returns the commands received in clear and over TLS.
func (s *fakeSMTP) commands() (clear, secure []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.clear...), append([]string(nil), s.secure...)
}

// checkMail checks that the mail arrived, to the right recipient, in
// Chinese and English.
func (s *fakeSMTP) checkMail(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := s.data.String()
	var subject string
	for _, l := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Subject: "); ok {
			subject, _ = new(mime.WordDecoder).DecodeHeader(v)
		}
	}
	if len(s.rcpts) != 1 || !strings.Contains(s.rcpts[0], "security@hospital.example") ||
		!strings.Contains(subject, "安全告警") || !strings.Contains(subject, "zhangwei") ||
		!strings.Contains(msg, "账号已冻结") || !strings.Contains(msg, "06h0alert") {
		t.Fatalf("rcpts %v subject %q\n%s", s.rcpts, subject, msg)
	}
}

// verbs returns the SMTP verbs of cmds.
func verbs(cmds []string) []string {
	var out []string
	for _, c := range cmds {
		v, _, _ := strings.Cut(strings.ToUpper(c), " ")
		out = append(out, v)
	}
	return out
}

// Email goes to a (local) mail server over STARTTLS: in clear, only the
// greeting and STARTTLS; the sign-in, the addresses and the alert over TLS.
func TestEmailOverSTARTTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := startSMTP(t, offersSTARTTLS, cert)
	n := &detect.Notifier{SMTP: srv.addr(), From: "medguard@hospital.example", To: []string{"security@hospital.example"},
		RootCAs: pool, Auth: smtp.PlainAuth("", "medguard", "Youjian#Mima2026", "127.0.0.1")}
	if err := n.Send(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	srv.waitEnded(t)
	clear, secure := srv.commands()
	if got := strings.Join(verbs(clear), " "); got != "EHLO STARTTLS" {
		t.Fatalf("in clear: %q, want only EHLO STARTTLS", clear)
	}
	if got := strings.Join(verbs(secure), " "); got != "EHLO AUTH MAIL RCPT DATA QUIT" {
		t.Fatalf("over TLS: %q", got)
	}
	cred, _ := base64.StdEncoding.DecodeString(strings.Fields(secure[1])[2])
	if string(cred) != "\x00medguard\x00Youjian#Mima2026" {
		t.Fatalf("AUTH PLAIN sent %q", cred)
	}
	srv.checkMail(t)
}

// Email goes to a mail server that speaks TLS from the first byte (SMTPS).
func TestEmailOverImplicitTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := startSMTP(t, implicitTLS, cert)
	n := &detect.Notifier{SMTP: srv.addr(), SMTPImplicitTLS: true, From: "medguard@hospital.example",
		To: []string{"security@hospital.example"}, RootCAs: pool}
	if err := n.Send(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	srv.waitEnded(t)
	if clear, _ := srv.commands(); len(clear) != 0 {
		t.Fatalf("commands in clear: %q", clear)
	}
	srv.checkMail(t)
}

// A mail server that does not offer STARTTLS, refuses it, or presents a
// certificate that is not trusted gets no alert — neither in clear nor
// otherwise — and Send says why.
func TestEmailIsNeverPlain(t *testing.T) {
	cert, pool := selfSigned(t)
	_, otherPool := selfSigned(t)
	for _, tt := range []struct {
		name      string
		mode      smtpMode
		roots     *x509.CertPool
		implicit  bool
		wantClear string // the verbs the server may see in clear
		want      string
	}{
		{"no STARTTLS", noSTARTTLS, pool, false, "EHLO", "does not offer STARTTLS"},
		{"STARTTLS refused", refusesSTARTTLS, pool, false, "EHLO STARTTLS", "STARTTLS"},
		{"untrusted certificate", offersSTARTTLS, otherPool, false, "EHLO STARTTLS", "certificate"},
		{"implicit TLS, untrusted certificate", implicitTLS, otherPool, true, "", "certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, tt.mode, cert)
			n := &detect.Notifier{SMTP: srv.addr(), SMTPImplicitTLS: tt.implicit, From: "medguard@hospital.example",
				To: []string{"security@hospital.example"}, RootCAs: tt.roots, Attempts: 1,
				Auth: smtp.PlainAuth("", "medguard", "Youjian#Mima2026", "127.0.0.1")}
			err := n.Send(context.Background(), alert)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Send: %v; want an error saying %q", err, tt.want)
			}
			if tt.mode == noSTARTTLS && !errors.Is(err, detect.ErrNoSTARTTLS) {
				t.Errorf("Send: %v is not ErrNoSTARTTLS", err)
			}
			srv.waitEnded(t)
			clear, secure := srv.commands()
			if got := strings.Join(verbs(clear), " "); got != tt.wantClear {
				t.Errorf("in clear: %q, want only %q", clear, tt.wantClear)
			}
			if len(secure) != 0 {
				t.Errorf("over TLS: %q", secure)
			}
			if srv.data.Len() != 0 || len(srv.rcpts) != 0 {
				t.Errorf("the mail was sent")
			}
		})
	}
}
