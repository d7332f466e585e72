package scrub

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"medguard/internal/idnum"
)

func TestScrubPlaceholders(t *testing.T) {
	s := scrubber(t)
	for _, tc := range []struct {
		lang     Lang
		in, want string
	}{
		{Chinese, "患者张伟，男，67岁，身份证号110105194002031232，电话139-1234-5678。",
			"患者[姓名]，男，67岁，身份证号[身份证号]，电话[电话]。"},
		{Chinese, "患者欧阳明华因黄疸于2024年3月5日入院，予甘草、白芍、柴胡。",
			"患者[姓名]因黄疸于[日期]入院，予甘草、白芍、柴胡。"},
		{Chinese, "家住北京市朝阳区建国路88号1单元1203室，92岁。",
			"家住[地址]，[年龄]。"},
		{Chinese, "生于重庆市，久居当地。马尾综合征术后，白细胞正常。",
			"生于重庆市，久居当地。马尾综合征术后，白细胞正常。"},
		{English, "Mr. John Smith, a 92-year-old man, was admitted on March 5, 2024 (MRN: 004587621).",
			"Mr. [NAME], a [AGE] man, was admitted on [DATE] (MRN: [RECORD])."},
		{Auto, "Seen by Dr. Emily Chen; email e.chen@example.org.",
			"Seen by Dr. [NAME]; email [EMAIL]."},
	} {
		got, _ := s.Scrub(tc.in, Options{Lang: tc.lang})
		if got != tc.want {
			t.Errorf("Scrub(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestScrubSurrogates(t *testing.T) {
	s := scrubber(t)
	in := "患者董珍，身份证号500103198704244003，电话19948725728。董珍诉头痛，其夫陆宇航陪同。2025-11-01入院，2025-11-09出院。"
	out, found := s.Scrub(in, Options{Surrogate: true, Seed: 42})
	if len(found) == 0 {
		t.Fatal("nothing found")
	}
	for _, orig := range []string{"董珍", "500103198704244003", "19948725728", "陆宇航", "2025-11-01"} {
		if strings.Contains(out, orig) {
			t.Errorf("surrogate output still has %q: %s", orig, out)
		}
	}
	if strings.Contains(out, "[") {
		t.Errorf("placeholder in surrogate output: %s", out)
	}
	// The same original gets the same surrogate: the name appears twice.
	again, _ := s.Scrub(in, Options{Surrogate: true, Seed: 42})
	if again != out {
		t.Errorf("same seed, different output:\n%s\n%s", out, again)
	}
	other, _ := s.Scrub(in, Options{Surrogate: true, Seed: 43})
	if other == out {
		t.Error("another seed gave the same surrogates")
	}
	// Find the surrogate ID number and check its check character.
	var id string
	for _, f := range strings.FieldsFunc(out, func(r rune) bool { return r < '0' || r > '9' && r != 'X' }) {
		if len(f) == 18 {
			id = f
		}
	}
	if _, err := idnum.ValidateAt(id, noClock); err != nil {
		t.Errorf("surrogate ID number %q invalid: %v (%s)", id, err, out)
	}
	// Both patient-name occurrences became the same surrogate.
	name := surrogateAt(out, "患者", "，")
	if name == "" || strings.Count(out, name) < 2 {
		t.Errorf("name surrogate %q not repeated: %s", name, out)
	}
	// The interval between two dates survives (one offset per note).
	if !strings.Contains(out, "入院") || !strings.Contains(out, "出院") {
		t.Errorf("text around dates lost: %s", out)
	}
}

func surrogateAt(s, before, after string) string {
	i := strings.Index(s, before)
	if i < 0 {
		return ""
	}
	rest := s[i+len(before):]
	j := strings.Index(rest, after)
	if j < 0 {
		return ""
	}
	return rest[:j]
}

func TestParseLang(t *testing.T) {
	for in, want := range map[string]Lang{"zh": Chinese, "EN": English, "": Auto, "auto": Auto} {
		if got, ok := ParseLang(in); !ok || got != want {
			t.Errorf("ParseLang(%q) = %q, %v", in, got, ok)
		}
	}
	if _, ok := ParseLang("fr"); ok {
		t.Error("fr accepted")
	}
	if Detect("患者张伟 CT") != Chinese || Detect("Patient John Smith 张") != English {
		t.Error("Detect")
	}
}

// FuzzScrub checks that scrubbing any text keeps its findings inside the
// text, ordered and disjoint, and never panics.
func FuzzScrub(f *testing.F) {
	for _, s := range []string{"患者张伟，电话13912345678", "Mr. Smith 92-year-old", "身份证110105194002031232", "住址：北京市朝阳区建国路88号", "", "@@", "1/2/2024"} {
		f.Add(s)
	}
	s, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		_, found := s.Scrub(text, Options{Surrogate: len(text)%2 == 0, Seed: 1})
		last := 0
		for _, fd := range found {
			if fd.Start < last || fd.End > len(text) || fd.Start >= fd.End {
				t.Fatalf("bad finding %+v in %q", fd, text)
			}
			last = fd.End
		}
	})
}

// BenchmarkScrub measures throughput on the synthetic corpus (Chinese
// notes with planted identifiers), reported as MB/s of input on one core.
func BenchmarkScrub(b *testing.B) {
	s := scrubber(b)
	var notes []string
	size := 0
	for _, n := range readCorpus(b, "synth.jsonl") {
		notes = append(notes, n.Text)
		size += len(n.Text)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		for _, n := range notes {
			s.Scrub(n, Options{Lang: Chinese})
		}
	}
	reportCPU(b, size, cpu0)
}

// cpuTime is the process's user and system CPU time: on a shared machine
// the wall-clock MB/s of a benchmark says more about the neighbours than
// about the scrubber, so the benchmarks also report MB per CPU-second
// (GC included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, size int, cpu0 time.Duration) {
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/d.Seconds()/1e6, "MB/cpu-s")
	}
}

// BenchmarkScrubEnglish is BenchmarkScrub on the English hard cases.
func BenchmarkScrubEnglish(b *testing.B) {
	s := scrubber(b)
	var notes []string
	size := 0
	for _, n := range readCorpus(b, "hard.jsonl") {
		if n.Lang == English {
			notes = append(notes, n.Text)
			size += len(n.Text)
		}
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		for _, n := range notes {
			s.Scrub(n, Options{Lang: English})
		}
	}
	reportCPU(b, size, cpu0)
}

// BenchmarkLoad measures loading the segmenter's dictionary.
func BenchmarkLoad(b *testing.B) {
	for range b.N {
		if _, err := New(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCutMatchesGse: the in-place window segmentation that contextFree
// uses gives the same tokens as gse's Cut(text, true) on every window of
// two to eight Han characters of the corpora (the first 60,000), and,
// when asked for the tokens from one rune on, the same boundary there and
// the same three tokens after it.
func TestCutMatchesGse(t *testing.T) {
	s := scrubber(t)
	windows := 0
	for _, name := range []string{"hard.jsonl", "synth.jsonl"} {
		for _, n := range readCorpus(t, name) {
			d := &doc{text: n.Text, s: s, fullCut: true}
			lazy := &doc{text: n.Text, s: s}
			lazy.runes()
			rt := d.runes()
			r := rt.r
			for lo := 0; lo < len(r) && windows < 60000; lo++ {
				for hi := lo + 2; hi <= len(r) && hi-lo <= maxWindow && isHan(r[hi-1]); hi++ {
					if !isHan(r[lo]) {
						break
					}
					want := s.seg.Cut(string(r[lo:hi]), true)
					var got []string
					p := lo
					for _, k := range d.cut(lo, hi, lo) {
						got = append(got, string(r[p:p+k]))
						p += k
					}
					if strings.Join(got, "|") != strings.Join(want, "|") {
						t.Fatalf("%s %s: cut %q, gse %q", name, n.ID, got, want)
					}
					for from := lo; from < hi; from++ {
						if g, w := tokensFrom(lazy.cut(lo, hi, from), lo, from), tokensFrom(d.cut(lo, hi, from), lo, from); g != w {
							t.Fatalf("%s %s: cut from %d %s, full cut %s", name, n.ID, from-lo, g, w)
						}
					}
					windows++
				}
			}
		}
	}
	t.Logf("%d windows", windows)
}

// TestScansMatchRegexps: the English scans, which try their pattern only
// at candidate positions, find what the pattern finds over the whole
// text, on the corpora and on edge cases.
func TestScansMatchRegexps(t *testing.T) {
	texts := []string{
		"cosigned by John Smith; _Mr Smith; Mr_Smith; ſigned by Ann Lee; 12 Main Street, Apt 4, Springfield, IL 62704",
		"Seen by Dr. Mary Jones on March 3, 2021 at St Mary Hospital; wife Jane; aged 93; 3rd of May, 2020; 1 Oak Rd",
		"x12 Main Street 3May 2020 Mr.Smith AGE 95 Professor Li Ming son(Tom Lee)",
	}
	for _, name := range []string{"hard.jsonl", "synth.jsonl"} {
		for _, n := range readCorpus(t, name) {
			texts = append(texts, n.Text)
		}
	}
	pairs := []struct {
		sc *scan
		re *regexp.Regexp
	}{
		{scanTitleName, reTitleName}, {scanRelName, reRelName}, {scanSigned, reSigned},
		{scanPairName, rePairName}, {scanEnDate, reEnDate}, {scanEnAge, reEnAge}, {scanAddress, reEnAddress},
	}
	for _, text := range texts {
		for _, p := range pairs {
			got := fmt.Sprint(p.sc.all(text, nil))
			want := fmt.Sprint(p.re.FindAllStringSubmatchIndex(text, -1))
			if got != want {
				t.Fatalf("%s on %q: scan %s, regexp %s", p.re, text, got, want)
			}
		}
	}
}

// tokensFrom describes the tokens of a cut of the window at lo that matter
// from rune from on: whether a token starts there, and the next three
// tokens' lengths.
func tokensFrom(toks []int, lo, from int) string {
	p, k := lo, 0
	for k < len(toks) && p < from {
		p += toks[k]
		k++
	}
	if p != from {
		return "inside"
	}
	return fmt.Sprint(toks[k:min(len(toks), k+3)], len(toks) > k, len(toks) > k+1, len(toks) > k+2)
}

// TestLatinish: the shortcut for CJK agrees with the Unicode tables on
// every rune.
func TestLatinish(t *testing.T) {
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		want := unicode.Is(unicode.Latin, r) || strings.ContainsRune("’‘“”–—", r)
		if latinish(r) != want {
			t.Fatalf("latinish(%U) = %v", r, !want)
		}
	}
}
