package siem_test

import (
	"errors"
	"strings"
	"testing"

	"medguard"
	"medguard/internal/siem"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		url  string
		want siem.Config
	}{
		{"tls://siem.hospital.example", siem.Config{Address: "siem.hospital.example:6514", Network: "tls"}},
		{"tcp://10.20.0.8", siem.Config{Address: "10.20.0.8:514", Network: "tcp"}},
		{"TCP://[fd00::8]:1514?framing=lf&start=now", siem.Config{Address: "[fd00::8]:1514", Network: "tcp", Framing: "lf", StartAt: "now"}},
		{"tls://wazuh.xxyy-hospital.cn:6514?ca=/etc/medguard/siem-ca.pem&cert=/etc/medguard/siem.crt&key=/etc/medguard/siem.key" +
			"&server_name=wazuh&hostname=medguard-01&name=wazuh-%E4%BF%A1%E6%81%AF%E7%A7%91&framing=octet&start=beginning",
			siem.Config{Address: "wazuh.xxyy-hospital.cn:6514", Network: "tls", CAFile: "/etc/medguard/siem-ca.pem",
				CertFile: "/etc/medguard/siem.crt", KeyFile: "/etc/medguard/siem.key", ServerName: "wazuh",
				Hostname: "medguard-01", Name: "wazuh-信息科", Framing: "octet", StartAt: "beginning"}},
	}
	for _, tt := range tests {
		got, err := siem.ParseConfig(tt.url)
		if err != nil || got != tt.want {
			t.Errorf("ParseConfig(%q) = %+v, %v\nwant %+v", tt.url, got, err, tt.want)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		url, field string
	}{
		{"", "address"},
		{"siem.hospital.example:6514", "address"},
		{"udp://siem.hospital.example:514", "network"},
		{"http://siem.hospital.example", "network"},
		{"tls://", "address"},
		{"tls://user:secret@siem.hospital.example", "address"},
		{"tls://siem.hospital.example/path", "address"},
		{"tls://siem.hospital.example:0", "address"},
		{"tls://siem.hospital.example:70000", "address"},
		{"tls://siem.hospital.example:port", "address"},
		{"tls://siem.hospital.example?framing=nul", "framing"},
		{"tls://siem.hospital.example?start=yesterday", "start"},
		{"tls://siem.hospital.example?cert=/etc/a.crt", "key"},
		{"tls://siem.hospital.example?key=/etc/a.key", "cert"},
		{"tcp://siem.hospital.example?ca=/etc/ca.pem", "ca"},
		{"tcp://siem.hospital.example?server_name=siem", "server_name"},
		{"tls://siem.hospital.example?hostname=%E5%BC%A0%E4%BC%9F", "hostname"},
		{"tls://siem.hospital.example?hostname=a%20b", "hostname"},
		{"tls://siem.hospital.example?name=a%0Ab", "name"},
		{"tls://siem.hospital.example?framing=lf&framing=octet", "framing"},
		{"tls://siem.hospital.example?protocol=relp", "protocol"},
		{"tls://siem.hospital.example?framing=%zz", "address"},
	}
	for _, tt := range tests {
		_, err := siem.ParseConfig(tt.url)
		var e *medguard.Error
		if !medguard.IsKind(err, medguard.Invalid) || !errors.As(err, &e) || e.Field != tt.field {
			t.Errorf("ParseConfig(%q): %v; want Invalid naming %q", tt.url, err, tt.field)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseConfig(%q): the error shows the password: %v", tt.url, err)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := siem.Config{Address: "127.0.0.1:6514", Network: siem.NetworkTLS}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.Network = ""
	if err := bad.Validate(); !medguard.IsKind(err, medguard.Invalid) {
		t.Errorf("empty network: %v", err)
	}
	bad = ok
	bad.Address = "127.0.0.1"
	if err := bad.Validate(); !medguard.IsKind(err, medguard.Invalid) {
		t.Errorf("address without a port: %v", err)
	}
}

// FuzzParseConfig checks that ParseConfig never panics and that whatever it
// accepts is valid and can be used to make a forwarder's settings.
func FuzzParseConfig(f *testing.F) {
	f.Add("tls://siem.hospital.example:6514?ca=/etc/ca.pem&framing=lf")
	f.Add("tcp://[fd00::8]:1514?name=%E4%BF%A1%E6%81%AF%E7%A7%91&start=now")
	f.Add("tls://user@host:99999/x#y?cert=a")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := siem.ParseConfig(s)
		if err != nil {
			if !medguard.IsKind(err, medguard.Invalid) {
				t.Fatalf("ParseConfig(%q): %v is not Invalid", s, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig(%q) accepted %+v, which does not validate: %v", s, cfg, err)
		}
	})
}
