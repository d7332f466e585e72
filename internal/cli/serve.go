package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/smtp"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"medguard"
	"medguard/internal/backuphealth"
	"medguard/internal/detect"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/reports"
	"medguard/internal/siem"
	"medguard/internal/storage"
	"medguard/internal/transport"
	"medguard/internal/web"

	_ "time/tzdata" // hospital time zones without relying on the host's zoneinfo
)

// defaultDBConnections is a server's PostgreSQL pool: room for the group
// commit, the indexer, the shared counters' read and a request's query on
// each of a few CPUs, while three servers stay far below PostgreSQL's
// default max_connections (100). On the 2-CPU machine of the README's
// figures, 12 kept connections held the p99 at 1,000 reads/s where a pool
// of 32 opened on demand stalled (README, "Sixth round").
const defaultDBConnections = 12

// serveFlags are the settings of "medguard serve".
type serveFlags struct {
	data, db, listen, tlsCert, tlsKey, clientCA, keyFile, cipher, timezone string
	factors, remoteHours, intranet, trustedProxies, logLevel, logOrigin    string
	proxyProtocol                                                          string
	siem, alertWebhook, alertSMTP, alertFrom, alertTo, alertCA             string
	checkpointEvery, refusalSummary                                        time.Duration
	idle, lifetime, lockWindow, lockDuration, archive, review, shutdown    time.Duration
	lockThreshold, signInBurst, retentionDays, dbConnections               int
	signInRate                                                             float64
	maxAttachment                                                          int64
	metricsPublic, siemInsecure                                            bool
	kekSource, pkcs11Module, pkcs11Token                                   string
	vuln                                                                   vulnFlags
	hospital, reportFont, reportMailTo, reportLang                         string
}

// commonFlags registers the flags every command that opens the
// installation shares.
func commonFlags(fs interface {
	StringVar(*string, string, string, string)
}, f *serveFlags) {
	fs.StringVar(&f.data, "data", "medguard-data", "data directory: SQLite database, key file, TLS certificate")
	fs.StringVar(&f.db, "db", "", "database: empty for SQLite in the data directory, or postgres://user@host/db")
	fs.StringVar(&f.keyFile, "key-file", "", "key file (default DATA/keys/medguard.keys); MEDGUARD_KEYS may hold its contents instead")
	fs.StringVar(&f.cipher, "cipher", "SM4-GCM", "cipher for a new installation: SM4-GCM or AES-256-GCM")
	fs.StringVar(&f.logOrigin, "log-origin", "", "name of the audit log in its checkpoints, when its key is made (default medguard/<hostname>); MEDGUARD_AUDIT_KEY may hold the signing key instead of DATA/keys/audit-log.key")
	kekFlags(fs, f)
}

func (f *serveFlags) register(fs *flagSet) {
	commonFlags(fs, f)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address to serve HTTPS on")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate (PEM); default: a self-signed one in DATA/tls/")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key (PEM) for --tls-cert")
	fs.StringVar(&f.clientCA, "client-ca", "", "CA certificates (PEM) for optional client-certificate sign-in")
	fs.StringVar(&f.timezone, "timezone", "Asia/Shanghai", "the hospital's time zone, for sign-in windows")
	fs.DurationVar(&f.idle, "idle-timeout", 15*time.Minute, "session idle timeout")
	fs.DurationVar(&f.lifetime, "session-lifetime", 8*time.Hour, "session absolute lifetime")
	fs.IntVar(&f.lockThreshold, "lockout-threshold", 5, "failed sign-ins that lock a username")
	fs.DurationVar(&f.lockWindow, "lockout-window", 15*time.Minute, "window in which failed sign-ins are counted")
	fs.DurationVar(&f.lockDuration, "lockout-duration", 15*time.Minute, "how long a lockout lasts")
	fs.StringVar(&f.factors, "privileged-factors", identity.FactorsTOTP, "what privileged roles (admin, security_officer, auditor, it_engineer) present besides the password: totp, or cert+totp (their registered client certificate and the code); every other member of staff presents a code or a registered certificate")
	fs.StringVar(&f.remoteHours, "remote-hours", "", "remote sign-in hours per role, e.g. doctor=07:00-22:00,admin=08:00-18:00")
	fs.StringVar(&f.intranet, "intranet", "127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,::1/128,fc00::/7", "networks whose sign-ins are local")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "load balancers whose X-Forwarded-For is trusted (CIDRs)")
	fs.StringVar(&f.proxyProtocol, "proxy-protocol", "", "load balancers (CIDRs) that pass TLS through and send the PROXY protocol (v2 or v1): "+
		"their connections must begin with its header, whose client address is then the connection's; other addresses are served as without it")
	fs.DurationVar(&f.archive, "archive-deadline", 7*24*time.Hour, "archiving deadline after discharge")
	fs.DurationVar(&f.review, "break-glass-review", 24*time.Hour, "time for the department head to review a break-glass access")
	fs.Int64Var(&f.maxAttachment, "max-attachment", 20<<20, "largest attachment in bytes")
	fs.Float64Var(&f.signInRate, "signin-rate", 60, "sign-in attempts per minute per client address")
	fs.IntVar(&f.signInBurst, "signin-burst", 30, "sign-in attempts allowed in a burst per client address")
	fs.BoolVar(&f.metricsPublic, "metrics-public", false, "serve /metrics to any client (default: loopback or system.metrics)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", 30*time.Second, "how long to let requests finish on shutdown")
	fs.StringVar(&f.siem, "siem", "", "forward the audit log to a SIEM over RFC 5424 syslog on TLS 1.3: tls://HOST[:6514]"+
		"[?ca=FILE&cert=FILE&key=FILE&server_name=NAME&tls_min=1.3|1.2&framing=octet|lf&hostname=NAME&start=beginning|now]; "+
		"plain tcp://HOST[:514] only with --siem-insecure")
	fs.BoolVar(&f.siemInsecure, "siem-insecure", false, "allow a plain tcp:// --siem destination: the audit log then crosses the network unencrypted "+
		"(warned of at start and counted in medguard_insecure_links{link=\"siem\"}); it never weakens tls://")
	fs.StringVar(&f.alertWebhook, "alert-webhook", "", "https:// URL alerts are POSTed to (JSON, signed with HMAC-SHA256 by MEDGUARD_ALERT_WEBHOOK_SECRET); http:// is refused")
	fs.StringVar(&f.alertSMTP, "alert-smtp", "", "mail server for alert emails, always over TLS: HOST:PORT or smtp://HOST[:587] (STARTTLS, required), "+
		"or smtps://HOST[:465] (implicit TLS); MEDGUARD_ALERT_SMTP_USER and MEDGUARD_ALERT_SMTP_PASSWORD if it needs them")
	fs.StringVar(&f.alertCA, "alert-ca", "", "CA certificates (PEM) the alert webhook's and mail server's certificates must chain to (default: the system's)")
	fs.StringVar(&f.alertFrom, "alert-email-from", "medguard@localhost", "sender of alert emails")
	fs.StringVar(&f.alertTo, "alert-email-to", "", "recipients of alert emails (comma-separated)")
	fs.IntVar(&f.retentionDays, "audit-retention-days", 0, "days audit entries stay in the database before they may be archived: at least 180, may be raised, never lowered (default: as recorded, 180 for a new installation)")
	fs.IntVar(&f.dbConnections, "db-connections", defaultDBConnections, "PostgreSQL: the connections this server opens at start and keeps (requests beyond them wait for one); "+
		"every server's count together must stay below the database's max_connections. SQLite: not used")
	fs.DurationVar(&f.checkpointEvery, "checkpoint-every", 5*time.Second, "how often the audit log's checkpoint is signed while it grows (at most 10s)")
	f.vuln.register(fs)
	fs.StringVar(&f.hospital, "hospital-name", "", "the hospital's name, on the posture reports (安全态势报告)")
	fs.StringVar(&f.reportFont, "report-font", "", "CJK TrueType font of the PDF reports (default "+reports.DefaultFont+
		", from the Debian package fonts-droid-fallback; .ttc collections are not read)")
	fs.StringVar(&f.reportMailTo, "report-mail-to", "", "recipients of the scheduled posture reports (comma-separated), mailed with the PDF attached through --alert-smtp")
	fs.StringVar(&f.reportLang, "report-lang", "zh-CN", "language of the scheduled posture reports: zh-CN or en")
	fs.DurationVar(&f.refusalSummary, "refusal-summary-every", 30*time.Second, "how often the refused requests of unknown clients beyond their address's budget are summarised in the audit log (one entry per address, with how many)")
}

func parsePrefixes(field, v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a CIDR prefix", field, s)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseHours reads role=HH:MM-HH:MM,… into sign-in windows.
func parseHours(v string) (map[string]identity.HoursWindow, error) {
	out := map[string]identity.HoursWindow{}
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		role, span, ok := strings.Cut(item, "=")
		from, to, ok2 := strings.Cut(span, "-")
		if _, known := policy.LookupRole(role); !ok || !ok2 || !known {
			return nil, fmt.Errorf("--remote-hours: %q is not role=HH:MM-HH:MM with a known role", item)
		}
		f, err1 := minutes(from)
		t, err2 := minutes(to)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("--remote-hours: %q: times must be HH:MM", item)
		}
		out[role] = identity.HoursWindow{From: f, To: t}
	}
	return out, nil
}

func minutes(hhmm string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(hhmm))
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// config turns the flags into an App configuration.
func (f *serveFlags) config(getenv func(string) string, logger *slog.Logger) (Config, error) {
	alg, err := keys.ParseAlgorithm(f.cipher)
	if err != nil {
		return Config{}, err
	}
	loc, err := time.LoadLocation(f.timezone)
	if err != nil {
		return Config{}, fmt.Errorf("--timezone: %w", err)
	}
	intranet, err := parsePrefixes("intranet", f.intranet)
	if err != nil {
		return Config{}, err
	}
	proxies, err := parsePrefixes("trusted-proxies", f.trustedProxies)
	if err != nil {
		return Config{}, err
	}
	hours, err := parseHours(f.remoteHours)
	if err != nil {
		return Config{}, err
	}
	if f.factors != identity.FactorsTOTP && f.factors != identity.FactorsCertTOTP {
		return Config{}, fmt.Errorf("--privileged-factors must be %s or %s", identity.FactorsTOTP, identity.FactorsCertTOTP)
	}
	if f.factors == identity.FactorsCertTOTP && f.clientCA == "" {
		return Config{}, errors.New("--privileged-factors cert+totp needs --client-ca to verify the certificates")
	}
	var siemCfg *siem.Config
	switch {
	case f.siem != "":
		c, err := siem.ParseConfig(f.siem, f.siemInsecure)
		if err != nil {
			return Config{}, fmt.Errorf("--siem: %w", err)
		}
		siemCfg = &c
	case f.siemInsecure:
		return Config{}, errors.New("--siem-insecure is given without --siem")
	}
	notifier, err := alertNotifier(*f, getenv)
	if err != nil {
		return Config{}, err
	}
	if f.checkpointEvery <= 0 || f.checkpointEvery > 10*time.Second {
		return Config{}, errors.New("--checkpoint-every must be more than 0 and at most 10s (SPEC §5)")
	}
	if f.dbConnections < 1 {
		return Config{}, errors.New("--db-connections must be at least 1")
	}
	if f.refusalSummary <= 0 {
		return Config{}, errors.New("--refusal-summary-every must be positive")
	}
	if f.lockThreshold < 1 || f.idle <= 0 || f.lifetime <= 0 {
		return Config{}, errors.New("--lockout-threshold, --idle-timeout and --session-lifetime must be positive")
	}
	vulnCfg, err := f.vuln.config()
	if err != nil {
		return Config{}, err
	}
	reportsCfg, err := f.reportsConfig(notifier)
	if err != nil {
		return Config{}, err
	}
	return Config{
		DataDir: f.data, DB: f.db, DBConnections: f.dbConnections, KeyFile: f.keyFile, Keys: getenv("MEDGUARD_KEYS"), Cipher: alg,
		LogOrigin: f.logOrigin, AuditKey: getenv("MEDGUARD_AUDIT_KEY"), AuditRetentionDays: f.retentionDays, SIEM: siemCfg, Notifier: notifier,
		Identity: identity.Config{IdleTimeout: f.idle, SessionLifetime: f.lifetime, LockoutThreshold: f.lockThreshold,
			LockoutWindow: f.lockWindow, LockoutDuration: f.lockDuration, PrivilegedFactors: f.factors, Intranet: intranet,
			RemoteHours: hours, Location: loc},
		Records: records.Config{ArchiveDeadline: f.archive, BreakGlassReview: f.review, MaxAttachment: f.maxAttachment,
			Location: loc},
		Web: web.Deps{TrustedProxies: proxies, SignInPerMinute: f.signInRate, SignInBurst: f.signInBurst,
			MetricsPublic: f.metricsPublic, Version: Version},
		Logger: logger, Metrics: true, KEK: f.kekConfig(getenv), Vulns: vulnCfg, Reports: reportsCfg,
	}, nil
}

// alertNotifier makes the alert notifier from the flags (nil if none).
func alertNotifier(f serveFlags, getenv func(string) string) (*detect.Notifier, error) {
	n := &detect.Notifier{From: f.alertFrom}
	if f.alertWebhook != "" {
		if err := detect.CheckWebhook(f.alertWebhook); err != nil {
			return nil, fmt.Errorf("--alert-webhook: %w", err)
		}
		secret := getenv("MEDGUARD_ALERT_WEBHOOK_SECRET")
		if len(secret) < 16 {
			return nil, errors.New("--alert-webhook needs MEDGUARD_ALERT_WEBHOOK_SECRET (at least 16 characters) to sign the alerts")
		}
		n.Webhook, n.Secret = f.alertWebhook, []byte(secret)
	}
	if f.alertSMTP != "" {
		addr, implicit, err := parseSMTP(f.alertSMTP)
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(addr)
		for _, to := range strings.Split(f.alertTo, ",") {
			if to = strings.TrimSpace(to); to != "" {
				n.To = append(n.To, to)
			}
		}
		if len(n.To) == 0 {
			return nil, errors.New("--alert-smtp needs --alert-email-to")
		}
		n.SMTP, n.SMTPImplicitTLS = addr, implicit
		if user := getenv("MEDGUARD_ALERT_SMTP_USER"); user != "" {
			n.Auth = smtp.PlainAuth("", user, getenv("MEDGUARD_ALERT_SMTP_PASSWORD"), host)
		}
	}
	if !n.Enabled() {
		if f.alertCA != "" {
			return nil, errors.New("--alert-ca is given without --alert-webhook or --alert-smtp")
		}
		return nil, nil
	}
	if f.alertCA != "" {
		pemBytes, err := os.ReadFile(f.alertCA)
		if err != nil {
			return nil, fmt.Errorf("--alert-ca: %w", err)
		}
		n.RootCAs = x509.NewCertPool()
		if !n.RootCAs.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--alert-ca: %s holds no PEM certificate", f.alertCA)
		}
	}
	return n, nil
}

// parseSMTP reads --alert-smtp: HOST:PORT or smtp://HOST[:587], where
// STARTTLS is required, or smtps://HOST[:465], implicit TLS. It returns
// the address and whether TLS is implicit.
func parseSMTP(v string) (addr string, implicit bool, err error) {
	if !strings.Contains(v, "://") {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return "", false, fmt.Errorf("--alert-smtp: %q is not HOST:PORT, smtp://HOST[:PORT] or smtps://HOST[:PORT]", v)
		}
		return v, false, nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("--alert-smtp: %q is not HOST:PORT, smtp://HOST[:PORT] or smtps://HOST[:PORT] "+
			"(the user and password go in MEDGUARD_ALERT_SMTP_USER and MEDGUARD_ALERT_SMTP_PASSWORD)", redactURL(v))
	}
	port := u.Port()
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		port = cmp.Or(port, "587")
	case "smtps":
		port, implicit = cmp.Or(port, "465"), true
	default:
		return "", false, fmt.Errorf("--alert-smtp: the scheme must be smtp (STARTTLS) or smtps (implicit TLS), not %q", u.Scheme)
	}
	return net.JoinHostPort(u.Hostname(), port), implicit, nil
}

// redactURL hides a URL's password, if it has one.
func redactURL(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// serve runs "medguard serve".
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var f serveFlags
	f.register(fs)
	bf := registerBackupFlags(fs)
	pbf := registerBackupPGFlags(fs)
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard serve [flags]\n\nServes medguard over HTTPS (TLS 1.3 only). With no flags: SQLite in ./medguard-data,\n"+
			"a new key file and a self-signed certificate there, https://127.0.0.1:8443.\n\n"+
			"Every link is encrypted: the API and console (TLS 1.3), the SIEM (TLS 1.3), alert webhooks (https://)\n"+
			"and alert mail (STARTTLS, required, or SMTPS). Plain only by an explicit opt-in, which is warned of at\n"+
			"start and counted in /metrics (medguard_insecure_links): --siem-insecure for a tcp:// SIEM, and a\n"+
			"PostgreSQL URL with sslmode=disable (a database without TLS is warned of and counted too).")
	}
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return usageError{err}
	}
	cfg, err := f.config(getenv, logger)
	if err != nil {
		return usageError{err}
	}
	balancers, err := parsePrefixes("proxy-protocol", f.proxyProtocol)
	if err != nil {
		return usageError{err}
	}
	if bf.keepDaily < 1 || bf.keepMonthly < 0 {
		return usageError{errors.New("--backup-keep-daily must be at least 1 and --backup-keep-monthly at least 0")}
	}
	if !strings.HasPrefix(cfg.DB, "postgres") {
		// SQLite: the backups are medguard's own, pruned by these flags.
		cfg.Records.BackupRetention = bf.retention()
	}
	tuneGC(getenv)
	if err := checkRestoreMarker(cfg.DataDir); err != nil {
		return err
	}
	app, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer app.Close()
	if app.KeyFileCreated {
		fmt.Fprintf(stdout, "Created a new key file in %s/keys. Back it up apart from the database: without it the data cannot be read.\n", cfg.DataDir)
	}
	if app.DB.Dialect == storage.Postgres {
		var sc string
		if err := app.DB.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&sc); err == nil && sc == "off" {
			logger.Warn("PostgreSQL synchronous_commit is off: answered writes can be lost in a crash; set it to on")
		}
	}
	if err := bootstrap(ctx, app, getenv, stdout); err != nil {
		return err
	}

	host, _, err := net.SplitHostPort(f.listen)
	if err != nil {
		return usageError{fmt.Errorf("--listen: %w", err)}
	}
	certPath, keyPath := f.tlsCert, f.tlsKey
	if (certPath == "") != (keyPath == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if certPath == "" {
		if certPath, keyPath, err = selfSigned(cfg.DataDir+"/tls", host, time.Now()); err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
	}
	tlsCfg, fingerprint, err := tlsConfig(certPath, keyPath, f.clientCA)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	pln, err := proxyProtocolListener(ln, balancers, proxyHeaderTimeout)
	if err != nil {
		ln.Close()
		return usageError{fmt.Errorf("--proxy-protocol: %w", err)}
	}
	ln = pln
	if len(balancers) > 0 {
		logger.Info("PROXY protocol required from the load balancers", "proxy_protocol", f.proxyProtocol)
	}
	srv := &http.Server{
		Handler: app.Web.Handler(), TLSConfig: tlsCfg,
		// The front door bounds each request's head and body (20 s; an
		// admitted upload's body 5 min): no server-wide ReadTimeout.
		ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 6 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	lhost, _, _ := net.SplitHostPort(ln.Addr().String())
	app.Transport.Set(transport.Link{Name: transport.API, Target: ln.Addr().String(), Encrypted: true,
		Protocol: "TLS 1.3", Local: isLocalHost(lhost), Note: "HTTPS API and web console"})
	warnPlainLinks(logger, app.Transport.Status())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	bg, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	go app.Checkpoints.Run(bg, f.checkpointEvery, func(err error) {
		logger.Error("signing an audit checkpoint failed", "error", err.Error())
	})
	go app.Incidents.Run(bg, time.Minute, func(err error) {
		logger.Error("checking incidents' deadlines failed", "error", err.Error())
	})
	go app.Detect.Run(bg, time.Second)
	go app.DataUse.Run(bg, time.Minute, func(err error) {
		logger.Error("checking paper folders' due dates failed", "error", err.Error())
	})
	go app.Partners.Run(bg, time.Minute, func(err error) {
		logger.Error("checking partners' deletion confirmations failed", "error", err.Error())
	})
	go app.Inspections.Run(bg, time.Minute, func(err error) {
		logger.Error("checking for missed daily inspections failed", "error", err.Error())
	})
	go app.Media.Run(bg, time.Minute, func(err error) {
		logger.Error("checking removable media loans' due dates failed", "error", err.Error())
	})
	// The training register: other servers' writes reach this server's
	// gate within the interval, and overdue training is announced.
	go app.Training.Run(bg, 30*time.Second, func(err error) {
		logger.Error("refreshing the training register failed (the last snapshot stays in force)", "error", err.Error())
	})
	go app.Vulns.Run(bg, time.Minute, func(err error) {
		logger.Error("checking vulnerabilities' due dates failed", "error", err.Error())
	})
	go app.Vulns.Watch(bg, 5*time.Second, func(err error) {
		logger.Error("reloading the operations suspended failed (all of them are refused until it succeeds)", "error", err.Error())
	})
	go app.Risks.Run(bg, time.Minute, func(err error) {
		logger.Error("checking risks' reviews failed", "error", err.Error())
	})
	go app.Rectify.Run(bg, time.Minute, func(err error) {
		logger.Error("checking rectification items' deadlines failed", "error", err.Error())
	})
	go app.Plans.Run(bg, time.Minute, func(err error) {
		logger.Error("checking plans' reviews, drills and improvement items failed", "error", err.Error())
	})
	// The posture reports: a missing font is said at start; the schedule
	// catches up a minute after start (a report missed while down; the
	// server is busy starting before) and then checks every quarter of an
	// hour, once across servers.
	if err := app.Reports.CheckFont(); err != nil {
		if f.reportFont != "" {
			return usageError{fmt.Errorf("--report-font: %w", err)}
		}
		logger.Warn("the posture reports' PDFs cannot be written until the font is installed", "error", err.Error())
	}
	go func() {
		select {
		case <-bg.Done():
			return
		case <-time.After(time.Minute):
		}
		app.Reports.Run(bg, 15*time.Minute, func(err error) {
			logger.Error("generating the scheduled posture reports failed", "error", err.Error())
		})
	}()
	go app.DeidJobs.Run(bg, time.Second, func(err error) {
		logger.Error("de-identification jobs failed", "error", err.Error())
	})
	go app.Web.Run(bg, f.refusalSummary)
	if err := startBackups(bg, app, bf, getenv, logger); err != nil {
		return err
	}
	// The compliance checks run once a hospital day across servers, the
	// first time 20 minutes after start (beyond the RPO: the backups have
	// had their chance).
	go app.Compliance.Schedule(bg, 20*time.Minute, 5*time.Minute, func(err error) {
		logger.Error("the daily compliance run failed", "error", err.Error())
	})
	if err := startBackupsPG(bg, app, bf, pbf, getenv, logger); err != nil {
		return err
	}
	go app.runKeyRotation(bg, 2*time.Second, logger)
	if app.Backups != nil {
		app.BackupHealth.Watch(app.Backups, backuphealth.Periods{Full: bf.fullEvery, Incremental: bf.incrementalEvery})
	}
	siemDone := make(chan struct{})
	if app.SIEM != nil {
		go func() {
			defer close(siemDone)
			app.SIEM.Run(bg)
		}()
	} else {
		close(siemDone)
	}
	defer func() { stopBackground(); <-siemDone }()
	fmt.Fprintf(stdout, "medguard %s serving https://%s (%s, data in %s)\n", Version, ln.Addr(), app.DB.Where, cfg.DataDir)
	fmt.Fprintf(stdout, "TLS certificate SHA-256 fingerprint: %s\n", fingerprint)
	logger.Info("serving", "address", ln.Addr().String(), "database", string(app.DB.Dialect), "cipher", app.KeyFile.Cipher)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}

// tuneGC trades some of the memory budget (SPEC §13: 300 MB under load)
// for fewer garbage collections, which otherwise delay the audit writer
// on a busy 2-core machine: the heap may grow to 4× the live data, and a
// soft limit of 200 MiB makes the collector work harder only near it.
// GOGC and GOMEMLIMIT, if set, win.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(200 << 20)
	}
}

// bootstrap creates the two people a new installation starts with — the
// administrator "admin" and the security administrator "security" (an
// installation from before there were two gets the second one) — with the
// passwords from MEDGUARD_ADMIN_PASSWORD and MEDGUARD_SECURITY_PASSWORD or
// new ones printed once.
func bootstrap(ctx context.Context, app *App, getenv func(string) string, stdout io.Writer) error {
	needAdmin, needSecurity, err := app.Identity.MissingBootstrap(ctx)
	if err != nil {
		return err
	}
	for _, b := range []struct {
		need      bool
		env, role string
		account   identity.BootstrapAccount
	}{
		{needAdmin, "MEDGUARD_ADMIN_PASSWORD", "administrator", identity.BootstrapAccounts("", "")[0]},
		{needSecurity, "MEDGUARD_SECURITY_PASSWORD", "security administrator", identity.BootstrapAccounts("", "")[1]},
	} {
		if !b.need {
			continue
		}
		password, given := getenv(b.env), true
		if password == "" {
			password, given = onetimePassword(), false
		}
		b.account.Password = password
		if _, err := app.Identity.Bootstrap(ctx, b.account); err != nil {
			if medguard.IsKind(err, medguard.Invalid) {
				return fmt.Errorf("%s: %w", b.env, err)
			}
			return err
		}
		if given {
			fmt.Fprintf(stdout, "Created the %s %q with the password from %s.\n", b.role, b.account.Username, b.env)
		} else {
			fmt.Fprintf(stdout, "Created the %s %q. One-time password (shown only now; change it after signing in):\n\n    %s\n\n",
				b.role, b.account.Username, password)
		}
	}
	return nil
}

// onetimePassword makes a random password that meets the policy: 20
// characters from letters, digits and symbols, with every class present.
func onetimePassword() string {
	const (
		lower  = "abcdefghijkmnpqrstuvwxyz"
		upper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		digits = "23456789"
		other  = "#%+-=@"
	)
	all := lower + upper + digits + other
	pick := func(set string) byte {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			panic(err)
		}
		return set[n.Int64()]
	}
	b := []byte{pick(lower), pick(upper), pick(digits), pick(other)}
	for len(b) < 20 {
		b = append(b, pick(all))
	}
	for i := len(b) - 1; i > 0; i-- {
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		b[i], b[j.Int64()] = b[j.Int64()], b[i]
	}
	return string(b)
}
