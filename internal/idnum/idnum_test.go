package idnum

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func TestValidate(t *testing.T) {
	made, _ := Make("440305", time.Date(1988, 2, 29, 0, 0, 0, 0, time.UTC), 123)
	cases := []struct {
		in     string
		err    error
		gender string
	}{
		{"11010519491231002X", nil, "female"},
		{"11010519491231002x", nil, "female"},
		{made, nil, "male"},
		{"1101051949123100", ErrLength, ""},
		{"11010519491231002XX", ErrLength, ""},
		{"1101051949123100AX", ErrFormat, ""},
		{"11010519491231002Y", ErrFormat, ""},
		{"99010519491231002X", ErrArea, ""},
		{"110000194912310021", ErrArea, ""},
		{"110105194913310021", ErrBirthDate, ""},
		{"110105194902300021", ErrBirthDate, ""},
		{"110105189912310021", ErrBirthDate, ""},
		{"110105203012310021", ErrBirthDate, ""},
		{"110105194912310021", ErrChecksum, ""},
	}
	for _, c := range cases {
		info, err := ValidateAt(c.in, now)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", c.in, err, c.err)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), c.in) {
				t.Errorf("error repeats the number: %v", err)
			}
			continue
		}
		if info.Normalized != strings.ToUpper(c.in) || info.Gender != c.gender || info.AreaCode != c.in[:6] {
			t.Errorf("%s: %+v", c.in, info)
		}
	}
	info, _ := ValidateAt("11010519491231002X", now)
	if !info.BirthDate.Equal(time.Date(1949, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("birth date %v", info.BirthDate)
	}
}

func TestMakeRoundTrips(t *testing.T) {
	for seq := 0; seq < 1000; seq += 37 {
		birth := time.Date(1930+seq%90, time.Month(1+seq%12), 1+seq%28, 0, 0, 0, 0, time.UTC)
		n, err := Make("320106", birth, seq)
		if err != nil {
			t.Fatal(err)
		}
		info, err := ValidateAt(n, now)
		if err != nil || !info.BirthDate.Equal(birth) || (info.Gender == "male") != (seq%2 == 1) {
			t.Fatalf("%s: %+v %v", n, info, err)
		}
	}
	if _, err := Make("000000", now, 1); err == nil {
		t.Error("bad area accepted")
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "110105194912310021", "", "x", "11010519491231002x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := ValidateAt(s, now)
		if err != nil {
			return
		}
		again, err := ValidateAt(info.Normalized, now)
		if err != nil || again != info {
			t.Fatalf("normalised form does not validate again: %v", err)
		}
		c, _ := CheckDigit(info.Normalized[:17])
		if info.Normalized[17] != c {
			t.Fatal("check character mismatch accepted")
		}
	})
}
