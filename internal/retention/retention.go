// Package retention owns how long medical records are kept (保存期限) and
// the proof of their destruction (SPEC §4): the retention classes and their
// legal floors (outpatient ≥ 15 years, inpatient ≥ 30 years), the signed
// destruction certificate (销毁证明), and the destruction ledger — an
// append-only file in the data directory, beside checkpoints.log, that
// outlives the database so that a restore of an older backup shreds again
// everything destroyed since.
//
// It is pure apart from the ledger file: it holds no tables, decides no
// access and shreds nothing itself. The records package finds what has
// expired and destroys it, through the gate, as a four-eyes request of the
// approvals package.
package retention

import (
	"slices"
	"time"
)

// Class is a record's retention class: the kind of care it documents.
type Class string

// The retention classes (医疗机构病历管理规定: 门（急）诊病历 ≥ 15 年,
// 住院病历 ≥ 30 年).
const (
	Outpatient Class = "outpatient"
	Inpatient  Class = "inpatient"
)

// Floors are the shortest retention periods, in years, the law allows per
// class: a configured period is never below its class's floor.
var Floors = map[Class]int{Outpatient: 15, Inpatient: 30}

// inpatientTypes are the record types written during a hospital stay.
var inpatientTypes = []string{"admission_note", "progress_note", "discharge_summary", "operation_note",
	"nursing_note", "consultation_note"}

// TypeClass is the class of a record type on its own: the types written
// during a stay are inpatient; the others (outpatient notes, prescriptions,
// lab and imaging reports, the restricted types) outpatient.
func TypeClass(recordType string) Class {
	if slices.Contains(inpatientTypes, recordType) {
		return Inpatient
	}
	return Outpatient
}

// ClassOf is the class of one record: inpatient when it belongs to an
// admission (whatever its type), else its type's class.
func ClassOf(recordType string, inAdmission bool) Class {
	if inAdmission {
		return Inpatient
	}
	return TypeClass(recordType)
}

// DefaultYears is a record type's retention period when none is set: its
// class's floor.
func DefaultYears(recordType string) int { return Floors[TypeClass(recordType)] }

// Years is the period that applies to one record: the configured period of
// its type, but never less than the floor of the record's own class (a lab
// report of a stay is kept as long as the stay's other records).
func Years(configured int, recordType string, inAdmission bool) int {
	return max(configured, Floors[ClassOf(recordType, inAdmission)])
}

// Ends is when a retention period of years that starts at start ends, in
// UTC by the calendar (a period starting on 29 February ends on 1 March).
func Ends(start time.Time, years int) time.Time { return start.UTC().AddDate(years, 0, 0) }

// DefaultBackupRetention is how long a backup is kept before it expires
// (365 days unless the installation says otherwise): a destruction's
// certificate promises that every backup holding the shredded keys has
// expired by the destruction time plus this. The backup schedule must not
// keep backups longer; the lead wires the backup schedule's retention here.
const DefaultBackupRetention = 365 * 24 * time.Hour
