package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// HAProxyBackend is one server a load balancer sends connections to: its
// address, if it is to be verified by the health check, the CA
// certificate(s) (PEM) its certificate chains to, and whether it takes the
// PROXY protocol.
type HAProxyBackend struct {
	Addr string // HOST:PORT
	CA   string // a PEM file, or "" not to verify the certificate in health checks
	// ProxyProtocol has the balancer begin every connection to the server,
	// health checks included, with a PROXY protocol v2 header saying who
	// the client is (send-proxy-v2, check-send-proxy): for a server started
	// with --proxy-protocol and the balancer's address, which then sees
	// the clients' addresses instead of the balancer's.
	ProxyProtocol bool
}

// HAProxyConfig writes the configuration of an HAProxy in front of several
// medguard servers: TCP mode, so that TLS passes through and every server
// keeps its own certificate and sees its clients' certificates; round robin
// over connections (a keep-alive connection stays on one server, which
// needs nothing of it: sessions, freezes and the audit log are in the
// shared PostgreSQL); a health check that asks each server's /readyz
// over TLS, taking a server out of the rotation while it is not ready;
// and a connection a server refuses (it died, and the check has not yet
// noticed) tried again on another (retries, redispatch).
// A backend with ProxyProtocol gets the PROXY protocol header on its
// connections and its health checks.
func HAProxyConfig(listen string, backends []HAProxyBackend) string {
	var b strings.Builder
	b.WriteString(`# medguard behind HAProxy: TLS passed through (mode tcp), round robin,
# /readyz checked over TLS on each server.
global
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 2m
    timeout server 2m
    timeout check 3s
    # A server that died is found by its health check within 2 s; until
    # then a connection sent to it is refused, and tried again on another.
    retries 2
    option redispatch 1

frontend medguard
    bind ` + listen + `
    default_backend medguard_servers

backend medguard_servers
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host medguard
    http-check expect status 200
`)
	for i, be := range backends {
		verify := "verify none"
		if be.CA != "" {
			verify = "verify required ca-file " + be.CA
		}
		proxy := ""
		if be.ProxyProtocol {
			proxy = " send-proxy-v2 check-send-proxy"
		}
		fmt.Fprintf(&b, "    server medguard%d %s%s check check-ssl %s inter 1s fall 2 rise 1\n", i+1, be.Addr, proxy, verify)
	}
	return b.String()
}

// HAProxy is an haproxy process run in the foreground by medguard (the
// bench and the tests), with the configuration HAProxyConfig writes.
type HAProxy struct {
	Addr    string // the address it listens on, 127.0.0.1:PORT
	Version string // the first line of "haproxy -v"
	cmd     *exec.Cmd
	out     *tailBuffer
	done    chan struct{}
	err     error
}

// StartHAProxy starts haproxy on a free loopback port in front of
// backends, with its configuration in dir, and waits until it accepts
// connections. The system's haproxy service is not involved.
func StartHAProxy(dir string, backends []HAProxyBackend) (*HAProxy, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, errors.New("haproxy is not installed (Debian: apt-get install haproxy)")
	}
	v, err := exec.Command(bin, "-v").Output()
	if err != nil {
		return nil, fmt.Errorf("haproxy -v: %w", err)
	}
	// "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"
	version, _, _ := strings.Cut(strings.TrimSpace(string(v)), "\n")
	if f := strings.Fields(version); len(f) >= 3 && f[1] == "version" {
		version = f[0] + " " + f[2]
	}
	var last error
	// The free port is found by listening on port 0 and closing; another
	// process may take it before haproxy binds it, hence a few tries.
	for try := 0; try < 5; try++ {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(cfg, []byte(HAProxyConfig(addr, backends)), 0o600); err != nil {
			return nil, err
		}
		h := &HAProxy{Addr: addr, Version: version, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
		// -db: foreground, no daemon; -f: this configuration only.
		h.cmd = exec.Command(bin, "-db", "-f", cfg)
		h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
		if err := h.cmd.Start(); err != nil {
			return nil, fmt.Errorf("haproxy: %w", err)
		}
		go func() { h.err = h.cmd.Wait(); close(h.done) }()
		if err := h.waitListening(10 * time.Second); err != nil {
			h.Stop()
			last = err
			continue
		}
		return h, nil
	}
	return nil, last
}

// waitListening waits until haproxy accepts connections, or fails if it
// exits first.
func (h *HAProxy) waitListening(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-h.done:
			return fmt.Errorf("haproxy exited (%v):\n%s", h.err, h.out)
		default:
		}
		if c, err := net.DialTimeout("tcp", h.Addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling for the listener, not timing anything
	}
	return fmt.Errorf("haproxy did not listen on %s within %s:\n%s", h.Addr, limit, h.out)
}

// Pid is the haproxy process's id.
func (h *HAProxy) Pid() int { return h.cmd.Process.Pid }

// Output is the end of what haproxy wrote (its warnings and alerts).
func (h *HAProxy) Output() string { return h.out.String() }

// Stop ends haproxy (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (h *HAProxy) Stop() { stopProcess(h.cmd, h.done, 5*time.Second) }

// stopProcess ends a child process started by cmd, whose end closes done:
// SIGTERM, then SIGKILL if it has not ended within grace; it returns once
// the process has ended.
func stopProcess(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
	}
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port free a moment ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// tailBuffer keeps the last max bytes written to it, safe for concurrent
// use: a child process's output, for when it fails.
type tailBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
