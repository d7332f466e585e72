// Package transport is the register of a server's network links — the API
// and console it serves, and the SIEM, alert webhook, mail server and
// database it reaches — with how each is protected in transit.
//
// The rule it records is: every link is encrypted (TLS); a plain link
// exists only by an explicit opt-in, and is counted. A server fills its
// register when it starts; /metrics, the start-up warnings and the
// compliance report read it. The package opens no connection and decides
// nothing: the packages that own a link say how it is protected.
package transport

import (
	"slices"
	"strings"
	"sync"
)

// The names of the links a server may have.
const (
	API      = "api"      // the HTTPS API and web console, served
	SIEM     = "siem"     // the audit log forwarded as syslog (SPEC §5)
	Webhook  = "webhook"  // alerts POSTed to a URL (SPEC §6)
	SMTP     = "smtp"     // alerts sent by email (SPEC §6)
	Database = "database" // PostgreSQL (an embedded SQLite file is no link)
)

// Link is one network link and how it is protected.
type Link struct {
	// Name is one of API, SIEM, Webhook, SMTP and Database.
	Name string
	// Target is where the link leads — HOST:PORT, a URL's host or a
	// socket's path — and never holds credentials.
	Target string
	// Encrypted is true when everything sent on the link is encrypted
	// with TLS.
	Encrypted bool
	// Protocol says how, in words: "TLS 1.3", "STARTTLS, TLS 1.2 or
	// later", "plain TCP".
	Protocol string
	// Local is true when the link does not leave this machine (a
	// loopback address or a Unix socket). A local plain link is still
	// not encrypted, and still counted.
	Local bool
	// OptIn names the explicit setting that allowed a plain link
	// ("--siem-insecure", "sslmode=disable"); empty for an encrypted link
	// or a plain one nobody asked for.
	OptIn string
	// Note says why, for the report, when Protocol does not.
	Note string
}

// Status is a server's links at one moment, by name.
type Status struct {
	Links []Link
}

// Plain returns the links that are not encrypted.
func (s Status) Plain() []Link {
	var out []Link
	for _, l := range s.Links {
		if !l.Encrypted {
			out = append(out, l)
		}
	}
	return out
}

// Link returns the link named name, if there is one.
func (s Status) Link(name string) (Link, bool) {
	i := slices.IndexFunc(s.Links, func(l Link) bool { return l.Name == name })
	if i < 0 {
		return Link{}, false
	}
	return s.Links[i], true
}

// Register holds a server's links. Its zero value is empty and ready; it
// is safe for concurrent use.
type Register struct {
	mu    sync.Mutex
	links []Link
}

// Set records l, replacing the link of the same name.
func (r *Register) Set(l Link) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := slices.IndexFunc(r.links, func(x Link) bool { return x.Name == l.Name }); i >= 0 {
		r.links[i] = l
		return
	}
	r.links = append(r.links, l)
	slices.SortFunc(r.links, func(a, b Link) int { return strings.Compare(a.Name, b.Name) })
}

// Status returns the links recorded so far, by name.
func (r *Register) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Links: slices.Clone(r.links)}
}
