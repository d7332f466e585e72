package synth

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// surname is a family name with its approximate share of the population in
// units of 0.01% (after the 2020 census rankings).
type surname struct {
	name   string
	weight int
}

var surnames = []surname{
	{"王", 710}, {"李", 700}, {"张", 630}, {"刘", 530}, {"陈", 450},
	{"杨", 310}, {"赵", 230}, {"黄", 220}, {"周", 210}, {"吴", 200},
	{"徐", 170}, {"孙", 150}, {"胡", 130}, {"朱", 130}, {"高", 120},
	{"林", 120}, {"何", 120}, {"郭", 110}, {"马", 110}, {"罗", 90},
	{"梁", 80}, {"宋", 80}, {"郑", 80}, {"谢", 70}, {"韩", 70},
	{"唐", 70}, {"冯", 60}, {"于", 60}, {"董", 60}, {"肖", 60},
	{"程", 50}, {"曹", 50}, {"袁", 50}, {"邓", 50}, {"许", 50},
	{"傅", 50}, {"沈", 50}, {"曾", 50}, {"彭", 50}, {"吕", 50},
	{"苏", 40}, {"卢", 40}, {"蒋", 40}, {"蔡", 40}, {"贾", 40},
	{"丁", 40}, {"魏", 40}, {"薛", 40}, {"叶", 40}, {"阎", 30},
	{"余", 30}, {"潘", 30}, {"杜", 30}, {"戴", 30}, {"夏", 30},
	{"钟", 30}, {"汪", 30}, {"田", 30}, {"任", 30}, {"姜", 30},
	{"范", 30}, {"方", 30}, {"石", 30}, {"姚", 30}, {"谭", 20},
	{"廖", 20}, {"邹", 20}, {"熊", 20}, {"金", 20}, {"陆", 20},
	{"郝", 20}, {"孔", 20}, {"白", 20}, {"崔", 20}, {"康", 20},
	{"毛", 20}, {"邱", 20}, {"秦", 20}, {"江", 20}, {"史", 20},
	{"顾", 20}, {"侯", 20}, {"邵", 20}, {"孟", 20}, {"龙", 20},
	{"万", 20}, {"段", 20}, {"雷", 15}, {"钱", 15}, {"汤", 15},
	{"尹", 15}, {"黎", 15}, {"易", 15}, {"常", 15}, {"武", 15},
	{"乔", 15}, {"贺", 15}, {"赖", 15}, {"龚", 15}, {"文", 15},
	// Two-character surnames are rare but real.
	{"欧阳", 3}, {"司马", 1}, {"上官", 1}, {"诸葛", 1}, {"东方", 1},
	{"皇甫", 1}, {"司徒", 1}, {"令狐", 1}, {"慕容", 1}, {"夏侯", 1},
}

var surnameWeights = func() []int {
	w := make([]int, len(surnames))
	for i, s := range surnames {
		w[i] = s.weight
	}
	return w
}()

// Characters common in given names, by the gender they are usually given
// to. Each is in the pinyin table.
const (
	maleChars   = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林峰建国志成文东海亮永兵振博晨毅彬坤泽轩睿宏德庆全卫忠松柏山江锋诚瑞琦晖昊然天翔豪铭阳逸哲皓鸣航远立新胜利福生贵荣清光"
	femaleChars = "芳娜敏静丽艳娟霞秀玲桂英红梅琳燕颖雪慧倩婷晶欣洁萍琴云莉兰凤丹玉佳怡悦涵萱诗雨梦思可馨璐瑶蕾薇珍淑春晓月彤妍菲露岚莹翠素爱美琪媛嘉若依雅婉冰"
)

var (
	maleRunes   = []rune(maleChars)
	femaleRunes = []rune(femaleChars)
)

// era lists two-character given names typical of people born in a period,
// which is what makes a 70-year-old a 秀英 and a 5-year-old a 梓涵.
type era struct {
	until        int // last birth year of the era
	male, female []string
	single       float64 // share of one-character given names
}

var eras = []era{
	{until: 1964, single: 0.12,
		male:   []string{"建国", "国庆", "建华", "卫东", "建军", "志强", "国强", "振华", "德明", "福生", "保国", "金山", "永福", "国华", "德胜", "荣华"},
		female: []string{"秀英", "桂英", "桂兰", "秀兰", "玉兰", "淑珍", "秀珍", "凤英", "玉珍", "素珍", "桂芳", "淑华", "秀芳", "玉梅", "桂珍", "淑英", "凤兰", "玉英", "秀云"}},
	{until: 1984, single: 0.2,
		male:   []string{"建华", "志刚", "海涛", "文斌", "晓东", "立新", "红兵", "卫国", "永刚", "建平", "国华", "志勇", "宏伟", "建伟", "俊峰", "海波"},
		female: []string{"丽华", "红梅", "晓燕", "丽娟", "艳红", "春梅", "海燕", "秀梅", "丽萍", "晓红", "美玲", "丽娜", "红霞", "艳芳", "玉梅"}},
	{until: 1999, single: 0.35,
		male:   []string{"俊杰", "浩然", "鹏飞", "志鹏", "文杰", "晓明", "明辉", "家豪", "嘉伟", "宇航", "天宇", "鑫磊", "子豪", "建伟"},
		female: []string{"婷婷", "丹丹", "倩倩", "晓婷", "佳琪", "雅琪", "思琪", "晓雪", "梦婷", "静怡", "雪莹", "欣然", "晓丽"}},
	{until: 9999, single: 0.1,
		male:   []string{"子轩", "浩宇", "梓豪", "宇轩", "浩然", "俊熙", "一鸣", "博文", "宇航", "沐阳", "梓睿", "奕辰", "子墨", "皓轩", "睿泽"},
		female: []string{"梓涵", "欣怡", "诗涵", "雨桐", "紫涵", "一诺", "可馨", "语桐", "思涵", "欣妍", "梓萱", "若汐", "雨涵", "佳怡", "诗琪"}},
}

// surname returns a family name chosen by frequency.
func (g *Generator) surname() string { return surnames[g.weighted(surnameWeights)].name }

// givenName returns a given name for someone of gender born in year.
func (g *Generator) givenName(gender string, year int) string {
	e := eras[len(eras)-1]
	for _, x := range eras {
		if year <= x.until {
			e = x
			break
		}
	}
	pool, classics := maleRunes, e.male
	if gender == "female" {
		pool, classics = femaleRunes, e.female
	}
	switch r := g.rng.Float64(); {
	case r < e.single:
		return string(pick(g, pool))
	case r < e.single+0.4:
		return pick(g, classics)
	default:
		a := pick(g, pool)
		b := pick(g, pool)
		for b == a {
			b = pick(g, pool)
		}
		return string([]rune{a, b})
	}
}

// name returns a full name for someone of gender born in year.
func (g *Generator) name(gender string, year int) string {
	return g.surname() + g.givenName(gender, year)
}

// StaffName returns the Chinese name of a member of staff (born 1960-1999,
// either gender). Every character of it is in the pinyin table, so
// Username always spells it out.
func (g *Generator) StaffName() string {
	gender := "male"
	if g.chance(0.55) { // most nurses are women
		gender = "female"
	}
	return g.name(gender, g.intn(1960, 1999))
}

// Username returns an ASCII sign-in name for the person called name: the
// pinyin of the name followed by n as three digits ("zhangwei017"). Any
// character without a pinyin entry is left out; a name with none at all
// gives "staff" and the number.
func (g *Generator) Username(name string, n int) string {
	return username(name, n)
}

func username(name string, n int) string {
	var b strings.Builder
	rest := name
	for _, s := range compoundSurnames {
		if p, ok := strings.CutPrefix(rest, s); ok {
			b.WriteString(pinyin[s])
			rest = p
			break
		}
	}
	for _, r := range rest {
		b.WriteString(pinyin[string(r)])
	}
	if b.Len() == 0 {
		b.WriteString("staff")
	}
	if n < 0 {
		n = -n
	}
	num := strconv.Itoa(n)
	for len(num) < 3 {
		num = "0" + num
	}
	b.WriteString(num)
	return b.String()
}

var compoundSurnames = func() []string {
	var out []string
	for _, s := range surnames {
		if len([]rune(s.name)) > 1 {
			out = append(out, s.name)
		}
	}
	sort.Strings(out)
	return out
}()

// pinyin spells every surname and given-name character used here, without
// tones (ü as v, as Chinese keyboards type it).
var pinyin = map[string]string{
	// Surnames.
	"王": "wang", "李": "li", "张": "zhang", "刘": "liu", "陈": "chen", "杨": "yang", "赵": "zhao",
	"黄": "huang", "周": "zhou", "吴": "wu", "徐": "xu", "孙": "sun", "胡": "hu", "朱": "zhu",
	"高": "gao", "林": "lin", "何": "he", "郭": "guo", "马": "ma", "罗": "luo", "梁": "liang",
	"宋": "song", "郑": "zheng", "谢": "xie", "韩": "han", "唐": "tang", "冯": "feng", "于": "yu",
	"董": "dong", "肖": "xiao", "程": "cheng", "曹": "cao", "袁": "yuan", "邓": "deng", "许": "xu",
	"傅": "fu", "沈": "shen", "曾": "zeng", "彭": "peng", "吕": "lv", "苏": "su", "卢": "lu",
	"蒋": "jiang", "蔡": "cai", "贾": "jia", "丁": "ding", "魏": "wei", "薛": "xue", "叶": "ye",
	"阎": "yan", "余": "yu", "潘": "pan", "杜": "du", "戴": "dai", "夏": "xia", "钟": "zhong",
	"汪": "wang", "田": "tian", "任": "ren", "姜": "jiang", "范": "fan", "方": "fang", "石": "shi",
	"姚": "yao", "谭": "tan", "廖": "liao", "邹": "zou", "熊": "xiong", "金": "jin", "陆": "lu",
	"郝": "hao", "孔": "kong", "白": "bai", "崔": "cui", "康": "kang", "毛": "mao", "邱": "qiu",
	"秦": "qin", "江": "jiang", "史": "shi", "顾": "gu", "侯": "hou", "邵": "shao", "孟": "meng",
	"龙": "long", "万": "wan", "段": "duan", "雷": "lei", "钱": "qian", "汤": "tang", "尹": "yin",
	"黎": "li", "易": "yi", "常": "chang", "武": "wu", "乔": "qiao", "贺": "he", "赖": "lai",
	"龚": "gong", "文": "wen",
	"欧阳": "ouyang", "司马": "sima", "上官": "shangguan", "诸葛": "zhuge", "东方": "dongfang",
	"皇甫": "huangfu", "司徒": "situ", "令狐": "linghu", "慕容": "murong", "夏侯": "xiahou",
	// Given-name characters.
	"伟": "wei", "强": "qiang", "磊": "lei", "军": "jun", "勇": "yong", "杰": "jie", "涛": "tao",
	"斌": "bin", "超": "chao", "明": "ming", "刚": "gang", "平": "ping", "辉": "hui", "鹏": "peng",
	"华": "hua", "飞": "fei", "鑫": "xin", "波": "bo", "宇": "yu", "浩": "hao", "凯": "kai",
	"健": "jian", "俊": "jun", "帆": "fan", "帅": "shuai", "旭": "xu", "宁": "ning",
	"峰": "feng", "建": "jian", "国": "guo", "志": "zhi", "成": "cheng", "东": "dong",
	"海": "hai", "亮": "liang", "永": "yong", "兵": "bing", "振": "zhen", "博": "bo", "晨": "chen",
	"毅": "yi", "彬": "bin", "坤": "kun", "泽": "ze", "轩": "xuan", "睿": "rui", "宏": "hong",
	"德": "de", "庆": "qing", "全": "quan", "卫": "wei", "忠": "zhong", "松": "song", "柏": "bai",
	"山": "shan", "锋": "feng", "诚": "cheng", "瑞": "rui", "琦": "qi", "晖": "hui",
	"昊": "hao", "然": "ran", "天": "tian", "翔": "xiang", "豪": "hao", "铭": "ming", "阳": "yang",
	"逸": "yi", "哲": "zhe", "皓": "hao", "鸣": "ming", "航": "hang", "远": "yuan", "立": "li",
	"新": "xin", "胜": "sheng", "利": "li", "福": "fu", "生": "sheng", "贵": "gui", "荣": "rong",
	"清": "qing", "光": "guang",
	"芳": "fang", "娜": "na", "敏": "min", "静": "jing", "丽": "li", "艳": "yan", "娟": "juan",
	"霞": "xia", "秀": "xiu", "玲": "ling", "桂": "gui", "英": "ying", "红": "hong", "梅": "mei",
	"琳": "lin", "燕": "yan", "颖": "ying", "雪": "xue", "慧": "hui", "倩": "qian", "婷": "ting",
	"晶": "jing", "欣": "xin", "洁": "jie", "萍": "ping", "琴": "qin", "云": "yun", "莉": "li",
	"兰": "lan", "凤": "feng", "丹": "dan", "玉": "yu", "佳": "jia", "怡": "yi", "悦": "yue",
	"涵": "han", "萱": "xuan", "诗": "shi", "雨": "yu", "梦": "meng", "思": "si", "可": "ke",
	"馨": "xin", "璐": "lu", "瑶": "yao", "蕾": "lei", "薇": "wei", "珍": "zhen", "淑": "shu",
	"春": "chun", "晓": "xiao", "月": "yue", "彤": "tong", "妍": "yan", "菲": "fei", "露": "lu",
	"岚": "lan", "莹": "ying", "翠": "cui", "素": "su", "爱": "ai", "美": "mei", "琪": "qi",
	"媛": "yuan", "嘉": "jia", "若": "ruo", "依": "yi", "雅": "ya", "婉": "wan", "冰": "bing",
	"保": "bao", "子": "zi", "梓": "zi", "熙": "xi", "一": "yi", "沐": "mu", "奕": "yi",
	"辰": "chen", "墨": "mo", "紫": "zi", "诺": "nuo", "语": "yu", "桐": "tong", "汐": "xi",
	"家": "jia",
}

// ageAt returns the age in whole years of someone born on birth at t.
func ageAt(birth, t time.Time) int {
	y := t.Year() - birth.Year()
	if t.Month() < birth.Month() || t.Month() == birth.Month() && t.Day() < birth.Day() {
		y--
	}
	return max(y, 0)
}
