package records_test

import (
	"context"
	"slices"
	"testing"
)

// TestScanSealed: the scan of the stored sensitive columns finds every
// value of 张伟's demographics and record sealed, and a value written in
// clear behind medguard's back is counted and named by its row.
func TestScanSealed(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p, r := f.patientWithRecord(t)
	scans, err := f.svc.ScanSealed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string][2]int{}
	for _, s := range scans {
		by[s.Table+"."+s.Column] = [2]int{s.Sealed, s.Values}
		if s.Sealed != s.Values || len(s.Unsealed) != 0 {
			t.Errorf("%s.%s: %d of %d sealed, %v", s.Table, s.Column, s.Sealed, s.Values, s.Unsealed)
		}
	}
	for _, col := range []string{"patients.name", "patients.id_number", "patients.phone", "patients.address", "record_versions.body",
		"record_versions.fields"} {
		if by[col] != [2]int{1, 1} {
			t.Errorf("%s: %v", col, by[col])
		}
	}
	if _, err := f.db.ExecContext(ctx, `UPDATE patients SET phone = $1 WHERE id = $2`, []byte("13912345678"), p.ID); err != nil {
		t.Fatal(err)
	}
	// A ciphertext's first bytes with a short body is no envelope either.
	if _, err := f.db.ExecContext(ctx, `UPDATE record_versions SET title = $1 WHERE record_id = $2`, []byte{1, 1, 0, 0, 0, 1, 'x'}, r.ID); err != nil {
		t.Fatal(err)
	}
	if scans, err = f.svc.ScanSealed(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range scans {
		switch s.Table + "." + s.Column {
		case "patients.phone":
			if s.Sealed != 0 || s.Values != 1 || !slices.Equal(s.Unsealed, []string{p.ID}) {
				t.Errorf("the phone in clear: %+v", s)
			}
		case "record_versions.title":
			if s.Sealed != 0 || !slices.Equal(s.Unsealed, []string{r.ID}) {
				t.Errorf("the truncated title: %+v", s)
			}
		}
	}
}
