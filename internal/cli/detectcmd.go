package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"medguard/internal/audit"
	"medguard/internal/detect"
)

const detectHelp = `usage: medguard detect <command> [flags]

commands:
  replay   run the detection rules in force over stored audit entries, from
           empty windows, and print what fires (JSON lines): the alerts the
           live server raised over the same entries
`

func detectCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "replay" {
		fmt.Fprint(stderr, detectHelp)
		if len(args) > 0 && (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return usageError{errors.New("detect: give a command: replay")}
	}
	fs := newFlags("detect replay", stderr)
	data := fs.String("data", "medguard-data", "data directory")
	dsn := fs.String("db", "", "database, if not SQLite in --data: postgres://…")
	from := fs.String("from", "", "first time (RFC 3339 or YYYY-MM-DD; default: the log's beginning)")
	to := fs.String("to", "", "time after the last (RFC 3339 or YYYY-MM-DD; default: now)")
	zone := fs.String("timezone", "Asia/Shanghai", "the hospital's time zone, for off-hours rules and dates")
	fs.Usage = func() { usage(stderr, fs.FlagSet, "usage: medguard detect replay [flags]\n\n"+detectHelp) }
	if err := parse(fs.FlagSet, args[1:], getenv); err != nil {
		return usageError{err}
	}
	loc, err := time.LoadLocation(*zone)
	if err != nil {
		return usageError{fmt.Errorf("--timezone: %w", err)}
	}
	var bounds [2]time.Time
	for i, v := range []string{*from, *to} {
		if v == "" {
			continue
		}
		t, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, v); err != nil {
				return usageError{fmt.Errorf("--%s %q: not YYYY-MM-DD or RFC 3339", []string{"from", "to"}[i], v)}
			}
		}
		bounds[i] = t
	}
	db, err := openForAudit(ctx, *data, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	rules, err := detect.LoadRules(ctx, db)
	if err != nil {
		return err
	}
	first, err := audit.ArchivedEnd(ctx, db)
	if err != nil {
		return err
	}
	size, _, err := audit.HeadOf(ctx, db)
	if err != nil {
		return err
	}
	fired, err := detect.Replay(ctx, db, rules, loc, bounds[0], bounds[1], first, size)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for _, f := range fired {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "replayed entries [%d, %d): %d firings\n", first, size, len(fired))
	return nil
}
