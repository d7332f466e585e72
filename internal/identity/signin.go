package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Session scopes.
const (
	ScopeFull          = "full"           // a signed-in user
	ScopeMFAEnrollment = "mfa_enrollment" // good only for enrolling a second factor
)

// Sign-in rules, as they appear in the audit log.
const (
	RulePassword          = "allow.password"
	RulePasswordTOTP      = "allow.password_totp"
	RulePasswordCert      = "allow.password_client_certificate"
	RuleMFAEnrollment     = "allow.password_mfa_enrollment"
	RuleBadCredentials    = "deny.bad_credentials"
	RuleDeactivated       = "deny.deactivated_account"
	RuleFrozen            = "deny.frozen_account"
	RuleLockedOut         = "deny.locked_out"
	RuleBadTOTP           = "deny.bad_totp"
	RuleTOTPReplayed      = "deny.totp_replayed"
	RuleTOTPRequired      = "deny.totp_required"
	RuleRemoteHours       = "deny.remote_signin_hours"
	RuleLockout           = "lockout.threshold_reached"
	RuleEnrollmentStarted = "allow.totp_enrollment"
	RuleCertRequired      = "deny.client_certificate_required"
	RulePasswordCertTOTP  = "allow.password_client_certificate_totp"
)

// Credentials are what a person presents to sign in.
type Credentials struct {
	Username string
	Password string
	TOTP     string
	// ClientCert is the DER of a client certificate the TLS layer verified
	// against the configured client CA, if one was presented.
	ClientCert []byte
}

// SignIn is the result of a successful sign-in.
type SignIn struct {
	Token                 string    `json:"token"`
	ExpiresAt             time.Time `json:"expires_at"`
	MFAEnrollmentRequired bool      `json:"mfa_enrollment_required"`
	// PasswordChangeRequired says the credentials were reset: choose a new
	// password (POST /api/v1/auth/password) before enrolling.
	PasswordChangeRequired bool  `json:"password_change_required"`
	User                   *User `json:"-"`
}

// signInRow is what sign-in needs to know about a user.
type signInRow struct {
	id, hash, status, department string
	frozen, mustChange           bool
	totpSecret                   []byte
	totpLastStep                 sql.NullInt64
	certFingerprint              sql.NullString
}

func (s *Service) signInRow(ctx context.Context, username string) (*signInRow, error) {
	var r signInRow
	var frozen sql.NullInt64
	var mustChange int
	err := s.db.QueryRowContext(ctx, `SELECT u.id, u.password_hash, u.status, COALESCE(d.code, ''), u.frozen_at,
		u.totp_secret, u.totp_last_step, u.cert_fingerprint, u.must_change_password
		FROM users u LEFT JOIN departments d ON d.id = u.department_id WHERE u.username = $1`, username).
		Scan(&r.id, &r.hash, &r.status, &r.department, &frozen, &r.totpSecret, &r.totpLastStep, &r.certFingerprint, &mustChange)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, medguard.Wrap("identity.signIn", err)
	}
	r.frozen, r.mustChange = frozen.Valid, mustChange != 0
	return &r, nil
}

// errBadCredentials is what every wrong username, password or code gets,
// so that a response never tells which of them was wrong.
func errBadCredentials(code string) error {
	return &medguard.Error{Kind: medguard.Unauthenticated, Code: code, Message: "wrong username, password or code"}
}

// Login signs a person in with a password and a second factor: a TOTP
// code, or — for roles that are not privileged — a registered client
// certificate; privileged roles need the code, and with PrivilegedFactors
// "cert+totp" the certificate as well. A user without a second factor
// enrolled (and a user whose credentials were reset) gets a session good
// only for choosing a new password and enrolling one. call carries the
// client's IP and the request id; its actor is filled in here.
//
// The lockout is decided before the password is checked: the sign-ins of
// one username under way on this server are counted with the failures
// already recorded, so that parallel guesses cannot all be checked while
// the count is still low.
func (s *Service) Login(ctx context.Context, call *medguard.Call, cr Credentials) (*SignIn, error) {
	username := strings.ToLower(strings.TrimSpace(cr.Username))
	if username == "" {
		return nil, medguard.InvalidField("username", "username is required")
	}
	if cr.Password == "" {
		return nil, medguard.InvalidField("password", "password is required")
	}
	call.Actor = medguard.Actor{Kind: medguard.UserActor, Name: username}
	if len(username) > 64 || len(cr.Password) > 4*MaxPasswordLength {
		call.Actor.Name = "" // not a username: never logged
		if _, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "auth.login", TargetType: "user",
			Rule: RuleBadCredentials, Outcome: audit.Refused}, nil); err != nil {
			return nil, err
		}
		return nil, errBadCredentials("bad_credentials")
	}
	now := s.clock.Now()
	event := func(allowed bool, rule, outcome string) gate.Event {
		return gate.Event{Call: call, Action: "auth.login", TargetType: "user", TargetID: call.Actor.ID,
			Allowed: allowed, Rule: rule, Outcome: outcome}
	}
	locked := func(until time.Time) error {
		if _, err := s.gate.Record(ctx, event(false, RuleLockedOut, audit.Locked), nil); err != nil {
			return err
		}
		return &medguard.Error{Kind: medguard.Locked, Code: "locked_out",
			Message: "too many failed sign-ins; try again after " + until.UTC().Format(time.RFC3339)}
	}

	// A locked-out username is refused whatever the password; so is one
	// whose failures and sign-ins under way reach the threshold.
	ok, until, err := s.attempts.reserve(username, func() (time.Time, bool, int, error) {
		until, locked, err := s.lockedUntil(ctx, username, now)
		if err != nil || locked {
			return until, locked, 0, err
		}
		n, err := s.recentFailures(ctx, username, now)
		return now.Add(s.cfg.LockoutDuration), false, n, err
	}, s.cfg.LockoutThreshold)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, locked(until)
	}
	// A failure is recorded and the reservation released at once, under
	// the username's lock, so that no other sign-in counts it twice or not
	// at all.
	released := false
	defer func() {
		if !released {
			s.attempts.release(username, nil)
		}
	}()
	fail := func(rule string) error {
		released = true
		var err error
		s.attempts.release(username, func() { err = s.fail(ctx, call, username, now, rule) })
		return err
	}

	row, err := s.signInRow(ctx, username)
	if err != nil {
		return nil, err
	}
	hash := s.dummyHash
	if row != nil {
		hash = row.hash
		call.Actor.ID = row.id
		call.Actor.Department = row.department
	}
	passwordOK := VerifyPassword(cr.Password, hash) && row != nil
	switch {
	case !passwordOK:
		return nil, fail(RuleBadCredentials)
	case row.status != Active:
		// The password was right, but the person has left: refused like a
		// wrong password, and logged distinctly for detection.
		return nil, fail(RuleDeactivated)
	case row.frozen:
		if _, err := s.gate.Record(ctx, event(false, RuleFrozen, audit.Locked), nil); err != nil {
			return nil, err
		}
		return nil, ErrFrozen
	}
	roles, err := s.rolesOf(ctx, row.id)
	if err != nil {
		return nil, medguard.Wrap("identity.Login", err)
	}
	call.Actor.Roles = roles
	if !s.windowAllows(roles, call.IP, now) {
		if _, err := s.gate.Record(ctx, event(false, RuleRemoteHours, audit.Denied), nil); err != nil {
			return nil, err
		}
		return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: RuleRemoteHours,
			Message: "remote sign-in is not allowed for your role at this hour"}
	}

	privileged := slices.ContainsFunc(roles, policy.Privileged)
	enrolled := row.totpSecret != nil
	certOK := len(cr.ClientCert) > 0 && row.certFingerprint.Valid &&
		subtle.ConstantTimeCompare([]byte(Fingerprint(cr.ClientCert)), []byte(row.certFingerprint.String)) == 1
	needCert := privileged && s.cfg.PrivilegedFactors == FactorsCertTOTP
	if needCert && !certOK {
		if _, err := s.gate.Record(ctx, event(false, RuleCertRequired, audit.Refused), nil); err != nil {
			return nil, err
		}
		return nil, &medguard.Error{Kind: medguard.Unauthenticated, Code: "client_certificate_required",
			Message: "privileged roles sign in with their registered client certificate and a code"}
	}
	rule, scope, lifetime := RulePasswordTOTP, ScopeFull, s.cfg.SessionLifetime
	var step int64
	switch {
	case row.mustChange || !enrolled && !(certOK && !privileged):
		// A reset, or no second factor yet: good only for choosing a
		// password and enrolling one.
		rule, scope, lifetime = RuleMFAEnrollment, ScopeMFAEnrollment, 15*time.Minute
	case certOK && !privileged:
		rule = RulePasswordCert
	default:
		if strings.TrimSpace(cr.TOTP) == "" {
			if _, err := s.gate.Record(ctx, event(false, RuleTOTPRequired, audit.Refused), nil); err != nil {
				return nil, err
			}
			return nil, &medguard.Error{Kind: medguard.Unauthenticated, Code: "totp_required",
				Message: "a code from your authenticator app is required"}
		}
		secret, err := s.openTOTP(ctx, row.id, "totp_secret", row.totpSecret)
		if err != nil {
			return nil, err
		}
		var ok bool
		step, ok = matchTOTP(secret, cr.TOTP, now)
		if !ok {
			return nil, fail(RuleBadTOTP)
		}
		if row.totpLastStep.Valid && step <= row.totpLastStep.Int64 {
			return nil, fail(RuleTOTPReplayed)
		}
		if needCert {
			rule = RulePasswordCertTOTP
		}
	}

	token, tokenHash := newToken("mgs_")
	sessionID := medguard.NewID(now)
	expires := now.Add(lifetime).Truncate(time.Millisecond)
	_, err = s.gate.Record(ctx, event(true, rule, audit.Success), func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if step != 0 {
			if err := acceptStep(ctx, tx, row.id, step); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM signin_failures WHERE username = $1`, username); err != nil {
			return err
		}
		return insertSession(ctx, tx, sessionID, tokenHash, row.id, scope, now, expires, call.IP)
	})
	if err != nil {
		return nil, err
	}
	call.Actor.SessionID = sessionID
	return &SignIn{Token: token, ExpiresAt: expires, MFAEnrollmentRequired: scope == ScopeMFAEnrollment,
		PasswordChangeRequired: row.mustChange}, nil
}

// attempts serialises the decision to let a sign-in go on to the password
// check, and counts the sign-ins under way, on this server. (Servers
// sharing a database each count their own; the failures they record are
// shared.) One lock serves every username: it is held for a count and,
// after a failure, for recording it — failures are few, and an attack on
// one username slows only failed sign-ins.
type attempts struct {
	mu       sync.Mutex
	inFlight map[string]int
}

// reserve lets a sign-in of username go on if it is not locked out and its
// recent failures plus the sign-ins under way stay below threshold; state
// reads the lockout and the failures. It returns false (with the time the
// lockout ends) otherwise.
func (a *attempts) reserve(username string, state func() (time.Time, bool, int, error), threshold int) (bool, time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	until, locked, failures, err := state()
	if err != nil {
		return false, until, err
	}
	if locked || failures+a.inFlight[username] >= threshold {
		return false, until, nil
	}
	if a.inFlight == nil {
		a.inFlight = map[string]int{}
	}
	a.inFlight[username]++
	return true, until, nil
}

// release ends a sign-in that reserve let go on, after running record (if
// any: the failure's record) under the same lock, so that reserve never
// sees the failure both recorded and under way.
func (a *attempts) release(username string, record func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if record != nil {
		record()
	}
	if a.inFlight[username]--; a.inFlight[username] <= 0 {
		delete(a.inFlight, username)
	}
}

// recentFailures counts the failed sign-ins of username within the
// lockout window.
func (s *Service) recentFailures(ctx context.Context, username string, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM signin_failures WHERE username = $1 AND at > $2`,
		username, medguard.Millis(now.Add(-s.cfg.LockoutWindow))).Scan(&n)
	return n, medguard.Wrap("identity.recentFailures", err)
}

// ErrFrozen is the answer to a frozen account: 423 everywhere, sign-in
// included (SPEC Appendix A).
var ErrFrozen = &medguard.Error{Kind: medguard.Locked, Code: "account_frozen",
	Message: "this account is frozen after suspicious activity; a security officer must release it"}

// fail records a failed sign-in, locks the username out when the threshold
// is reached, and returns the error for the caller.
func (s *Service) fail(ctx context.Context, call *medguard.Call, username string, now time.Time, rule string) error {
	lockedOut := false
	_, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "auth.login", TargetType: "user", TargetID: call.Actor.ID,
		Rule: rule, Outcome: audit.Refused}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO signin_failures (username, at, ip) VALUES ($1, $2, $3)`,
			username, medguard.Millis(now), call.IP); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM signin_failures WHERE username = $1 AND at > $2`,
			username, medguard.Millis(now.Add(-s.cfg.LockoutWindow))).Scan(&n); err != nil {
			return err
		}
		if n < s.cfg.LockoutThreshold {
			return nil
		}
		lockedOut = true
		_, err := tx.ExecContext(ctx, `INSERT INTO signin_lockouts (username, locked_until) VALUES ($1, $2)
			ON CONFLICT (username) DO UPDATE SET locked_until = excluded.locked_until`,
			username, medguard.Millis(now.Add(s.cfg.LockoutDuration)))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM signin_failures WHERE username = $1`, username)
		return err
	})
	if err != nil {
		return err
	}
	if lockedOut {
		if _, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "auth.lockout", TargetType: "user",
			TargetID: call.Actor.ID, Rule: RuleLockout, Outcome: audit.Locked}, nil); err != nil {
			return err
		}
	}
	if rule == RuleBadTOTP || rule == RuleTOTPReplayed {
		return errBadCredentials("totp_invalid")
	}
	return errBadCredentials("bad_credentials")
}

func (s *Service) lockedUntil(ctx context.Context, username string, now time.Time) (time.Time, bool, error) {
	var until int64
	err := s.db.QueryRowContext(ctx, `SELECT locked_until FROM signin_lockouts WHERE username = $1`, username).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, medguard.Wrap("identity.lockedUntil", err)
	}
	t := medguard.FromMillis(until)
	return t, now.Before(t), nil
}

// windowAllows applies the remote sign-in hours: a sign-in from outside the
// intranet is allowed only if every restricted role of the user allows the
// current local hour.
func (s *Service) windowAllows(roles []string, ip string, now time.Time) bool {
	if len(s.cfg.RemoteHours) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err == nil {
		addr = addr.Unmap()
		for _, p := range s.cfg.Intranet {
			if p.Contains(addr) {
				return true
			}
		}
	}
	local := now.In(s.cfg.Location)
	for _, r := range roles {
		if w, ok := s.cfg.RemoteHours[r]; ok && !w.Contains(local) {
			return false
		}
	}
	return true
}

// newToken returns a random bearer token with the given prefix and its
// SHA-256, which is all that is stored.
func newToken(prefix string) (string, []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("identity: crypto/rand failed: " + err.Error())
	}
	token := prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func insertSession(ctx context.Context, tx *sql.Tx, id string, tokenHash []byte, userID, scope string, now, expires time.Time, ip string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, token_hash, user_id, scope, created_at, last_seen_at, expires_at, ip)
		VALUES ($1, $2, $3, $4, $5, $5, $6, $7)`, id, tokenHash, userID, scope, medguard.Millis(now), medguard.Millis(expires), ip)
	return err
}

// TOTP parameters: RFC 6238 with the values every authenticator app uses.
var totpOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// matchTOTP checks code against secret at now with a tolerance of one 30 s
// step either side, and returns the step that matched.
func matchTOTP(secret, code string, now time.Time) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	for _, off := range []int64{0, -1, 1} {
		t := now.Add(time.Duration(off) * 30 * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return t.Unix() / 30, true
		}
	}
	return 0, false
}

// acceptStep records step as used; a step not after the last used one is a
// replay, which this conditional update refuses even between servers.
func acceptStep(ctx context.Context, tx *sql.Tx, userID string, step int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)`,
		step, userID)
	return storage.Affected(res, err, errBadCredentials("totp_invalid"))
}

func (s *Service) sealTOTP(ctx context.Context, userID, column, secret string) ([]byte, error) {
	k, err := s.keys.SystemKey(ctx, "totp")
	if err != nil {
		return nil, medguard.Wrap("identity.sealTOTP", err)
	}
	return k.SealString(keys.Location{Table: "users", Row: userID, Column: column}, secret), nil
}

func (s *Service) openTOTP(ctx context.Context, userID, column string, sealed []byte) (string, error) {
	secret, err := s.keys.OpenString(ctx, "system:totp", keys.Location{Table: "users", Row: userID, Column: column}, sealed)
	return secret, medguard.Wrap("identity.openTOTP", err)
}

// TOTPEnrollment is a new TOTP secret to show the user once.
type TOTPEnrollment struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

// StartTOTP begins enrolment of a second factor for the calling user: a new
// secret, kept pending until a code from it is confirmed.
func (s *Service) StartTOTP(ctx context.Context, call *medguard.Call) (*TOTPEnrollment, error) {
	row, err := s.signInRow(ctx, call.Actor.Name)
	if err != nil {
		return nil, err
	}
	if row == nil {
		return nil, errNotFound
	}
	if row.mustChange {
		return nil, errChangePasswordFirst
	}
	if row.totpSecret != nil {
		return nil, &medguard.Error{Kind: medguard.Conflict, Code: "totp_enrolled",
			Message: "a second factor is already enrolled; an administrator can reset it"}
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.TOTPIssuer, AccountName: call.Actor.Name,
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, SecretSize: 20})
	if err != nil {
		return nil, medguard.Wrap("identity.StartTOTP", err)
	}
	sealed, err := s.sealTOTP(ctx, row.id, "totp_pending", key.Secret())
	if err != nil {
		return nil, err
	}
	_, err = s.gate.Record(ctx, gate.Event{Call: call, Action: "auth.totp_enroll", TargetType: "user", TargetID: row.id,
		Allowed: true, Rule: RuleEnrollmentStarted}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		_, err := tx.ExecContext(ctx, `UPDATE users SET totp_pending = $1 WHERE id = $2`, sealed, row.id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &TOTPEnrollment{Secret: key.Secret(), OTPAuthURL: key.URL()}, nil
}

// ConfirmTOTP completes enrolment with a code from the pending secret. The
// enrolment session ends and a full session is returned.
func (s *Service) ConfirmTOTP(ctx context.Context, call *medguard.Call, code string) (*SignIn, error) {
	if strings.TrimSpace(code) == "" {
		return nil, medguard.InvalidField("code", "code is required")
	}
	now := s.clock.Now()
	userID := call.Actor.ID
	var pending []byte
	var mustChange int
	err := s.db.QueryRowContext(ctx, `SELECT totp_pending, must_change_password FROM users WHERE id = $1`, userID).Scan(&pending, &mustChange)
	if err != nil {
		return nil, medguard.Wrap("identity.ConfirmTOTP", err)
	}
	if mustChange != 0 {
		return nil, errChangePasswordFirst
	}
	if pending == nil {
		return nil, &medguard.Error{Kind: medguard.Conflict, Code: "no_pending_totp",
			Message: "start enrolment first (POST /api/v1/auth/totp)"}
	}
	secret, err := s.openTOTP(ctx, userID, "totp_pending", pending)
	if err != nil {
		return nil, err
	}
	step, ok := matchTOTP(secret, code, now)
	if !ok {
		return nil, s.fail(ctx, call, call.Actor.Name, now, RuleBadTOTP)
	}
	sealed, err := s.sealTOTP(ctx, userID, "totp_secret", secret)
	if err != nil {
		return nil, err
	}
	token, tokenHash := newToken("mgs_")
	sessionID := medguard.NewID(now)
	expires := now.Add(s.cfg.SessionLifetime).Truncate(time.Millisecond)
	_, err = s.gate.Record(ctx, gate.Event{Call: call, Action: "auth.totp_confirm", TargetType: "user", TargetID: userID,
		Allowed: true, Rule: RulePasswordTOTP}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = $1, totp_pending = NULL, totp_enrolled_at = $2,
			totp_last_step = $3 WHERE id = $4 AND totp_pending IS NOT NULL`, sealed, medguard.Millis(now), step, userID)
		if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Code: "no_pending_totp",
			Message: "enrolment was already completed"}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET ended_at = $1, end_reason = 'mfa_enrolled' WHERE id = $2`,
			medguard.Millis(now), call.Actor.SessionID); err != nil {
			return err
		}
		return insertSession(ctx, tx, sessionID, tokenHash, userID, ScopeFull, now, expires, call.IP)
	})
	if err != nil {
		return nil, err
	}
	return &SignIn{Token: token, ExpiresAt: expires}, nil
}

// Logout ends the calling session.
func (s *Service) Logout(ctx context.Context, call *medguard.Call) error {
	now := s.clock.Now()
	_, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "auth.logout", TargetType: "session",
		TargetID: call.Actor.SessionID, Allowed: true, Rule: "allow.own_session"},
		func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `UPDATE sessions SET ended_at = $1, end_reason = 'logout' WHERE id = $2 AND ended_at IS NULL`,
				medguard.Millis(now), call.Actor.SessionID)
			return err
		})
	return err
}

// errChangePasswordFirst refuses enrolment after a reset until the user
// has chosen a new password.
var errChangePasswordFirst = &medguard.Error{Kind: medguard.Conflict, Code: "password_change_required",
	Message: "your credentials were reset: choose a new password first (POST /api/v1/auth/password)"}

// ChangePassword changes the calling user's own password; after a reset,
// it is the first thing the user does.
func (s *Service) ChangePassword(ctx context.Context, call *medguard.Call, current, next string) error {
	row, err := s.signInRow(ctx, call.Actor.Name)
	if err != nil {
		return err
	}
	if row == nil || !VerifyPassword(current, row.hash) {
		return s.fail(ctx, call, call.Actor.Name, s.clock.Now(), RuleBadCredentials)
	}
	if err := CheckPassword(next, call.Actor.Name); err != nil {
		return err
	}
	if next == current {
		return medguard.InvalidField("new_password", "the new password must differ from the current one")
	}
	hash := HashPassword(next, s.cfg.Argon2)
	now := s.clock.Now()
	_, err = s.gate.Record(ctx, gate.Event{Call: call, Action: "auth.password_change", TargetType: "user", TargetID: row.id,
		Allowed: true, Rule: "allow.own_account"}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1, password_changed_at = $2, password_set_by = $3,
			must_change_password = 0 WHERE id = $3`, hash, medguard.Millis(now), row.id); err != nil {
			return err
		}
		// Other sessions end; this one continues.
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET ended_at = $1, end_reason = 'password_changed'
			WHERE user_id = $2 AND id <> $3 AND ended_at IS NULL`, medguard.Millis(now), row.id, call.Actor.SessionID)
		return err
	})
	return err
}
