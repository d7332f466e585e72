package identity

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"medguard"
)

// Argon2Params are the argon2id cost parameters.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2 follows the OWASP recommendation for argon2id (46 MiB, one
// pass, one lane), about 50 ms on one core here.
var DefaultArgon2 = Argon2Params{Memory: 46 * 1024, Time: 1, Threads: 1}

// hashSlots bounds how many passwords are hashed at once, so that a burst of
// sign-ins cannot exhaust memory (each hash holds Memory KiB).
var hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// HashPassword returns the PHC-format argon2id hash of password:
// $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func HashPassword(password string, p Argon2Params) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic("identity: crypto/rand failed: " + err.Error())
	}
	hashSlots <- struct{}{}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, 32)
	<-hashSlots
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key))
}

// VerifyPassword reports whether password matches the PHC hash, in constant
// time with respect to the hash contents.
func VerifyPassword(password, hash string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false
	}
	if p.Memory > 1<<20 || p.Time > 16 || p.Threads == 0 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	hashSlots <- struct{}{}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	<-hashSlots
	return subtle.ConstantTimeCompare(got, want) == 1
}

//go:embed common-passwords.txt
var commonPasswordsText string

var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" && !strings.HasPrefix(w, "#") {
			m[strings.ToLower(w)] = true
		}
	}
	return m
}()

// MinPasswordLength is the shortest password the policy accepts.
const MinPasswordLength = 10

// MaxPasswordLength bounds the work of hashing.
const MaxPasswordLength = 128

// ErrWeakPassword is the cause of every password-policy failure.
var ErrWeakPassword = errors.New("identity: password does not meet the policy")

// CheckPassword applies the password policy (等保三级 identity requirements):
// at least MinPasswordLength characters, at least three of upper case, lower
// case, digits and other characters, not one of the commonly used passwords,
// and not containing the username. It returns an Invalid error naming the
// field "password" and saying what is missing; the message never repeats
// the password.
func CheckPassword(password, username string) error {
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLength {
		return invalidPassword("must be at least %d characters long", MinPasswordLength)
	}
	if n > MaxPasswordLength {
		return invalidPassword("must be at most %d characters long", MaxPasswordLength)
	}
	var upper, lower, digit, other bool
	for _, r := range password {
		switch {
		case unicode.IsControl(r):
			return invalidPassword("must not contain control characters")
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range []bool{upper, lower, digit, other} {
		if b {
			classes++
		}
	}
	if classes < 3 {
		return invalidPassword("must mix at least three of: upper-case letters, lower-case letters, digits, other characters")
	}
	lower2 := strings.ToLower(password)
	if commonPasswords[lower2] || commonPasswords[strings.TrimRightFunc(lower2, func(r rune) bool { return !unicode.IsLetter(r) })] {
		return invalidPassword("is too common; choose another")
	}
	if username != "" && len(username) >= 3 && strings.Contains(lower2, strings.ToLower(username)) {
		return invalidPassword("must not contain the username")
	}
	return nil
}

func invalidPassword(format string, args ...any) error {
	e := medguard.InvalidField("password", "password "+format, args...)
	e.Err = ErrWeakPassword
	return e
}
