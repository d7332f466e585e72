package cli_test

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// "medguard serve --siem tls://…" forwards every audit entry (and the
// signed checkpoints) to the SIEM as RFC 5424 messages whose MSG is the
// entry's leaf, over TLS 1.3.
func TestServeForwardsTheAuditLogToASIEM(t *testing.T) {
	cert, caPath := serverCertificate(t)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(raw, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	defer ln.Close()
	var (
		mu   sync.Mutex
		msgs []*rfc5424.SyslogMessage
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go octetcounting.NewParser(syslog.WithListener(func(r *syslog.Result) {
				if m, ok := r.Message.(*rfc5424.SyslogMessage); ok && r.Error == nil {
					mu.Lock()
					msgs = append(msgs, m)
					mu.Unlock()
				}
			}), syslog.WithMachineOptions(rfc5424.WithCompliantMsg())).Parse(c)
		}
	}()

	s := start(t, "--siem", "tls://"+ln.Addr().String()+"?hostname=his-01&ca="+url.QueryEscape(caPath), "--checkpoint-every", "50ms")
	token := s.admin()
	var ids []string
	for _, code := range []string{"CARD", "NEUR"} {
		_, h, _ := s.do("POST", "/api/v1/departments", token, map[string]string{"code": code, "name": "心内科" + code})
		ids = append(ids, h.Get("X-Request-Id"))
	}
	// Poll until the SIEM has both entries and a checkpoint covering them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		var entries, checkpoints int
		for _, m := range msgs {
			msg := ""
			if m.Message != nil {
				msg = *m.Message
			}
			switch {
			case m.MsgID != nil && *m.MsgID == "checkpoint":
				checkpoints++
			case m.Hostname != nil && *m.Hostname == "his-01" && *m.Appname == "medguard" &&
				strings.HasPrefix(msg, "\ufeff{") && (strings.Contains(msg, `"request_id":"`+ids[0]+`"`) ||
				strings.Contains(msg, `"request_id":"`+ids[1]+`"`)):
				entries++
			}
		}
		n := len(msgs)
		mu.Unlock()
		if entries == 2 && checkpoints > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SIEM got %d messages, %d of the entries, %d checkpoints\n%s", n, entries, checkpoints, s.logs)
		}
		time.Sleep(20 * time.Millisecond) // polling for delivery, not timing it
	}
	if st, _, body := s.do("GET", "/metrics", "", nil); st != 200 || !bytes.Contains(body, []byte("medguard_siem_lag_entries")) ||
		!bytes.Contains(body, []byte("medguard_siem_connected 1")) || !bytes.Contains(body, []byte(`medguard_insecure_links{link="siem"} 0`)) {
		t.Fatalf("metrics: %d\n%s", st, body)
	}
	if bytes.Contains([]byte(s.logs.String()), []byte("心内科")) {
		t.Fatal("names in the server log")
	}
}
