package synth

import (
	"bytes"
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
)

// dataFiles are the package's tables, compiled in: see the package doc.
//
//go:embed data/*.json data/*.tsv data/conditions/*.json
var dataFiles embed.FS

// tables are the decoded data files.
type tables struct {
	names
	places
	panels map[string]panel // lab panels by name
	clinical
}

// loaded returns the tables, decoding the embedded files on first use. The
// files are part of the binary, so one that does not decode is a
// programming error (the tests load them all) and panics.
var loaded = sync.OnceValue(func() *tables {
	t, err := loadTables(dataFiles)
	if err != nil {
		panic("synth: " + err.Error())
	}
	return t
})

// loadTables decodes the data files of fsys (the embedded ones, or others
// in tests) and resolves their references to one another.
func loadTables(fsys fs.FS) (*tables, error) {
	t := &tables{}
	var err error
	if err = t.names.load(fsys); err != nil {
		return nil, err
	}
	if err = t.places.load(fsys); err != nil {
		return nil, err
	}
	if t.panels, err = loadPanels(fsys); err != nil {
		return nil, err
	}
	if err = t.clinical.load(fsys, t.panels); err != nil {
		return nil, err
	}
	return t, nil
}

// decodeJSON decodes the JSON file name of fsys into v. A field v does not
// have, a value of the wrong type or anything after the value is an error;
// errors name the file and, where the decoder knows it, the line.
func decodeJSON(fsys fs.FS, name string, v any) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(name, b, err)
	}
	return atEnd(name, b, dec)
}

// decodeNamed decodes the JSON file name of fsys, an object of named
// entries, into a map. A name that is there twice is an error.
func decodeNamed[T any](fsys fs.FS, name string) (map[string]T, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%s: not an object of named entries", name)
	}
	out := map[string]T{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(name, b, err)
		}
		key := tok.(string) // an object's keys are strings
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%s:%d: %q is there twice", name, lineAt(b, dec.InputOffset()), key)
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, jsonError(name, b, fmt.Errorf("%q: %w", key, err))
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, jsonError(name, b, err)
	}
	return out, atEnd(name, b, dec)
}

// jsonError makes err, from decoding the JSON file name whose content is
// b, name the file and, where the decoder knows it, the line.
func jsonError(name string, b []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("%s:%d: %w", name, lineAt(b, syn.Offset), err)
	case errors.As(err, &typ):
		return fmt.Errorf("%s:%d: %w", name, lineAt(b, typ.Offset), err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%s: unexpected end of file", name)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// atEnd reports an error if dec has anything left after the value.
func atEnd(name string, b []byte, dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s:%d: data after the end of the value", name, lineAt(b, dec.InputOffset()))
	}
	return nil
}

// lineAt returns the line number of byte offset off in b.
func lineAt(b []byte, off int64) int {
	off = min(max(off, 0), int64(len(b)))
	return 1 + bytes.Count(b[:off], []byte("\n"))
}

// tsvRow is a row of a TSV file and the line it is on.
type tsvRow struct {
	line   int
	fields []string
}

// readTSV reads the tab-separated file name of fsys: lines starting with #
// are comments, the first other line must be header, and every row has as
// many fields as the header.
func readTSV(fsys fs.FS, name string, header ...string) ([]tsvRow, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.Comma = '\t'
	r.Comment = '#'
	r.FieldsPerRecord = len(header)
	var rows []tsvRow
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := r.FieldPos(0)
		if first {
			if strings.Join(rec, "\t") != strings.Join(header, "\t") {
				return nil, fmt.Errorf("%s:%d: header %q, want %q", name, line, strings.Join(rec, " "), strings.Join(header, " "))
			}
			continue
		}
		rows = append(rows, tsvRow{line, rec})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no rows", name)
	}
	return rows, nil
}
