package detect

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Notifier tells people of alerts: by webhook (the body signed with
// HMAC-SHA256) and by email (SMTP). Syslog needs nothing here: raising an
// alert is an audit entry ("alert.raise"), which the SIEM forwarder sends.
// Alerts carry usernames, rule names, counts and opaque ids only.
//
// Both channels are encrypted, with no way around it: the webhook must be
// an https:// URL (and may not redirect elsewhere), and mail goes over
// implicit TLS or STARTTLS, which is required — a mail server that does
// not offer it gets nothing, never the alert in clear. Certificates are
// always verified, against RootCAs or the system's roots.
type Notifier struct {
	// Webhook is the https:// URL alerts are POSTed to as JSON; Secret
	// signs them:
	// X-Medguard-Signature: sha256=<hex HMAC-SHA256(Secret, timestamp "." body)>
	// with X-Medguard-Timestamp the Unix time, so a receiver can refuse replays.
	Webhook string
	Secret  []byte
	// SMTP is the mail server (host:port); From and To the addresses.
	SMTP string
	// SMTPImplicitTLS says the mail server speaks TLS from the first byte
	// (SMTPS, usually port 465); otherwise the conversation starts in
	// clear and must switch to TLS with STARTTLS before anything else.
	SMTPImplicitTLS bool
	From            string
	To              []string
	Auth            smtp.Auth
	// RootCAs are the CAs the webhook's and the mail server's certificates
	// must chain to; nil means the system's.
	RootCAs *x509.CertPool
	// Client posts to the webhook (default: one with a 10 s timeout that
	// trusts RootCAs). Whatever it is, redirects are followed to https://
	// URLs only.
	Client   *http.Client
	Logger   *slog.Logger
	Attempts int // per channel; default 3
}

// ErrNoSTARTTLS is returned when the mail server does not offer STARTTLS:
// the alert is not sent, as it would cross the network in clear.
var ErrNoSTARTTLS = errors.New("the mail server does not offer STARTTLS; the alert was not sent (alerts are never mailed in clear)")

// CheckWebhook reports whether raw may be an alert webhook: an absolute
// https:// URL with a host.
func CheckWebhook(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return errors.New("the alert webhook must be an https:// URL")
	case !strings.EqualFold(u.Scheme, "https"):
		return fmt.Errorf("the alert webhook must be an https:// URL, not %s:// (alerts are never sent in clear)", u.Scheme)
	}
	return nil
}

// tlsConfig is the TLS client configuration of both channels: TLS 1.2 or
// later, the peer's certificate verified against RootCAs (or the
// system's) for serverName.
func (n *Notifier) tlsConfig(serverName string) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: n.RootCAs, ServerName: serverName}
}

// Enabled reports whether any channel is configured.
func (n *Notifier) Enabled() bool {
	return n != nil && (n.Webhook != "" || (n.SMTP != "" && len(n.To) > 0))
}

// Notify sends the alert on every configured channel in the background,
// retrying with backoff; failures are logged, never lost silently.
func (n *Notifier) Notify(_ context.Context, a Alert) {
	if !n.Enabled() {
		return
	}
	go func() {
		if err := n.Send(context.Background(), a); err != nil && n.Logger != nil {
			n.Logger.Error("notifying an alert failed", "alert", a.ID, "rule", a.Rule, "error", err.Error())
		}
	}()
}

// Send sends the alert on every configured channel now.
func (n *Notifier) Send(ctx context.Context, a Alert) error {
	attempts := n.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	var errs []error
	for _, ch := range []struct {
		on   bool
		send func(context.Context, Alert) error
	}{{n.Webhook != "", n.postWebhook}, {n.SMTP != "" && len(n.To) > 0, n.sendMail}} {
		if !ch.on {
			continue
		}
		var err error
		for i := 0; i < attempts; i++ {
			if err = ch.send(ctx, a); err == nil || i == attempts-1 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(1<<i) * 200 * time.Millisecond):
			}
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Sign is the webhook signature of body sent at timestamp ts.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (n *Notifier) postWebhook(ctx context.Context, a Alert) error {
	if err := CheckWebhook(n.Webhook); err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"type": "medguard.alert", "alert": a})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Medguard-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Medguard-Signature", Sign(n.Secret, ts, body))
	var client http.Client
	if n.Client != nil {
		client = *n.Client
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = n.tlsConfig("")
		client = http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	// A redirect to http:// would resend the signed alert in clear.
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("the alert webhook redirected to %s://; not followed (alerts are never sent in clear)", req.URL.Scheme)
		}
		if len(via) >= 10 {
			return errors.New("the alert webhook redirected 10 times")
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// mailText is the alert as an email, in Chinese and English.
func mailText(a Alert, from string, to []string) []byte {
	var b strings.Builder
	subject := fmt.Sprintf("[medguard] 安全告警 Alert: %s — %s", a.Rule, a.Username)
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", from, strings.Join(to, ", "),
		mime.BEncoding.Encode("UTF-8", subject), a.CreatedAt.Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	fmt.Fprintf(&b, "规则 Rule: %s\r\n用户 User: %s\r\n", a.Rule, a.Username)
	if a.Frozen {
		b.WriteString("账号已冻结，需信息安全专员解除。The account is frozen until a security officer releases it.\r\n")
	}
	fmt.Fprintf(&b, "说明 Explanation: %s\r\n告警编号 Alert id: %s\r\n", a.Explanation, a.ID)
	return []byte(b.String())
}

// sendMail mails the alert over TLS: implicit TLS, or a conversation that
// must switch to TLS with STARTTLS before the server learns anything but
// this host's greeting. Unlike smtp.SendMail, which goes on in clear when
// the server offers no STARTTLS, it then stops with ErrNoSTARTTLS.
func (n *Notifier) sendMail(ctx context.Context, a Alert) error {
	return n.Mail(ctx, n.To, mailText(a, n.From, n.To))
}

// Mail sends a message (a whole RFC 5322 text: headers and body) from
// From to recipients through the mail server, over TLS as sendMail does:
// the posture reports (internal/reports) are delivered so, their PDF
// attached.
func (n *Notifier) Mail(ctx context.Context, recipients []string, msg []byte) error {
	host, _, err := net.SplitHostPort(n.SMTP)
	if err != nil {
		return fmt.Errorf("mail server %q: %w", n.SMTP, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dialer := &net.Dialer{}
	var conn net.Conn
	if n.SMTPImplicitTLS {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: n.tlsConfig(host)}).DialContext(ctx, "tcp", n.SMTP)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", n.SMTP)
	}
	if err != nil {
		return fmt.Errorf("mail server %s: %w", n.SMTP, err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail server %s: %w", n.SMTP, err)
	}
	defer c.Close()
	if !n.SMTPImplicitTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("mail server %s: %w", n.SMTP, ErrNoSTARTTLS)
		}
		if err := c.StartTLS(n.tlsConfig(host)); err != nil {
			return fmt.Errorf("mail server %s: STARTTLS: %w (the alert was not sent)", n.SMTP, err)
		}
	}
	if n.Auth != nil {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("mail server %s does not offer AUTH, but a user is configured", n.SMTP)
		}
		if err := c.Auth(n.Auth); err != nil {
			return fmt.Errorf("mail server %s: %w", n.SMTP, err)
		}
	}
	if err := c.Mail(n.From); err != nil {
		return fmt.Errorf("mail server %s: MAIL FROM: %w", n.SMTP, err)
	}
	for _, to := range recipients {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("mail server %s: RCPT TO: %w", n.SMTP, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail server %s: DATA: %w", n.SMTP, err)
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return fmt.Errorf("mail server %s: %w", n.SMTP, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail server %s: %w", n.SMTP, err)
	}
	// The server has accepted the mail: a failed goodbye must not make
	// Send mail it again.
	c.Quit()
	return nil
}
