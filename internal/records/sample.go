package records

import (
	"context"

	"medguard"
	"medguard/internal/keys"
	"medguard/internal/storage"
)

// Counts are how many patients and records a database holds (destroyed
// records included: their rows stay).
type Counts struct {
	Patients int `json:"patients"`
	Records  int `json:"records"`
}

// Count counts a database's patients and records. It passes no gate: it is
// for a backup's inventory and a restore drill, which read no patient data.
func Count(ctx context.Context, db *storage.DB) (Counts, error) {
	var c Counts
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM patients`).Scan(&c.Patients); err != nil {
		return c, medguard.Wrap("records.Count", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM records`).Scan(&c.Records); err != nil {
		return c, medguard.Wrap("records.Count", err)
	}
	return c, nil
}

// SampleReport says what SampleRead decrypted: how many patients and
// records of a random sample, and how many fields in all. It never holds
// a decrypted value.
type SampleReport struct {
	Patients int `json:"patients"`
	Records  int `json:"records"`
	Fields   int `json:"fields"`
}

// SampleRead decrypts every identifying field of up to n random patients
// and the title, text and structured fields of up to n random records not
// destroyed, with the key file behind kr: the proof a restore drill gives
// that a restored copy's patient data can be read, not only its data keys
// unwrapped. It passes no gate and writes no audit entry: it is for a
// drill's scratch copy, which nobody serves and which is removed after;
// the decrypted values are dropped at once. The first field that does not
// decrypt is the error.
func SampleRead(ctx context.Context, db *storage.DB, kr *keys.Keyring, n int) (SampleReport, error) {
	s := &Service{db: db, keys: kr}
	var rep SampleReport
	ids := func(q string) ([]string, error) {
		rows, err := db.QueryContext(ctx, q, n)
		if err != nil {
			return nil, medguard.Wrap("records.SampleRead", err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, medguard.Wrap("records.SampleRead", err)
			}
			out = append(out, id)
		}
		return out, rows.Err()
	}
	patients, err := ids(`SELECT id FROM patients ORDER BY random() LIMIT $1`)
	if err != nil {
		return rep, err
	}
	for _, id := range patients {
		sp, err := s.loadPatient(ctx, id)
		if err != nil {
			return rep, err
		}
		if _, err := s.open(ctx, sp, nil); err != nil {
			return rep, medguard.Wrap("records.SampleRead: patient "+id, err)
		}
		rep.Patients++
		rep.Fields += 7
	}
	recs, err := ids(`SELECT id FROM records WHERE destroyed_at IS NULL ORDER BY random() LIMIT $1`)
	if err != nil {
		return rep, err
	}
	for _, id := range recs {
		sr, err := s.loadRecord(ctx, id, 0)
		if err != nil {
			return rep, err
		}
		r, err := s.openRecord(ctx, sr)
		if err != nil {
			return rep, medguard.Wrap("records.SampleRead: record "+id, err)
		}
		rep.Records++
		rep.Fields += 2 + len(r.Fields)
	}
	return rep, nil
}
