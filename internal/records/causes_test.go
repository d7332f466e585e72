package records_test

import (
	"context"
	"errors"
	"testing"

	"medguard/internal/idnum"
	"medguard/internal/records"
)

// TestRefusalCauses: a refused patient field keeps its cause, so that the
// console can say in words what is wrong (the API's message is unchanged).
func TestRefusalCauses(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	for _, c := range []struct {
		p     records.NewPatient
		cause error
	}{
		{records.NewPatient{Name: "李四", IDNumber: "110105194912310021"}, idnum.ErrChecksum},
		{records.NewPatient{Name: "李四", IDNumber: "1101051949123100"}, idnum.ErrLength},
		{records.NewPatient{Name: "李四", IDNumber: "11010519491332002X"}, idnum.ErrBirthDate},
		{records.NewPatient{Name: "李四", IDNumber: idNumber, BirthDate: "1950-01-01"}, records.ErrBirthDateMismatch},
		{records.NewPatient{Name: "李四", IDNumber: idNumber, Gender: "male"}, records.ErrGenderMismatch},
		{records.NewPatient{Name: "李四", BirthDate: "2099-01-01"}, records.ErrBirthDateRange},
		{records.NewPatient{Name: "李四", BirthDate: "1949/12/31"}, records.ErrDateFormat},
	} {
		_, err := f.svc.CreatePatient(ctx, f.as("sunli"), c.p)
		if !errors.Is(err, c.cause) {
			t.Errorf("%+v: %v, want the cause %v", c.p, err, c.cause)
		}
	}
}
