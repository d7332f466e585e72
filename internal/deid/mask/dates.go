package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// MinSecret is the shortest job secret NewDateShifter accepts, in bytes.
const MinSecret = 16

// Errors of date shifting. They never repeat the value.
var (
	// ErrSecret means the job secret is shorter than MinSecret.
	ErrSecret = errors.New("mask: the job secret must have at least 16 bytes")
	// ErrShiftRange means the largest shift is not 1-3650 days.
	ErrShiftRange = errors.New("mask: the largest date shift must be 1-3650 days")
	// ErrDate means a value is not a date in a layout DateShifter reads.
	ErrDate = errors.New("mask: the value is not a date in a known layout")
)

// DateShifter moves a patient's dates by an offset derived from the job
// secret and the patient's id: HMAC-SHA256(secret, patient id) taken to a
// whole number of days in [-max, -1] ∪ [1, max]. The same patient always
// moves by the same offset within a job, so intervals between their dates
// survive; another job (another secret) moves them differently; and
// without the secret the offset cannot be recovered from the id.
type DateShifter struct {
	secret  []byte
	maxDays int
}

// NewDateShifter returns a DateShifter for a job's secret and the largest
// shift in days (1-3650; 365 is usual).
func NewDateShifter(secret []byte, maxDays int) (*DateShifter, error) {
	if len(secret) < MinSecret {
		return nil, ErrSecret
	}
	if maxDays < 1 || maxDays > 3650 {
		return nil, ErrShiftRange
	}
	return &DateShifter{secret: append([]byte(nil), secret...), maxDays: maxDays}, nil
}

// Offset returns the patient's shift in days, never 0.
func (d *DateShifter) Offset(patientID string) int {
	m := hmac.New(sha256.New, d.secret)
	m.Write([]byte("medguard deid date shift\x00"))
	m.Write([]byte(patientID))
	sum := m.Sum(nil)
	n := int(binary.BigEndian.Uint64(sum[:8]) % uint64(2*d.maxDays))
	if n < d.maxDays {
		return n - d.maxDays // -max … -1
	}
	return n - d.maxDays + 1 // 1 … max
}

// Shift moves t by the patient's offset in calendar days (the time of day
// is kept).
func (d *DateShifter) Shift(patientID string, t time.Time) time.Time {
	return t.AddDate(0, 0, d.Offset(patientID))
}

// dateLayouts are the layouts ShiftString reads, most specific first.
var dateLayouts = []string{
	time.RFC3339,
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006/01/02 15:04",
	"2006/01/02",
	"2006/1/2",
	"2006.01.02",
	"2006.1.2",
	"2006年1月2日 15:04",
	"2006年1月2日",
	"20060102",
}

// ShiftString shifts a date written in one of the usual layouts
// (2024-03-05, 2024-03-05 14:30, 2024/03/05, 2024年3月5日, 20240305,
// RFC 3339 …) and writes it back in the same layout. It returns ErrDate
// for anything else.
func (d *DateShifter) ShiftString(patientID, s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, layout := range dateLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		return d.Shift(patientID, t).Format(layout), nil
	}
	return "", ErrDate
}
