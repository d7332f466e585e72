package scrub

import (
	"strings"
	"unicode/utf8"

	"medguard/internal/deid/mask"
)

// addressKeys come before an address: what follows them is one even if it
// starts below the province.
var addressKeys = []string{
	"家庭住址", "现住址", "通讯地址", "联系地址", "户籍地址", "住址", "地址", "家住", "住在", "现住",
	"居住于", "居住在", "户籍地", "暂住",
}

var addressKeyMatcher = newMatcher(addressKeys)

// lowerSuffixes end the parts of an address below the district, longest
// first: towns, streets, numbers, buildings and flats.
var lowerSuffixes = []string{
	"街道", "社区", "小区", "大道", "大街", "胡同", "号楼", "单元", "公寓", "大厦", "花园", "家园",
	"新村", "镇", "乡", "村", "路", "街", "巷", "弄", "号", "栋", "幢", "座", "室", "层", "楼", "组",
	"屯", "苑", "园", "城", "里",
}

// streetish are lower suffixes that make a span an address on their own.
const streetish = "街道路街巷弄号村镇乡胡同组屯"

// text runes and their byte offsets.
type runeText struct {
	r   []rune
	off []int // off[i] is the byte offset of r[i]; off[len(r)] = len(text)
}

func newRuneText(s string) runeText {
	n := utf8.RuneCountInString(s)
	rt := runeText{r: make([]rune, n), off: make([]int, n+1)}
	k := 0
	for i, c := range s {
		rt.r[k], rt.off[k] = c, i
		k++
	}
	rt.off[n] = len(s)
	return rt
}

func (d *doc) runes() runeText {
	if d.rt.r == nil {
		d.rt = newRuneText(d.text)
	}
	return d.rt
}

// provinceFirst are province names keyed by their first character.
var provinceFirst = map[rune][][]rune{}

// provinceStart holds the first runes of the province names.
var provinceStart = &runeSet{}

func init() {
	for _, p := range []string{"北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门"} {
		r := []rune(p)
		provinceFirst[r[0]] = append(provinceFirst[r[0]], r)
		provinceStart.add(r[0])
	}
}

// findAddresses finds Chinese addresses that reach below the district:
// from the province (or an address key, or the street) to the house
// number and flat. A province, city or district alone (生于重庆市) is no
// address here, as the masking rules keep it.
func (d *doc) findAddresses() {
	rt := d.runes()
	r := rt.r
	starts := map[int]bool{}
	for i := 0; i < len(r); i++ {
		if !provinceStart.has(r[i]) {
			continue
		}
		for _, p := range provinceFirst[r[i]] {
			if runesAt(r, i, p) {
				starts[i] = true
				break
			}
		}
	}
	d.hits = addressKeyMatcher.find(d.text, d.hits)
	for _, h := range d.hits {
		j := h.pos + len(addressKeys[h.k])
		i := runeIndex(rt, j)
		for i < len(r) && strings.ContainsRune(":：　 为是于在", r[i]) {
			i++
		}
		starts[i] = true
	}
	// Streets with a house number: …路88号.
	for i := 1; i < len(r); i++ {
		if (r[i] == '号' || r[i] == '弄') && r[i-1] < utf8.RuneSelf && isDigit(byte(r[i-1])) {
			k := i - 1
			for k > 0 && r[k-1] < utf8.RuneSelf && isDigit(byte(r[k-1])) {
				k--
			}
			if k == 0 || !strings.ContainsRune("路街道巷弄里同", r[k-1]) {
				continue
			}
			s := k - 1
			for s > 0 && k-s < 10 && isHan(r[s-1]) && !strings.ContainsRune("住在于至到往近是，。", r[s-1]) {
				s--
			}
			starts[s] = true
		}
	}
	for i := range starts {
		if i >= len(r) {
			continue
		}
		end := min(len(r), i+48)
		admin := utf8.RuneCountInString(mask.MaskAddress(d.text[rt.off[i]:rt.off[end]]))
		e, street := extendLower(r, i+admin)
		if street && e > i {
			d.add(Address, rt.off[i], rt.off[e])
		}
	}
}

// runeIndex returns the index of the rune at byte offset b.
func runeIndex(rt runeText, b int) int {
	lo, hi := 0, len(rt.off)-1
	for lo < hi {
		m := (lo + hi) / 2
		if rt.off[m] < b {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// extendLower consumes the parts of an address below the district from
// p and returns where they end and whether one was a street, town,
// village or house number.
func extendLower(r []rune, p int) (int, bool) {
	street := false
	for p < len(r) {
		seg := 0
		for k := p; k < len(r) && k-p < 14; k++ {
			c := r[k]
			if !(isHan(c) || c < utf8.RuneSelf && (isAlnum(byte(c)) || c == '-') || c == '－') {
				break
			}
			if k == p {
				continue
			}
			rest := r[k:]
			for _, suf := range lowerSuffixes {
				if hasRunePrefix(rest, suf) {
					seg = k + utf8.RuneCountInString(suf) - p
					if strings.Contains(streetish, suf) {
						street = true
					}
					break
				}
			}
			if seg > 0 {
				break
			}
		}
		if seg == 0 {
			break
		}
		p += seg
	}
	return p, street
}

func hasRunePrefix(r []rune, s string) bool {
	i := 0
	for _, c := range s {
		if i >= len(r) || r[i] != c {
			return false
		}
		i++
	}
	return true
}

var institutionMatcher = newMatcher(institutions["suffix"])

// findInstitutions finds hospitals, clinics and universities by their
// name's last word (…医院, …卫生院, …大学), taking the name back to the
// start of the phrase and leaving out generic ones (当地医院, 我院).
func (d *doc) findInstitutions() {
	rt := d.runes()
	r := rt.r
	d.hits = institutionMatcher.find(d.text, d.hits)
	for _, h := range d.hits {
		j := h.pos
		from := j + len(institutions["suffix"][h.k])
		e := runeIndex(rt, j)
		s := e
		for s > 0 && e-s < 20 && (isHan(r[s-1]) || r[s-1] < utf8.RuneSelf && isDigit(byte(r[s-1]))) {
			s--
		}
		// Start after the last lead word (在, 转至 …).
		for k := e - 1; k >= s; k-- {
			found := false
			for _, l := range institutions["lead"] {
				if hasRunePrefix(r[k:e], l) {
					s = k + utf8.RuneCountInString(l)
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		for s < e && r[s] < utf8.RuneSelf { // no leading digits (2周前…)
			s++
		}
		name := string(r[s:e])
		if e-s < 2 || generic[name] || strings.HasPrefix(name, "当地") || strings.HasPrefix(name, "某") || strings.HasPrefix(name, "附近") {
			continue
		}
		d.add(Institution, rt.off[s], from)
	}
}
