package siem_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/siem"
	"medguard/internal/storage"
)

const hostname = "medguard-01.xxyy-hospital.cn"

// TestDelivery sends a log of 2,500 entries (three batches), a checkpoint
// and 10 more entries over each transport and framing — TLS 1.3, and plain
// TCP by the explicit insecure opt-in — and checks every message with a
// strict RFC 5424 parser: order and completeness of the indexes, the
// structured data, and MSG as the BOM and the leaf exactly.
func TestDelivery(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name, network, framing string
	}{
		{"tcp octet counting", siem.NetworkTCP, siem.FramingOctet},
		{"tcp lf", siem.NetworkTCP, siem.FramingLF},
		{"tls octet counting", siem.NetworkTLS, siem.FramingOctet},
		{"tls lf", siem.NetworkTLS, siem.FramingLF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, log := openLog(t)
			appendEntries(t, log, 0, 2500)
			cfg := siem.Config{Network: tt.network, Framing: tt.framing, Hostname: hostname, Insecure: true}
			var tc *tls.Config
			if tt.network == siem.NetworkTLS {
				tc = p.serverConfig()
				cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.Insecure = p.caFile, p.certFile, p.keyFile, false
			}
			r := listen(t, "127.0.0.1:0", tt.framing, tc, nil, 0)
			cfg.Address = r.addr()
			f, err := siem.New(db, cfg, testOptions())
			if err != nil {
				t.Fatal(err)
			}
			// A checkpoint queued before its entries were sent waits for
			// them, and then follows them.
			cp, vkey := signedCheckpoint(t, db)
			f.Checkpoint(cp)
			start(t, f)
			r.waitForEntries(2500)
			appendEntries(t, log, 2500, 10)
			f.Notify()
			conns := r.waitForEntries(2510)
			if errs := r.parseErrors(); len(errs) > 0 {
				t.Fatalf("messages that do not parse: %v", errs)
			}
			if len(conns) != 1 {
				t.Fatalf("%d connections, want 1: %s", len(conns), describe(conns))
			}
			msgs := conns[0]
			if n := checkRun(t, 0, entryIndexes(msgs), 0); n != 2510 || len(msgs) != 2511 {
				t.Fatalf("%d entries and %d messages, want 2510 entries and a checkpoint", n, len(msgs))
			}
			if *msgs[2500].MsgID != "checkpoint" {
				t.Fatalf("message 2500 is %s, want the checkpoint of size 2500", *msgs[2500].MsgID)
			}
			checkCheckpointMessage(t, msgs[2500], cp, vkey, tt.framing)
			msgs = append(msgs[:2500:2500], msgs[2501:]...)
			stored := leaves(t, db)
			for i, m := range msgs[:2510] {
				checkEntryMessage(t, m, uint64(i), stored[i])
			}

			// The receiver may have everything before the acknowledgement
			// reaches the forwarder.
			eventually(t, "the cursor at 2510", func() bool { return f.Status().Cursor == 2510 })
			s := f.Status()
			if !s.Active || s.Standby || !s.Connected || s.Cursor != 2510 || s.Head != 2510 || s.Lag != 0 ||
				s.Delivered != 2510 || s.CheckpointsQueued != 0 || s.Destination != cfg.Address {
				t.Errorf("status %+v", s)
			}
			if want := map[string]string{siem.NetworkTLS: "TLS 1.3", siem.NetworkTCP: ""}[tt.network]; s.TLSVersion != want {
				t.Errorf("TLS version %q, want %q", s.TLSVersion, want)
			}
		})
	}
}

// checkEntryMessage checks the message of the entry at index i against its
// stored leaf.
func checkEntryMessage(t *testing.T, m *rfc5424.SyslogMessage, i uint64, leaf []byte) {
	t.Helper()
	if *m.Message != "\ufeff"+string(leaf) {
		t.Fatalf("entry %d: MSG\n%q\nis not the BOM and the leaf\n%q", i, *m.Message, leaf)
	}
	e, err := audit.ParseLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	sd := (*m.StructuredData)["audit@32473"]
	want := map[string]string{
		"index": strconv.FormatUint(i, 10), "actor": e.Actor, "action": e.Action, "outcome": e.Outcome,
		"decision": e.Decision, "requestId": e.RequestID, "breakGlass": strconv.FormatBool(e.BreakGlass),
	}
	for k, v := range want {
		if sd[k] != v {
			t.Fatalf("entry %d: SD param %s = %q, want %q", i, k, sd[k], v)
		}
	}
	severity := uint8(6)
	if e.Decision == audit.Deny {
		severity = 4
	} else if e.BreakGlass {
		severity = 5
	}
	if *m.Facility != 10 || *m.Severity != severity || !m.Timestamp.Equal(e.Time) || *m.Hostname != hostname ||
		*m.Appname != "medguard" || m.ProcID != nil || *m.MsgID != "audit" {
		t.Fatalf("entry %d: header facility %d severity %d (want %d) time %v host %s app %s msgid %s",
			i, *m.Facility, *m.Severity, severity, m.Timestamp, *m.Hostname, *m.Appname, *m.MsgID)
	}
}

// checkCheckpointMessage checks a checkpoint's message: its size, and a
// note that still verifies.
func checkCheckpointMessage(t *testing.T, m *rfc5424.SyslogMessage, cp audit.Checkpoint, vkey, framing string) {
	t.Helper()
	if got := (*m.StructuredData)["checkpoint@32473"]["size"]; got != strconv.FormatUint(cp.Size, 10) {
		t.Fatalf("checkpoint size %q, want %d", got, cp.Size)
	}
	body, ok := strings.CutPrefix(*m.Message, "\ufeff")
	if !ok {
		t.Fatalf("checkpoint MSG without a BOM: %q", *m.Message)
	}
	if framing == siem.FramingLF {
		body = strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(body)
	}
	if body != cp.Note {
		t.Fatalf("checkpoint note\n%q\nwant\n%q", body, cp.Note)
	}
	if _, size, _, err := audit.OpenCheckpoint([]byte(body), vkey); err != nil || size != cp.Size {
		t.Fatalf("the received checkpoint does not verify: size %d, %v", size, err)
	}
}

// TestUntrustedReceiver checks that a receiver whose certificate does not
// chain to the configured CA gets nothing, and that Status says why.
func TestUntrustedReceiver(t *testing.T) {
	db, log := openLog(t)
	appendEntries(t, log, 0, 10)
	real, other := newPKI(t), newPKI(t)
	r := listen(t, "127.0.0.1:0", siem.FramingOctet, real.serverConfig(), nil, 0)
	f, err := siem.New(db, siem.Config{Address: r.addr(), Network: siem.NetworkTLS, CAFile: other.caFile,
		CertFile: other.certFile, KeyFile: other.keyFile}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	start(t, f)
	eventually(t, "a failed handshake", func() bool { return strings.Contains(f.Status().LastError, "certificate") })
	if s := f.Status(); s.Connected || s.Cursor != 0 || s.Lag != 10 {
		t.Errorf("status %+v", s)
	}
	for _, c := range r.snapshot() {
		if len(c) > 0 {
			t.Fatalf("an untrusted receiver got %d messages", len(c))
		}
	}
}

// TestOutage appends entries while the SIEM is down and checks that all of
// them arrive, in order, once it is back.
func TestOutage(t *testing.T) {
	db, log := openLog(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the SIEM is down
	p := newPKI(t)
	f, err := siem.New(db, p.destination(addr), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	start(t, f)
	appendEntries(t, log, 0, 300)
	f.Notify()
	eventually(t, "a failed connection", func() bool {
		s := f.Status()
		return s.LastError != "" && !s.Connected && s.Head == 300 && s.Lag == 300
	})
	appendEntries(t, log, 300, 1200)
	f.Notify()

	r := listen(t, addr, siem.FramingOctet, p.serverConfig(), nil, 0) // the SIEM is back
	conns := r.waitForEntries(1500)
	for i, c := range conns {
		if idx := entryIndexes(c); len(idx) > 0 {
			checkRun(t, i, idx, idx[0])
		}
	}
	if idx := entryIndexes(conns[0]); len(idx) == 0 || idx[0] != 0 {
		t.Fatalf("the first connection does not start at the cursor 0: %s", describe(conns))
	}
	eventually(t, "the cursor at the head", func() bool { s := f.Status(); return s.Cursor == 1500 && s.Lag == 0 })
	if errs := r.parseErrors(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// TestReceiverDropsConnection closes the receiver's end of an idle
// connection, as a SIEM restarting does: the next entries go over a new
// connection, resent from the cursor, none lost.
func TestReceiverDropsConnection(t *testing.T) {
	db, log := openLog(t)
	p := newPKI(t)
	r := listen(t, "127.0.0.1:0", siem.FramingOctet, p.serverConfig(), nil, 0)
	f, err := siem.New(db, p.destination(r.addr()), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	start(t, f)
	appendEntries(t, log, 0, 100)
	f.Notify()
	r.waitForEntries(100)
	eventually(t, "the cursor at 100", func() bool { return f.Status().Cursor == 100 })

	r.dropConnections()
	appendEntries(t, log, 100, 50)
	f.Notify()
	conns := r.waitForEntries(150)
	if len(conns) != 2 {
		t.Fatalf("%d connections, want 2: %s", len(conns), describe(conns))
	}
	checkRun(t, 0, entryIndexes(conns[0]), 0)
	if n := checkRun(t, 1, entryIndexes(conns[1]), 100); n != 150 {
		t.Fatalf("the new connection carried entries up to %d, want from 100 to 150", n)
	}
}

// TestCursorSurvivesRestart stops a forwarder and starts another on the
// same database: it carries on from the saved cursor.
func TestCursorSurvivesRestart(t *testing.T) {
	db, log := openLog(t)
	p := newPKI(t)
	r := listen(t, "127.0.0.1:0", siem.FramingOctet, p.serverConfig(), nil, 0)
	cfg := p.destination(r.addr())
	cfg.Name = "安全监测平台"
	f1, err := siem.New(db, cfg, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, f1)
	appendEntries(t, log, 0, 100)
	f1.Notify()
	r.waitForEntries(100)
	eventually(t, "the cursor at 100", func() bool { return f1.Status().Cursor == 100 })
	stop()

	appendEntries(t, log, 100, 50) // while no server forwards
	f2, err := siem.New(db, cfg, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	start(t, f2)
	conns := r.waitForEntries(150)
	if len(conns) != 2 {
		t.Fatalf("%d connections, want 2: %s", len(conns), describe(conns))
	}
	if n := checkRun(t, 1, entryIndexes(conns[1]), 100); n != 150 {
		t.Fatalf("the restarted forwarder sent entries up to %d, want from 100 to 150", n)
	}
	eventually(t, "the stored cursor at 150", func() bool { return storedCursor(t, db, "安全监测平台") == 150 })
}

// TestStartNow checks that a new destination with start=now gets only the
// entries appended after it was added.
func TestStartNow(t *testing.T) {
	db, log := openLog(t)
	appendEntries(t, log, 0, 100)
	p := newPKI(t)
	r := listen(t, "127.0.0.1:0", siem.FramingLF, p.serverConfig(), nil, 0)
	cfg := p.destination(r.addr())
	cfg.Framing, cfg.StartAt = siem.FramingLF, siem.StartNow
	f, err := siem.New(db, cfg, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	start(t, f)
	eventually(t, "the new cursor", func() bool { s := f.Status(); return s.Active && s.Cursor == 100 })
	appendEntries(t, log, 100, 20)
	f.Notify()
	conns := r.waitFor("entries 100 to 119", func(conns [][]*rfc5424.SyslogMessage) bool {
		return len(conns) > 0 && len(entryIndexes(conns[0])) >= 20
	})
	if n := checkRun(t, 0, entryIndexes(conns[0]), 100); n != 120 {
		t.Fatalf("entries up to %d, want 100 to 120", n)
	}
}

// TestStandby runs two forwarders for one destination on PostgreSQL, as
// two servers would: one forwards, the other waits, and takes over from
// the cursor when the first stops.
func TestStandby(t *testing.T) {
	db, log := openLog(t)
	if db.Dialect != storage.Postgres {
		t.Skip("one process owns a SQLite database; the standby lock is PostgreSQL's (set MEDGUARD_TEST_POSTGRES)")
	}
	p := newPKI(t)
	r := listen(t, "127.0.0.1:0", siem.FramingOctet, p.serverConfig(), nil, 0)
	cfg := p.destination(r.addr())
	f1, err := siem.New(db, cfg, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	f2, err := siem.New(db, cfg, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	stop1 := start(t, f1)
	eventually(t, "the first server to forward", func() bool { return f1.Status().Active })
	start(t, f2)
	eventually(t, "the second server on standby", func() bool { return f2.Status().Standby })
	appendEntries(t, log, 0, 200)
	f1.Notify()
	f2.Notify()
	r.waitForEntries(200)
	eventually(t, "the cursor at 200", func() bool { return f1.Status().Cursor == 200 })
	if s := f2.Status(); s.Active || !s.Standby || s.Delivered != 0 {
		t.Fatalf("the standby server: %+v", s)
	}

	stop1()
	eventually(t, "the second server to take over", func() bool { return f2.Status().Active })
	appendEntries(t, log, 200, 30)
	f2.Notify()
	conns := r.waitForEntries(230)
	if len(conns) != 2 {
		t.Fatalf("%d connections, want 2: %s", len(conns), describe(conns))
	}
	if n := checkRun(t, 1, entryIndexes(conns[1]), 200); n != 230 {
		t.Fatalf("the second server sent entries up to %d, want from 200 to 230", n)
	}
}

// storedCursor reads a destination's cursor from the database.
func storedCursor(t *testing.T, db *storage.DB, name string) int64 {
	var next int64
	if err := db.QueryRowContext(context.Background(), `SELECT next_idx FROM siem_cursor WHERE destination = $1`, name).Scan(&next); err != nil {
		t.Fatal(err)
	}
	return next
}

// TestNewChecksFiles checks that New reports unusable TLS files, naming
// the option at fault.
func TestNewChecksFiles(t *testing.T) {
	db, _ := openLog(t)
	p := newPKI(t)
	tests := []struct {
		cfg   siem.Config
		field string
	}{
		{siem.Config{CAFile: t.TempDir() + "/missing.pem"}, "ca"},
		{siem.Config{CAFile: p.keyFile}, "ca"},
		{siem.Config{CertFile: p.certFile, KeyFile: p.caFile}, "cert"},
	}
	for _, tt := range tests {
		tt.cfg.Address, tt.cfg.Network = "127.0.0.1:6514", siem.NetworkTLS
		_, err := siem.New(db, tt.cfg, siem.Options{})
		var e *medguard.Error
		if !errors.As(err, &e) || e.Kind != medguard.Invalid || e.Field != tt.field {
			t.Errorf("New(%+v): %v; want Invalid naming %s", tt.cfg, err, tt.field)
		}
	}
}

// TestTLS13ByDefault checks that a receiver that cannot do TLS 1.3 gets
// nothing by default, and everything with tls_min=1.2.
func TestTLS13ByDefault(t *testing.T) {
	db, log := openLog(t)
	appendEntries(t, log, 0, 20)
	p := newPKI(t)
	tc := p.serverConfig()
	tc.MaxVersion = tls.VersionTLS12
	r := listen(t, "127.0.0.1:0", siem.FramingOctet, tc, nil, 0)
	cfg := p.destination(r.addr())
	f, err := siem.New(db, cfg, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, f)
	eventually(t, "a refused handshake", func() bool { return strings.Contains(f.Status().LastError, "handshake") })
	stop()
	if s := f.Status(); s.Connected || s.Cursor != 0 || s.Delivered != 0 {
		t.Fatalf("status %+v", s)
	}
	for _, c := range r.snapshot() {
		if len(c) > 0 {
			t.Fatalf("a TLS 1.2 receiver got %d messages without tls_min=1.2", len(c))
		}
	}

	cfg.TLSMin = siem.TLS12
	if f, err = siem.New(db, cfg, testOptions()); err != nil {
		t.Fatal(err)
	}
	start(t, f)
	r.waitForEntries(20)
	eventually(t, "the cursor at 20", func() bool { return f.Status().Cursor == 20 })
	if s := f.Status(); s.TLSVersion != "TLS 1.2" {
		t.Errorf("TLS version %q, want TLS 1.2", s.TLSVersion)
	}
}
