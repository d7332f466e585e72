package siem

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"
	"golang.org/x/mod/sumdb/note"

	"medguard"
	"medguard/internal/audit"
)

var t0 = time.Date(2026, 11, 23, 8, 30, 0, 123e6, time.UTC)

// stored returns entry e as the log stores it at index i.
func stored(t testing.TB, i uint64, e *audit.Entry) audit.Stored {
	t.Helper()
	leaf := e.Leaf()
	parsed, err := audit.ParseLeaf(leaf)
	if err != nil {
		t.Fatalf("entry %d: %v", i, err)
	}
	return audit.Stored{Index: i, Leaf: leaf, Entry: parsed}
}

func cardiologyRead() *audit.Entry {
	return &audit.Entry{
		Time: t0, Actor: "zhangwei", ActorDepartment: "CARD", ActorRoles: []string{"doctor"}, IP: "10.1.2.3",
		Action: "record.read", TargetType: "record", TargetID: "01jd4x2k7m9q3r5t8v0w2y4z6a", PatientID: "01jd4x0b1c2d3e4f5g6h7j8k9m",
		Purpose: "treatment", Decision: audit.Allow, Rule: "allow.same_department", Outcome: audit.Success, RequestID: "req-8f3a",
	}
}

// parseStrict parses one RFC 5424 message the way a strict receiver does.
func parseStrict(t testing.TB, msg []byte) *rfc5424.SyslogMessage {
	t.Helper()
	m, err := rfc5424.NewMachine(rfc5424.WithCompliantMsg()).Parse(msg)
	if err != nil {
		t.Fatalf("not RFC 5424: %v\n%q", err, msg)
	}
	return m.(*rfc5424.SyslogMessage)
}

func TestEntryMessage(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(e *audit.Entry)
		priority uint8
		actor    string // the actor as the SD-PARAM carries it
		request  string
	}{
		{"allowed read", func(*audit.Entry) {}, 86, "zhangwei", "req-8f3a"},
		{"denied by policy", func(e *audit.Entry) {
			e.Decision, e.Rule, e.Outcome = audit.Deny, "deny.other_department", audit.Denied
		}, 84, "zhangwei", "req-8f3a"},
		{"wrong password", func(e *audit.Entry) {
			e.Action, e.Outcome, e.TargetType, e.TargetID, e.PatientID = "auth.login", audit.Refused, "user", "", ""
		}, 84, "zhangwei", "req-8f3a"},
		{"frozen account", func(e *audit.Entry) { e.Outcome = audit.Locked }, 84, "zhangwei", "req-8f3a"},
		{"break-glass in the emergency department", func(e *audit.Entry) {
			e.Actor, e.ActorDepartment, e.BreakGlass, e.Rule = "liuyang", "EMER", true, "allow.break_glass"
		}, 85, "liuyang", "req-8f3a"},
		{"API key of the laboratory system", func(e *audit.Entry) {
			e.Actor, e.ActorRoles, e.Action = "apikey:检验科LIS", nil, "record.create"
		}, 86, "apikey:检验科LIS", "req-8f3a"},
		{"request id with the characters SD-PARAMs escape", func(e *audit.Entry) {
			e.RequestID = `a"b\c]d`
		}, 86, "zhangwei", `a"b\c]d`},
		{"control characters and invalid UTF-8", func(e *audit.Entry) {
			e.Actor, e.RequestID = "wang\nfang", "r\x00\x7f\xff"
		}, 86, "wang\ufffdfang", "r\ufffd\ufffd\ufffd"},
		{"empty request id", func(e *audit.Entry) { e.RequestID = "" }, 86, "zhangwei", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := cardiologyRead()
			e.Time = t0.Add(time.Duration(i) * time.Hour)
			tt.edit(e)
			s := stored(t, uint64(1000+i), e)
			msg := appendEntry(nil, "medguard-01.hospital.example", s)
			m := parseStrict(t, msg)
			if *m.Priority != tt.priority || *m.Facility != 10 || m.Version != 1 {
				t.Errorf("priority %d facility %d version %d, want priority %d, facility 10, version 1",
					*m.Priority, *m.Facility, m.Version, tt.priority)
			}
			if !m.Timestamp.Equal(e.Time) {
				t.Errorf("timestamp %v, want %v", m.Timestamp, e.Time)
			}
			if want := e.Time.Format("2006-01-02T15:04:05.000Z"); !bytes.Contains(msg, []byte(" "+want+" ")) {
				t.Errorf("timestamp not written as %s: %q", want, msg)
			}
			if *m.Hostname != "medguard-01.hospital.example" || *m.Appname != "medguard" || m.ProcID != nil || *m.MsgID != "audit" {
				t.Errorf("header: host %v app %v procid %v msgid %v", *m.Hostname, *m.Appname, m.ProcID, *m.MsgID)
			}
			sd := *m.StructuredData
			if len(sd) != 1 {
				t.Fatalf("structured data %v, want one element", sd)
			}
			want := map[string]string{
				"index": strconv.Itoa(1000 + i), "actor": tt.actor, "action": e.Action, "outcome": e.Outcome,
				"decision": e.Decision, "requestId": tt.request, "breakGlass": strconv.FormatBool(e.BreakGlass),
			}
			got := sd["audit@32473"]
			if len(got) != len(want) {
				t.Errorf("SD params %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("SD param %s = %q, want %q", k, got[k], v)
				}
			}
			if *m.Message != "\ufeff"+string(s.Leaf) {
				t.Errorf("MSG\n%q\nwant BOM and the leaf\n%q", *m.Message, s.Leaf)
			}
			// A SIEM can rehash the leaf it received.
			body := strings.TrimPrefix(*m.Message, "\ufeff")
			if sha256.Sum256([]byte("\x00"+body)) != sha256.Sum256(append([]byte{0}, s.Leaf...)) {
				t.Error("the received leaf hashes differently")
			}
		})
	}
}

func TestCheckpointMessage(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "hospital.example/medguard")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	root := sha256.Sum256([]byte("root"))
	signed, err := signer.Sign(4096, root[:])
	if err != nil {
		t.Fatal(err)
	}
	cp := audit.Checkpoint{Size: 4096, Root: root[:], Note: string(signed), SignedAt: t0}
	for _, escape := range []bool{false, true} {
		t.Run(fmt.Sprintf("escapeLF=%v", escape), func(t *testing.T) {
			msg := appendCheckpoint(nil, "medguard-01", cp, escape)
			m := parseStrict(t, msg)
			if *m.Priority != 86 || *m.MsgID != "checkpoint" || !m.Timestamp.Equal(t0) {
				t.Errorf("priority %d msgid %s timestamp %v", *m.Priority, *m.MsgID, m.Timestamp)
			}
			if got := (*m.StructuredData)["checkpoint@32473"]["size"]; got != "4096" {
				t.Errorf("size %q", got)
			}
			body, ok := strings.CutPrefix(*m.Message, "\ufeff")
			if !ok {
				t.Fatalf("MSG does not start with a BOM: %q", *m.Message)
			}
			if escape {
				if strings.Contains(body, "\n") {
					t.Fatalf("escaped note holds a line feed: %q", body)
				}
				body = strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(body)
			}
			if body != cp.Note {
				t.Fatalf("note\n%q\nwant\n%q", body, cp.Note)
			}
			if _, size, _, err := audit.OpenCheckpoint([]byte(body), vkey); err != nil || size != 4096 {
				t.Fatalf("the received note does not verify: size %d, %v", size, err)
			}
		})
	}
	// Without a signing time the TIMESTAMP is the NILVALUE.
	m := parseStrict(t, appendCheckpoint(nil, "", audit.Checkpoint{Size: 1, Note: "x\n"}, false))
	if m.Timestamp != nil || m.Hostname != nil {
		t.Errorf("timestamp %v hostname %v, want nil values", m.Timestamp, m.Hostname)
	}
}

func TestFrames(t *testing.T) {
	msg := []byte("<86>1 - - medguard - audit - \ufeff{\"a\":\"张伟\"}")
	got, err := appendFrame([]byte("x"), msg, FramingOctet)
	if want := "x" + strconv.Itoa(len(msg)) + " " + string(msg); err != nil || string(got) != want {
		t.Errorf("octet frame %q, %v; want %q", got, err, want)
	}
	got, err = appendFrame(nil, msg, FramingLF)
	if err != nil || string(got) != string(msg)+"\n" {
		t.Errorf("lf frame %q, %v", got, err)
	}
	if _, err := appendFrame(nil, []byte("a\nb"), FramingLF); err != errLineFeed {
		t.Errorf("lf frame of a message with a line feed: %v, want errLineFeed", err)
	}
	if got, err := appendFrame(nil, []byte("a\nb"), FramingOctet); err != nil || string(got) != "3 a\nb" {
		t.Errorf("octet frame of a message with a line feed: %q, %v", got, err)
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff(100*time.Millisecond, 30*time.Second)
	prevCap := time.Duration(0)
	for i := range 20 {
		d := b.next()
		if d < b.cur/2 || d > b.cur || b.cur < prevCap || b.cur > 30*time.Second {
			t.Fatalf("attempt %d: wait %v with cap %v", i, d, b.cur)
		}
		prevCap = b.cur
	}
	if b.cur != 30*time.Second {
		t.Fatalf("cap %v after 20 failures, want 30s", b.cur)
	}
	b.reset()
	if d := b.next(); d < 50*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("first wait after reset %v", d)
	}
}

// TestSkipArchived checks the forwarder's handling of a log whose oldest
// entries are no longer in the database: it skips to the first stored one.
func TestSkipArchived(t *testing.T) {
	const head, firstKept = 5000, 3217
	f := &Forwarder{opts: Options{}.withDefaults()}
	f.read = func(_ context.Context, start, end uint64) ([]audit.Stored, error) {
		if start < firstKept {
			return nil, &medguard.Error{Kind: medguard.NotFound, Message: "archived"}
		}
		var out []audit.Stored
		for i := start; i < min(end, start+audit.MaxEntries); i++ {
			out = append(out, audit.Stored{Index: i})
		}
		return out, nil
	}
	entries, next, err := f.nextBatch(context.Background(), 10, head)
	if err != nil || len(entries) != audit.MaxEntries || entries[0].Index != firstKept || next != firstKept+audit.MaxEntries {
		t.Fatalf("batch of %d entries, next %d, %v; want %d from %d", len(entries), next, err, audit.MaxEntries, firstKept)
	}
	if s := f.Status(); s.Skipped != firstKept-10 {
		t.Fatalf("skipped %d, want %d", s.Skipped, firstKept-10)
	}
	// Any other failure is not skipped over.
	f.read = func(context.Context, uint64, uint64) ([]audit.Stored, error) {
		return nil, fmt.Errorf("audit: entry 10 is missing")
	}
	if _, next, err := f.nextBatch(context.Background(), 10, head); err == nil || next != 10 {
		t.Fatalf("a damaged log: next %d, %v; want an error and no progress", next, err)
	}
}

// FuzzEntryMessage checks that any entry makes a strictly valid RFC 5424
// message whose MSG is the leaf, and that lf framing can always carry it.
func FuzzEntryMessage(f *testing.F) {
	f.Add("zhangwei", "record.read", "success", "req-1", false)
	f.Add("apikey:检验科LIS", "record.create", "denied", `a"b\c]d`, true)
	f.Add("wang\nfang", "auth.login", "unauthenticated", "\x00\xff]", false)
	f.Fuzz(func(t *testing.T, actor, action, outcome, requestID string, breakGlass bool) {
		e := cardiologyRead()
		e.Actor, e.Action, e.Outcome, e.RequestID, e.BreakGlass = actor, action, outcome, requestID, breakGlass
		s := audit.Stored{Index: 42, Leaf: e.Leaf(), Entry: e}
		msg := appendEntry(nil, "medguard-01", s)
		m := parseStrict(t, msg)
		if *m.Message != "\ufeff"+string(s.Leaf) {
			t.Fatalf("MSG %q is not the leaf %q", *m.Message, s.Leaf)
		}
		sd := (*m.StructuredData)["audit@32473"]
		if sd["index"] != "42" || sd["breakGlass"] != strconv.FormatBool(breakGlass) {
			t.Fatalf("SD %v", sd)
		}
		if _, err := appendFrame(nil, msg, FramingLF); err != nil {
			t.Fatalf("lf framing: %v", err)
		}
	})
}
