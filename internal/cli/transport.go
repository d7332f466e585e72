package cli

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"net/url"

	"medguard/internal/detect"
	"medguard/internal/siem"
	"medguard/internal/storage"
	"medguard/internal/transport"
)

// registerLinks records in a.Transport the links the installation reaches
// out on — the database, the SIEM, the alert webhook and mail server — and
// shows them in /metrics as medguard_insecure_links. The served API's link
// is recorded by serve, which listens.
func (a *App) registerLinks(ctx context.Context) error {
	conn, err := a.DB.Connection(ctx)
	if err != nil {
		return err
	}
	if conn.Network {
		a.Transport.Set(databaseLink(conn))
	}
	if c := a.Config.SIEM; c != nil {
		a.Transport.Set(siemLink(*c))
	}
	for _, l := range notifierLinks(a.Config.Notifier) {
		a.Transport.Set(l)
	}
	if a.Metrics != nil {
		a.Metrics.GaugeSet("medguard_insecure_links",
			"1 for each link of this server that is not encrypted (plain only by an explicit opt-in, or a database without TLS), 0 for each encrypted one.",
			"link", func() map[string]float64 {
				out := map[string]float64{}
				for _, l := range a.Transport.Status().Links {
					out[l.Name] = 0
					if !l.Encrypted {
						out[l.Name] = 1
					}
				}
				return out
			})
	}
	return nil
}

// databaseLink describes the link to PostgreSQL. Plain is allowed — CI and
// a database on the same machine use sslmode=disable — but counted, and
// serve warns of it.
func databaseLink(c storage.Connection) transport.Link {
	l := transport.Link{Name: transport.Database, Target: c.Target, Encrypted: c.TLS, Local: c.Local}
	switch {
	case c.TLS:
		l.Protocol = c.TLSVersion
		if c.SSLMode != "verify-full" {
			l.Note = "encrypted; the server's certificate and name are verified only with sslmode=verify-full"
		}
	case c.SSLMode == "disable":
		l.Protocol, l.OptIn = "plain", "sslmode=disable"
		l.Note = "the database URL turns TLS off (sslmode=disable); use sslmode=verify-full"
	default:
		l.Protocol = "plain"
		l.Note = "the database server did not negotiate TLS (sslmode=" + cmp.Or(c.SSLMode, "prefer") +
			" falls back to plain); enable ssl on the server and use sslmode=verify-full"
	}
	return l
}

// siemLink describes the link to the SIEM.
func siemLink(c siem.Config) transport.Link {
	host, _, _ := net.SplitHostPort(c.Address)
	l := transport.Link{Name: transport.SIEM, Target: c.Address, Encrypted: c.Encrypted(), Protocol: c.Protocol(), Local: isLocalHost(host)}
	if !l.Encrypted {
		l.OptIn = "--siem-insecure"
		l.Note = "the audit log goes to the SIEM in clear (tcp:// with --siem-insecure); use tls://"
	}
	return l
}

// notifierLinks describes the links of the alert notifications: both are
// always TLS (package detect refuses anything else).
func notifierLinks(n *detect.Notifier) []transport.Link {
	if !n.Enabled() {
		return nil
	}
	var out []transport.Link
	if n.Webhook != "" {
		u, _ := url.Parse(n.Webhook)
		host := ""
		if u != nil {
			host = u.Host
		}
		out = append(out, transport.Link{Name: transport.Webhook, Target: host, Encrypted: true,
			Protocol: "HTTPS, TLS 1.2 or later", Local: u != nil && isLocalHost(u.Hostname())})
	}
	if n.SMTP != "" && len(n.To) > 0 {
		host, _, _ := net.SplitHostPort(n.SMTP)
		p := "STARTTLS (required), TLS 1.2 or later"
		if n.SMTPImplicitTLS {
			p = "implicit TLS (SMTPS), TLS 1.2 or later"
		}
		out = append(out, transport.Link{Name: transport.SMTP, Target: n.SMTP, Encrypted: true, Protocol: p, Local: isLocalHost(host)})
	}
	return out
}

// warnPlainLinks logs a warning for every link that is not encrypted.
func warnPlainLinks(logger *slog.Logger, st transport.Status) {
	for _, l := range st.Plain() {
		logger.Warn("a link is not encrypted", "link", l.Name, "target", l.Target, "local", l.Local,
			"opt_in", l.OptIn, "why", l.Note)
	}
}

// isLocalHost reports whether host is a loopback address or "localhost"
// (names are not resolved).
func isLocalHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
