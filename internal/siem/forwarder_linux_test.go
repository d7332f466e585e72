package siem_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"medguard/internal/siem"
)

// TestReceiverFailsMidBatch has the receiver read 300 messages of the
// first batch of 1,000 and then close the connection with the rest unread,
// as a SIEM that crashes does. The receiver's small socket buffer keeps the
// batch from being acknowledged by its TCP stack alone, so the forwarder
// must not count the batch as delivered: the cursor stays at 0 and the new
// connection starts there. (Linux: delivery is judged by the socket's
// acknowledged bytes.)
func TestReceiverFailsMidBatch(t *testing.T) {
	db, log := openLog(t)
	appendEntries(t, log, 0, 1500)
	small := &net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	p := newPKI(t)
	r := listen(t, "127.0.0.1:0", siem.FramingOctet, p.serverConfig(), small, 300)
	f, err := siem.New(db, p.destination(r.addr()), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	start(t, f)
	conns := r.waitForEntries(1500)
	if n := checkRun(t, 0, entryIndexes(conns[0]), 0); n != 300 {
		t.Fatalf("the first connection kept %d entries, want 300", n)
	}
	if len(conns) < 2 {
		t.Fatalf("no second connection: %s", describe(conns))
	}
	if n := checkRun(t, 1, entryIndexes(conns[1]), 0); n != 1500 {
		t.Fatalf("the second connection carried entries 0 to %d, want all 1500 from the cursor 0: %s", n, describe(conns))
	}
	eventually(t, "the cursor at 1500", func() bool { return f.Status().Cursor == 1500 })
	if s := f.Status(); s.LastError == "" {
		t.Errorf("status %+v does not show the failure", s)
	}
}
