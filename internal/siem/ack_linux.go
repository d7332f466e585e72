//go:build linux

package siem

import (
	"context"
	"errors"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// tcpEstablished is TCP_ESTABLISHED from linux/tcp_states.h.
const tcpEstablished = 1

// tcpState returns the state of c and how many bytes written to it the
// peer has not acknowledged yet, sent or not (SIOCOUTQ).
func tcpState(c *net.TCPConn) (state uint8, unacked int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		// The queue first, then the state: a reset empties the queue, and
		// a reset seen after reading an empty queue must still count.
		if unacked, serr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); serr != nil {
			return
		}
		var info *unix.TCPInfo
		if info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr == nil {
			state = info.State
		}
	})
	return state, unacked, errors.Join(err, serr)
}

// peerOpen returns errPeerClosed if the receiver has closed or reset the
// connection. Receivers never send, so any state but established means
// that what is written next would be lost.
func peerOpen(c *net.TCPConn) error {
	if c == nil {
		return nil
	}
	state, _, err := tcpState(c)
	if err != nil {
		return err
	}
	if state != tcpEstablished {
		return errPeerClosed
	}
	return nil
}

// awaitAcknowledged waits until the receiver's TCP stack has acknowledged
// every byte written to c, with the connection still established, or
// deadline passes. A write that merely reached the local socket buffer is
// not delivered: a receiver that went away would only answer it with a
// reset. (What an acknowledging receiver then does with the bytes is its
// own affair; syslog over TCP has no application-level acknowledgement.)
func awaitAcknowledged(ctx context.Context, c *net.TCPConn, deadline time.Time) error {
	if c == nil {
		return nil
	}
	pause := 50 * time.Microsecond
	for {
		state, unacked, err := tcpState(c)
		switch {
		case err != nil:
			return err
		case state != tcpEstablished:
			return errPeerClosed
		case unacked == 0:
			return nil
		case !time.Now().Before(deadline):
			return errNotAcknowledged
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 10*time.Millisecond)
	}
}
