package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"medguard/internal/retention"
)

const retentionHelp = `usage: medguard retention <command> [flags]

commands:
  verify-certificate FILE [--key KEY | --data DIR]
            verify a destruction certificate (销毁证明) offline: exit 0 only if
            it is signed by the audit log's key and unchanged since
`

// retentionCmd runs "medguard retention …".
func retentionCmd(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, retentionHelp)
		return usageError{errors.New("retention: no command given")}
	}
	switch args[0] {
	case "verify-certificate":
		return verifyCertificate(args[1:], getenv, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, retentionHelp)
		return nil
	}
	fmt.Fprint(stderr, retentionHelp)
	return usageError{fmt.Errorf("retention: unknown command %q", args[0])}
}

// verifyCertificate checks a downloaded certificate against the audit
// log's verifier key: --key (the key, or @FILE), else the one derived from
// --data's signing key, else — saying so — the key the file itself names
// (which proves only that the file is intact, not who signed it).
func verifyCertificate(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	fset := newFlags("retention verify-certificate", stderr)
	key := fset.String("key", "", "the audit log's verifier key (medguard audit key, GET /api/v1/audit/verifier-key), or @FILE")
	data := fset.String("data", "", "data directory whose audit log key signed it (instead of --key)")
	fset.Usage = func() { usage(stderr, fset.FlagSet, "usage: medguard retention verify-certificate FILE [flags]") }
	if err := parse(fset.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if file == "" && fset.NArg() == 1 {
		file = fset.Arg(0)
	}
	if file == "" {
		return usageError{errors.New("retention verify-certificate: name the certificate file")}
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	vkey := ""
	switch {
	case *key != "" || *data != "":
		if vkey, err = verifierKey(*key, *data, getenv); err != nil {
			return fmt.Errorf("verifier key: %w", err)
		}
	default:
		if _, err := os.Stat("medguard-data/keys/audit-log.key"); err == nil {
			vkey, err = verifierKey("", "medguard-data", getenv)
			if err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	c, err := retention.Verify(body, vkey)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	if vkey == "" {
		fmt.Fprintln(stderr, "warning: no --key or --data given: checked against the key the certificate names;"+
			" compare it with the hospital's published verifier key")
	}
	fmt.Fprintf(stdout, "destruction certificate %s verifies (signed by %s)\n", c.ID, c.Origin)
	fmt.Fprintf(stdout, "  destroyed at      %s\n", c.DestroyedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "  requested by      %s, approved by %s (approval %s, audit entry %d)\n", c.RequestedBy,
		c.ApprovedBy, c.ApprovalID, c.AuditIndex)
	fmt.Fprintf(stdout, "  records           %d; keys shredded %d\n", len(c.Records), len(c.KeysShredded))
	fmt.Fprintf(stdout, "  backups expire by %s (backup retention %d days)\n", c.BackupsExpireBy.UTC().Format(time.RFC3339),
		c.BackupRetentionDays)
	return nil
}
