package siem_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"medguard/internal/audit"
	"medguard/internal/siem"
	"medguard/internal/storage"
)

// rsyslogEnv, set to 1, makes a missing rsyslogd (or its TLS driver) a
// failure rather than a skip; CI sets it.
const rsyslogEnv = "MEDGUARD_TEST_RSYSLOG"

// requireRsyslog returns the path of rsyslogd, or skips the test without it.
func requireRsyslog(t *testing.T) string {
	t.Helper()
	path := "/usr/sbin/rsyslogd"
	if _, err := os.Stat(path); err != nil {
		if p, lerr := exec.LookPath("rsyslogd"); lerr == nil {
			return p
		}
		missing(t, "rsyslogd is not installed (apt-get install rsyslog)")
	}
	return path
}

func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(rsyslogEnv) == "1" {
		t.Fatalf("%s, and %s=1", why, rsyslogEnv)
	}
	t.Skip(why)
}

// rsyslog is a real rsyslogd run for one test, as an unprivileged
// subprocess with its own configuration and work directory.
type rsyslog struct {
	dir string
}

// startRsyslog runs rsyslogd with the given configuration, which may use
// DIR for its directory, and waits until every input named in ports has
// written its port file DIR/NAME.port.
func startRsyslog(t *testing.T, rsyslogd, conf string, ports ...string) (*rsyslog, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	conf = fmt.Sprintf("global(workDirectory=%q)\n", dir) + strings.ReplaceAll(conf, "DIR", dir)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var output bytes.Buffer
	cmd := exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	found := map[string]string{}
	eventually(t, "rsyslogd to listen", func() bool {
		select {
		case <-exited:
			t.Fatalf("rsyslogd exited: %s\nconfiguration:\n%s", output.String(), conf)
		default:
		}
		for _, name := range ports {
			b, err := os.ReadFile(filepath.Join(dir, name+".port"))
			if n, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && n > 0 {
				found[name] = "127.0.0.1:" + strconv.Itoa(n)
			}
		}
		return len(found) == len(ports)
	})
	return &rsyslog{dir: dir}, found
}

// lines waits until the file DIR/name holds n lines and returns them.
func (r *rsyslog) lines(t *testing.T, name string, n int) []string {
	t.Helper()
	var lines []string
	eventually(t, fmt.Sprintf("%d lines in rsyslog's %s", n, name), func() bool {
		b, _ := os.ReadFile(filepath.Join(r.dir, name))
		lines = strings.Split(string(b), "\n")
		if len(lines) > 0 && lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		return len(lines) >= n
	})
	return lines
}

// rsyslogTemplate writes each message as MSGID|APP-NAME|PRI|HOSTNAME|SD|MSG.
const rsyslogTemplate = `template(name="medguard" type="string" string="%msgid%|%app-name%|%pri%|%hostname%|%structured-data%|%msg%\n")
`

// checkRsyslogLines checks the lines rsyslog wrote for entries 0 to
// len(leaves)-1, in order, and then a checkpoint.
func checkRsyslogLines(t *testing.T, lines []string, stored [][]byte, cp audit.Checkpoint, framing string) {
	t.Helper()
	if len(lines) != len(stored)+1 {
		t.Fatalf("rsyslog wrote %d lines, want %d entries and a checkpoint", len(lines), len(stored))
	}
	for i, leaf := range stored {
		f := strings.SplitN(lines[i], "|", 6)
		e, err := audit.ParseLeaf(leaf)
		if err != nil {
			t.Fatal(err)
		}
		pri := "86"
		if e.Decision == audit.Deny {
			pri = "84"
		} else if e.BreakGlass {
			pri = "85"
		}
		if len(f) != 6 || f[0] != "audit" || f[1] != "medguard" || f[2] != pri || f[3] != hostname ||
			!strings.HasPrefix(f[4], fmt.Sprintf(`[audit@32473 index="%d" actor=%q`, i, e.Actor)) {
			t.Fatalf("line %d: %q\nwant MSGID audit, APP-NAME medguard, PRI %s, index %d", i, lines[i], pri, i)
		}
		if f[5] != "\ufeff"+string(leaf) {
			t.Fatalf("line %d: MSG\n%q\nis not the BOM and entry %d's leaf\n%q", i, f[5], i, leaf)
		}
	}
	f := strings.SplitN(lines[len(stored)], "|", 6)
	if len(f) != 6 || f[0] != "checkpoint" || f[4] != fmt.Sprintf(`[checkpoint@32473 size="%d"]`, cp.Size) {
		t.Fatalf("last line %q is not the checkpoint", lines[len(stored)])
	}
	// lf framing escaped the note's line feeds. With octet counting rsyslog
	// received them, dropped the last (parser.dropTrailingLFOnReception)
	// and wrote the others as #012.
	note := strings.TrimPrefix(f[5], "\ufeff")
	if framing == siem.FramingLF {
		note = strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(note)
	} else {
		note = strings.ReplaceAll(note, "#012", "\n") + "\n"
	}
	if note != cp.Note {
		t.Fatalf("checkpoint note\n%q\nwant\n%q", note, cp.Note)
	}
}

// forwardTo runs a forwarder of db to addr until the test ends, with cp
// queued, waits until it has delivered the whole log, and returns it.
func forwardTo(t *testing.T, db *storage.DB, cfg siem.Config, cp audit.Checkpoint) *siem.Forwarder {
	t.Helper()
	f, err := siem.New(db, cfg, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	f.Checkpoint(cp)
	start(t, f)
	eventually(t, "the forwarder to deliver the log", func() bool {
		s := f.Status()
		return s.Cursor == cp.Size && s.CheckpointsQueued == 0
	})
	return f
}

// TestRsyslog forwards the log to a real rsyslogd over TLS with its gtls
// driver — TLS 1.3, which Debian 12's rsyslog 8.2302 with GnuTLS 3.7
// negotiates by default, and TLS 1.2 with tls_min=1.2 for a receiver held
// to 1.2 — and over plain TCP (the insecure opt-in), with octet counting
// and with LF framing, and checks what rsyslog parsed and wrote: every
// entry in order, its leaf exact, and the checkpoint after them.
func TestRsyslog(t *testing.T) {
	rsyslogd := requireRsyslog(t)
	db, log := openLog(t)
	appendEntries(t, log, 0, 1200)
	cp, _ := signedCheckpoint(t, db)
	stored := leaves(t, db)

	t.Run("tcp", func(t *testing.T) {
		r, ports := startRsyslog(t, rsyslogd, `module(load="imtcp")
`+rsyslogTemplate+`ruleset(name="octet") { action(type="omfile" file="DIR/octet.log" template="medguard") }
ruleset(name="lf") { action(type="omfile" file="DIR/lf.log" template="medguard") }
input(type="imtcp" port="0" listenPortFileName="DIR/octet.port" ruleset="octet")
input(type="imtcp" port="0" listenPortFileName="DIR/lf.port" ruleset="lf")
`, "octet", "lf")
		for _, framing := range []string{siem.FramingOctet, siem.FramingLF} {
			forwardTo(t, db, siem.Config{Address: ports[framing], Network: siem.NetworkTCP, Insecure: true, Framing: framing,
				Hostname: hostname, Name: "rsyslog-" + framing}, cp)
			checkRsyslogLines(t, r.lines(t, framing+".log", len(stored)+1), stored, cp, framing)
		}
	})

	t.Run("tls", func(t *testing.T) {
		if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
			if m, _ = filepath.Glob("/usr/lib*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
				missing(t, "rsyslog's TLS driver is not installed (apt-get install rsyslog-gnutls)")
			}
		}
		p := newPKI(t)
		// rsyslog requires a client certificate from the CA (x509/certvalid).
		// The second input is held to TLS 1.2 by its GnuTLS priorities.
		r, ports := startRsyslog(t, rsyslogd, fmt.Sprintf(`global(DefaultNetstreamDriver="gtls"
    DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q)
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
`, p.caFile, p.serverCert, p.serverKey)+rsyslogTemplate+`ruleset(name="tls") { action(type="omfile" file="DIR/tls.log" template="medguard") }
ruleset(name="tls12") { action(type="omfile" file="DIR/tls12.log" template="medguard") }
input(type="imtcp" port="0" listenPortFileName="DIR/tls.port" ruleset="tls")
input(type="imtcp" port="0" listenPortFileName="DIR/tls12.port" ruleset="tls12" gnutlsPriorityString="NORMAL:-VERS-TLS1.3")
`, "tls", "tls12")
		f := forwardTo(t, db, siem.Config{Address: ports["tls"], Network: siem.NetworkTLS, CAFile: p.caFile,
			CertFile: p.certFile, KeyFile: p.keyFile, Hostname: hostname, Name: "rsyslog-tls"}, cp)
		checkRsyslogLines(t, r.lines(t, "tls.log", len(stored)+1), stored, cp, siem.FramingOctet)
		if s := f.Status(); s.TLSVersion != "TLS 1.3" {
			t.Errorf("rsyslog's gtls driver negotiated %q, want TLS 1.3", s.TLSVersion)
		}

		// A receiver that cannot do TLS 1.3 gets nothing by default…
		cfg12 := siem.Config{Address: ports["tls12"], Network: siem.NetworkTLS, CAFile: p.caFile,
			CertFile: p.certFile, KeyFile: p.keyFile, Hostname: hostname, Name: "rsyslog-tls12"}
		strict, err := siem.New(db, cfg12, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, strict)
		eventually(t, "a refused handshake", func() bool { return strings.Contains(strict.Status().LastError, "handshake") })
		stop()
		if s := strict.Status(); s.Delivered != 0 || s.Cursor != 0 {
			t.Fatalf("sent to a TLS 1.2 receiver without tls_min=1.2: %+v", s)
		}
		// …and everything with tls_min=1.2.
		cfg12.TLSMin = siem.TLS12
		f = forwardTo(t, db, cfg12, cp)
		checkRsyslogLines(t, r.lines(t, "tls12.log", len(stored)+1), stored, cp, siem.FramingOctet)
		if s := f.Status(); s.TLSVersion != "TLS 1.2" {
			t.Errorf("negotiated %q with the receiver held to TLS 1.2", s.TLSVersion)
		}
	})
}
