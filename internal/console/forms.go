package console

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"medguard"
)

// Helpers shared by the security, audit and administration pages (audit.go,
// alerts.go, incidents.go, accountability.go, admin.go): reading their forms,
// turning a refused input into a message on the page, and the words for
// codes and for time left.

// formError is a refused input shown on the page that holds the form: the
// catalog key of the message and the field the service named.
type formError struct {
	Key   string
	Field string
}

// asFormError turns an Invalid or Conflict error into a message for the
// page (with key as the text, or key.<field> when the catalog has one), or
// reports false for any other error, which the framework answers (403,
// 404, 423…).
func (rq *Request) asFormError(err error, key string) (*formError, bool) {
	fe, ok := formErrorOf(err, key)
	switch {
	case !ok:
	case medguard.IsKind(err, medguard.Conflict) && rq.c.catalog.has(key+".conflict"):
		fe.Key = key + ".conflict"
	case fe.Field != "" && rq.c.catalog.has(key+"."+fe.Field):
		fe.Key = key + "." + fe.Field
	}
	return fe, ok
}

func formErrorOf(err error, key string) (*formError, bool) {
	var me *medguard.Error
	if !errors.As(err, &me) {
		return nil, false
	}
	switch me.Kind {
	case medguard.Invalid:
		return &formError{Key: key, Field: me.Field}, true
	case medguard.Conflict:
		return &formError{Key: "security.error.conflict"}, true
	}
	return nil, false
}

// textOr is the catalog text of key, or fallback when no catalog has it
// (a detection rule an officer added, say).
func (rq *Request) textOr(key, fallback string) string {
	if rq.c.catalog.has(key) {
		return rq.T(key)
	}
	return fallback
}

// form is a trimmed form value.
func (rq *Request) form(name string) string { return strings.TrimSpace(rq.PostFormValue(name)) }

// localTime reads a time the console's forms give — a datetime-local value
// (2006-01-02T15:04) or a date — in the hospital's zone; end makes a date
// mean the start of the next day, so that "to 3 March" includes the 3rd.
func (rq *Request) localTime(field, v string, end bool) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	zone := rq.Deps.Trail.Zone()
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, v, zone); err == nil {
			return t, nil
		}
	}
	if t, err := time.ParseInLocation("2006-01-02", v, zone); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, medguard.InvalidField(field, "%s is not a date or time", field)
}

// localInput formats a time for a datetime-local input.
func (rq *Request) localInput(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(rq.Deps.Trail.Zone()).Format("2006-01-02T15:04")
}

// countdown says, in the page's language, how long is left until due or
// how long it is overdue, to the minute: "剩余 1 小时 20 分", "已超期 35 分钟".
func (rq *Request) countdown(due, now time.Time) string {
	d := due.Sub(now)
	prefix := "countdown.left"
	if d < 0 {
		prefix, d = "countdown.late", -d
	}
	mins := int(d / time.Minute)
	if d%time.Minute != 0 && prefix == "countdown.late" {
		mins++ // overdue by 10 s reads "1 minute", never "0 minutes"
	}
	days, hours, m := mins/(24*60), mins/60%24, mins%60
	switch {
	case days > 0:
		return rq.T(prefix+".dh", days, hours)
	case hours > 0:
		return rq.T(prefix+".hm", hours, m)
	}
	return rq.T(prefix+".m", m)
}

// uintValue reads a non-negative whole number.
func uintValue(field, v string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 63)
	if err != nil {
		return 0, medguard.InvalidField(field, "%s must be a whole number", field)
	}
	return n, nil
}

// indexList reads audit entry indexes separated by commas, spaces or
// Chinese commas.
func indexList(field, v string) ([]uint64, error) {
	f := strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r == '，' || r == '、' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	})
	if len(f) == 0 {
		return nil, medguard.InvalidField(field, "give at least one audit entry index")
	}
	out := make([]uint64, 0, len(f))
	for _, s := range f {
		n, err := uintValue(field, s)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// gradeValue reads an incident or case grade, 0 when not given.
func gradeValue(v string) (int, error) {
	switch strings.TrimSpace(v) {
	case "":
		return 0, nil
	case "1", "2", "3":
		return int(v[0] - '0'), nil
	}
	return 0, medguard.InvalidField("grade", "grade must be 1, 2 or 3")
}

// idPath keeps an opaque id fit for a path, or "".
func idPath(id string) string {
	if medguard.ValidID(id) {
		return id
	}
	return ""
}
