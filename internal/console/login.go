package console

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"html/template"
	"image/png"
	"net/http"
	"net/url"
	"strings"

	"github.com/pquerna/otp"

	"medguard"
	"medguard/internal/identity"
)

// Sign-in (SPEC §2): password and TOTP code, first sign-in enrolment of the
// second factor with its QR code, sign-out.

func init() {
	register(
		Page{Method: "GET", Path: "/login", Public: true, Handle: loginPage},
		Page{Method: "POST", Path: "/login", Public: true, Handle: login},
		Page{Method: "GET", Path: "/login/totp", Enrolment: true, Handle: enrolPage},
		Page{Method: "POST", Path: "/login/totp", Enrolment: true, Handle: confirmEnrolment},
		Page{Method: "GET", Path: "/login/password", Enrolment: true, Handle: passwordPage},
		Page{Method: "POST", Path: "/login/password", Enrolment: true, Handle: changePassword},
		Page{Method: "POST", Path: "/logout", Enrolment: true, Handle: logout},
	)
}

type loginView struct {
	Username string
	Error    string // catalog key
	Next     string // where sign-in goes back to, a local path
}

// nextOf is the page a signed-out GET asked for, to come back to after
// sign-in: a local path (localPath), never the sign-in pages themselves.
func nextOf(rq *Request) string {
	if rq.Method != http.MethodGet || rq.page.Path == "" || rq.page.Public || rq.page.Enrolment {
		return ""
	}
	return safeNext(rq.URL.RequestURI())
}

// safeNext keeps a ?next= target on this site and off the sign-in pages;
// "" for none.
func safeNext(next string) string {
	if next == "" {
		return ""
	}
	p := localPath(next)
	if p == "/" || p == "/login" || strings.HasPrefix(p, "/login/") || strings.HasPrefix(p, "/login?") || strings.HasPrefix(p, "/logout") {
		return ""
	}
	return p
}

// withNext adds ?next= to a sign-in page's path.
func withNext(path, next string) string {
	if next == "" {
		return path
	}
	return path + "?next=" + url.QueryEscape(next)
}

func loginPage(rq *Request) error {
	next := safeNext(rq.URL.Query().Get("next"))
	if rq.Call != nil && rq.Scope == identity.ScopeFull {
		return rq.Redirect(cmp.Or(next, "/"), "")
	}
	return rq.Render(http.StatusOK, "login", "login.title", loginView{Next: next})
}

func login(rq *Request) error {
	call := rq.newCall()
	username := strings.TrimSpace(rq.PostFormValue("username"))
	next := safeNext(rq.PostFormValue("next"))
	again := func(status int, key string) error {
		return rq.Render(status, "login", "login.title", loginView{Username: username, Error: key, Next: next})
	}
	if rq.Deps.AllowSignIn != nil && !rq.Deps.AllowSignIn(call.IP) {
		return again(http.StatusTooManyRequests, "login.error.rate_limited")
	}
	in, err := rq.Deps.Identity.Login(rq.Context(), call, identity.Credentials{Username: username,
		Password: rq.PostFormValue("password"), TOTP: strings.TrimSpace(rq.PostFormValue("totp"))})
	if err != nil {
		var me *medguard.Error
		errors.As(err, &me)
		switch {
		case me == nil:
			return err
		case me.Kind == medguard.Invalid:
			return again(http.StatusUnprocessableEntity, "login.error.required")
		case me.Code == "totp_required":
			return again(http.StatusUnauthorized, "login.error.totp_required")
		case me.Kind == medguard.Unauthenticated:
			return again(http.StatusUnauthorized, "login.error.bad_credentials")
		case me.Code == "locked_out":
			return again(http.StatusLocked, "login.error.locked_out")
		case me.Kind == medguard.Forbidden:
			return again(http.StatusForbidden, "login.error.hours")
		}
		return err // 423 frozen: the frozen page
	}
	setSession(rq.W, in.Token)
	switch {
	case in.PasswordChangeRequired:
		return rq.Redirect(withNext("/login/password", next), "")
	case in.MFAEnrollmentRequired:
		return rq.Redirect(withNext("/login/totp", next), "")
	}
	return rq.Redirect(cmp.Or(next, "/"), "")
}

type passwordView struct{ Error, Next string }

// passwordPage asks a user whose credentials were reset for a new password.
func passwordPage(rq *Request) error {
	return rq.Render(http.StatusOK, "password", "password.title", passwordView{Next: safeNext(rq.URL.Query().Get("next"))})
}

// changePassword sets the new password, then goes on to enrolment.
func changePassword(rq *Request) error {
	next := safeNext(rq.PostFormValue("next"))
	err := rq.Deps.Identity.ChangePassword(rq.Context(), rq.Call, rq.PostFormValue("current_password"), rq.PostFormValue("new_password"))
	if err != nil {
		var me *medguard.Error
		switch {
		case errors.As(err, &me) && me.Kind == medguard.Invalid:
			return rq.Render(http.StatusUnprocessableEntity, "password", "password.title", passwordView{Error: "password.error.new", Next: next})
		case errors.As(err, &me) && me.Kind == medguard.Unauthenticated && me.Code == "bad_credentials":
			return rq.Render(http.StatusUnauthorized, "password", "password.title", passwordView{Error: "password.error.current", Next: next})
		}
		return err
	}
	if rq.Scope == identity.ScopeFull {
		return rq.Redirect(cmp.Or(next, "/"), "password_changed")
	}
	return rq.Redirect(withNext("/login/totp", next), "")
}

type enrolView struct {
	Secret, URL string
	QR          template.URL
	Error       string
	Next        string // where sign-in goes back to
}

// enrolPage starts enrolment: a new secret, shown as a QR code and as text.
func enrolPage(rq *Request) error {
	next := safeNext(rq.URL.Query().Get("next"))
	if rq.Scope == identity.ScopeFull {
		return rq.Redirect(cmp.Or(next, "/"), "")
	}
	enr, err := rq.Deps.Identity.StartTOTP(rq.Context(), rq.Call)
	if me := (*medguard.Error)(nil); errors.As(err, &me) && me.Code == "password_change_required" {
		return rq.Redirect(withNext("/login/password", next), "")
	}
	if err != nil {
		return err
	}
	return renderEnrol(rq, http.StatusOK, enr.OTPAuthURL, "")
}

func renderEnrol(rq *Request, status int, otpauth, errKey string) error {
	key, err := otp.NewKeyFromURL(otpauth)
	if err != nil || key.Type() != "totp" {
		return &medguard.Error{Kind: medguard.Malformed, Message: "enrolment form is damaged; start again"}
	}
	// The next page comes from the enrolment page's address, or its form.
	next := safeNext(cmp.Or(rq.URL.Query().Get("next"), rq.PostFormValue("next")))
	v := enrolView{Secret: key.Secret(), URL: otpauth, Error: errKey, Next: next}
	if img, err := key.Image(240, 240); err == nil {
		var buf bytes.Buffer
		if png.Encode(&buf, img) == nil {
			// A data: URL built here from PNG bytes; html/template would
			// refuse a data: URL that came from outside.
			v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
		}
	}
	return rq.Render(status, "enrol", "enrol.title", v)
}

// confirmEnrolment checks the first code and turns the enrolment session
// into a full one.
func confirmEnrolment(rq *Request) error {
	in, err := rq.Deps.Identity.ConfirmTOTP(rq.Context(), rq.Call, strings.TrimSpace(rq.PostFormValue("code")))
	if err != nil {
		var me *medguard.Error
		if errors.As(err, &me) && (me.Kind == medguard.Invalid || me.Code == "bad_credentials" || me.Kind == medguard.Unauthenticated && me.Code != "session_idle" && me.Code != "session_expired" && me.Code != "session_ended") {
			return renderEnrol(rq, http.StatusUnprocessableEntity, rq.PostFormValue("otpauth"), "enrol.error.bad_code")
		}
		return err
	}
	setSession(rq.W, in.Token)
	return rq.Redirect(cmp.Or(safeNext(rq.PostFormValue("next")), "/"), "enrolled")
}

func logout(rq *Request) error {
	err := rq.Deps.Identity.Logout(rq.Context(), rq.Call)
	clearSession(rq.W)
	if err != nil {
		return err
	}
	return rq.Redirect("/login", "signed_out")
}
