package synth

import (
	"strconv"
	"strings"
)

// area is a real county-level division (GB/T 2260) that patients live in.
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

var areas = []area{
	{"110101", "北京市", "", "东城区", styleNorth},
	{"110102", "北京市", "", "西城区", styleNorth},
	{"110105", "北京市", "", "朝阳区", styleNorth},
	{"110106", "北京市", "", "丰台区", styleNorth},
	{"110108", "北京市", "", "海淀区", styleNorth},
	{"110112", "北京市", "", "通州区", styleNorth},
	{"110114", "北京市", "", "昌平区", styleNorth},
	{"110115", "北京市", "", "大兴区", styleNorth},
	{"120101", "天津市", "", "和平区", styleNorth},
	{"120104", "天津市", "", "南开区", styleNorth},
	{"120116", "天津市", "", "滨海新区", styleNorth},
	{"130102", "河北省", "石家庄市", "长安区", styleNorth},
	{"130203", "河北省", "唐山市", "路北区", styleNorth},
	{"130602", "河北省", "保定市", "竞秀区", styleNorth},
	{"131003", "河北省", "廊坊市", "广阳区", styleNorth},
	{"140105", "山西省", "太原市", "小店区", styleNorth},
	{"150102", "内蒙古自治区", "呼和浩特市", "新城区", styleNorth},
	{"210102", "辽宁省", "沈阳市", "和平区", styleNorth},
	{"210202", "辽宁省", "大连市", "中山区", styleNorth},
	{"220104", "吉林省", "长春市", "朝阳区", styleNorth},
	{"230103", "黑龙江省", "哈尔滨市", "南岗区", styleNorth},
	{"310101", "上海市", "", "黄浦区", styleShanghai},
	{"310104", "上海市", "", "徐汇区", styleShanghai},
	{"310106", "上海市", "", "静安区", styleShanghai},
	{"310112", "上海市", "", "闵行区", styleShanghai},
	{"310115", "上海市", "", "浦东新区", styleShanghai},
	{"320102", "江苏省", "南京市", "玄武区", styleNorth},
	{"320106", "江苏省", "南京市", "鼓楼区", styleNorth},
	{"320508", "江苏省", "苏州市", "姑苏区", styleSouth},
	{"330106", "浙江省", "杭州市", "西湖区", styleSouth},
	{"330203", "浙江省", "宁波市", "海曙区", styleSouth},
	{"340104", "安徽省", "合肥市", "蜀山区", styleNorth},
	{"350102", "福建省", "福州市", "鼓楼区", styleSouth},
	{"350203", "福建省", "厦门市", "思明区", styleSouth},
	{"360102", "江西省", "南昌市", "东湖区", styleSouth},
	{"370102", "山东省", "济南市", "历下区", styleNorth},
	{"370202", "山东省", "青岛市", "市南区", styleNorth},
	{"410103", "河南省", "郑州市", "二七区", styleNorth},
	{"410105", "河南省", "郑州市", "金水区", styleNorth},
	{"420106", "湖北省", "武汉市", "武昌区", styleSouth},
	{"420111", "湖北省", "武汉市", "洪山区", styleSouth},
	{"430104", "湖南省", "长沙市", "岳麓区", styleSouth},
	{"440104", "广东省", "广州市", "越秀区", styleSouth},
	{"440106", "广东省", "广州市", "天河区", styleSouth},
	{"440304", "广东省", "深圳市", "福田区", styleSouth},
	{"440305", "广东省", "深圳市", "南山区", styleSouth},
	{"450103", "广西壮族自治区", "南宁市", "青秀区", styleSouth},
	{"460108", "海南省", "海口市", "美兰区", styleSouth},
	{"500103", "重庆市", "", "渝中区", styleSouth},
	{"500105", "重庆市", "", "江北区", styleSouth},
	{"510104", "四川省", "成都市", "锦江区", styleSouth},
	{"510107", "四川省", "成都市", "武侯区", styleSouth},
	{"520102", "贵州省", "贵阳市", "南明区", styleSouth},
	{"530102", "云南省", "昆明市", "五华区", styleSouth},
	{"540102", "西藏自治区", "拉萨市", "城关区", styleNorth},
	{"610103", "陕西省", "西安市", "碑林区", styleNorth},
	{"610113", "陕西省", "西安市", "雁塔区", styleNorth},
	{"620102", "甘肃省", "兰州市", "城关区", styleNorth},
	{"630103", "青海省", "西宁市", "城中区", styleNorth},
	{"640104", "宁夏回族自治区", "银川市", "兴庆区", styleNorth},
	{"650102", "新疆维吾尔自治区", "乌鲁木齐市", "天山区", styleNorth},
}

// provinceNames maps the first two digits of an area code to the province
// named in addresses.
var provinceNames = func() map[string]string {
	m := make(map[string]string)
	for _, a := range areas {
		m[a.code[:2]] = a.province
	}
	return m
}()

// areasByProvince lists, for each province code, the indexes of its areas.
var areasByProvince = func() map[string][]int {
	m := make(map[string][]int)
	for i, a := range areas {
		m[a.code[:2]] = append(m[a.code[:2]], i)
	}
	return m
}()

// Street names found in most Chinese cities.
var streets = []string{
	"建国路", "人民路", "解放路", "中山路", "和平路", "建设路", "文化路", "新华路",
	"胜利路", "长江路", "黄河路", "青年路", "幸福路", "光明路", "朝阳路", "学府路",
	"民主路", "团结路", "花园路", "工农路", "迎宾大道", "滨江大道", "北京路", "南京路",
	"东风路", "五一路", "友谊路", "育才路", "体育路", "健康路", "安居路", "金桥路",
	"府前街", "东大街", "西大街", "南大街", "北大街", "书院街", "大学路", "科技路",
}

// Residential compound names for southern-style addresses.
var compounds = []string{
	"阳光花园", "锦绣家园", "碧桂园", "万科城", "翠湖苑", "金色家园", "丽景湾", "御景华庭",
	"春江花月", "怡景苑", "海棠湾", "紫荆花园", "绿地新城", "保利花园", "龙湖春江郦城", "滨江嘉园",
}

// address returns a street address in area a.
func (g *Generator) address(a area) string {
	var b strings.Builder
	b.WriteString(a.province)
	b.WriteString(a.city)
	b.WriteString(a.district)
	b.WriteString(pick(g, streets))
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
		b.WriteString(pick(g, compounds))
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

// Mobile prefixes in use in mainland China, weighted roughly by how many
// numbers each carries.
var mobilePrefixes = []struct {
	prefix string
	weight int
}{
	{"130", 4}, {"131", 4}, {"132", 4}, {"133", 4}, {"134", 4}, {"135", 6}, {"136", 6},
	{"137", 6}, {"138", 7}, {"139", 7}, {"150", 4}, {"151", 4}, {"152", 4}, {"153", 3},
	{"155", 3}, {"156", 3}, {"157", 2}, {"158", 4}, {"159", 4}, {"173", 2},
	{"175", 1}, {"176", 2}, {"177", 2}, {"178", 2}, {"180", 3}, {"181", 3}, {"182", 3},
	{"183", 3}, {"184", 1}, {"185", 3}, {"186", 4}, {"187", 3}, {"188", 3}, {"189", 3},
	{"191", 1}, {"193", 1}, {"195", 1}, {"198", 2}, {"199", 2},
}

var mobileWeights = func() []int {
	w := make([]int, len(mobilePrefixes))
	for i, p := range mobilePrefixes {
		w[i] = p.weight
	}
	return w
}()

// phone returns an 11-digit mainland mobile number.
func (g *Generator) phone() string {
	b := make([]byte, 0, 11)
	b = append(b, mobilePrefixes[g.weighted(mobileWeights)].prefix...)
	for range 8 {
		b = append(b, byte('0'+g.rng.IntN(10)))
	}
	return string(b)
}
