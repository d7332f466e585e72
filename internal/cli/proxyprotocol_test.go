package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// The listener of a server that takes the PROXY protocol from 127.0.0.1
// (its balancer): a connection from there is known by the client address
// its header gives (v2 or v1, IPv4 or IPv6), or by the balancer's own for
// a health check's LOCAL header, and is refused without a header, with a
// header that never comes, or with a client that is not a TCP address; a
// connection from anywhere else is taken as it is, a PROXY header from it
// being only bytes (which TLS will refuse).
func TestProxyProtocolListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A short header timeout, so that the silent connection below is
	// closed soon; nothing is timed.
	ln, err := proxyProtocolListener(raw, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	server := ln.Addr().(*net.TCPAddr)
	header := func(version byte, cmd proxyproto.ProtocolVersionAndCommand, proto proxyproto.AddressFamilyAndProtocol, src net.Addr) []byte {
		h := &proxyproto.Header{Version: version, Command: cmd, TransportProtocol: proto, SourceAddr: src, DestinationAddr: server}
		if proto == proxyproto.UDPv4 {
			h.DestinationAddr = &net.UDPAddr{IP: server.IP, Port: server.Port}
		}
		b, err := h.Format()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hello := []byte("\x16\x03\x01 a TLS ClientHello would begin so")
	ward := &net.TCPAddr{IP: net.ParseIP("10.9.9.9"), Port: 50123} // a ward's PC behind the balancer
	ward6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 50123}
	forged := header(2, proxyproto.PROXY, proxyproto.TCPv4, ward)

	for _, c := range []struct {
		name   string
		from   string // the source address of the connection
		send   []byte // what it sends first (nil: nothing)
		remote string // the address the server knows it by ("": refused)
		read   []byte // what the server reads first
	}{
		{"v2 header from the balancer", "127.0.0.1", append(header(2, proxyproto.PROXY, proxyproto.TCPv4, ward), hello...), "10.9.9.9:50123", hello},
		{"v1 header from the balancer", "127.0.0.1", append(header(1, proxyproto.PROXY, proxyproto.TCPv4, ward), hello...), "10.9.9.9:50123", hello},
		{"IPv6 client", "127.0.0.1", append(header(2, proxyproto.PROXY, proxyproto.TCPv6, ward6), hello...), "[2001:db8::7]:50123", hello},
		{"health check (LOCAL)", "127.0.0.1", append(header(2, proxyproto.LOCAL, proxyproto.UNSPEC, nil), hello...), "127.0.0.1", hello},
		{"no header from the balancer", "127.0.0.1", hello, "", nil},
		{"silence from the balancer", "127.0.0.1", nil, "", nil},
		{"UDP client", "127.0.0.1", append(header(2, proxyproto.PROXY, proxyproto.UDPv4, &net.UDPAddr{IP: ward.IP, Port: ward.Port}), hello...), "", nil},
		{"header from another address", "127.0.0.2", append(forged, hello...), "127.0.0.2", forged},
		{"no header from another address", "127.0.0.2", hello, "127.0.0.2", hello},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.from)}}
			client, err := d.Dial("tcp", server.String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			if c.send != nil {
				if _, err := client.Write(c.send); err != nil {
					t.Fatal(err)
				}
			}
			conn := <-accepted
			defer conn.Close()
			conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // a failing test, not a hanging one
			got := make([]byte, max(len(c.read), 1))
			_, err = io.ReadFull(conn, got)
			if c.remote == "" {
				if err == nil {
					t.Fatalf("served as %s", conn.RemoteAddr())
				}
				if !errors.Is(err, errProxyHeaderNotTCP) && !errors.Is(err, proxyproto.ErrNoProxyProtocol) {
					t.Fatalf("refused with %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			remote := conn.RemoteAddr().String()
			if _, _, err := net.SplitHostPort(c.remote); err != nil {
				remote, _, _ = net.SplitHostPort(remote) // the balancer's or another client's own port is any
			}
			if remote != c.remote || !bytes.Equal(got, c.read) {
				t.Fatalf("known as %s, read %q; want %s, %q", remote, got, c.remote, c.read)
			}
		})
	}
}

// Without balancers the listener is the one listened on.
func TestProxyProtocolListenerOff(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if ln, err := proxyProtocolListener(raw, nil, time.Second); err != nil || ln != raw {
		t.Fatalf("%v %v", ln, err)
	}
}

// A --proxy-protocol that is not a list of CIDRs stops serve before it
// opens anything.
func TestProxyProtocolFlag(t *testing.T) {
	err := serve(context.Background(), []string{"--data", t.TempDir(), "--proxy-protocol", "127.0.0.1/32,负载均衡器"},
		func(string) string { return "" }, io.Discard, io.Discard)
	var usage usageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--proxy-protocol") {
		t.Fatalf("%v", err)
	}
}
