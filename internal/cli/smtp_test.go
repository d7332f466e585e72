package cli

import "testing"

func TestParseSMTP(t *testing.T) {
	for _, tt := range []struct {
		in       string
		addr     string
		implicit bool
		ok       bool
	}{
		{"mail.xxyy-hospital.cn:25", "mail.xxyy-hospital.cn:25", false, true},
		{"smtp://mail.xxyy-hospital.cn", "mail.xxyy-hospital.cn:587", false, true},
		{"smtp://mail.xxyy-hospital.cn:2525", "mail.xxyy-hospital.cn:2525", false, true},
		{"SMTPS://mail.xxyy-hospital.cn", "mail.xxyy-hospital.cn:465", true, true},
		{"smtps://[fd00::25]:4650", "[fd00::25]:4650", true, true},
		{"mail.xxyy-hospital.cn", "", false, false},
		{"smtp+plain://mail.xxyy-hospital.cn", "", false, false},
		{"http://mail.xxyy-hospital.cn", "", false, false},
		{"smtps://user:pass@mail.xxyy-hospital.cn", "", false, false},
		{"smtp://mail.xxyy-hospital.cn/x", "", false, false},
		{"smtp://mail.xxyy-hospital.cn?starttls=no", "", false, false},
		{"smtp://", "", false, false},
	} {
		addr, implicit, err := parseSMTP(tt.in)
		if (err == nil) != tt.ok || addr != tt.addr || implicit != tt.implicit {
			t.Errorf("parseSMTP(%q) = %q, %v, %v; want %q, %v, ok %v", tt.in, addr, implicit, err, tt.addr, tt.implicit, tt.ok)
		}
	}
}
