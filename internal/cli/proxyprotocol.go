package cli

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// proxyHeaderTimeout is how long a connection from a trusted balancer has
// to send its PROXY protocol header: a balancer sends it at once, so a
// connection that keeps quiet longer is closed instead of holding a
// goroutine and a socket (the TLS handshake's own deadline, 10 s, would
// end it later anyway).
const proxyHeaderTimeout = 5 * time.Second

// errProxyHeaderNotTCP refuses a PROXY header whose client is not a TCP
// address (a UDP or Unix socket one): medguard's clients are TCP.
var errProxyHeaderNotTCP = errors.New("PROXY protocol header: the client is not a TCP address")

// proxyProtocolListener wraps ln for load balancers that pass TLS through
// and say who the client is with the PROXY protocol (v2, or v1): a
// connection from one of the balancers' addresses must begin with a PROXY
// header — it is refused otherwise, or if the header does not come within
// headerTimeout — and the client address in the header becomes the
// connection's remote address, hence the address of every request on it
// (audit entries, the sign-in and refusal budgets, --intranet, /metrics'
// loopback check, the access log). A health check's header (LOCAL, or v1
// UNKNOWN) leaves the balancer's own address. A connection from any other
// address is served as without the wrapper: its bytes are not looked at,
// so a PROXY header it sends reaches TLS, which refuses it — no one else
// can choose the address they are known by. With no balancers, ln is
// returned unchanged.
func proxyProtocolListener(ln net.Listener, balancers []netip.Prefix, headerTimeout time.Duration) (net.Listener, error) {
	if len(balancers) == 0 {
		return ln, nil
	}
	ranges := make([]string, len(balancers))
	for i, p := range balancers {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96) // ::ffff:10.0.0.0/104 is 10.0.0.0/8
		}
		ranges[i] = p.Masked().String()
	}
	// REQUIRE from the balancers; SKIP (the connection as accepted, no
	// header read) from anyone else.
	policy, err := proxyproto.PolicyFromRanges(ranges, proxyproto.REQUIRE, proxyproto.SKIP)
	if err != nil {
		return nil, err
	}
	return &proxyproto.Listener{
		Listener:          ln,
		ConnPolicy:        policy,
		ReadHeaderTimeout: headerTimeout,
		ValidateHeader: func(h *proxyproto.Header) error {
			if h.Command.IsLocal() {
				return nil
			}
			if _, ok := h.SourceAddr.(*net.TCPAddr); !ok {
				return errProxyHeaderNotTCP
			}
			return nil
		},
	}, nil
}
