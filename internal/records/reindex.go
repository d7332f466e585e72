package records

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"

	"medguard/internal/keys"
)

// The patients table is the keys package's IndexedTable: a rotation of the
// blind-index key re-indexes it through these methods (docs/keys.md).
var _ keys.IndexedTable = (*Service)(nil)

// IndexCounts returns how many patients are indexed under each version of
// the blind-index key.
func (s *Service) IndexCounts(ctx context.Context) (map[uint32]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT index_version, count(*) FROM patients GROUP BY index_version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint32]int64{}
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			return nil, err
		}
		out[uint32(v)] = n
	}
	return out, rows.Err()
}

// IndexedUnder returns how many patients are indexed under version v of
// the blind-index key (through patients_index_version).
func (s *Service) IndexedUnder(ctx context.Context, v uint32) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM patients WHERE index_version = $1`, int64(v)).Scan(&n)
	return n, err
}

// indexedPatient is what a re-index reads of a patient.
type indexedPatient struct {
	id                          string
	name, idNumber, phone, mrn  []byte
	version                     int64
	nameIdx, idIdx, phIdx, mIdx []byte
}

// Reindex re-indexes up to n patients indexed under from's version with
// to, and returns how many it read (0: none is left under from). It
// decrypts each patient's indexed fields (name, ID number, phone, 病案号)
// with the patient's data key as every read of this package does, computes
// the new indexes, and stores them in one transaction; a row is updated
// only if it is still indexed under from and unchanged since it was read
// (a change meanwhile indexed it under the active version itself). A
// patient whose data key was destroyed gets indexes that match nothing:
// nothing can be decrypted to compute them, and such a patient must not be
// found again.
//
// It passes no gate of its own: it is for the key rotation job, which
// records the run in the audit log (keys.reindex, with the count, as the
// KEK rewrap does), and must not be called elsewhere. Nothing decrypted
// leaves this function.
func (s *Service) Reindex(ctx context.Context, from, to *keys.BlindIndex, n int) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, id_number, phone, mrn, version FROM patients
		WHERE index_version = $1 ORDER BY id LIMIT $2`, int64(from.Version()), n)
	if err != nil {
		return 0, err
	}
	var batch []indexedPatient
	for rows.Next() {
		var p indexedPatient
		if err := rows.Scan(&p.id, &p.name, &p.idNumber, &p.phone, &p.mrn, &p.version); err != nil {
			rows.Close()
			return 0, err
		}
		batch = append(batch, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(batch) == 0 {
		return 0, nil
	}
	for i := range batch {
		p := &batch[i]
		owner := patientOwner(p.id)
		var plain [4]string
		var oerr error
		for j, f := range []struct {
			col string
			ct  []byte
		}{{"name", p.name}, {"id_number", p.idNumber}, {"phone", p.phone}, {"mrn", p.mrn}} {
			if plain[j], oerr = s.keys.OpenString(ctx, owner, loc("patients", p.id, f.col), f.ct); oerr != nil {
				break
			}
		}
		switch {
		case errors.Is(oerr, keys.ErrNoKey):
			p.nameIdx = make([]byte, 32)
			rand.Read(p.nameIdx)
		case oerr != nil:
			return 0, fmt.Errorf("records: re-index: a patient's fields do not decrypt: %w", oerr)
		default:
			p.nameIdx, p.idIdx, p.phIdx, p.mIdx = patientIndexes(to, plain[0], plain[1], plain[2], plain[3])
		}
		clear(plain[:])
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE patients SET name_index = $1, id_number_index = $2, phone_index = $3,
			mrn_index = $4, index_version = $5 WHERE id = $6 AND index_version = $7 AND version = $8`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, p := range batch {
			if _, err := st.ExecContext(ctx, p.nameIdx, p.idIdx, p.phIdx, p.mIdx, int64(to.Version()), p.id,
				int64(from.Version()), p.version); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("records: re-index: %w", err)
	}
	return len(batch), nil
}
