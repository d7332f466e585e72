// Package siem forwards the audit log to the hospital's SIEM (SPEC §5):
// every entry, strictly in index order and at least once, as an RFC 5424
// syslog message over TLS (RFC 5425), followed by the log's signed
// checkpoints as they are made. TLS 1.3 is the default; plain TCP is
// refused unless the operator opts in to it explicitly (Config.Insecure).
//
// The audit log itself is the spool. The package owns one table,
// siem_cursor, holding for each destination the index of the next entry to
// send; the cursor moves only after the receiver's TCP stack has
// acknowledged a whole batch, so entries appended while the SIEM is down
// simply wait in the log and nothing is copied. On PostgreSQL, where several
// servers share the log, a session advisory lock makes one server the
// forwarder for each destination and keeps the others on standby.
//
// The package reads the log only through the audit package's API and never
// writes to the audit tables. It does not decide access and sends no patient
// data: entries hold opaque ids and codes only.
package siem

import (
	"embed"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"medguard"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the siem package's tables.
func Schema() storage.Schema { return storage.NewSchema("siem", migrations, "migrations") }

// The transports a destination may use.
const (
	NetworkTCP = "tcp" // plain TCP (RFC 6587): only with Config.Insecure
	NetworkTLS = "tls" // TLS (RFC 5425), 1.3 unless Config.TLSMin says 1.2
)

// The lowest TLS versions a destination may accept.
const (
	TLS13 = "1.3" // the default
	TLS12 = "1.2" // for receivers that cannot do 1.3
)

// The framings of messages on the stream (RFC 6587 §3.4).
const (
	// FramingOctet prefixes each message with its length in bytes and a
	// space ("octet counting", RFC 5425 §4.3), so messages may hold any
	// byte. It is the default and what RFC 5425 requires for TLS.
	FramingOctet = "octet"
	// FramingLF ends each message with a line feed ("non-transparent
	// framing"), for receivers that only understand that. Entries never
	// contain a line feed; checkpoint notes have theirs escaped.
	FramingLF = "lf"
)

// Where a destination seen for the first time starts.
const (
	StartBeginning = "beginning" // send the whole log (the default)
	StartNow       = "now"       // send only entries appended from now on
)

// Default ports when a destination URL names none.
const (
	defaultTCPPort = "514"  // the port syslog receivers listen on by convention
	defaultTLSPort = "6514" // syslog over TLS (RFC 5425 §4.1)
)

// Config is a SIEM destination. The names in brackets are the options of
// the URL that ParseConfig reads; errors name the field by them.
type Config struct {
	// Address is the receiver's HOST:PORT [address].
	Address string
	// Network is NetworkTLS or, with Insecure, NetworkTCP [the URL's scheme].
	Network string
	// Insecure allows NetworkTCP, which sends the audit log in clear. It is
	// the operator's explicit opt-in (medguard serve --siem-insecure), not
	// a URL option, so that a destination alone never turns encryption
	// off; it does not weaken TLS, and is refused with NetworkTLS.
	Insecure bool
	// TLSMin is the lowest TLS version accepted: TLS13 (the default when
	// empty) or TLS12 (TLS only) [tls_min].
	TLSMin string
	// Framing is FramingOctet (the default when empty) or FramingLF [framing].
	Framing string
	// CAFile names PEM certificates of the CAs the receiver's certificate
	// must chain to; empty means the system's roots (TLS only) [ca].
	CAFile string
	// CertFile and KeyFile name a PEM client certificate and its key, for
	// receivers that require one (TLS only; both or neither) [cert, key].
	CertFile, KeyFile string
	// ServerName is the name the receiver's certificate must carry; empty
	// means Address's host (TLS only) [server_name].
	ServerName string
	// Hostname is the HOSTNAME of every message; empty means this
	// machine's host name [hostname].
	Hostname string
	// Name identifies the destination's cursor; empty means Address, so
	// that switching a receiver from TCP to TLS keeps its place [name].
	Name string
	// StartAt says where a destination without a cursor starts:
	// StartBeginning (the default when empty) or StartNow [start].
	StartAt string
}

// ParseConfig reads a destination URL:
//
//	tls://HOST[:PORT][?OPTIONS]   (port 6514 by default)
//	tcp://HOST[:PORT][?OPTIONS]   (port 514 by default; only if insecure)
//
// where OPTIONS are framing=octet|lf, ca=FILE, cert=FILE, key=FILE,
// server_name=NAME, tls_min=1.3|1.2, hostname=NAME, name=NAME and
// start=beginning|now, for example
// tls://siem.hospital.example:6514?ca=/etc/medguard/siem-ca.pem. insecure
// is the operator's explicit opt-in to plain TCP (Config.Insecure). The
// result is validated; errors are Invalid and name the option at fault.
func ParseConfig(target string, insecure bool) (Config, error) {
	u, err := url.Parse(target)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return Config{}, invalid("address", "the SIEM destination must look like tls://HOST:PORT")
	}
	cfg := Config{Insecure: insecure}
	var port string
	switch strings.ToLower(u.Scheme) {
	case NetworkTCP:
		cfg.Network, port = NetworkTCP, defaultTCPPort
	case NetworkTLS:
		cfg.Network, port = NetworkTLS, defaultTLSPort
	default:
		return Config{}, invalid("network", "the SIEM destination's scheme must be tls (or, with the insecure opt-in, tcp), not %q", u.Scheme)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return Config{}, invalid("address", "the SIEM destination must be only a scheme, HOST:PORT and options")
	}
	if u.Port() != "" {
		port = u.Port()
	}
	cfg.Address = net.JoinHostPort(u.Hostname(), port)
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, invalid("address", "the SIEM destination's options are not a valid query string")
	}
	fields := map[string]*string{
		"framing": &cfg.Framing, "ca": &cfg.CAFile, "cert": &cfg.CertFile, "key": &cfg.KeyFile,
		"server_name": &cfg.ServerName, "tls_min": &cfg.TLSMin, "hostname": &cfg.Hostname, "name": &cfg.Name, "start": &cfg.StartAt,
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p, ok := fields[k]
		if !ok {
			return Config{}, invalid(k, "unknown SIEM option %q (known: framing, ca, cert, key, server_name, tls_min, hostname, name, start)", k)
		}
		if len(q[k]) != 1 {
			return Config{}, invalid(k, "SIEM option %s is given more than once", k)
		}
		*p = q[k][0]
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration. Errors are Invalid and name the field
// by its URL option.
func (c Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Address)
	if err != nil || host == "" {
		return invalid("address", "the SIEM address must be HOST:PORT")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return invalid("address", "the SIEM port must be a number from 1 to 65535")
	}
	switch c.Network {
	case NetworkTCP:
		if !c.Insecure {
			return invalid("network", "a tcp:// SIEM destination would send the audit log in clear: use tls://, "+
				"or opt in to plain TCP explicitly (medguard serve --siem-insecure)")
		}
		for _, f := range []struct{ field, value string }{
			{"ca", c.CAFile}, {"cert", c.CertFile}, {"key", c.KeyFile}, {"server_name", c.ServerName}, {"tls_min", c.TLSMin},
		} {
			if f.value != "" {
				return invalid(f.field, "SIEM option %s applies only to tls", f.field)
			}
		}
	case NetworkTLS:
		if c.Insecure {
			return invalid("network", "the insecure opt-in (--siem-insecure) allows a plain tcp:// destination only; "+
				"it never weakens tls://, whose receiver's certificate is always checked")
		}
		if (c.CertFile == "") != (c.KeyFile == "") {
			field := "cert"
			if c.KeyFile == "" {
				field = "key"
			}
			return invalid(field, "SIEM options cert and key go together")
		}
		if c.TLSMin != "" && c.TLSMin != TLS13 && c.TLSMin != TLS12 {
			return invalid("tls_min", "SIEM tls_min must be 1.3 or 1.2, not %q", c.TLSMin)
		}
	default:
		return invalid("network", "the SIEM network must be tls (or, with the insecure opt-in, tcp), not %q", c.Network)
	}
	if c.Framing != "" && c.Framing != FramingOctet && c.Framing != FramingLF {
		return invalid("framing", "SIEM framing must be octet or lf, not %q", c.Framing)
	}
	if c.StartAt != "" && c.StartAt != StartBeginning && c.StartAt != StartNow {
		return invalid("start", "SIEM start must be beginning or now, not %q", c.StartAt)
	}
	if c.Hostname != "" && !validHostname(c.Hostname) {
		return invalid("hostname", "the syslog HOSTNAME must be 1 to 255 printable ASCII characters without spaces")
	}
	if len(c.Name) > 255 || strings.ContainsFunc(c.Name, unicode.IsControl) {
		return invalid("name", "the SIEM destination name must be at most 255 bytes without control characters")
	}
	return nil
}

// withDefaults fills in the defaults of empty fields.
func (c Config) withDefaults() Config {
	if c.Framing == "" {
		c.Framing = FramingOctet
	}
	if c.StartAt == "" {
		c.StartAt = StartBeginning
	}
	if c.Name == "" {
		c.Name = c.Address
	}
	if c.Network == NetworkTLS && c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(c.Address)
	}
	if c.Network == NetworkTLS && c.TLSMin == "" {
		c.TLSMin = TLS13
	}
	return c
}

// Encrypted reports whether the destination's link is encrypted (TLS).
func (c Config) Encrypted() bool { return c.Network == NetworkTLS }

// Protocol says in words how the destination is reached: "TLS 1.3",
// "TLS 1.2 or later" or "plain TCP".
func (c Config) Protocol() string {
	switch {
	case c.Network != NetworkTLS:
		return "plain TCP"
	case c.TLSMin == TLS12:
		return "TLS 1.2 or later"
	}
	return "TLS 1.3"
}

// validHostname reports whether s may be an RFC 5424 HOSTNAME: 1 to 255
// printable US-ASCII characters (PRINTUSASCII, which excludes the space).
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

func invalid(field, format string, args ...any) error {
	return &medguard.Error{Kind: medguard.Invalid, Op: "siem", Field: field, Message: fmt.Sprintf(format, args...)}
}
