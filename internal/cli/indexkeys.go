package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/keys"
)

// The rotation of the blind-index key (docs/keys.md, "The blind-index
// key"): "keys rotate-index-key" adds a version to the key file, makes it
// active, re-indexes every patient under it while "serve" serves, then
// retires the old version and deletes its secret.

// keysRotateIndexKey is "medguard keys rotate-index-key".
func keysRotateIndexKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var batch, batches int
	app, err := openForKeys(ctx, "keys rotate-index-key", args, getenv, stderr, func(fs *flagSet) {
		fs.IntVar(&batch, "batch", keys.ReindexBatchSize, "patients re-indexed per transaction")
		fs.IntVar(&batches, "batches", 0, "stop after this many batches (0: run to the end); run the command again to resume")
	})
	if err != nil {
		return err
	}
	defer app.Close()
	rotating, err := app.Keys.IndexRotating(ctx)
	if err != nil {
		return err
	}
	if !rotating {
		v, err := app.NewIndexKeyVersion(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "index key version %d added to the key file and active: new values are indexed under it\n", v)
	}
	st, err := app.Keys.IndexStatus(ctx, app.Records)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-indexing %d patients under index key version %d\n", st.Remaining, st.Active)
	start := time.Now()
	n, err := app.ReindexPatients(ctx, batch, batches, func(done int64) {
		fmt.Fprintf(stdout, "re-indexed %d of %d\n", done, st.Remaining)
	})
	if err != nil {
		return err
	}
	left, err := app.Keys.IndexRemaining(ctx, app.Records)
	if err != nil {
		return err
	}
	if left > 0 {
		fmt.Fprintf(stdout, "re-indexed %d patients in %s and stopped (--batches): %d left; run the command again to resume\n",
			n, time.Since(start).Round(time.Millisecond), left)
		return nil
	}
	fmt.Fprintf(stdout, "re-indexed %d patients in %s\n", n, time.Since(start).Round(time.Millisecond))
	gone, err := app.retireIndexKeys(ctx)
	if err != nil {
		return err
	}
	for _, v := range gone {
		fmt.Fprintf(stdout, "index key version %d retired and deleted from the key file\n", v)
	}
	return nil
}

// NewIndexKeyVersion adds a version of the blind-index key to the key file
// and makes it active, committed with its audit entry (keys.index_rotate).
func (a *App) NewIndexKeyVersion(ctx context.Context) (uint32, error) {
	v, activate, err := a.Keys.NewIndexKeyVersion(ctx)
	if err != nil {
		return 0, err
	}
	_, err = a.Gate.Record(ctx, gate.Event{Call: keysSystem, Action: "keys.index_rotate", TargetType: "index_key",
		TargetID: keys.IndexKeyName(v), Allowed: true, Rule: "allow.system"},
		func(ctx context.Context, tx *sql.Tx, _ uint64) error { return activate(ctx, tx) })
	return v, err
}

// ReindexPatients re-indexes, in batches, every patient still indexed under
// a retiring index key version (at most maxBatches batches; 0: all). The
// start and the end of the run are in the audit log with the count
// (keys.reindex: started, then finished or failed): the job decrypts every
// patient's indexed fields, a system action. progress, if set, is told the
// running count after each batch. It is safe to run in several processes at
// once and to interrupt at any point.
func (a *App) ReindexPatients(ctx context.Context, batch, maxBatches int, progress func(done int64)) (int64, error) {
	remaining, err := a.Keys.IndexRemaining(ctx, a.Records)
	if err != nil || remaining == 0 {
		return 0, err
	}
	active, err := a.Keys.ActiveIndexVersion(ctx)
	if err != nil {
		return 0, err
	}
	ev := func(outcome string, n int64) gate.Event {
		return gate.Event{Call: keysSystem, Action: "keys.reindex", TargetType: "index_key", TargetID: keys.IndexKeyName(active),
			Allowed: true, Rule: "allow.system", Outcome: outcome, Count: int(n)}
	}
	if _, err := a.Gate.Record(ctx, ev("started", remaining), nil); err != nil {
		return 0, err
	}
	var done int64
	for i := 0; maxBatches <= 0 || i < maxBatches; i++ {
		n, err := a.Keys.ReindexBatch(ctx, a.Records, batch)
		if err != nil {
			a.Gate.Record(context.WithoutCancel(ctx), ev("failed", done), nil)
			return done, err
		}
		if n == 0 {
			break
		}
		done += int64(n)
		if progress != nil {
			progress(done)
		}
	}
	outcome := "finished"
	if left, err := a.Keys.IndexRemaining(ctx, a.Records); err != nil || left > 0 {
		outcome = "stopped"
	}
	_, err = a.Gate.Record(ctx, ev(outcome, done), nil)
	return done, err
}

// retireIndexKeys retires each retiring index key version no patient is
// indexed under any more (each with its audit entry, keys.index_key_retire),
// then deletes the secrets of retired versions from the key file, and
// returns the versions deleted.
func (a *App) retireIndexKeys(ctx context.Context) ([]uint32, error) {
	vs, err := a.Keys.RetirableIndexKeys(ctx, a.Records)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		retire := a.Keys.RetireIndexKey(v)
		_, err := a.Gate.Record(ctx, gate.Event{Call: keysSystem, Action: "keys.index_key_retire", TargetType: "index_key",
			TargetID: keys.IndexKeyName(v), Allowed: true, Rule: "allow.system"},
			func(ctx context.Context, tx *sql.Tx, _ uint64) error { return retire(ctx, tx) })
		if errors.Is(err, keys.ErrIndexKeyNotRetiring) || medguard.IsKind(err, medguard.Conflict) {
			continue // another process retired it
		}
		if err != nil {
			return nil, err
		}
	}
	return a.Keys.DeleteRetiredIndexKeys(ctx)
}

// printIndexKeyStatus is the blind-index part of "keys status".
func printIndexKeyStatus(w io.Writer, st *keys.IndexKeyStatus) {
	fmt.Fprintf(w, "\nblind-index key: active version %d, %d patients indexed\n", st.Active, st.Rows)
	if st.Rotating {
		pct := 100.0
		if st.Rows > 0 {
			pct = 100 * float64(st.Rows-st.Remaining) / float64(st.Rows)
		}
		fmt.Fprintf(w, "re-index: %d patients left (%.1f%% done); lookups query every live version meanwhile\n", st.Remaining, pct)
	} else {
		fmt.Fprintln(w, "re-index: none running")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tPATIENTS\tIN KEY FILE\tCREATED\tRETIRED")
	for _, v := range st.Versions {
		retired := "-"
		if v.RetiredAt != nil {
			retired = v.RetiredAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%v\t%s\t%s\n", v.Version, v.State, v.Rows, v.InKeyFile,
			v.CreatedAt.UTC().Format(time.RFC3339), retired)
	}
	tw.Flush()
}

// registerIndexKeyMetrics shows the blind-index key in /metrics.
func (a *App) registerIndexKeyMetrics() {
	a.Metrics.Gauge("medguard_index_key_active_version", "The blind-index key version new values are indexed under.",
		func() float64 {
			v, _ := a.Keys.ActiveIndexVersion(context.Background())
			return float64(v)
		})
	a.Metrics.Gauge("medguard_index_reindex_remaining_patients", "Patients a blind-index key rotation has still to re-index (0: none running).",
		func() float64 {
			if a.Records == nil {
				return 0
			}
			n, _ := a.Keys.IndexRemaining(context.Background(), a.Records)
			return float64(n)
		})
	a.Metrics.Gauge("medguard_index_reindexed_patients", "Patients this process re-indexed under a new blind-index key version since it started.",
		func() float64 { return float64(a.Keys.ReindexedHere()) })
}
