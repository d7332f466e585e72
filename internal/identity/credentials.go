package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Resetting someone's credentials. For an account that can reach patient
// data or privilege, a reset is a four-eyes request (package approvals)
// and is split between the two people: the new password is made of two
// halves, one shown to the requester when they ask, the other to the
// approver when they approve, so neither alone can sign in as the user;
// the user must then choose a new password and enrol a new second factor
// before anything else. Accounts that reach neither (no roles, research)
// are reset directly by an administrator, and their users too must choose
// anew.

// errFourEyes refuses a direct change to an account that needs a second
// person.
var errFourEyes = &medguard.Error{Kind: medguard.Conflict, Code: "approval_required",
	Message: "this account can reach patient data or privilege: its credentials change only through a four-eyes request, which this route files"}

// resetAlphabet is what the halves of a reset password are made of: no
// look-alike characters, so that they can be read out or written down.
const resetAlphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"

// NewPasswordHalf returns one half of a password that a reset splits
// between two people: 10 random characters, so that each half alone holds
// 57 bits and the two together satisfy the password policy.
func NewPasswordHalf() string {
	var b strings.Builder
	n := big.NewInt(int64(len(resetAlphabet)))
	for i := 0; i < 10; i++ {
		k, err := rand.Int(rand.Reader, n)
		if err != nil {
			panic("identity: crypto/rand failed: " + err.Error())
		}
		b.WriteByte(resetAlphabet[k.Int64()])
	}
	return b.String()
}

// SplitPassword is the password a split reset sets: the requester's half,
// a dash, the approver's half.
func SplitPassword(requesterHalf, approverHalf string) string {
	return requesterHalf + "-" + approverHalf
}

// PasswordReset returns the mutation that resets the account of userID to
// password, set by requester (committed with the approval's decision):
// the user must choose a new password and enrol a new second factor at the
// next sign-in, and every session ends.
func (s *Service) PasswordReset(userID, requester, password string) audit.Mutation {
	hash := HashPassword(password, s.cfg.Argon2)
	now := s.clock.Now()
	return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if err := activeUser(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1, password_changed_at = $2, password_set_by = $3,
			must_change_password = 1, totp_secret = NULL, totp_pending = NULL, totp_enrolled_at = NULL, totp_last_step = NULL
			WHERE id = $4`, hash, medguard.Millis(now), requester, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM signin_lockouts WHERE username = (SELECT username FROM users WHERE id = $1)`, userID); err != nil {
			return err
		}
		if err := recordChange(ctx, tx, userID, requester, ChangePasswordReset, now); err != nil {
			return err
		}
		return endSessions(ctx, tx, userID, now, "password_reset")
	}
}

// TOTPReset returns the mutation that clears the second factor of userID
// (the user enrols anew at the next sign-in), by requester; every session
// ends.
func (s *Service) TOTPReset(userID, requester string) audit.Mutation {
	now := s.clock.Now()
	return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if err := activeUser(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_enrolled_at = NULL,
			totp_last_step = NULL WHERE id = $1`, userID); err != nil {
			return err
		}
		if err := recordChange(ctx, tx, userID, requester, ChangeTOTPReset, now); err != nil {
			return err
		}
		return endSessions(ctx, tx, userID, now, "totp_reset")
	}
}

// CertificateSet returns the mutation that registers the client
// certificate with the given fingerprint for userID ("" removes it), by
// requester.
func (s *Service) CertificateSet(userID, requester, fingerprint string) audit.Mutation {
	now := s.clock.Now()
	return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if err := activeUser(ctx, tx, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET cert_fingerprint = $1 WHERE id = $2`, storage.NullString(fingerprint), userID)
		if storage.IsConflict(err) {
			return &medguard.Error{Kind: medguard.Conflict, Field: "certificate", Message: "this certificate belongs to another user"}
		}
		if err != nil {
			return err
		}
		return recordChange(ctx, tx, userID, requester, ChangeCertificateSet, now)
	}
}

// activeUser checks, in tx, that the user exists and has not left.
func activeUser(ctx context.Context, tx *sql.Tx, userID string) error {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM users WHERE id = $1`, userID).Scan(&status)
	if err == sql.ErrNoRows {
		return errNotFound
	}
	if err != nil {
		return err
	}
	if status != Active {
		return &medguard.Error{Kind: medguard.Conflict, Message: "the user is deactivated"}
	}
	return nil
}

// CertificateFingerprint checks a PEM client certificate and returns its
// fingerprint; an empty PEM gives "" (removal).
func CertificateFingerprint(certPEM string) (string, error) {
	if strings.TrimSpace(certPEM) == "" {
		return "", nil
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", medguard.InvalidField("certificate", "certificate must be one PEM CERTIFICATE block")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", medguard.InvalidField("certificate", "certificate does not parse")
	}
	return Fingerprint(block.Bytes), nil
}

// credentialChange is a direct change of the credentials of an account
// that needs no second person, by an administrator (user.manage), logged
// under action. Accounts that need one are refused with approval_required.
func (s *Service) credentialChange(ctx context.Context, call *medguard.Call, userID, action string,
	check func(u *User) (audit.Mutation, error)) error {
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: action,
		Resource: userResource(userID)},
		func(policy.Decision) (audit.Mutation, error) {
			u, err := s.lookupUser(ctx, userID)
			if err != nil {
				return nil, err
			}
			if NeedsFourEyes(u.Roles) {
				return nil, errFourEyes
			}
			return check(u)
		})
	return err
}

// ResetPassword sets a new password for a user who reaches neither
// patient data nor privilege (by an administrator); the user must choose a
// new one at the next sign-in, and their sessions end.
func (s *Service) ResetPassword(ctx context.Context, call *medguard.Call, userID, password string) error {
	return s.credentialChange(ctx, call, userID, "user.password_reset", func(u *User) (audit.Mutation, error) {
		if err := CheckPassword(password, u.Username); err != nil {
			return nil, err
		}
		return s.PasswordReset(userID, call.Actor.ID, password), nil
	})
}

// ResetTOTP clears the second factor of a user who reaches neither
// patient data nor privilege, so that they enrol again at the next sign-in.
func (s *Service) ResetTOTP(ctx context.Context, call *medguard.Call, userID string) error {
	return s.credentialChange(ctx, call, userID, "user.totp_reset", func(*User) (audit.Mutation, error) {
		return s.TOTPReset(userID, call.Actor.ID), nil
	})
}

// SetCertificate registers a client certificate (PEM) for the mTLS sign-in
// of a user who reaches neither patient data nor privilege; an empty PEM
// removes it.
func (s *Service) SetCertificate(ctx context.Context, call *medguard.Call, userID, certPEM string) error {
	return s.credentialChange(ctx, call, userID, "user.certificate_set", func(*User) (audit.Mutation, error) {
		fp, err := CertificateFingerprint(certPEM)
		if err != nil {
			return nil, err
		}
		return s.CertificateSet(userID, call.Actor.ID, fp), nil
	})
}

// Fingerprint is the SHA-256 of a certificate's DER bytes, in hex.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
