package keys

import (
	"context"

	"medguard"
)

// SystemText seals and opens a capability's free text — notes,
// statements, contacts — under one of medguard's system data keys
// ("system:<Name>"), each value bound to where it is stored (its table,
// row and column), so that a sealed value moved elsewhere does not open.
type SystemText struct {
	Keyring *Keyring
	Name    string
}

// Seal seals text for table/row/column.
func (t SystemText) Seal(ctx context.Context, table, row, column, text string) ([]byte, error) {
	k, err := t.Keyring.SystemKey(ctx, t.Name)
	if err != nil {
		return nil, medguard.Wrap(t.Name+".seal", err)
	}
	return k.SealString(Location{Table: table, Row: row, Column: column}, text), nil
}

// Open opens what Seal sealed for table/row/column; nil opens as "".
func (t SystemText) Open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	if ct == nil {
		return "", nil
	}
	v, err := t.Keyring.OpenString(ctx, "system:"+t.Name, Location{Table: table, Row: row, Column: column}, ct)
	return v, medguard.Wrap(t.Name+".open", err)
}
