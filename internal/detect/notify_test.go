package detect_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"medguard/internal/detect"
)

var alert = detect.Alert{ID: "06h0alert", Rule: "bulk_read_user", Action: detect.ActFreeze, Username: "zhangwei",
	Key: "zhangwei", Count: 51, Threshold: 51, Frozen: true, Status: detect.StatusNew, CreatedAt: t0,
	Explanation: "bulk_read_user: 51 patients' records read by zhangwei"}

// The webhook's body is signed: a receiver with the secret can check it.
func TestWebhookIsSigned(t *testing.T) {
	secret := []byte("告警共享密钥-2026")
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, _ := strconv.ParseInt(r.Header.Get("X-Medguard-Timestamp"), 10, 64)
		var v struct{ Alert detect.Alert }
		switch {
		case r.Header.Get("X-Medguard-Signature") != detect.Sign(secret, ts, body):
			got <- errString("bad signature")
		case json.Unmarshal(body, &v) != nil || v.Alert.Username != "zhangwei":
			got <- errString("bad body: " + string(body))
		default:
			got <- nil
		}
	}))
	defer srv.Close()
	n := &detect.Notifier{Webhook: srv.URL, Secret: secret}
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

type errString string

func (e errString) Error() string { return string(e) }

// Email goes to a real (local) SMTP server, in Chinese and English.
func TestEmailThroughSMTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var rcpts []string
	var data strings.Builder
	done := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		defer close(done)
		r := bufio.NewReader(c)
		say := func(s string) { c.Write([]byte(s + "\r\n")) }
		say("220 localhost ESMTP test")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
				say("250 localhost")
			case strings.HasPrefix(cmd, "MAIL FROM:"):
				say("250 ok")
			case strings.HasPrefix(cmd, "RCPT TO:"):
				mu.Lock()
				rcpts = append(rcpts, strings.TrimSpace(line[8:]))
				mu.Unlock()
				say("250 ok")
			case cmd == "DATA":
				say("354 go ahead")
				for {
					l, err := r.ReadString('\n')
					if err != nil || l == ".\r\n" {
						break
					}
					mu.Lock()
					data.WriteString(l)
					mu.Unlock()
				}
				say("250 queued")
			case cmd == "QUIT":
				say("221 bye")
				return
			default:
				say("502 unknown")
			}
		}
	}()
	n := &detect.Notifier{SMTP: ln.Addr().String(), From: "medguard@hospital.example", To: []string{"security@hospital.example"}}
	if err := n.Send(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the SMTP conversation did not end")
	}
	mu.Lock()
	defer mu.Unlock()
	msg := data.String()
	var subject string
	for _, l := range strings.Split(msg, "\r\n") {
		if s, ok := strings.CutPrefix(l, "Subject: "); ok {
			subject, _ = new(mime.WordDecoder).DecodeHeader(s)
		}
	}
	if len(rcpts) != 1 || !strings.Contains(rcpts[0], "security@hospital.example") ||
		!strings.Contains(subject, "安全告警") || !strings.Contains(subject, "zhangwei") ||
		!strings.Contains(msg, "账户已冻结") || !strings.Contains(msg, "06h0alert") {
		t.Fatalf("rcpts %v subject %q\n%s", rcpts, subject, msg)
	}
}
