package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
)

const keysHelp = `usage: medguard keys <command> [flags]

commands:
  status        the KEK source, the KEK versions, how many data keys each
                wraps, and how far a rotation is (--json for a script)
  rotate        rewrap every data key under the active KEK version, in
                batches, while "serve" goes on serving; resumes a rotation
                a crash interrupted; retires a KEK version once no data key
                uses it. A new KEK version is made only by a four-eyes
                request (kind keys.rotate: an IT engineer asks, a security
                officer approves, in the console or the API); "rotate"
                never makes one alone
  rotate-index-key
                add a version of the blind-index key to the key file, make
                it active, re-index every patient under it (in batches,
                while "serve" serves; lookups find every patient meanwhile),
                then retire the old version and delete it from the key
                file; run it again to resume an interrupted re-index
  generate-kek  print a new MEDGUARD_KEK entry (VERSION:SECRET) for KEKs kept
                in the environment (--version N)
  rotate-audit-key
                rotate the audit log's signing key, with every server
                stopped: a new key, a transition checkpoint signed by the old
                and the new key, the old verifier key kept in
                DATA/keys/audit-log.history, the old private key destroyed

KEK sources (--kek-source, env MEDGUARD_KEK_SOURCE): file (the key file,
default), env (MEDGUARD_KEK), pkcs11 (an HSM: --pkcs11-module,
--pkcs11-token, PIN in MEDGUARD_PKCS11_PIN). See docs/keys.md.
`

// kekFlags registers the flags that say where the KEKs are.
func kekFlags(fs interface {
	StringVar(*string, string, string, string)
}, f *serveFlags) {
	fs.StringVar(&f.kekSource, "kek-source", "", "where the key-encryption keys are: file (the key file), env (MEDGUARD_KEK) or pkcs11 (an HSM); default: what the key file says, else file")
	fs.StringVar(&f.pkcs11Module, "pkcs11-module", "", "PKCS#11 module of the HSM holding the KEKs (e.g. /usr/lib/softhsm/libsofthsm2.so); the PIN is read from MEDGUARD_PKCS11_PIN")
	fs.StringVar(&f.pkcs11Token, "pkcs11-token", "", "label of the HSM token holding the KEKs")
}

// KEKConfig says where an installation's KEKs are.
type KEKConfig struct {
	// Source is "file", "env" or "pkcs11"; "" follows the key file.
	Source string
	PKCS11 keys.PKCS11Config
	// Getenv reads MEDGUARD_KEK for the env source.
	Getenv func(string) string
}

func (f *serveFlags) kekConfig(getenv func(string) string) KEKConfig {
	return KEKConfig{Source: f.kekSource, Getenv: getenv,
		PKCS11: keys.PKCS11Config{Module: f.pkcs11Module, Token: f.pkcs11Token, PIN: getenv("MEDGUARD_PKCS11_PIN")}}
}

// openKEKSource opens the KEK source the configuration and the key file
// name; path is the key file's ("" when it came from MEDGUARD_KEYS).
func openKEKSource(c KEKConfig, kf *keys.KeyFile, path string) (keys.KEKSource, error) {
	source := c.Source
	if source == "" {
		source = kf.Source()
	}
	if source != kf.Source() {
		return nil, fmt.Errorf("--kek-source is %s, but the key file keeps its KEKs in %s", source, kf.Source())
	}
	switch source {
	case keys.SourceFile:
		return keys.FileKEKs(kf, path), nil
	case keys.SourceEnv:
		getenv := c.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		return keys.EnvKEKs(getenv, kf.Algorithm())
	case keys.SourcePKCS11:
		return keys.OpenPKCS11(c.PKCS11)
	}
	return nil, fmt.Errorf("--kek-source must be file, env or pkcs11, not %q", source)
}

func keysCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysHelp)
		return usageError{errors.New("keys: no command given")}
	}
	switch args[0] {
	case "status":
		return keysStatus(ctx, args[1:], getenv, stdout, stderr)
	case "rotate":
		return keysRotate(ctx, args[1:], getenv, stdout, stderr)
	case "rotate-audit-key":
		return keysRotateAuditKey(ctx, args[1:], getenv, stdout, stderr)
	case "rotate-index-key":
		return keysRotateIndexKey(ctx, args[1:], getenv, stdout, stderr)
	case "generate-kek":
		fs := newFlags("keys generate-kek", stderr)
		v := fs.Uint("version", 0, "the KEK version to generate (one more than the newest)")
		if err := parse(fs.FlagSet, args[1:], getenv); err != nil {
			return usageError{err}
		}
		if *v == 0 {
			return usageError{errors.New("keys generate-kek: --version is required")}
		}
		fmt.Fprintln(stdout, keys.NewEnvKEK(uint32(*v)))
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, keysHelp)
		return nil
	}
	fmt.Fprint(stderr, keysHelp)
	return usageError{fmt.Errorf("keys: unknown command %q", args[0])}
}

// openForKeys opens the installation for a keys command.
func openForKeys(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer,
	extra func(*flagSet)) (*App, error) {
	var f serveFlags
	fs := newFlags(name, stderr)
	commonFlags(fs, &f)
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return nil, usageError{err}
	}
	alg, err := keys.ParseAlgorithm(f.cipher)
	if err != nil {
		return nil, usageError{err}
	}
	if f.db == "" {
		if _, err := os.Stat(filepath.Join(f.data, "medguard.db")); err != nil {
			return nil, fmt.Errorf("no database in %s: %w", f.data, err)
		}
	}
	return Open(ctx, Config{DataDir: f.data, DB: f.db, KeyFile: f.keyFile, Keys: getenv("MEDGUARD_KEYS"), Cipher: alg,
		LogOrigin: f.logOrigin, AuditKey: getenv("MEDGUARD_AUDIT_KEY"), KEK: f.kekConfig(getenv)})
}

func keysStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var asJSON bool
	app, err := openForKeys(ctx, "keys status", args, getenv, stderr, func(fs *flagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the status as JSON")
	})
	if err != nil {
		return err
	}
	defer app.Close()
	st, err := app.Keys.Status(ctx)
	if err != nil {
		return err
	}
	if st.IndexKey, err = app.Keys.IndexStatus(ctx, app.Records); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printKeyStatus(stdout, st)
	printAuditKeyStatus(stdout, app)
	printIndexKeyStatus(stdout, st.IndexKey)
	return nil
}

func printKeyStatus(w io.Writer, st *keys.KEKStatus) {
	fmt.Fprintf(w, "KEK source: %s   cipher: %s   active KEK version: %d\n", st.Source, st.Cipher, st.Active)
	fmt.Fprintf(w, "live data keys: %d\n", st.DataKeys)
	if st.Rotating {
		pct := 100.0
		if st.DataKeys > 0 {
			pct = 100 * float64(st.DataKeys-st.Remaining) / float64(st.DataKeys)
		}
		fmt.Fprintf(w, "rotation: %d data keys left to rewrap (%.1f%% done)\n", st.Remaining, pct)
	} else {
		fmt.Fprintln(w, "rotation: none running")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tDATA KEYS\tIN SOURCE\tCREATED\tRETIRED\tAPPROVAL")
	for _, v := range st.Versions {
		retired := "-"
		if v.RetiredAt != nil {
			retired = v.RetiredAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%v\t%s\t%s\t%s\n", v.Version, v.State, v.DataKeys, v.InSource,
			v.CreatedAt.UTC().Format(time.RFC3339), retired, cmpOr(v.ApprovalID, "-"))
	}
	tw.Flush()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func keysRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var batch int
	app, err := openForKeys(ctx, "keys rotate", args, getenv, stderr, func(fs *flagSet) {
		fs.IntVar(&batch, "batch", keys.RewrapBatchSize, "data keys rewrapped per transaction")
	})
	if err != nil {
		return err
	}
	defer app.Close()
	st, err := app.Keys.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Rotating {
		retired, err := app.retireKEKs(ctx)
		if err != nil {
			return err
		}
		if len(retired) == 0 {
			fmt.Fprintf(stdout, "Every data key is wrapped under KEK version %d: nothing to rewrap.\n"+
				"A new KEK version needs two people: an IT engineer requests it (console: 密钥 / Keys, or\n"+
				"POST /api/v1/approvals {\"kind\":\"keys.rotate\",\"payload\":{},\"reason\":…}) and a security\n"+
				"officer approves; the server then rewraps in the background, or run this command.\n", st.Active)
		}
		return nil
	}
	fmt.Fprintf(stdout, "rewrapping %d data keys under KEK version %d\n", st.Remaining, st.Active)
	start := time.Now()
	n, err := app.RewrapKEKs(ctx, batch, func(done int64) {
		fmt.Fprintf(stdout, "rewrapped %d of %d\n", done, st.Remaining)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rewrapped %d data keys in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// system is the caller of the key jobs in the audit log.
var keysSystem = &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}

// RewrapKEKs rewraps, in batches, every live data key still under a
// retiring KEK version, then retires the versions nothing uses. The start
// and the end are in the audit log (with the count); progress, if set, is
// told the running count after each batch. It is safe to run in several
// processes at once and to interrupt at any point.
func (a *App) RewrapKEKs(ctx context.Context, batch int, progress func(done int64)) (int64, error) {
	remaining, err := a.Keys.Remaining(ctx)
	if err != nil || remaining == 0 {
		_, rerr := a.retireKEKs(ctx)
		return 0, errors.Join(err, rerr)
	}
	active, err := a.Keys.ActiveVersion(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := a.Gate.Record(ctx, gate.Event{Call: keysSystem, Action: "keys.rewrap", TargetType: "kek",
		TargetID: keys.VersionName(active), Allowed: true, Rule: "allow.system", Outcome: "started", Count: int(remaining)}, nil); err != nil {
		return 0, err
	}
	var done int64
	for {
		n, err := a.Keys.RewrapBatch(ctx, batch)
		if err != nil {
			a.Gate.Record(context.WithoutCancel(ctx), gate.Event{Call: keysSystem, Action: "keys.rewrap", TargetType: "kek",
				TargetID: keys.VersionName(active), Allowed: true, Rule: "allow.system", Outcome: "failed", Count: int(done)}, nil)
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
	if _, err := a.Gate.Record(ctx, gate.Event{Call: keysSystem, Action: "keys.rewrap", TargetType: "kek",
		TargetID: keys.VersionName(active), Allowed: true, Rule: "allow.system", Outcome: "finished", Count: int(done)}, nil); err != nil {
		return done, err
	}
	_, err = a.retireKEKs(ctx)
	return done, err
}

// retireKEKs retires each retiring KEK version no live data key uses, each
// with its audit entry.
func (a *App) retireKEKs(ctx context.Context) ([]uint32, error) {
	vs, err := a.Keys.Retirable(ctx)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, v := range vs {
		retire := a.Keys.Retire(v)
		_, err := a.Gate.Record(ctx, gate.Event{Call: keysSystem, Action: "keys.kek_retire", TargetType: "kek",
			TargetID: keys.VersionName(v), Allowed: true, Rule: "allow.system"},
			func(ctx context.Context, tx *sql.Tx, _ uint64) error { return retire(ctx, tx) })
		if errors.Is(err, keys.ErrStillUsed) || medguard.IsKind(err, medguard.Conflict) {
			continue // a key appeared meanwhile (or another process retired it): the next run sees
		}
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// runKeyRotation is serve's background rewrap: it looks for retiring KEK
// versions every interval (an approved rotation makes one) and rewraps
// their data keys while the server serves, pausing between batches so the
// server's own writes are not held up.
func (a *App) runKeyRotation(ctx context.Context, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := a.Keys.Remaining(ctx)
		if err == nil && n > 0 {
			logger.Info("rewrapping data keys under the new KEK version", "remaining", n)
			var done int64
			done, err = a.RewrapKEKs(ctx, keys.RewrapBatchSize, func(int64) {
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Millisecond):
				}
			})
			if err == nil {
				logger.Info("KEK rotation finished", "rewrapped", done)
			}
		} else if err == nil {
			_, err = a.retireKEKs(ctx)
		}
		if err != nil && ctx.Err() == nil {
			logger.Error("KEK rotation failed; it resumes at the next try", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// registerKeyMetrics shows the KEKs in /metrics.
func (a *App) registerKeyMetrics() {
	a.Metrics.Gauge("medguard_kek_active_version", "The KEK version new data keys are wrapped under.",
		func() float64 {
			v, _ := a.Keys.ActiveVersion(context.Background())
			return float64(v)
		})
	a.Metrics.Gauge("medguard_kek_rewrap_remaining_keys", "Live data keys a KEK rotation has still to rewrap (0: none running).",
		func() float64 {
			n, _ := a.Keys.Remaining(context.Background())
			return float64(n)
		})
	a.Metrics.Gauge("medguard_kek_rewrapped_keys", "Data keys this server rewrapped under a new KEK version since it started.",
		func() float64 {
			st := a.Keys.RewrappedHere()
			return float64(st)
		})
}

// KeyStatus returns the KEK status to a caller the policy lets see it
// (key.rotate, or approval.decide: the security officers who approve a
// rotation), through the gate, for the console's keys page.
func (a *App) KeyStatus(ctx context.Context, call *medguard.Call) (*keys.KEKStatus, error) {
	action := policy.KeyRotate
	if !policy.PermissionsOf(call.Actor.Roles)[policy.KeyRotate] {
		action = policy.ApprovalDecide
	}
	var st *keys.KEKStatus
	_, _, err := a.Gate.Enter(ctx, gate.Passage{Call: call, Action: action, AuditAction: "keys.status",
		Resource: policy.Resource{Type: "kek"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		st, err = a.Keys.Status(ctx)
		return nil, err
	})
	return st, err
}
