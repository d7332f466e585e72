package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"medguard/internal/exports"
)

const exportHelp = `usage: medguard export <command> [flags]

commands:
  decrypt   open an export's file (downloaded from /api/v1/exports/{id}/file)
            with the key shown once when it was built:
              medguard export decrypt --in FILE --key KEY --out OUT
            (the key may come from MEDGUARD_KEY instead of the command line);
            OUT holds patient data in clear: keep it where the hospital's
            rules say, and delete it when done
`

// maxExportFile bounds the file decrypt reads (an export's content is at
// most 64 MiB by default, sealed in one piece).
const maxExportFile = 1 << 30

// exportCmd runs "medguard export …".
func exportCmd(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, exportHelp)
		return usageError{errors.New("export: no command given")}
	}
	switch args[0] {
	case "decrypt":
		return exportDecrypt(args[1:], getenv, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, exportHelp)
		return nil
	}
	fmt.Fprint(stderr, exportHelp)
	return usageError{fmt.Errorf("export: unknown command %q", args[0])}
}

// exportDecrypt runs "medguard export decrypt".
func exportDecrypt(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("export decrypt", stderr)
	in := fs.String("in", "", "the export's file")
	key := fs.String("key", "", "the key shown when the file was built (hex)")
	out := fs.String("out", "", `where to write the content ("-" for standard output)`)
	fs.Usage = func() { usage(stderr, fs.FlagSet, "usage: medguard export decrypt [flags]\n\n"+exportHelp) }
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	switch {
	case *in == "":
		return usageError{errors.New("export decrypt: --in is required")}
	case *key == "":
		return usageError{errors.New("export decrypt: --key is required")}
	case *out == "":
		return usageError{errors.New("export decrypt: --out is required")}
	}
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("export decrypt: %w", err)
	}
	defer f.Close()
	h, plain, err := exports.DecryptStream(f, *key, maxExportFile)
	if err != nil {
		return fmt.Errorf("export decrypt: %w", err)
	}
	if *out == "-" {
		_, err = stdout.Write(plain)
		return err
	}
	if err := os.WriteFile(*out, plain, 0o600); err != nil {
		return fmt.Errorf("export decrypt: %w", err)
	}
	fmt.Fprintf(stderr, "medguard export %s (%s, %s): %d bytes written to %s\n", h.ExportID, h.Format, h.Cipher, len(plain), *out)
	return nil
}
