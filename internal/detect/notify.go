package detect

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// Notifier tells people of alerts: by webhook (the body signed with
// HMAC-SHA256) and by email (SMTP). Syslog needs nothing here: raising an
// alert is an audit entry ("alert.raise"), which the SIEM forwarder sends.
// Alerts carry usernames, rule names, counts and opaque ids only.
type Notifier struct {
	// Webhook is the URL alerts are POSTed to as JSON; Secret signs them:
	// X-Medguard-Signature: sha256=<hex HMAC-SHA256(Secret, timestamp "." body)>
	// with X-Medguard-Timestamp the Unix time, so a receiver can refuse replays.
	Webhook string
	Secret  []byte
	// SMTP is the mail server (host:port); From and To the addresses.
	SMTP     string
	From     string
	To       []string
	Auth     smtp.Auth
	Client   *http.Client
	Logger   *slog.Logger
	Attempts int // per channel; default 3
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
			if err = ch.send(ctx, a); err == nil {
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
	client := n.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
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
		b.WriteString("账户已冻结，需信息安全专员解除。The account is frozen until a security officer releases it.\r\n")
	}
	fmt.Fprintf(&b, "说明 Explanation: %s\r\n告警编号 Alert id: %s\r\n", a.Explanation, a.ID)
	return []byte(b.String())
}

func (n *Notifier) sendMail(_ context.Context, a Alert) error {
	return smtp.SendMail(n.SMTP, n.Auth, n.From, n.To, mailText(a, n.From, n.To))
}
