package bench

import (
	"math"
	"testing"
)

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" for an error
	}{
		{"read=80,write=10,search=5,list=5", "read=80,create=5,update=5,search=5,list=5"},
		{" read = 3 , chart=1 ", "read=75,chart=25"},
		{"read=1,read=1,update=2", "read=50,update=50"},
		{"create=1", "create=100"},
		{"read=2,write=1", "read=66.67,create=16.67,update=16.67"},
		{"", ""}, {"read=0", ""}, {"read", ""}, {"read=-5", ""}, {"read=x", ""}, {"audit=5", ""}, {"read=1e9", ""},
	} {
		m, err := ParseMix(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParseMix(%q) = %v, want an error", tc.in, m)
		case tc.want != "" && (err != nil || m.String() != tc.want):
			t.Errorf("ParseMix(%q) = %v, %v; want %s", tc.in, m, err, tc.want)
		}
	}
}

func TestMixPick(t *testing.T) {
	m, err := ParseMix("read=80,write=10,list=10")
	if err != nil {
		t.Fatal(err)
	}
	var n [numKinds]int
	const draws = 10000
	for i := range draws {
		n[m.pick((float64(i)+0.5)/draws)]++
	}
	for k, want := range map[Kind]float64{Read: 0.8, Create: 0.05, Update: 0.05, List: 0.1} {
		if got := float64(n[k]) / draws; math.Abs(got-want) > 0.001 {
			t.Errorf("%s: %.4f of the draws, want %.2f", k, got, want)
		}
	}
	if n[Search]+n[Chart] != 0 || (Mix{}).orDefault().pick(0.99) != Read {
		t.Errorf("kinds without a weight were drawn: %v", n)
	}
}

// A mix names its bench and what it counts, and each kind its route.
func TestMixBench(t *testing.T) {
	for _, tc := range []struct {
		mix         Mix
		bench, unit string
	}{
		{Mix{}, "reads", "reads"}, {ReadsOnly, "reads", "reads"}, {Mix{Create: 1, Update: 1}, "writes", "writes"},
		{Mix{Read: 80, Create: 10, List: 10}, "mixed", "ops"},
	} {
		if b, u := tc.mix.Bench(), unitOf(tc.mix.Bench()); b != tc.bench || u != tc.unit {
			t.Errorf("%v: %s counting %s, want %s counting %s", tc.mix, b, u, tc.bench, tc.unit)
		}
	}
	if Read.Route() != "GET /api/v1/records/{id}" || Chart.Route() != "GET /api/v1/patients/{id}/records" || numKinds.Route() != "" {
		t.Error("routes")
	}
}
