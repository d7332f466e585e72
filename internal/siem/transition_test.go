package siem_test

import (
	"context"
	"slices"
	"testing"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/siem"
)

// TestTransitionCheckpointForwardedAtStart: a rotation of the log's
// signing key writes its transition checkpoint offline (no server's
// checkpointer passes it on); the forwarder's first start sends it after
// the entries it covers, and a start whose receiver already has entries
// beyond it does not send it again.
func TestTransitionCheckpointForwardedAtStart(t *testing.T) {
	ctx := context.Background()
	db, log := openLog(t)
	appendEntries(t, log, 0, 20)
	_, old, err := audit.GenerateSigner("xxyy-hospital.cn/medguard")
	if err != nil {
		t.Fatal(err)
	}
	_, next, err := audit.GenerateSigner("xxyy-hospital.cn/medguard")
	if err != nil {
		t.Fatal(err)
	}
	size, root, err := audit.HeadOf(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := old.SignTransition(size, root, next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)`,
		int64(size), root, string(msg), medguard.Millis(t0)); err != nil {
		t.Fatal(err)
	}

	r := listen(t, "127.0.0.1:0", siem.FramingOctet, nil, nil, 0)
	cfg := siem.Config{Network: siem.NetworkTCP, Framing: siem.FramingOctet, Address: r.addr(), Hostname: hostname, Insecure: true,
		Name: "soc-central"}
	f, err := siem.New(db, cfg, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, f)
	isCheckpoint := func(m *rfc5424.SyslogMessage) bool { return m.MsgID != nil && *m.MsgID == "checkpoint" }
	conns := r.waitFor("20 entries and the transition checkpoint", func(conns [][]*rfc5424.SyslogMessage) bool {
		return len(conns) == 1 && len(conns[0]) == 21 && isCheckpoint(conns[0][20])
	})
	cp := audit.Checkpoint{Size: size, Root: root, Note: string(msg), SignedAt: t0}
	checkCheckpointMessage(t, conns[0][20], cp, old.VerifierKey(), siem.FramingOctet)
	appendEntries(t, log, 20, 5)
	f.Notify()
	r.waitForEntries(25)
	eventually(t, "the cursor at 25", func() bool { return f.Status().Cursor == 25 })
	stop()

	// Started again past it: not sent again.
	r2 := listen(t, "127.0.0.1:0", siem.FramingOctet, nil, nil, 0)
	cfg.Address = r2.addr()
	f2, err := siem.New(db, cfg, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	appendEntries(t, log, 25, 1)
	start(t, f2)
	has := func(i uint64) func([][]*rfc5424.SyslogMessage) bool {
		return func(conns [][]*rfc5424.SyslogMessage) bool {
			return len(conns) == 1 && slices.Contains(entryIndexes(conns[0]), i)
		}
	}
	r2.waitFor("entry 25", has(25))
	appendEntries(t, log, 26, 1)
	f2.Notify()
	conns = r2.waitFor("entry 26", has(26))
	for _, m := range conns[0] {
		if isCheckpoint(m) {
			t.Fatalf("the transition checkpoint was sent again: %s", describe(conns))
		}
	}
}
