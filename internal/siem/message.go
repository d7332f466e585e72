package siem

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"unicode/utf8"

	"medguard/internal/audit"
)

// The messages are RFC 5424 syslog messages:
//
//	<PRI>1 TIMESTAMP HOSTNAME medguard - MSGID [SD] BOM MSG
//
// An entry has MSGID "audit", the structured data
//
//	[audit@32473 index="N" actor="…" action="…" outcome="…" decision="…" requestId="…" breakGlass="true|false"]
//
// and as MSG a UTF-8 byte order mark followed by the entry's leaf bytes
// exactly (its canonical JSON), so that a SIEM can rehash the leaf and check
// it against a checkpoint. TIMESTAMP is the entry's time (UTC, ms).
//
// A checkpoint has MSGID "checkpoint", the structured data
// [checkpoint@32473 size="N"], and as MSG a byte order mark followed by the
// signed note; TIMESTAMP is when it was signed.
//
// The facility is authpriv (10), for security and authorisation messages.
// The severity is warning (4) when the policy denied or the caller was
// refused (decision "deny"; outcomes denied, unauthenticated, locked,
// rate_limited), notice (5) for other break-glass accesses, and
// informational (6) for everything else, checkpoints included.
//
// The SD-IDs use the private enterprise number 32473, which IANA reserves
// for documentation (RFC 5612); the structured data copies fields of the
// leaf for the SIEM's convenience, while MSG is what the tree vouches for.
const (
	facilityAuthPriv = 10
	severityWarning  = 4
	severityNotice   = 5
	severityInfo     = 6

	appName      = "medguard"
	enterpriseID = "32473"
	byteOrder    = "\ufeff"

	msgIDEntry      = "audit"
	msgIDCheckpoint = "checkpoint"
)

// errLineFeed is returned for a message that cannot be framed with a line
// feed because it contains one.
var errLineFeed = errors.New("siem: a message contains a line feed, which lf framing cannot carry; use octet framing")

// severityOf returns the severity of an entry's message.
func severityOf(e *audit.Entry) int {
	switch {
	case e.Decision == audit.Deny, e.Outcome == audit.Denied, e.Outcome == audit.Refused,
		e.Outcome == audit.Locked, e.Outcome == audit.Limited:
		return severityWarning
	case e.BreakGlass:
		return severityNotice
	}
	return severityInfo
}

// appendEntry appends the RFC 5424 message of the stored entry s to b.
func appendEntry(b []byte, hostname string, s audit.Stored) []byte {
	e := s.Entry
	b = appendHeader(b, severityOf(e))
	b = e.Time.UTC().AppendFormat(b, audit.TimeFormat)
	b = append(b, ' ')
	b = appendString(b, hostname)
	b = append(b, " "+appName+" - "+msgIDEntry+" [audit@"+enterpriseID+` index="`...)
	b = strconv.AppendUint(b, s.Index, 10)
	b = append(b, '"')
	b = appendParam(b, "actor", e.Actor)
	b = appendParam(b, "action", e.Action)
	b = appendParam(b, "outcome", e.Outcome)
	b = appendParam(b, "decision", e.Decision)
	b = appendParam(b, "requestId", e.RequestID)
	b = appendParam(b, "breakGlass", strconv.FormatBool(e.BreakGlass))
	b = append(b, "] "+byteOrder...)
	return append(b, s.Leaf...)
}

// appendCheckpoint appends the RFC 5424 message of a checkpoint to b. With
// escapeLF (for lf framing) the note's line feeds are written as the two
// characters \n and its backslashes as \\, which is reversible; otherwise
// the note is sent as it is.
func appendCheckpoint(b []byte, hostname string, cp audit.Checkpoint, escapeLF bool) []byte {
	b = appendHeader(b, severityInfo)
	if cp.SignedAt.IsZero() {
		b = append(b, '-')
	} else {
		b = cp.SignedAt.UTC().AppendFormat(b, audit.TimeFormat)
	}
	b = append(b, ' ')
	b = appendString(b, hostname)
	b = append(b, " "+appName+" - "+msgIDCheckpoint+" [checkpoint@"+enterpriseID+` size="`...)
	b = strconv.AppendUint(b, cp.Size, 10)
	b = append(b, `"] `+byteOrder...)
	if !escapeLF {
		return append(b, cp.Note...)
	}
	for i := 0; i < len(cp.Note); i++ {
		switch c := cp.Note[i]; c {
		case '\n':
			b = append(b, `\n`...)
		case '\\':
			b = append(b, `\\`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendHeader appends "<PRI>1 " (priority and version) to b.
func appendHeader(b []byte, severity int) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, facilityAuthPriv*8+int64(severity), 10)
	return append(b, ">1 "...)
}

// appendString appends s, or the NILVALUE "-" if it is empty.
func appendString(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return append(b, s...)
}

// appendParam appends ` name="value"` to b, escaping the value as an
// RFC 5424 PARAM-VALUE: '"', '\' and ']' get a backslash. Control
// characters, which a line-framed receiver could take for the end of the
// message, and invalid UTF-8 become U+FFFD; the leaf in MSG keeps the exact
// value.
func appendParam(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	for _, r := range value {
		switch {
		case r == '"' || r == '\\' || r == ']':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			b = utf8.AppendRune(b, utf8.RuneError)
		default:
			b = utf8.AppendRune(b, r) // U+FFFD for invalid bytes
		}
	}
	return append(b, '"')
}

// appendFrame appends msg to dst framed as framing says: "LEN SP MSG" for
// octet counting, "MSG LF" for lf framing (which refuses a message holding
// a line feed).
func appendFrame(dst, msg []byte, framing string) ([]byte, error) {
	if framing == FramingLF {
		if bytes.IndexByte(msg, '\n') >= 0 {
			return dst, errLineFeed
		}
		dst = append(dst, msg...)
		return append(dst, '\n'), nil
	}
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...), nil
}

// localHostname returns this machine's name as an RFC 5424 HOSTNAME, or ""
// (sent as the NILVALUE) if it has none that fits.
func localHostname() string {
	h, err := os.Hostname()
	if err != nil || !validHostname(h) {
		return ""
	}
	return h
}
