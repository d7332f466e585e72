package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"medguard/internal/audit"
	"medguard/internal/backup"
)

const backupHelp = `usage: medguard backup <command> [flags]

commands:
  keygen    make the backup key pair: the identity (keep it offline) and the recipient the server encrypts to
  create    --data DIR --to DEST [--to DEST2] [--incremental]: make a backup; prints its path or URL last
  verify    BACKUP: check the signature and every byte (with --backup-identity, also decrypt)
  restore   BACKUP --data NEWDIR [--at TIME]: verify, then restore in timed steps and verify the audit log
  list      --to DEST: the backups on a target
  drill     --data DIR --to DEST: restore the latest backup into a scratch place, check it, record RTO and RPO

A backup is encrypted with AES-256-GCM (DARE) under its own key, wrapped with age to the recipient in
DATA/keys/backup.recipient (or --backup-recipient): the server can make backups but not read them;
restoring needs the identity file. See docs/backup.md.
`

// backupCmd runs "medguard backup …".
func backupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, backupHelp)
		return usageError{errors.New("backup: no command given")}
	}
	sub, rest := args[0], args[1:]
	if sub != "keygen" && sub != "help" && sub != "--help" && sub != "-h" {
		if err := refusePostgres(sub, rest, getenv); err != nil {
			return err
		}
	}
	switch sub {
	case "keygen":
		return backupKeygen(rest, getenv, stdout, stderr)
	case "create":
		return backupCreate(ctx, rest, getenv, stdout, stderr)
	case "verify":
		return backupVerify(ctx, rest, getenv, stdout, stderr)
	case "restore":
		return backupRestore(ctx, rest, getenv, stdout, stderr)
	case "list":
		return backupList(ctx, rest, getenv, stdout, stderr)
	case "drill":
		return backupDrill(ctx, rest, getenv, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, backupHelp)
		return nil
	}
	fmt.Fprint(stderr, backupHelp)
	return usageError{fmt.Errorf("backup: unknown command %q", sub)}
}

// pgBackupHint is what `medguard backup` says on an installation whose
// data is on PostgreSQL.
func pgBackupHint(what string) error {
	return fmt.Errorf("%s: this installation's data is on PostgreSQL; `medguard backup` backs up an embedded SQLite "+
		"data directory only. Back PostgreSQL up with pgBackRest through `medguard backup-pg` "+
		"(init, check, create, verify, restore, list; see `medguard backup-pg help` and docs/backup.md)", what)
}

// refusePostgres stops any backup command given a PostgreSQL database
// (--db or MEDGUARD_DB) with a message naming `medguard backup-pg`.
func refusePostgres(sub string, args []string, getenv func(string) string) error {
	db := getenv("MEDGUARD_DB")
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--db="); ok {
			db = v
		} else if v, ok := strings.CutPrefix(a, "-db="); ok {
			db = v
		} else if (a == "--db" || a == "-db") && i+1 < len(args) {
			db = args[i+1]
		}
	}
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return pgBackupHint("backup " + sub)
	}
	return nil
}

// positional takes a leading positional argument (BACKUP) off args.
func positional(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// backupRecipient finds the age recipient: given, or DATA/keys/backup.recipient.
func backupRecipient(given, data string) (string, error) {
	if given != "" {
		return given, nil
	}
	p := filepath.Join(data, "keys", "backup.recipient")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no backup recipient: run `medguard backup keygen --data %s --identity-out FILE` "+
			"(keep FILE offline) or give --backup-recipient age1…", data)
	}
	return p, nil
}

func backupKeygen(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup keygen", stderr)
	data := fs.String("data", "medguard-data", "data directory: the recipient is written to DATA/keys/backup.recipient")
	out := fs.String("identity-out", "", "file to write the identity to (0600); move it offline: it alone opens the backups")
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if *out == "" {
		return usageError{errors.New("backup keygen: --identity-out FILE is required")}
	}
	id, rcpt, err := backup.NewIdentity()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup keygen: %w", err)
	}
	if _, err := fmt.Fprintf(f, "# medguard backup identity; public recipient: %s\n%s\n", rcpt, id); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(*data, "keys"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*data, "keys", "backup.recipient"), []byte(rcpt+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Backup identity written to %s: keep it offline (a safe, not this server); restores need it.\n", *out)
	fmt.Fprintf(stdout, "The server encrypts backups to %s (DATA/keys/backup.recipient).\n", rcpt)
	return nil
}

func backupCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup create", stderr)
	data := fs.String("data", "medguard-data", "data directory to back up")
	db := fs.String("db", "", "database: empty for SQLite in the data directory (PostgreSQL is backed up by pgBackRest)")
	var to stringList
	fs.Var(&to, "to", "target: a directory or s3://BUCKET/PREFIX?endpoint=HOST:PORT (repeatable)")
	incremental := fs.Bool("incremental", false, "seal the continuous WAL stream shipped to the targets since the last backup, instead of a full snapshot")
	rcpt := fs.String("backup-recipient", "", "age recipient (age1…) or file holding it (default DATA/keys/backup.recipient)")
	cipherName := fs.String("cipher", "AES-256-GCM", "cipher of the backup's pieces: AES-256-GCM (DARE) or SM4-GCM (国密, STREAM)")
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	sealWith, err := backup.CipherNamed(*cipherName)
	if err != nil {
		return usageError{fmt.Errorf("--cipher: %w", err)}
	}
	if len(to) == 0 {
		return usageError{errors.New("backup create: --to DEST is required")}
	}
	if strings.HasPrefix(*db, "postgres") {
		return pgBackupHint("backup create")
	}
	if _, err := os.Stat(filepath.Join(*data, "medguard.db")); err != nil {
		return fmt.Errorf("backup create: no SQLite database in %s (medguard.db): give the data directory with --data; "+
			"if this installation's data is on PostgreSQL, back it up with `medguard backup-pg`", *data)
	}
	targets, err := openTargets(to, getenv)
	if err != nil {
		return err
	}
	rspec, err := backupRecipient(*rcpt, *data)
	if err != nil {
		return err
	}
	recipient, err := backup.ParseRecipient(rspec)
	if err != nil {
		return err
	}
	signer, err := backup.LoadSigner(*data, getenv("MEDGUARD_AUDIT_KEY"))
	if err != nil {
		return err
	}
	opt := backup.CreateOptions{DataDir: *data, Targets: targets, Recipient: recipient, Signer: signer, Cipher: sealWith}
	var res *backup.Result
	if *incremental {
		res, err = backup.CreateIncremental(ctx, opt)
	} else {
		res, err = backup.Create(ctx, opt)
	}
	if err != nil {
		return err
	}
	m := res.Manifest
	fmt.Fprintf(stdout, "%s backup %s: audit tree size %d, %d patients, %d records, %d pieces, %.1fs, %s\n",
		m.Kind, m.ID, m.Audit.Size, m.Patients, m.Records, len(m.Pieces), res.Took.Seconds(), m.Cipher)
	for _, u := range res.URLs[1:] {
		fmt.Fprintf(stdout, "also at %s\n", u)
	}
	fmt.Fprintln(stdout, res.URLs[0])
	return nil
}

func openTargets(specs []string, getenv func(string) string) ([]backup.Target, error) {
	var out []backup.Target
	for _, s := range specs {
		t, err := backup.OpenTarget(s, getenv)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// openBackup opens the target of a backup's URL and loads the identity.
func openBackup(u, identity string, getenv func(string) string) (backup.Target, string, *backupIdentity, error) {
	tspec, id, err := backup.SplitBackupURL(u)
	if err != nil {
		return nil, "", nil, usageError{err}
	}
	t, err := backup.OpenTarget(tspec, getenv)
	if err != nil {
		return nil, "", nil, err
	}
	var bi *backupIdentity
	if identity != "" {
		ident, err := backup.LoadIdentity(identity)
		if err != nil {
			return nil, "", nil, err
		}
		bi = &backupIdentity{ident}
	}
	return t, id, bi, nil
}

type backupIdentity struct{ id backup.Identity }

// vkeyUsage says what --verifier-key of the backup commands is: a key of
// the audit log's chain, from which its key rotations are followed.
const vkeyUsage = "a verifier key of the audit log, its original one or a later one: manifests signed by a key that the " +
	"transition checkpoints of its key rotations link to it are accepted (default: the key pinned at the target's root"

func backupVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	arg, rest := positional(args)
	fs := newFlags("backup verify", stderr)
	identity := fs.String("backup-identity", "", "backup identity file: also decrypt every piece (proves the key)")
	vkey := fs.String("verifier-key", "", vkeyUsage+"; `medguard audit key` prints it)")
	if err := parse(fs.FlagSet, rest, getenv); err != nil {
		return usageError{err}
	}
	if arg == "" {
		arg = fs.Arg(0)
	}
	if arg == "" {
		return usageError{errors.New("backup verify: BACKUP (its path or URL) is required")}
	}
	t, id, bi, err := openBackup(arg, *identity, getenv)
	if err != nil {
		return err
	}
	opt := backup.VerifyOptions{VerifierKey: *vkey}
	if bi != nil {
		opt.Identity = bi.id
	}
	m, err := backup.Verify(ctx, t, id, opt)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	how := "signature, sizes and SHA-256 of every piece"
	if bi != nil {
		how += "; every piece decrypted with the backup key"
	}
	fmt.Fprintf(stdout, "backup %s verifies (%s): %s, audit tree size %d root %s, KEK versions %v, signed by %s\n",
		m.ID, how, m.Kind, m.Audit.Size, base64.StdEncoding.EncodeToString(m.Audit.Root), m.KEKVersions, audit.KeyName(m.Signer))
	return nil
}

func backupRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	arg, rest := positional(args)
	fs := newFlags("backup restore", stderr)
	data := fs.String("data", "", "the new data directory (must not hold a database)")
	identity := fs.String("backup-identity", "", "backup identity file (required: it opens the backup key)")
	vkey := fs.String("verifier-key", "", vkeyUsage+")")
	keyFile := fs.String("key-file", "", "the key file the data will be read with: checked against the data keys and copied to NEWDIR/keys")
	at := fs.String("at", "", "point in time (RFC 3339) to replay an incremental backup's stream to; with a target instead of a backup, the backup that covers it is chosen")
	fs.String("db", "", "must be empty: a restore makes an SQLite data directory (PostgreSQL: `medguard backup-pg restore`)")
	if err := parse(fs.FlagSet, rest, getenv); err != nil {
		return usageError{err}
	}
	if arg == "" {
		arg = fs.Arg(0)
	}
	if arg == "" || *data == "" || *identity == "" {
		return usageError{errors.New("backup restore: BACKUP, --data NEWDIR and --backup-identity FILE are required")}
	}
	var when time.Time
	if *at != "" {
		var err error
		if when, err = time.Parse(time.RFC3339, *at); err != nil {
			return usageError{fmt.Errorf("--at: %w", err)}
		}
	}
	if _, _, err := backup.SplitBackupURL(arg); err != nil && !when.IsZero() {
		// A target and --at: the backup that covers the moment (the seal
		// of the stream generation current then, or else the newest
		// backup before it).
		t, err := backup.OpenTarget(arg, getenv)
		if err != nil {
			return err
		}
		id, replay, err := backup.BackupAt(ctx, t, *vkey, when)
		if err != nil {
			return &ExitError{Code: 1, Err: err}
		}
		if !replay {
			fmt.Fprintf(stdout, "no sealed stream covers %s: restoring %s, the newest backup before it\n", when.Format(time.RFC3339), id)
		}
		arg = backup.BackupURL(t, id)
		if m, err := backup.Verify(ctx, t, id, backup.VerifyOptions{VerifierKey: *vkey}); err == nil && m.Kind == backup.Full {
			when = time.Time{}
		}
	}
	t, id, bi, err := openBackup(arg, *identity, getenv)
	if err != nil {
		return err
	}
	rep, err := backup.Restore(ctx, t, id, backup.RestoreOptions{DataDir: *data, Identity: bi.id, VerifierKey: *vkey, KeyFile: *keyFile, At: when,
		Step: func(s backup.Step) { fmt.Fprintf(stdout, "  %-28s %8.3fs\n", s.Name, s.Took.Seconds()) }})
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	fmt.Fprintf(stdout, "restored %s into %s in %.3fs: audit tree size %d root %s (as the manifest), data as of %s\n",
		id, *data, rep.Took.Seconds(), rep.Audit.Size, base64.StdEncoding.EncodeToString(rep.Audit.Root),
		rep.Manifest.DataAsOf.Format(time.RFC3339))
	if *keyFile == "" {
		fmt.Fprintf(stdout, "Copy the key file to %s/keys/medguard.keys (or pass --key-file to serve): the backup does not hold it.\n", *data)
	}
	return nil
}

func backupList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup list", stderr)
	var to stringList
	fs.Var(&to, "to", "target (repeatable)")
	vkey := fs.String("verifier-key", "", vkeyUsage+")")
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if len(to) == 0 {
		return usageError{errors.New("backup list: --to DEST is required")}
	}
	targets, err := openTargets(to, getenv)
	if err != nil {
		return err
	}
	for _, t := range targets {
		entries, err := backup.List(ctx, t, *vkey)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Manifest == nil {
				fmt.Fprintf(stdout, "%s\t-\t-\t-\t%s\n", e.URL, e.Problem)
				continue
			}
			m := e.Manifest
			fmt.Fprintf(stdout, "%s\t%s\t%s\taudit size %d\t%d records\tsigned by %s\n", e.URL, m.Kind, m.CreatedAt.Format(time.RFC3339),
				m.Audit.Size, m.Records, audit.KeyName(m.Signer))
		}
		gens, err := backup.Generations(ctx, t, *vkey)
		if err != nil {
			return err
		}
		for _, g := range gens {
			span := "-\t-"
			if !g.Start.IsZero() {
				span = g.Start.Format(time.RFC3339) + "\t" + g.End.Format(time.RFC3339)
			}
			last := "unsealed"
			if len(g.Seals) > 0 {
				last = "last seal " + backup.BackupURL(t, g.Seals[len(g.Seals)-1])
			}
			fmt.Fprintf(stdout, "%sstream/%s\tgeneration\t%s\t%d segments\t%d seals\t%s\n",
				strings.TrimSuffix(t.URL(), "/")+"/", g.Name, span, g.Segments, len(g.Seals), last)
		}
	}
	return nil
}

func backupDrill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("backup drill", stderr)
	data := fs.String("data", "medguard-data", "data directory of the installation (its signing key signs the drill record; its key file is the default --key-file)")
	var to stringList
	fs.Var(&to, "to", "target holding the backups (repeatable; the drill restores from the first and is recorded on all)")
	identity := fs.String("backup-identity", "", "backup identity file (required)")
	keyFile := fs.String("key-file", "", "key file the restored data keys must open (default DATA/keys/medguard.keys)")
	vkey := fs.String("verifier-key", "", vkeyUsage+")")
	scratch := fs.String("scratch", "", "where to restore (a temporary directory in it, removed afterwards)")
	fs.String("db", "", "must be empty: drills restore SQLite backups (PostgreSQL: `medguard backup-pg verify`)")
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if len(to) == 0 || *identity == "" {
		return usageError{errors.New("backup drill: --to DEST and --backup-identity FILE are required")}
	}
	targets, err := openTargets(to, getenv)
	if err != nil {
		return err
	}
	ident, err := backup.LoadIdentity(*identity)
	if err != nil {
		return err
	}
	signer, err := backup.LoadSigner(*data, getenv("MEDGUARD_AUDIT_KEY"))
	if err != nil {
		return err
	}
	if *keyFile == "" {
		*keyFile = filepath.Join(*data, "keys", "medguard.keys")
	}
	d, err := backup.RunDrill(ctx, backup.DrillOptions{Targets: targets, Identity: ident, VerifierKey: *vkey, KeyFile: *keyFile,
		Scratch: *scratch, Signer: signer,
		Step: func(s backup.Step) { fmt.Fprintf(stdout, "  %-28s %8.3fs\n", s.Name, s.Took.Seconds()) }})
	if err != nil {
		fmt.Fprintf(stdout, "drill %s FAILED: %s\n", d.ID, d.Problem)
		return &ExitError{Code: 1, Err: err}
	}
	fmt.Fprintf(stdout, "drill %s passed: restored %s; RTO %.3fs, RPO %s; %d patients, %d records, audit size %d (root as the manifest); with the key file decrypted %d fields of %d patients and %d records (a random sample)\n",
		d.ID, d.Backup, d.RTO.Seconds(), d.RPO.Round(time.Second), d.Patient, d.Records, d.AuditSize, d.SampleFields, d.SamplePatients, d.SampleRecords)
	return nil
}
