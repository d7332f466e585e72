package synth

import (
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// dataCopy returns the embedded data files as a map that tests can change.
func dataCopy(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(dataFiles, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(dataFiles, path)
		m[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// openLog is a file system that notes which files are opened.
type openLog struct {
	fs.FS
	opened map[string]bool
}

func (o openLog) Open(name string) (fs.File, error) {
	o.opened[name] = true
	return o.FS.Open(name)
}

// TestDataFilesLoad checks that every data file decodes, every reference
// in them resolves, and every embedded file is read: none is forgotten.
func TestDataFilesLoad(t *testing.T) {
	files := dataCopy(t)
	log := openLog{files, map[string]bool{}}
	if _, err := loadTables(log); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if !log.opened[name] {
			t.Errorf("%s is embedded but never read", name)
		}
	}
	if len(files) < 4 {
		t.Errorf("only %d data files embedded", len(files))
	}
}

// TestMalformedDataFiles checks that a data file that does not decode, or
// refers to something that does not exist, gives an error naming the file
// (and the line, where there is one).
func TestMalformedDataFiles(t *testing.T) {
	cases := []struct {
		file     string
		old, new string // the first old is replaced by new
		want     []string
	}{
		{"data/names.json", `"pinyin": {`, `"pinyin": {,`, []string{"data/names.json:", "invalid character"}},
		{"data/names.json", `"givenNameCharacters"`, `"givenNameChars"`, []string{"data/names.json", `unknown field "givenNameChars"`}},
		{"data/names.json", `"lastBirthYear": 1964`, `"lastBirthYear": "1964"`, []string{"data/names.json:", "lastBirthYear"}},
		{"data/names.json", "\n}\n", "\n}\n{}\n", []string{"data/names.json:", "after the end"}},
		{"data/surnames.tsv", "王\t710", "王\t七百", []string{"data/surnames.tsv:", `weight "七百"`}},
		{"data/surnames.tsv", "王\t710", "王\t710\t1", []string{"data/surnames.tsv", "wrong number of fields"}},
		{"data/surnames.tsv", "surname\tweight", "name\tweight", []string{"data/surnames.tsv:", "header"}},
		{"data/places.json", `"addressStyle": "north"`, `"addressStyle": "northern"`, []string{"data/places.json", `unknown addressStyle "northern"`}},
		{"data/places.json", `"code": "110101"`, `"code": "11010"`, []string{"data/places.json", `"11010"`}},
		{"data/mobile_prefixes.tsv", "130\t4", "130\t0", []string{"data/mobile_prefixes.tsv:", "weight"}},
		{"data/lab_panels.json", `"low": 3.5`, `"low": 3.5.1`, []string{"data/lab_panels.json:6:", "invalid character"}},
		{"data/lab_panels.json", `"key": "NEUT%"`, `"key": "WBC"`, []string{"data/lab_panels.json", `"WBC"`, "血常规"}},
		{"data/drugs.json", `"clopidogrel": {`, `"aspirin": {`, []string{"data/drugs.json:3:", `"aspirin" is there twice`}},
		{"data/drugs.json", `"specification": "100mg×30片"`, `"spec": "100mg×30片"`, []string{"data/drugs.json", `"aspirin"`, `unknown field "spec"`}},
		{"data/procedures.json", `"central-line": {`, `"central-lines": {`, []string{"data/procedures.json", `no "central-line"`}},
		{"data/departments.json", `"code": "NEUR"`, `"code": "CARD"`, []string{"data/departments.json", `"CARD"`, "twice"}},
		{"data/departments.json", `["coronary-angiography"]`, `["angiography"]`, []string{"data/departments.json: CARD:", `unknown procedure "angiography"`}},
		{"data/departments.json", `["coronary-angiography"]`, `["wrist-cast"]`, []string{"data/departments.json: CARD:", `"wrist-cast"`, "variable"}},
		{"data/departments.json", `"englishName": "Cardiology",`, `"englishName": "Cardiology", "surgical": true,`, []string{"data/conditions/CARD.json: condition 4", "no procedure"}},
		{"data/conditions/CARD.json", `"aspirin"`, `"asprin"`, []string{"data/conditions/CARD.json: condition 1 (", `unknown drug "asprin"`}},
		{"data/conditions/CARD.json", `"procedure": "pci"`, `"procedure": "pcx"`, []string{"data/conditions/CARD.json: condition 1", `unknown procedure "pcx"`}},
		{"data/conditions/CARD.json", `["hypertension"]`, `["hypertensive"]`, []string{"data/conditions/CARD.json: condition 1", `unknown vital sign profile "hypertensive"`}},
		{"data/conditions/CARD.json", `"心肌标志物"`, `"心肌标记物"`, []string{"data/conditions/CARD.json: condition 1", `unknown lab panel "心肌标记物"`}},
		{"data/conditions/CARD.json", `"LDL-C 3.45-4.80"`, `"LDL 3.45-4.80"`, []string{"data/conditions/CARD.json: condition 1", "LDL is in none"}},
		{"data/conditions/CARD.json", `"LDL-C 3.45-4.80"`, `"LDL-C"`, []string{"data/conditions/CARD.json: condition 1", "no value"}},
		{"data/conditions/PEDS.json", `"specification": "0.75g/支"`, `"spec": "0.75g/支"`, []string{"data/conditions/PEDS.json: condition 1", `unknown field "spec"`}},
		{"data/conditions/PEDS.json", `"imaging": "chest-xray-normal"`, `"imaging": "chest-xray"`, []string{"data/conditions/PEDS.json: condition 2", `unknown imaging study "chest-xray"`}},
		{"data/conditions/PEDS.json", `"diagnoses": ["支气管肺炎"]`, `"diagnoses": "支气管肺炎"`, []string{"data/conditions/PEDS.json:8:", "diagnoses"}},
	}
	for _, c := range cases {
		files := dataCopy(t)
		f := files[c.file]
		if f == nil || !strings.Contains(string(f.Data), c.old) {
			t.Errorf("%s: %q not found", c.file, c.old)
			continue
		}
		f.Data = []byte(strings.Replace(string(f.Data), c.old, c.new, 1))
		_, err := loadTables(files)
		if err == nil {
			t.Errorf("%s with %q: no error", c.file, c.new)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s with %q: error %q lacks %q", c.file, c.new, err, w)
			}
		}
	}
	// A missing file is an error naming it too.
	for _, name := range slices.Sorted(maps.Keys(dataCopy(t))) {
		files := dataCopy(t)
		delete(files, name)
		if _, err := loadTables(files); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: error %v", name, err)
		}
	}
}
