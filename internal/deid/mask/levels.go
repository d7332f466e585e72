package mask

import "strings"

// AddressLevels cuts a Chinese address into its administrative units, as
// MaskAddress keeps them: the province (省/自治区/直辖市, "" if the address
// starts below it), the city and the district, each written as a prefix of
// the address: 广东省深圳市南山区科技园 → 广东省, 广东省深圳市,
// 广东省深圳市南山区. A municipality has no city level: its city is the
// province (北京市朝阳区 → 北京市, 北京市, 北京市朝阳区). A level not found
// repeats the coarser one, so that each level is a function of the finer.
// De-identification jobs generalise addresses along these levels.
func AddressLevels(s string) (province, city, district string) {
	r := []rune(strings.TrimSpace(s))
	pos := 0
	levels := [][]string{citySuffixes, districtSuffixes}
	var b strings.Builder
	if p, ok := matchProvince(r); ok {
		b.WriteString(p.name)
		pos = len([]rune(p.name))
		province = b.String()
		if p.municipality {
			city = province
			levels = levels[1:]
		}
	}
	for len(levels) > 0 {
		n, level, ok := matchUnit(r[pos:], levels)
		if !ok {
			break
		}
		b.WriteString(string(r[pos : pos+n]))
		pos += n
		if len(levels) == 2 && level == 0 {
			city = b.String()
		} else {
			district = b.String()
		}
		levels = levels[level+1:]
	}
	if city == "" {
		city = province
	}
	if district == "" {
		district = city
	}
	return province, city, district
}
