// Package medguardtest holds the checks that the tests of every package
// make of a medguard error: its kind, the field it names, the rule that
// refused. It is for tests only and must not be imported by the server.
package medguardtest

import (
	"errors"
	"testing"

	"medguard"
)

// WantKind fails the test unless err is a *medguard.Error (anywhere in its
// chain) of kind k, and returns it.
func WantKind(t testing.TB, err error, k medguard.Kind) *medguard.Error {
	t.Helper()
	var e *medguard.Error
	if !errors.As(err, &e) || e.Kind != k {
		t.Fatalf("got %v, want %s", err, k)
	}
	return e
}

// WantField fails the test unless err is an Invalid error that names
// field, and returns it.
func WantField(t testing.TB, err error, field string) *medguard.Error {
	t.Helper()
	e := WantKind(t, err, medguard.Invalid)
	if e.Field != field {
		t.Fatalf("invalid field %q, want %q (%v)", e.Field, field, err)
	}
	return e
}

// WantRule fails the test unless err is a Forbidden error that names the
// policy rule, and returns it.
func WantRule(t testing.TB, err error, rule string) *medguard.Error {
	t.Helper()
	e := WantKind(t, err, medguard.Forbidden)
	if e.Rule != rule {
		t.Fatalf("refused by rule %q, want %q (%v)", e.Rule, rule, err)
	}
	return e
}
