package mask

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestMaskIDNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"110105194912311234", "110105********1234"},
		{"44030519490306200X", "440305********200X"},
		{"110105 19491231 1234", "110105********1234"},
		{"110105400203123", "110105*****3123"}, // 15-digit old form
		{"12345", "*****"},
		{"", ""},
	} {
		if got := MaskIDNumber(tc.in); got != tc.want {
			t.Errorf("MaskIDNumber(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"13912345678", "139****5678"},
		{"139-1234-5678", "139****5678"},
		{"+86 139 1234 5678", "139****5678"},
		{"010-65295114", "010-******14"},
		{"0755-86123456", "0755-******56"},
		{"(021)64370045", "021-******45"},
		{"65295114", "******14"},
	} {
		if got := MaskPhone(tc.in); got != tc.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMaskName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"张三", "张*"},
		{"张三丰", "张**"},
		{"欧阳明华", "欧阳**"},
		{"司马燕", "司马*"},
		{"诸葛亮", "诸葛*"},
		{"欧阳", "欧*"}, // two characters: 欧 is the surname, 阳 the given name
		{"上官婉儿", "上官**"},
		{"阿依古丽·买买提", "阿*******"},
		{" 王伟 ", "王*"},
		{"John Smith", "J*** *****"},
		{"", ""},
	} {
		if got := MaskName(tc.in); got != tc.want {
			t.Errorf("MaskName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMaskAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"北京市朝阳区建国路88号", "北京市朝阳区"},
		{"北京市西城区青年路16号19号楼3单元301室", "北京市西城区"},
		{"上海市浦东新区张杨路1500弄12号601室", "上海市浦东新区"},
		{"重庆市巫山县巫峡镇广东路7号", "重庆市巫山县"},
		{"广东省深圳市南山区科技园科苑路15号", "广东省深圳市南山区"},
		{"山东省济南市市中区经七路100号", "山东省济南市市中区"},
		{"江苏省苏州市昆山市玉山镇人民路3号", "江苏省苏州市昆山市"},
		{"广西壮族自治区南宁市青秀区民族大道136号", "广西壮族自治区南宁市青秀区"},
		{"内蒙古自治区锡林郭勒盟锡林浩特市额尔敦路2号", "内蒙古自治区锡林郭勒盟锡林浩特市"},
		{"内蒙古自治区呼伦贝尔市鄂温克族自治旗巴彦托海镇", "内蒙古自治区呼伦贝尔市鄂温克族自治旗"},
		{"新疆维吾尔自治区伊犁哈萨克自治州伊宁市解放路12号", "新疆维吾尔自治区伊犁哈萨克自治州伊宁市"},
		{"新疆维吾尔自治区阿克苏地区库车市天山路1号", "新疆维吾尔自治区阿克苏地区库车市"},
		{"四川省凉山彝族自治州昭觉县竹核乡木渣洛村3组", "四川省凉山彝族自治州昭觉县"},
		{"湖北省神农架林区松柏镇", "湖北省神农架林区"},
		{"深圳市南山区科技园", "深圳市南山区"},
		{"朝阳区建国路88号", "朝阳区"},
		{"广东深圳市福田区福华路1号", "广东深圳市福田区"},
		{"建国路88号", ""},
		{"", ""},
	} {
		if got := MaskAddress(tc.in); got != tc.want {
			t.Errorf("MaskAddress(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGroupAge(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"38", "38", true}, {"89", "89", true}, {"90", "90+", true}, {"92岁", "90+", true},
		{"105", "90+", true}, {"89岁", "89岁", true}, {"未知", "", false},
	} {
		got, ok := GroupAge(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("GroupAge(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDateShifter(t *testing.T) {
	secret := []byte("job-0001-secret-0123456789")
	d, err := NewDateShifter(secret, 365)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewDateShifter([]byte("job-0002-secret-0123456789"), 365)

	// Same patient, same offset; offsets stay in range and are never 0.
	differ := 0
	for _, p := range []string{"P0001", "P0002", "P0003", "P0004", "P0005", "P0006", "P0007", "P0008"} {
		o := d.Offset(p)
		if o == 0 || o < -365 || o > 365 {
			t.Errorf("Offset(%s) = %d", p, o)
		}
		if d.Offset(p) != o {
			t.Errorf("Offset(%s) not stable", p)
		}
		if other.Offset(p) != o {
			differ++
		}
	}
	if differ < 6 {
		t.Errorf("another job's secret moved only %d of 8 patients differently", differ)
	}

	// Intervals between one patient's dates survive.
	a := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
	b := time.Date(2024, 3, 19, 0, 0, 0, 0, time.UTC)
	if got := d.Shift("P0001", b).Sub(d.Shift("P0001", a)); got != b.Sub(a) {
		t.Errorf("interval %v, want %v", got, b.Sub(a))
	}

	off := d.Offset("P0001")
	for _, tc := range []struct{ in, layout string }{
		{"2024-03-05", "2006-01-02"},
		{"2024-03-05 14:30", "2006-01-02 15:04"},
		{"2024/03/05", "2006/01/02"},
		{"2024.3.5", "2006.1.2"},
		{"2024年3月5日", "2006年1月2日"},
		{"20240305", "20060102"},
	} {
		got, err := d.ShiftString("P0001", tc.in)
		if err != nil {
			t.Fatalf("ShiftString(%q): %v", tc.in, err)
		}
		want := a.AddDate(0, 0, off)
		if tc.in == "2024-03-05 14:30" {
			want = want.Add(14*time.Hour + 30*time.Minute)
		}
		if got != want.Format(tc.layout) {
			t.Errorf("ShiftString(%q) = %q, want %q", tc.in, got, want.Format(tc.layout))
		}
	}
	if _, err := d.ShiftString("P0001", "三月初"); !errors.Is(err, ErrDate) {
		t.Errorf("not a date: err = %v", err)
	}
	if _, err := NewDateShifter([]byte("short"), 365); !errors.Is(err, ErrSecret) {
		t.Errorf("short secret: err = %v", err)
	}
	if _, err := NewDateShifter(secret, 0); !errors.Is(err, ErrShiftRange) {
		t.Errorf("zero range: err = %v", err)
	}
}

func TestMasker(t *testing.T) {
	d, _ := NewDateShifter([]byte("job-0001-secret-0123456789"), 30)
	m, err := NewMasker(map[string]Rule{
		"姓名": Name, "身份证号": IDNumber, "电话": Phone, "住址": Address,
		"入院日期": DateShift, "年龄": Age, "诊断": Keep, "备注": Drop,
	}, d)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]string{
		"姓名": "欧阳明华", "身份证号": "110105194002031232", "电话": "13912345678",
		"住址": "北京市朝阳区建国路88号", "入院日期": "2024-03-05", "年龄": "92",
		"诊断": "高血压病3级", "备注": "其子张伟陪同", "职业": "教师", "出院日期": "不详",
	}
	out, dropped := m.Mask("P0001", in)
	shifted, _ := d.ShiftString("P0001", "2024-03-05")
	want := map[string]string{
		"姓名": "欧阳**", "身份证号": "110105********1232", "电话": "139****5678",
		"住址": "北京市朝阳区", "入院日期": shifted, "年龄": "90+", "诊断": "高血压病3级",
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("Mask = %v\nwant %v", out, want)
	}
	if len(dropped) != 0 {
		t.Errorf("dropped = %v", dropped)
	}

	m2, _ := NewMasker(map[string]Rule{"出院日期": DateShift}, d)
	if out, dropped := m2.Mask("P0001", map[string]string{"出院日期": "不详"}); len(out) != 0 || !reflect.DeepEqual(dropped, []string{"出院日期"}) {
		t.Errorf("unreadable date: out %v dropped %v", out, dropped)
	}
	if _, err := NewMasker(map[string]Rule{"x": "blur"}, nil); !errors.Is(err, ErrRule) {
		t.Errorf("unknown rule: %v", err)
	}
	if _, err := NewMasker(map[string]Rule{"x": DateShift}, nil); err == nil {
		t.Error("date_shift without a secret accepted")
	}
}
