package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"medguard/internal/deidjobs"
)

// deidVerifyManifest checks a de-identification job's signed manifest
// against the audit log's verifier key: --key (the key, or @FILE), else
// the one derived from --data's signing key, else — saying so — the key
// the file itself names (which proves only that the file is intact).
func deidVerifyManifest(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	fset := newFlags("deid verify-manifest", stderr)
	key := fset.String("key", "", "the audit log's verifier key (medguard audit key, GET /api/v1/audit/verifier-key), or @FILE")
	data := fset.String("data", "", "data directory whose audit log key signed it (instead of --key)")
	fset.Usage = func() { usage(stderr, fset.FlagSet, "usage: medguard deid verify-manifest FILE [flags]") }
	if err := parse(fset.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if file == "" && fset.NArg() == 1 {
		file = fset.Arg(0)
	}
	if file == "" {
		return usageError{errors.New("deid verify-manifest: name the manifest file")}
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	vkey := ""
	if *key != "" || *data != "" {
		if vkey, err = verifierKey(*key, *data, getenv); err != nil {
			return fmt.Errorf("verifier key: %w", err)
		}
	}
	m, err := deidjobs.VerifyManifest(body, vkey)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	if vkey == "" {
		fmt.Fprintln(stderr, "warning: no --key or --data given: checked against the key the manifest names;"+
			" compare it with the hospital's published verifier key")
	}
	fmt.Fprintf(stdout, "de-identification manifest of job %s verifies (signed by %s)\n", m.JobID, m.Origin)
	fmt.Fprintf(stdout, "  requested by  %s at %s, approved by %s at %s (approval %s)\n", m.RequestedBy,
		m.RequestedAt.UTC().Format(time.RFC3339), m.ApprovedBy, m.ApprovedAt.UTC().Format(time.RFC3339), m.ApprovalID)
	fmt.Fprintf(stdout, "  recipient     %s; %d patients, %d rows out\n", m.Recipient, m.PatientsOut, m.RowsOut)
	if a := m.Anonymity; a != nil {
		fmt.Fprintf(stdout, "  k-anonymity   k=%d reached %d, %d suppressed, loss %.2f\n", a.KRequested, a.KReached, a.Suppressed, a.Loss)
	}
	for _, o := range m.Outputs {
		fmt.Fprintf(stdout, "  %-5s         %d bytes, sha256 %s\n", o.Format, o.Bytes, o.SHA256)
	}
	return nil
}
