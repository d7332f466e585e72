package synth

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// area is a real county-level division (GB/T 2260) that patients live in
// (data/places.json).
// For the four municipalities City is empty: 北京市朝阳区, not 北京市北京市朝阳区.
type area struct {
	code     string
	province string
	city     string
	district string
	style    addressStyle
}

// addressStyle is how buildings and flats are numbered in a region.
type addressStyle int

const (
	styleNorth    addressStyle = iota // 3号楼2单元502室
	styleSouth                        // 某某花园5栋1203室
	styleShanghai                     // 1200弄15号602室
)

// address returns a street address in area a.
func (g *Generator) address(a area) string {
	var b strings.Builder
	b.WriteString(a.province)
	b.WriteString(a.city)
	b.WriteString(a.district)
	b.WriteString(pick(g, g.t.streets))
	floor := g.intn(1, 28)
	flat := strconv.Itoa(floor*100 + g.intn(1, 4))
	switch a.style {
	case styleShanghai:
		b.WriteString(strconv.Itoa(g.intn(1, 260) * 10))
		b.WriteString("弄")
		b.WriteString(strconv.Itoa(g.intn(1, 60)))
		b.WriteString("号")
		b.WriteString(strconv.Itoa(g.intn(1, 6)*100 + g.intn(1, 4)))
		b.WriteString("室")
	case styleSouth:
		b.WriteString(strconv.Itoa(g.intn(1, 999)))
		b.WriteString("号")
		b.WriteString(pick(g, g.t.compounds))
		b.WriteString(strconv.Itoa(g.intn(1, 30)))
		b.WriteString("栋")
		b.WriteString(flat)
		b.WriteString("室")
	default:
		b.WriteString(strconv.Itoa(g.intn(1, 399)))
		b.WriteString("号")
		b.WriteString(strconv.Itoa(g.intn(1, 24)))
		b.WriteString("号楼")
		if g.chance(0.6) {
			b.WriteString(strconv.Itoa(g.intn(1, 6)))
			b.WriteString("单元")
			flat = strconv.Itoa(g.intn(1, 18)*100 + g.intn(1, 3))
		}
		b.WriteString(flat)
		b.WriteString("室")
	}
	return b.String()
}

// birthplace returns where a person of area a was born, as written in an
// admission note (出生地): the province and city, or the municipality.
func birthplace(a area) string {
	if a.city == "" {
		return a.province
	}
	return a.province + a.city
}

// phone returns an 11-digit mainland mobile number.
func (g *Generator) phone() string {
	b := make([]byte, 0, 11)
	b = append(b, g.t.mobilePrefixes[g.weighted(g.t.mobileWeights)].prefix...)
	for range 8 {
		b = append(b, byte('0'+g.rng.IntN(10)))
	}
	return string(b)
}

// places are the tables of places and phone numbers.
type places struct {
	areas           []area
	provinceNames   map[string]string // first two digits of an area code: the province
	areasByProvince map[string][]int  // first two digits of an area code: indexes in areas
	streets         []string
	compounds       []string
	mobilePrefixes  []mobilePrefix
	mobileWeights   []int
}

// mobilePrefix is the first three digits of mobile numbers and how many
// numbers carry them, relative to the others.
type mobilePrefix struct {
	prefix string
	weight int
}

// placesFile is data/places.json.
type placesFile struct {
	// Areas are real county-level divisions (GB/T 2260) that patients live
	// in.
	Areas []struct {
		// Code is the six-digit division code, which starts ID numbers.
		Code     string `json:"code"`
		Province string `json:"province"`
		// City is "" for the four municipalities: 北京市朝阳区, not
		// 北京市北京市朝阳区.
		City     string `json:"city"`
		District string `json:"district"`
		// AddressStyle is how buildings and flats are numbered: "north"
		// (3号楼2单元502室), "south" (某某花园5栋1203室) or "shanghai"
		// (1200弄15号602室).
		AddressStyle string `json:"addressStyle"`
	} `json:"areas"`
	// Streets are street names found in most Chinese cities.
	Streets []string `json:"streets"`
	// ResidentialCompounds are compound names for southern-style addresses.
	ResidentialCompounds []string `json:"residentialCompounds"`
}

var addressStyles = map[string]addressStyle{"north": styleNorth, "south": styleSouth, "shanghai": styleShanghai}

// load reads data/places.json and data/mobile_prefixes.tsv.
func (p *places) load(fsys fs.FS) error {
	const file = "data/places.json"
	var f placesFile
	if err := decodeJSON(fsys, file, &f); err != nil {
		return err
	}
	p.provinceNames = make(map[string]string)
	p.areasByProvince = make(map[string][]int)
	for i, a := range f.Areas {
		style, ok := addressStyles[a.AddressStyle]
		if !ok {
			return fmt.Errorf("%s: area %s: unknown addressStyle %q", file, a.Code, a.AddressStyle)
		}
		if len(a.Code) != 6 || strings.Trim(a.Code, "0123456789") != "" {
			return fmt.Errorf("%s: area code %q is not six digits", file, a.Code)
		}
		p.areas = append(p.areas, area{a.Code, a.Province, a.City, a.District, style})
		p.provinceNames[a.Code[:2]] = a.Province
		p.areasByProvince[a.Code[:2]] = append(p.areasByProvince[a.Code[:2]], i)
	}
	p.streets, p.compounds = f.Streets, f.ResidentialCompounds
	if len(p.areas) == 0 || len(p.streets) == 0 || len(p.compounds) == 0 {
		return fmt.Errorf("%s: no areas, streets or residential compounds", file)
	}

	const prefixes = "data/mobile_prefixes.tsv"
	rows, err := readTSV(fsys, prefixes, "prefix", "weight")
	if err != nil {
		return err
	}
	for _, r := range rows {
		w, err := strconv.Atoi(r.fields[1])
		if err != nil || w <= 0 {
			return fmt.Errorf("%s:%d: weight %q is not a positive integer", prefixes, r.line, r.fields[1])
		}
		if len(r.fields[0]) != 3 || strings.Trim(r.fields[0], "0123456789") != "" {
			return fmt.Errorf("%s:%d: prefix %q is not three digits", prefixes, r.line, r.fields[0])
		}
		p.mobilePrefixes = append(p.mobilePrefixes, mobilePrefix{r.fields[0], w})
		p.mobileWeights = append(p.mobileWeights, w)
	}
	return nil
}
