package cli_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"medguard/internal/cli"
	"medguard/internal/storage/storagetest"
)

// Helpers for the console's journeys on the demo hospital (issue 10): a
// served demo, and a browser that signs its staff in.

// demoStaffPassword is every demo staff member's password ("admin" and
// "security" have adminPassword and securityPassword, as in start).
const demoStaffPassword = "Demo#Yiyuan2026"

// demoHospital is "medguard demo" served by "medguard serve".
type demoHospital struct {
	*server
	// Example is a member of staff of each role, by role name
	// (records_clerk, doctor, nurse, dept_head, auditor, it_engineer,
	// researcher, security_officer, admin), as the demo prints them, and
	// Department their department's code.
	Example, Department map[string]string
}

// startDemo builds a demo hospital of the given size (on PostgreSQL when
// MEDGUARD_TEST_POSTGRES is set) and serves it.
func startDemo(t *testing.T, patients, records int, args ...string) *demoHospital {
	t.Helper()
	dir := t.TempDir()
	argv := []string{"demo", "--data", dir, "--patients", strconv.Itoa(patients), "--records", strconv.Itoa(records), "--workers", "8"}
	var db []string
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		db = []string{"--db", storagetest.FreshSchema(t, dsn)}
		argv = append(argv, db...)
	}
	env := map[string]string{"MEDGUARD_ADMIN_PASSWORD": adminPassword, "MEDGUARD_SECURITY_PASSWORD": securityPassword}
	var out, errs bytes.Buffer
	if err := cli.Run(context.Background(), argv, func(k string) string { return env[k] }, &out, &errs); err != nil {
		t.Fatalf("demo: %v\n%s%s", err, out.String(), errs.String())
	}
	h := &demoHospital{Example: map[string]string{}, Department: map[string]string{}}
	table := false
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 4 && f[0] == "role" && f[1] == "username":
			table = true
		case table && len(f) == 4:
			h.Example[f[0]], h.Department[f[0]] = f[1], f[2]
		case table && len(f) == 3: // no department
			h.Example[f[0]] = f[1]
		case table && len(f) == 0 && len(h.Example) > 0:
			table = false
		}
	}
	if h.Example["doctor"] == "" || h.Example["security_officer"] == "" {
		t.Fatalf("the demo printed no examples:\n%s", out.String())
	}
	h.server = start(t, append(append([]string{"--data", dir}, db...), args...)...)
	return h
}

// password is the demo password of username.
func (h *demoHospital) password(username string) string {
	switch username {
	case "admin":
		return adminPassword
	case "security":
		return securityPassword
	}
	return demoStaffPassword
}

// token is a full API session of a member of the demo's staff.
func (h *demoHospital) token(username string) string {
	return h.server.token(username, h.password(username))
}

// signIn signs username in through the console's sign-in page, enrolling
// TOTP with the secret the page shows at the first sign-in (and
// remembering it, so that the API helpers and later sign-ins send codes).
func (b *browser) signIn(username, password string) {
	b.t.Helper()
	s := b.s
	if _, ok := s.book.secrets[username]; ok {
		b.run("sign-in of "+username,
			chromedp.Navigate(s.base+"/login"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), username),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.SendKeys(chromedp.ID("totp"), s.code(username)),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("logout")),
		)
		return
	}
	b.run("sign-in of "+username,
		chromedp.Navigate(s.base+"/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("totp-secret")),
	)
	secret := strings.TrimSpace(b.get("secret", chromedp.Text(chromedp.ID("totp-secret"))))
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	s.book.secrets[username], s.book.steps[username] = secret, time.Now().Unix()/30
	b.run("enrolment of "+username,
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("confirm")),
		// The enrolment page has a sign-out button too: wait until the
		// browser has left it, or the next navigation races the answer
		// that sets the full session's cookie.
		chromedp.WaitNotPresent(chromedp.ID("totp-secret")),
		chromedp.WaitVisible(chromedp.ID("logout")),
	)
}

// signOut signs the browser's user out.
func (b *browser) signOut() {
	b.t.Helper()
	b.run("sign-out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("signin")))
}
