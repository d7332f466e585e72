package web

import (
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"

	"medguard"
	"medguard/internal/trail"
)

// AccessReportPage is a page of a patient's access report, with the cursor
// of the next page (null on the last).
type AccessReportPage struct {
	*trail.AccessReport
	Next *string `json:"next"`
}

// accessReportParams are the query parameters the access report takes.
var accessReportParams = []string{"lang", "from", "to", "cursor", "limit"}

// accessReport serves GET /api/v1/patients/{id}/access-report?lang=&from=&to=
// (SPEC §5, 患者访问记录): who accessed the patient's data, when, what, why
// and whether by break-glass, newest first, in Chinese or English.
func (s *Server) accessReport(w http.ResponseWriter, r *http.Request, c *medguard.Call) error {
	if err := onlyParams(r, accessReportParams...); err != nil {
		return err
	}
	q := r.URL.Query()
	lang, err := reportLang(q.Get("lang"), r.Header.Get("Accept-Language"))
	if err != nil {
		return err
	}
	zone := s.Trail.Zone()
	from, err := parseReportTime("from", q.Get("from"), zone, false)
	if err != nil {
		return err
	}
	to, err := parseReportTime("to", q.Get("to"), zone, true)
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	var before uint64
	if after != "" {
		if before, err = strconv.ParseUint(after, 10, 63); err != nil || before == 0 {
			return medguard.InvalidField("cursor", "cursor is not one this server gave out")
		}
	}
	rep, next, err := s.Trail.AccessReport(r.Context(), c, trail.ReportQuery{PatientID: r.PathValue("id"),
		From: from, To: to, Lang: lang, Before: before, Limit: limit})
	if err != nil {
		return err
	}
	cursor := ""
	if next > 0 {
		cursor = strconv.FormatUint(next, 10)
	}
	w.Header().Set("Content-Language", string(rep.Language))
	w.Header().Set("Vary", "Accept-Language")
	return writeJSON(w, http.StatusOK, AccessReportPage{AccessReport: rep, Next: nextCursor(cursor)})
}

var queryKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// onlyParams refuses query parameters other than allowed, and any given more
// than once, naming the parameter: a mistyped "form=" must not silently
// widen a report.
func onlyParams(r *http.Request, allowed ...string) error {
	q := r.URL.Query()
	for _, key := range slices.Sorted(maps.Keys(q)) {
		vs := q[key]
		field := key
		if !queryKeyPattern.MatchString(key) {
			field = "query" // not echoed: it could be anything
		}
		switch {
		case !slices.Contains(allowed, key):
			return medguard.InvalidField(field, "unknown query parameter; this operation takes %s", strings.Join(allowed, ", "))
		case len(vs) > 1:
			return medguard.InvalidField(field, "%s is given more than once", field)
		}
	}
	return nil
}

// reportLanguages are the report's languages, the default first, for
// matching Accept-Language.
var reportLanguages = language.NewMatcher([]language.Tag{language.SimplifiedChinese, language.English})

// reportLang chooses the report's language: lang (zh or en) if given, else
// the best match of Accept-Language, else Chinese.
func reportLang(lang, acceptLanguage string) (trail.Lang, error) {
	switch lang {
	case "zh":
		return trail.Chinese, nil
	case "en":
		return trail.English, nil
	case "":
	default:
		return "", medguard.InvalidField("lang", "lang must be zh or en")
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return trail.Chinese, nil
	}
	_, i, conf := reportLanguages.Match(tags...)
	if conf == language.No || i == 0 {
		return trail.Chinese, nil
	}
	return trail.English, nil
}

// parseReportTime reads a report bound: an RFC 3339 time, or a date
// (YYYY-MM-DD) in the hospital's zone — its start for from, and for to the
// start of the next day, so that to=2026-03-31 includes the 31st. A '+' of
// an offset that arrived unencoded (as a space) is read as '+'.
func parseReportTime(field, v string, zone *time.Location, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, strings.ReplaceAll(v, " ", "+")); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseInLocation(time.DateOnly, v, zone)
	if err != nil {
		return time.Time{}, medguard.InvalidField(field,
			"%s must be a date (2026-03-05) or a time as RFC 3339 (2026-03-05T14:32:00+08:00)", field)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d.UTC(), nil
}
