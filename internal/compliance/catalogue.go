package compliance

import (
	_ "embed"
	"fmt"
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"
)

// The kinds of check.
const (
	// Measured: computed from live data by a measure function.
	Measured = "measured"
	// Attested: evidence a responsible person attaches and another person
	// signs (a machine room cannot be measured by software).
	Attested = "attested"
)

// Words are a text in Chinese and English.
type Words struct {
	ZH string `yaml:"zh" json:"zh"`
	EN string `yaml:"en" json:"en"`
}

// In returns the words in lang ("zh…" is Chinese, anything else English).
func (w Words) In(lang string) string {
	if len(lang) >= 2 && lang[:2] == "zh" {
		return w.ZH
	}
	return w.EN
}

// Check is one entry of the catalogue.
type Check struct {
	ID        string   `yaml:"id" json:"id"`
	Kind      string   `yaml:"kind" json:"kind"`
	Title     Words    `yaml:"title" json:"title"`
	Clauses   []string `yaml:"clauses" json:"clauses"`
	How       Words    `yaml:"how" json:"how"`
	Threshold Words    `yaml:"threshold" json:"threshold"`
	// Department is true for the checks with a figure per department
	// (DepartmentFigures).
	Department bool `yaml:"department" json:"department"`
	// ValidDays is how long signed evidence of an attested check stays in
	// force.
	ValidDays int `yaml:"valid_days" json:"valid_days,omitempty"`
}

// Catalogue is the versioned list of checks.
type Catalogue struct {
	Version string  `yaml:"version" json:"version"`
	Checks  []Check `yaml:"checks" json:"checks"`
}

// Check returns the check with this id.
func (c *Catalogue) Check(id string) (Check, bool) {
	i := slices.IndexFunc(c.Checks, func(x Check) bool { return x.ID == id })
	if i < 0 {
		return Check{}, false
	}
	return c.Checks[i], true
}

//go:embed catalogue.yaml
var catalogueYAML []byte

// clausePattern is a well-formed clause id: a clause of GB/T 22239-2019
// (8.1.x.y, level 3), of GB/T 39786-2021 (8.4 a…h, level 3), or a seed's
// section ("seed 003 §4.2").
var clausePattern = regexp.MustCompile(`^(GB/T 22239-2019 8\.1\.[1-9][0-9]?\.[1-9][0-9]?|GB/T 39786-2021 8\.[1-6]( [a-h])?|seed 00[1-9] §[1-9][0-9]*(\.[1-9][0-9]*)*)$`)

var idPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{1,47}$`)

// ParseCatalogue reads and checks a catalogue: ids well-formed and
// unique, a known kind, titles and explanations in both languages, every
// clause well-formed, a validity for each attested check.
func ParseCatalogue(b []byte) (*Catalogue, error) {
	var c Catalogue
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("compliance catalogue: %w", err)
	}
	if c.Version == "" || len(c.Checks) == 0 {
		return nil, fmt.Errorf("compliance catalogue: no version or no checks")
	}
	seen := map[string]bool{}
	for _, ch := range c.Checks {
		switch {
		case !idPattern.MatchString(ch.ID):
			return nil, fmt.Errorf("compliance catalogue: bad id %q", ch.ID)
		case seen[ch.ID]:
			return nil, fmt.Errorf("compliance catalogue: %s twice", ch.ID)
		case ch.Kind != Measured && ch.Kind != Attested:
			return nil, fmt.Errorf("compliance catalogue: %s: kind %q", ch.ID, ch.Kind)
		case ch.Title.ZH == "" || ch.Title.EN == "" || ch.How.ZH == "" || ch.How.EN == "" || ch.Threshold.ZH == "" || ch.Threshold.EN == "":
			return nil, fmt.Errorf("compliance catalogue: %s: a title, explanation or threshold is missing a language", ch.ID)
		case len(ch.Clauses) == 0:
			return nil, fmt.Errorf("compliance catalogue: %s maps to no clause", ch.ID)
		case ch.Kind == Attested && ch.ValidDays <= 0:
			return nil, fmt.Errorf("compliance catalogue: %s: attested evidence needs valid_days", ch.ID)
		}
		for _, cl := range ch.Clauses {
			if !clausePattern.MatchString(cl) {
				return nil, fmt.Errorf("compliance catalogue: %s: clause %q is not well-formed", ch.ID, cl)
			}
		}
		seen[ch.ID] = true
	}
	return &c, nil
}

// DefaultCatalogue is the embedded catalogue.
func DefaultCatalogue() *Catalogue {
	c, err := ParseCatalogue(catalogueYAML)
	if err != nil {
		panic(err) // the embedded file is checked by a test
	}
	return c
}

// MeasureIDs lists the ids of the measure functions, sorted.
func MeasureIDs() []string {
	out := make([]string, 0, len(measures))
	for id := range measures {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
