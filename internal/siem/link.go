package siem

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// errPeerClosed is returned when the receiver has closed or reset the
// connection: what was written since the last acknowledged batch may be
// lost and is sent again on a new connection.
var errPeerClosed = errors.New("siem: the receiver closed the connection")

// errIdleClosed is returned when the receiver had closed the connection
// before a batch was written to it: nothing was lost.
var errIdleClosed = fmt.Errorf("%w before the next batch", errPeerClosed)

// errNotAcknowledged is returned when the receiver did not acknowledge a
// batch within the write timeout.
var errNotAcknowledged = errors.New("siem: the receiver did not acknowledge the messages in time")

// link is an open connection to the receiver.
type link struct {
	conn net.Conn     // where messages are written: the TLS or the TCP connection
	tcp  *net.TCPConn // the TCP connection under conn, for delivery checks
	// tlsVersion is the negotiated TLS version ("TLS 1.3"), empty for TCP.
	tlsVersion string
	// delivered is set once a batch has been acknowledged on the link.
	delivered bool
}

// tlsConfig loads the TLS settings of a destination: TLS 1.3 (or 1.2 or
// later with tls_min=1.2), the CA file's roots (or the system's), and the
// client certificate, if any. The receiver's certificate is always
// verified.
func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: c.ServerName}
	if c.TLSMin == TLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, invalid("ca", "cannot read the SIEM CA file: %v", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, invalid("ca", "the SIEM CA file %s holds no PEM certificate", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, invalid("cert", "cannot load the SIEM client certificate and key: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// dial connects to the receiver and, for TLS, completes the handshake.
func (f *Forwarder) dial(ctx context.Context) (*link, error) {
	d := net.Dialer{Timeout: f.opts.DialTimeout, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", f.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("siem: connect to %s: %w", f.cfg.Address, err)
	}
	l := &link{conn: raw}
	l.tcp, _ = raw.(*net.TCPConn)
	if f.tls != nil {
		tc := tls.Client(raw, f.tls)
		hctx, cancel := context.WithTimeout(ctx, f.opts.DialTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("siem: TLS handshake with %s: %w", f.cfg.Address, err)
		}
		l.conn = tc
		l.tlsVersion = tls.VersionName(tc.ConnectionState().Version)
	}
	return l, nil
}

// write sends p and returns once the receiver has it: the connection must
// still be open before the write, the write must complete, and the
// receiver's TCP stack must acknowledge every byte (see awaitAcknowledged)
// within timeout. An error leaves the link unusable.
func (l *link) write(ctx context.Context, p []byte, timeout time.Duration) error {
	if err := peerOpen(l.tcp); err != nil {
		if errors.Is(err, errPeerClosed) {
			return errIdleClosed
		}
		return err
	}
	deadline := time.Now().Add(timeout)
	if err := l.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	// End a blocked write at once when ctx ends (a server shutting down).
	stop := context.AfterFunc(ctx, func() { l.conn.SetWriteDeadline(time.Now()) })
	defer stop()
	if _, err := l.conn.Write(p); err != nil {
		return fmt.Errorf("siem: write: %w", err)
	}
	if err := awaitAcknowledged(ctx, l.tcp, deadline); err != nil {
		return err
	}
	l.delivered = true
	return nil
}

// close closes the connection.
func (l *link) close() { l.conn.Close() }
