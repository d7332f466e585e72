package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Version is medguard's version, set at build time with
// -ldflags "-X medguard/internal/cli.Version=…".
var Version = "dev"

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// ExitError carries a specific exit status (e.g. from audit verify).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the process exit status for err.
func ExitCode(err error) int {
	var ee *ExitError
	var ue usageError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue), errors.Is(err, flag.ErrHelp):
		return 2
	}
	return 1
}

const help = `medguard — a hospital's secure medical-record archive (病案库) and its
information-security management.

usage: medguard <command> [flags]

commands:
  serve     serve the API over HTTPS (no configuration needed)
  demo      fill a data directory with a synthetic hospital to explore
  bench     measure the server: "medguard bench reads"
  audit     verify the audit log, print its verifier key, export it, archive it
  detect    replay the detection rules over stored audit entries
  retention verify a destruction certificate (销毁证明) offline
  backup-pg back up, verify, restore and list a PostgreSQL database with pgBackRest
  backup    make, verify, list and restore encrypted backups; run restore drills
  keys      key status and rotation of the key-encryption key (KEK)
  deid      de-identify: "medguard deid table" (k-anonymity, l-diversity)
  synth     write a synthetic data set (CSV, JSON lines) for test environments
  export    open a downloaded export's file: "medguard export decrypt"
  version   print the version

"medguard <command> --help" lists a command's flags; each flag has a
MEDGUARD_* environment twin.
`

// Run runs medguard with the given arguments (without the program name).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return usageError{errors.New("no command given")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return demoCmd(ctx, rest, getenv, stdout, stderr)
	case "bench":
		return bench(ctx, rest, getenv, stdout, stderr)
	case "audit":
		return auditCmd(ctx, rest, getenv, stdout, stderr)
	case "detect":
		return detectCmd(ctx, rest, getenv, stdout, stderr)
	case "retention":
		return retentionCmd(ctx, rest, getenv, stdout, stderr)
	case "backup-pg":
		return backupPGCmd(ctx, rest, getenv, stdout, stderr)
	case "backup":
		return backupCmd(ctx, rest, getenv, stdout, stderr)
	case "keys":
		return keysCmd(ctx, rest, getenv, stdout, stderr)
	case "deid":
		return deidCmd(ctx, rest, getenv, stdout, stderr)
	case "synth":
		return synthCmd(ctx, rest, getenv, stdout, stderr)
	case "export":
		return exportCmd(ctx, rest, getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "medguard", Version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, help)
		return nil
	}
	fmt.Fprint(stderr, help)
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}
