package records

import (
	"context"
	"fmt"

	"medguard/internal/keys"
	"medguard/internal/storage"
)

// Counts returns how many patients and records the database holds. A
// destroyed record keeps its row (only its key is shredded), so neither
// count ever goes down. It reads no patient data.
func Counts(ctx context.Context, db *storage.DB) (patients, records int, err error) {
	if err = db.QueryRowContext(ctx, `SELECT count(*) FROM patients`).Scan(&patients); err != nil {
		return 0, 0, fmt.Errorf("records: counting patients: %w", err)
	}
	if err = db.QueryRowContext(ctx, `SELECT count(*) FROM records`).Scan(&records); err != nil {
		return 0, 0, fmt.Errorf("records: counting records: %w", err)
	}
	return patients, records, nil
}

// RestoredSample is what CheckRestoredSample found.
type RestoredSample struct {
	Patients, Records int
	// Keys is how many data keys the sample opened (one per patient and
	// per record sampled); Fields how many sealed fields decrypted.
	Keys, Fields int
}

// CheckRestoredSample counts a restored copy's patients and records and
// decrypts, with kr (the key file the copy must open), every identifying
// field of up to n patients and the current content of up to n records
// that were not destroyed, chosen at random. It returns counts only: the
// plaintext is dropped as soon as it decrypted.
//
// It takes no call and writes no audit entry because it is for the
// scratch copy a restore drill makes and removes; it must never be used
// on the live database, where every read goes through the gate.
func CheckRestoredSample(ctx context.Context, db *storage.DB, kr *keys.Keyring, n int) (RestoredSample, error) {
	var out RestoredSample
	var err error
	if out.Patients, out.Records, err = Counts(ctx, db); err != nil {
		return out, err
	}
	s := &Service{db: db, keys: kr}
	ids := func(q string) ([]string, error) {
		rows, err := db.QueryContext(ctx, q, n)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		return ids, rows.Err()
	}
	pids, err := ids(`SELECT id FROM patients ORDER BY random() LIMIT $1`)
	if err != nil {
		return out, fmt.Errorf("records: sampling patients: %w", err)
	}
	for _, id := range pids {
		sp, err := s.loadPatient(ctx, id)
		if err != nil {
			return out, err
		}
		if _, err := s.open(ctx, sp, nil); err != nil {
			return out, fmt.Errorf("records: a sampled patient's fields do not decrypt with the key file: %w", err)
		}
		out.Keys++
		out.Fields += 7
		kr.Forget(patientOwner(id))
	}
	rids, err := ids(`SELECT id FROM records WHERE destroyed_at IS NULL ORDER BY random() LIMIT $1`)
	if err != nil {
		return out, fmt.Errorf("records: sampling records: %w", err)
	}
	for _, id := range rids {
		r, err := s.loadRecord(ctx, id, 0)
		if err != nil {
			return out, err
		}
		if _, err := s.openRecord(ctx, r); err != nil {
			return out, fmt.Errorf("records: a sampled record's content does not decrypt with the key file: %w", err)
		}
		out.Keys++
		out.Fields += 2
		if r.fields != nil {
			out.Fields++
		}
		kr.Forget(r.owner())
	}
	return out, nil
}
