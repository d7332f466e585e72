package scrub

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"medguard/internal/idnum"
)

// Anchored patterns tried where a number starts. They run on a short
// window, so the scan costs one byte test per byte of text.
var (
	reID18     = regexp.MustCompile(`^\d{6}[ -]?\d{8}[ -]?\d{3}[\dXx]`)
	reID15     = regexp.MustCompile(`^\d{15}`)
	reMobile   = regexp.MustCompile(`^(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}`)
	reLandline = regexp.MustCompile(`^(?:\(0\d{2,3}\)|0\d{2,3})[ -]?\d{3,4}[ -]?\d{4}`)
	reUSPhone  = regexp.MustCompile(`^(?:\+?1[ -.])?(?:\(\d{3}\) ?|\d{3}[-.])\d{3}[-.]\d{4}`)
	reDateNum  = regexp.MustCompile(`^(?:\d{4}年\d{1,2}月(?:\d{1,2}[日号])?|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}/\d{1,2}/\d{4}|\d{1,2}月\d{1,2}[日号]|\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{4})`)
	reTime     = regexp.MustCompile(`^[ T]?\d{1,2}:\d{2}(?::\d{2})?`)
	reAgeNum   = regexp.MustCompile(`^(?:9\d|1[01]\d)(?: ?周岁| ?岁| ?-?years?[- ]old| ?yo\b| ?y/o| ?y\.o\.)`)
	reRecordID = regexp.MustCompile(`^(?:MRN?|ZY|MZ|BA)[-#: ]?\d{5,}`)
)

// noClock is the "today" ID numbers are checked against: the scrubber
// reads no clock, and a birth date in the future is still a number to hide.
var noClock = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// recordKeys are the words that announce a record, admission, insurance
// or card number; the number after them is taken whatever its shape.
var recordKeys = []string{
	"住院号", "病案号", "门诊号", "病历号", "医保号", "医保卡号", "社保卡号", "社保号", "就诊卡号",
	"就诊号", "登记号", "档案号", "检查号", "影像号", "标本号", "条码号", "保险号", "保单号",
	"医疗证号", "健康卡号", "卡号", "ID号", "患者ID", "病人ID", "流水号",
	"MRN", "MR#", "medical record number", "medical record no", "record number", "record no",
	"admission number", "admission no", "insurance id", "insurance number", "insurance no",
	"policy number", "policy no", "member id", "account number", "patient id", "hospital number",
	"case number", "case no",
}

// recordKeyMatcher finds the record keys, lower case, in lower-case text.
var recordKeyMatcher = func() *matcher {
	keys := make([]string, len(recordKeys))
	for i, k := range recordKeys {
		keys[i] = asciiLower(k)
	}
	return newMatcher(keys)
}()

// asciiLower returns s with the ASCII letters in lower case: unlike
// strings.ToLower it never changes a byte length, so offsets into it are
// offsets into s.
func asciiLower(s string) string {
	i := 0
	for i < len(s) && !(s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// idKeys announce a resident ID number: after them an 18-digit number is
// one even if its check character is wrong (a typo is still the person's).
var idKeys = []string{"身份证", "证件号", "公民身份号码", "ID card", "ID No"}

// findStructured finds ID numbers, phones, numeric dates, ages, emails
// and record numbers.
func (d *doc) findStructured() {
	t := d.text
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c == '@' {
			d.email(i)
			continue
		}
		startOK := i == 0 || !isAlnum(t[i-1])
		if !startOK {
			continue
		}
		switch {
		case c >= '0' && c <= '9', c == '+', c == '(':
			if n := d.number(i); n > i {
				i = n - 1
			}
		case c == 'M' || c == 'Z' || c == 'B':
			if m := reRecordID.FindString(window(t, i)); m != "" && endOK(t, i+len(m)) {
				d.add(RecordNumber, i, i+len(m))
				i += len(m) - 1
			}
		}
	}
	d.afterKeys()
	d.chineseNumeralDates()
}

// window returns up to 64 bytes of t from i.
func window(t string, i int) string {
	if len(t)-i > 64 {
		return t[i : i+64]
	}
	return t[i:]
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// endOK reports whether a number ending at j is not followed by another
// digit or letter.
func endOK(t string, j int) bool { return j >= len(t) || !isAlnum(t[j]) }

// number tries the number patterns at i and returns the end of what it
// took, or i.
func (d *doc) number(i int) int {
	t := d.text
	w := window(t, i)
	// The length of the digit run and what follows it decide which
	// patterns can match, so that vital signs (36.5, 90次/分) cost no
	// regular expression.
	c := t[i]
	run := 0
	for i+run < len(t) && isDigit(t[i+run]) {
		run++
	}
	var next byte
	if i+run < len(t) {
		next = t[i+run]
	}
	if run == 0 { // + or (
		if len(w) < 2 || !(isDigit(w[1]) || w[1] == '0') {
			return i + 1
		}
		for _, re := range []*regexp.Regexp{reMobile, reLandline, reUSPhone} {
			if m := re.FindString(w); m != "" && endOK(t, i+len(m)) {
				d.add(Phone, i, i+len(m))
				return i + len(m)
			}
		}
		return i + 1
	}
	sep := next == ' ' || next == '-'
	if run >= 6 && (run == 6 || run == 14 || run == 17 || run == 18) {
		if m := reID18.FindString(w); m != "" && endOK(t, i+len(m)) {
			digits := strings.NewReplacer(" ", "", "-", "").Replace(m)
			_, err := idnum.ValidateAt(digits, noClock)
			if err == nil || d.after(i, idKeys) {
				d.add(IDNumber, i, i+len(m))
				return i + len(m)
			}
		}
	}
	if run == 15 {
		if m := reID15.FindString(w); m != "" && endOK(t, i+len(m)) && (old15(m) || d.after(i, idKeys)) {
			d.add(IDNumber, i, i+len(m))
			return i + len(m)
		}
	}
	dateish := run == 4 && (next == '-' || next == '/' || next == '.' || strings.HasPrefix(t[i+run:], "年")) ||
		run <= 2 && (next == '/' || next == ' ' || strings.HasPrefix(t[i+run:], "月"))
	if !dateish {
		goto age
	}
	if m := reDateNum.FindString(w); m != "" && (endOK(t, i+len(m)) || !isDigit(t[i+len(m)])) && plausibleDate(m) {
		end := i + len(m)
		if tm := reTime.FindString(window(t, end)); tm != "" {
			end += len(tm)
		}
		d.add(Date, i, end)
		return end
	}
age:
	if (run == 2 && c == '9' || run == 3 && c == '1') && next != '.' {
		if m := reAgeNum.FindString(w); m != "" {
			d.add(Age, i, i+len(m))
			return i + len(m)
		}
	}
	if run >= 3 && (c == '1' || c == '0' || sep || next == '.' || c == '8' && run >= 4) || c == '0' {
		for _, re := range []*regexp.Regexp{reMobile, reLandline, reUSPhone} {
			if m := re.FindString(w); m != "" && endOK(t, i+len(m)) {
				d.add(Phone, i, i+len(m))
				return i + len(m)
			}
		}
	}
	// Skip the rest of this run of digits.
	j := i + 1
	for j < len(t) && isDigit(t[j]) {
		j++
	}
	return j
}

// old15 reports whether a 15-digit number reads as an old-style ID
// number: a province code, then a real YYMMDD date of the 1900s.
func old15(m string) bool {
	if _, err := idnum.ValidateAt(m[:6]+"19"+m[6:15]+"0", noClock); err == idnum.ErrChecksum || err == nil {
		return true
	}
	return false
}

// plausibleDate rejects what the date pattern takes but is no date:
// months over 12, days over 31.
func plausibleDate(m string) bool {
	var nums []int
	n, in := 0, false
	for i := 0; i < len(m); i++ {
		if isDigit(m[i]) {
			n, in = n*10+int(m[i]-'0'), true
			continue
		}
		if in {
			nums = append(nums, n)
		}
		n, in = 0, false
	}
	if in {
		nums = append(nums, n)
	}
	if len(nums) == 3 && nums[0] > 31 { // y m d
		return nums[1] >= 1 && nums[1] <= 12 && nums[2] >= 1 && nums[2] <= 31
	}
	if len(nums) == 3 { // m/d/y or d/m/y
		return nums[0] >= 1 && nums[1] >= 1 && nums[0] <= 31 && nums[1] <= 31 && (nums[0] <= 12 || nums[1] <= 12)
	}
	if len(nums) == 2 && strings.Contains(m, "月") && nums[0] > 31 { // 2024年3月
		return nums[1] >= 1 && nums[1] <= 12
	}
	if len(nums) == 2 { // 3月5日, 12 Jan 2023
		return nums[0] >= 1 && nums[0] <= 31
	}
	return true
}

// after reports whether one of keys ends within 16 bytes before i
// (separators between).
func (d *doc) after(i int, keys []string) bool {
	lo := i - 24
	if lo < 0 {
		lo = 0
	}
	before := strings.ToLower(d.text[lo:i])
	for _, k := range keys {
		if strings.Contains(before, strings.ToLower(k)) {
			return true
		}
	}
	return false
}

// afterKeys takes the number after each record key.
func (d *doc) afterKeys() {
	hasLatin := strings.ContainsFunc(d.text, func(r rune) bool { return r < utf8.RuneSelf && r|0x20 >= 'a' && r|0x20 <= 'z' })
	hasHao := strings.Contains(d.text, "号")
	if !hasLatin && !hasHao {
		return
	}
	lower := d.text
	if hasLatin {
		lower = asciiLower(d.text)
	}
	english := hasLatin && wordy(d.text)
	d.hits = recordKeyMatcher.find(lower, d.hits)
	for _, h := range d.hits {
		k := recordKeys[h.k]
		if k[0] < utf8.RuneSelf && !hasLatin || strings.HasSuffix(k, "号") && !hasHao {
			continue
		}
		if k[0] >= 'a' && k[0] <= 'z' && !english {
			continue // English phrases need English text
		}
		j := h.pos + len(k)
		// Separators: spaces, colons, #, 号, 为, is, :.
		p := j
		for p < len(d.text) {
			r, n := utf8.DecodeRuneInString(d.text[p:])
			if strings.ContainsRune(" :：#.号为是\t(（", r) || strings.HasPrefix(lower[p:], "is ") {
				if strings.HasPrefix(lower[p:], "is ") {
					n = 3
				}
				p += n
				continue
			}
			break
		}
		e := p
		digits := 0
		for e < len(d.text) {
			c := d.text[e]
			if isDigit(c) {
				digits++
			} else if !(isAlnum(c) || (c == '-' || c == ' ') && e+1 < len(d.text) && isAlnum(d.text[e+1]) && (c == '-' || digits > 0 && isDigit(d.text[e+1]))) {
				break
			}
			e++
		}
		if digits >= 3 && e-p >= 4 {
			d.add(RecordNumber, p, e)
		}
	}
}

// email takes the address around an @ at i.
func (d *doc) email(i int) {
	t := d.text
	s := i
	for s > 0 && (isAlnum(t[s-1]) || strings.IndexByte("._%+-", t[s-1]) >= 0) {
		s--
	}
	e := i + 1
	dot := false
	for e < len(t) && (isAlnum(t[e]) || t[e] == '.' || t[e] == '-') {
		if t[e] == '.' {
			dot = true
		}
		e++
	}
	for e > i+1 && t[e-1] == '.' {
		e--
	}
	if s < i && dot {
		d.add(Email, s, e)
	}
}

// Chinese-numeral dates and ages: 一九三〇年二月十四日, 九十三岁.
var (
	reCnDate = regexp.MustCompile(`[〇零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,2}月(?:[一二三四五六七八九十]{1,3}[日号])?|[一二三四五六七八九十]{1,2}月[一二三四五六七八九十]{1,3}[日号]`)
	reCnAge  = regexp.MustCompile(`(?:九十[一二三四五六七八九]?|一百[零一二三四五六七八九十]*)(?:周岁|岁)`)
)

func (d *doc) chineseNumeralDates() {
	if precededByNumeral(d.text, "月") {
		for _, m := range reCnDate.FindAllStringIndex(d.text, -1) {
			d.add(Date, m[0], m[1])
		}
	}
	if precededByNumeral(d.text, "岁") {
		for _, m := range reCnAge.FindAllStringIndex(d.text, -1) {
			d.add(Age, m[0], m[1])
		}
	}
}

// precededByNumeral reports whether word appears right after a Chinese
// numeral (二月, 九十三岁), the only places the numeral patterns can match.
func precededByNumeral(t, word string) bool {
	for from := 0; ; {
		j := strings.Index(t[from:], word)
		if j < 0 {
			return false
		}
		j += from
		from = j + len(word)
		r, _ := utf8.DecodeLastRuneInString(t[:j])
		if strings.ContainsRune("〇零一二三四五六七八九十百", r) {
			return true
		}
	}
}
