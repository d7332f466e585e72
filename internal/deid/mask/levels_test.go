package mask

import "testing"

func TestAddressLevels(t *testing.T) {
	for _, c := range []struct{ in, province, city, district string }{
		{"北京市东城区东四十条22号", "北京市", "北京市", "北京市东城区"},
		{"广东省深圳市南山区科技园1号", "广东省", "广东省深圳市", "广东省深圳市南山区"},
		{"深圳市南山区科技园", "", "深圳市", "深圳市南山区"},
		{"内蒙古自治区呼和浩特市新城区", "内蒙古自治区", "内蒙古自治区呼和浩特市", "内蒙古自治区呼和浩特市新城区"},
		{"no address", "", "", ""},
	} {
		p, ci, d := AddressLevels(c.in)
		if p != c.province || ci != c.city || d != c.district {
			t.Errorf("AddressLevels(%s) = %q %q %q", c.in, p, ci, d)
		}
		if d != MaskAddress(c.in) && c.district != "" {
			t.Errorf("district %q differs from MaskAddress %q", d, MaskAddress(c.in))
		}
	}
}
