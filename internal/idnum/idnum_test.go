package idnum

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// now is the fixed "today" of these tests.
var now = time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// The valid numbers below were computed outside Go (a few lines of Python
// implementing ISO 7064 MOD 11-2), so they check CheckDigit independently.
func TestValidateAccepts(t *testing.T) {
	cases := []struct {
		in, normalized string
		area           string
		birth          time.Time
		gender         string
	}{
		{"11010519491231002X", "11010519491231002X", "110105", date(1949, 12, 31), "female"}, // the published example
		{"11010519491231002x", "11010519491231002X", "110105", date(1949, 12, 31), "female"}, // lower-case x
		{"44030519900101000X", "44030519900101000X", "440305", date(1990, 1, 1), "female"},
		{"44030519900101000x", "44030519900101000X", "440305", date(1990, 1, 1), "female"},
		{"440305198802291230", "440305198802291230", "440305", date(1988, 2, 29), "male"}, // leap day
		{"310115197001010011", "310115197001010011", "310115", date(1970, 1, 1), "male"},
		{"510107200008150043", "510107200008150043", "510107", date(2000, 8, 15), "female"},
		{"650102195611200733", "650102195611200733", "650102", date(1956, 11, 20), "male"},
		{"530102198306072911", "530102198306072911", "530102", date(1983, 6, 7), "male"},
		{"210202197510102862", "210202197510102862", "210202", date(1975, 10, 10), "female"},
		{"110101190001010014", "110101190001010014", "110101", date(1900, 1, 1), "male"},     // earliest year
		{"320106202611230029", "320106202611230029", "320106", date(2026, 11, 23), "female"}, // born today
		{"810000199003030152", "810000199003030152", "810000", date(1990, 3, 3), "male"},     // Hong Kong
		{"710000200109100026", "710000200109100026", "710000", date(2001, 9, 10), "female"},  // Taiwan
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			info, err := ValidateAt(c.in, now)
			if err != nil {
				t.Fatalf("ValidateAt: %v", err)
			}
			want := Info{Normalized: c.normalized, AreaCode: c.area, BirthDate: c.birth, Gender: c.gender}
			if info != want {
				t.Errorf("got %+v, want %+v", info, want)
			}
			if info.BirthDate.Location() != time.UTC {
				t.Errorf("birth date not in UTC: %v", info.BirthDate)
			}
			check, err := CheckDigit(c.normalized[:17])
			if err != nil || check != c.normalized[17] {
				t.Errorf("CheckDigit = %q, %v; want %q", check, err, c.normalized[17])
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrLength},
		{"17 characters", "11010519491231002", ErrLength},
		{"19 characters", "11010519491231002X1", ErrLength},
		{"15-digit first generation", "110105491231002", ErrLength},
		{"letter inside", "1101051949123100AX", ErrFormat},
		{"X not last", "1101051949123100X2", ErrFormat},
		{"bad check letter", "11010519491231002Y", ErrFormat},
		{"space", "11010519491231002 ", ErrFormat},
		{"full-width digit", "11010519491231002１", ErrFormat},
		{"sign", "+1010519491231002X", ErrFormat},
		{"unknown province 99", "99010519491231002X", ErrArea},
		{"unknown province 83", "830000199003030152", ErrArea},
		{"unknown province 00", "00010519491231002X", ErrArea},
		{"whole province", "110000194912310021", ErrArea},
		{"city part 00", "110005194912310021", ErrArea},
		{"month 13", "110105194913310021", ErrBirthDate},
		{"30 February", "110105194902300021", ErrBirthDate},
		{"29 February, not leap", "110105190002290021", ErrBirthDate},
		{"month 00", "110105194900100021", ErrBirthDate},
		{"day 00", "110105194912000021", ErrBirthDate},
		{"before 1900", "110105189912310021", ErrBirthDate},
		{"tomorrow", "110105202611240021", ErrBirthDate},
		{"future year", "110105203012310021", ErrBirthDate},
		{"wrong check digit", "110105194912310021", ErrChecksum},
		{"digit instead of X", "110105194912310020", ErrChecksum},
		{"X instead of digit", "44030519880229123X", ErrChecksum},
		{"transposed digits", "11010519491213002X", ErrChecksum},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := ValidateAt(c.in, now)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if info != (Info{}) {
				t.Errorf("refused number returned info %+v", info)
			}
			if c.in != "" && strings.Contains(err.Error(), c.in) || strings.Contains(err.Error(), "1949") {
				t.Errorf("error message repeats the number: %q", err)
			}
		})
	}
}

func TestValidateUsesNowCalendarDate(t *testing.T) {
	// 23 November 2026 in Beijing is still 22 November in UTC: a child
	// born on the 23rd is valid by a clock set to Beijing time.
	beijing := time.FixedZone("CST", 8*3600)
	n, err := Make("110105", date(2026, 11, 23), 2)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		now  time.Time
		want error
	}{
		{time.Date(2026, 11, 23, 1, 0, 0, 0, beijing), nil},
		{time.Date(2026, 11, 22, 23, 0, 0, 0, beijing), ErrBirthDate},
		{time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), nil},
		{time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC), ErrBirthDate},
	}
	for _, c := range cases {
		if _, err := ValidateAt(n, c.now); !errors.Is(err, c.want) {
			t.Errorf("now %v: got %v, want %v", c.now, err, c.want)
		}
	}
}

func TestValidateUsesWallClock(t *testing.T) {
	if _, err := Validate("11010519491231002X"); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestCheckDigit(t *testing.T) {
	cases := []struct {
		in      string
		want    byte
		wantErr error
	}{
		{"11010519491231002", 'X', nil},
		{"44030519880229123", '0', nil},
		{"51010720000815004", '3', nil},
		{"65010219561120073", '3', nil},
		{"71000020010910002", '6', nil},
		{"1101051949123100", 0, ErrLength},
		{"110105194912310021", 0, ErrLength},
		{"1101051949123100X", 0, ErrFormat},
	}
	for _, c := range cases {
		got, err := CheckDigit(c.in)
		if got != c.want || !errors.Is(err, c.wantErr) {
			t.Errorf("CheckDigit(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestMake(t *testing.T) {
	cases := []struct {
		name  string
		area  string
		birth time.Time
		seq   int
		want  string
		err   error
	}{
		{"published example", "110105", date(1949, 12, 31), 2, "11010519491231002X", nil},
		{"leap day, male", "440305", date(1988, 2, 29), 123, "440305198802291230", nil},
		{"time of day ignored", "440305", time.Date(1988, 2, 29, 18, 30, 0, 0, time.UTC), 123, "440305198802291230", nil},
		{"sequence 0", "440305", date(1990, 1, 1), 0, "44030519900101000X", nil},
		{"sequence 999", "110101", date(1900, 1, 1), 999, "", nil},
		{"unknown province", "990105", date(1990, 1, 1), 1, "", ErrArea},
		{"all zeros", "000000", date(1990, 1, 1), 1, "", ErrArea},
		{"short area", "11010", date(1990, 1, 1), 1, "", ErrArea},
		{"letters in area", "11O105", date(1990, 1, 1), 1, "", ErrArea},
		{"before 1900", "110105", date(1899, 12, 31), 1, "", ErrBirthDate},
		{"negative sequence", "110105", date(1990, 1, 1), -1, "", ErrSequence},
		{"sequence 1000", "110105", date(1990, 1, 1), 1000, "", ErrSequence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Make(c.area, c.birth, c.seq)
			if !errors.Is(err, c.err) {
				t.Fatalf("got error %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if c.want != "" && got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
			info, err := ValidateAt(got, now)
			if err != nil {
				t.Fatalf("made number does not validate: %v", err)
			}
			y, m, d := c.birth.Date()
			if !info.BirthDate.Equal(date(y, m, d)) || info.AreaCode != c.area || (info.Gender == "male") != (c.seq%2 == 1) {
				t.Errorf("made number says %+v", info)
			}
		})
	}
}

func TestMakeRoundTrips(t *testing.T) {
	for seq := 0; seq < 1000; seq++ {
		birth := date(1920+seq%100, time.Month(1+seq%12), 1+seq%28)
		n, err := Make("320106", birth, seq)
		if err != nil {
			t.Fatal(err)
		}
		info, err := ValidateAt(n, now)
		if err != nil || !info.BirthDate.Equal(birth) || (info.Gender == "male") != (seq%2 == 1) {
			t.Fatalf("seq %d: %+v %v", seq, info, err)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		"11010519491231002X", "11010519491231002x", "110105194912310021", "440305198802291230",
		"810000199003030152", "110105202611240021", "", "x", "11010519491231002１",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := ValidateAt(s, now)
		if err != nil {
			if info != (Info{}) {
				t.Fatalf("refused with info %+v", info)
			}
			if len(s) >= 6 && strings.Contains(err.Error(), s) {
				t.Fatalf("error repeats the input: %v", err)
			}
			return
		}
		if len(info.Normalized) != 18 || !strings.EqualFold(info.Normalized, s) || strings.Contains(info.Normalized, "x") {
			t.Fatalf("bad normalisation %q", info.Normalized)
		}
		again, err := ValidateAt(info.Normalized, now)
		if err != nil || again != info {
			t.Fatalf("normalised form does not validate again: %+v, %v", again, err)
		}
		c, err := CheckDigit(info.Normalized[:17])
		if err != nil || info.Normalized[17] != c {
			t.Fatal("check character mismatch accepted")
		}
		if info.BirthDate.Year() < 1900 || info.BirthDate.After(now) {
			t.Fatalf("birth date out of range: %v", info.BirthDate)
		}
	})
}
