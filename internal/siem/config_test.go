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
		url      string
		insecure bool // the operator's explicit opt-in to plain TCP
		want     siem.Config
	}{
		{"tls://siem.hospital.example", false, siem.Config{Address: "siem.hospital.example:6514", Network: "tls"}},
		{"tls://siem.hospital.example?tls_min=1.2", false, siem.Config{Address: "siem.hospital.example:6514", Network: "tls", TLSMin: "1.2"}},
		{"tcp://10.20.0.8", true, siem.Config{Address: "10.20.0.8:514", Network: "tcp", Insecure: true}},
		{"TCP://[fd00::8]:1514?framing=lf&start=now", true, siem.Config{Address: "[fd00::8]:1514", Network: "tcp", Insecure: true,
			Framing: "lf", StartAt: "now"}},
		{"tls://wazuh.xxyy-hospital.cn:6514?ca=/etc/medguard/siem-ca.pem&cert=/etc/medguard/siem.crt&key=/etc/medguard/siem.key" +
			"&server_name=wazuh&tls_min=1.3&hostname=medguard-01&name=wazuh-%E4%BF%A1%E6%81%AF%E7%A7%91&framing=octet&start=beginning",
			false, siem.Config{Address: "wazuh.xxyy-hospital.cn:6514", Network: "tls", CAFile: "/etc/medguard/siem-ca.pem",
				CertFile: "/etc/medguard/siem.crt", KeyFile: "/etc/medguard/siem.key", ServerName: "wazuh", TLSMin: "1.3",
				Hostname: "medguard-01", Name: "wazuh-信息科", Framing: "octet", StartAt: "beginning"}},
	}
	for _, tt := range tests {
		got, err := siem.ParseConfig(tt.url, tt.insecure)
		if err != nil || got != tt.want {
			t.Errorf("ParseConfig(%q, %v) = %+v, %v\nwant %+v", tt.url, tt.insecure, got, err, tt.want)
		}
	}
}

// A plain tcp:// destination is refused unless the operator opted in to it
// explicitly, and the opt-in is refused with tls://, where it might be
// mistaken for "do not check the certificate".
func TestPlainTCPNeedsTheOptIn(t *testing.T) {
	for _, tt := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"tcp://10.20.0.8", false, false},
		{"tcp://10.20.0.8:514?framing=lf", false, false},
		{"tcp://10.20.0.8", true, true},
		{"tls://siem.hospital.example", false, true},
		{"tls://siem.hospital.example", true, false},
	} {
		cfg, err := siem.ParseConfig(tt.url, tt.insecure)
		if tt.ok {
			if err != nil {
				t.Errorf("ParseConfig(%q, %v): %v", tt.url, tt.insecure, err)
			}
			if cfg.Encrypted() != (cfg.Network == siem.NetworkTLS) {
				t.Errorf("ParseConfig(%q): Encrypted() = %v", tt.url, cfg.Encrypted())
			}
			continue
		}
		var e *medguard.Error
		if !errors.As(err, &e) || e.Kind != medguard.Invalid || e.Field != "network" {
			t.Errorf("ParseConfig(%q, %v): %v; want Invalid naming network", tt.url, tt.insecure, err)
		} else if !strings.Contains(err.Error(), "--siem-insecure") {
			t.Errorf("ParseConfig(%q, %v): %v does not name the opt-in", tt.url, tt.insecure, err)
		}
	}
	if err := (siem.Config{Address: "10.20.0.8:514", Network: siem.NetworkTCP}).Validate(); !medguard.IsKind(err, medguard.Invalid) {
		t.Errorf("Validate of plain TCP without the opt-in: %v", err)
	}
}

func TestProtocol(t *testing.T) {
	for _, tt := range []struct {
		cfg  siem.Config
		want string
	}{
		{siem.Config{Network: siem.NetworkTLS}, "TLS 1.3"},
		{siem.Config{Network: siem.NetworkTLS, TLSMin: siem.TLS13}, "TLS 1.3"},
		{siem.Config{Network: siem.NetworkTLS, TLSMin: siem.TLS12}, "TLS 1.2 or later"},
		{siem.Config{Network: siem.NetworkTCP, Insecure: true}, "plain TCP"},
	} {
		if got := tt.cfg.Protocol(); got != tt.want {
			t.Errorf("%+v: Protocol() = %q, want %q", tt.cfg, got, tt.want)
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
		{"tcp://siem.hospital.example?tls_min=1.2", "tls_min"},
		{"tls://siem.hospital.example?tls_min=1.1", "tls_min"},
		{"tls://siem.hospital.example?tls_min=1.0", "tls_min"},
		{"tls://siem.hospital.example?hostname=%E5%BC%A0%E4%BC%9F", "hostname"},
		{"tls://siem.hospital.example?hostname=a%20b", "hostname"},
		{"tls://siem.hospital.example?name=a%0Ab", "name"},
		{"tls://siem.hospital.example?framing=lf&framing=octet", "framing"},
		{"tls://siem.hospital.example?protocol=relp", "protocol"},
		{"tls://siem.hospital.example?framing=%zz", "address"},
	}
	for _, tt := range tests {
		// With the opt-in, so that the tcp:// cases reach the option at fault.
		_, err := siem.ParseConfig(tt.url, strings.HasPrefix(tt.url, "tcp:"))
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
	f.Add("tls://siem.hospital.example?tls_min=1.2")
	f.Fuzz(func(t *testing.T, s string) {
		for _, insecure := range []bool{false, true} {
			cfg, err := siem.ParseConfig(s, insecure)
			if err != nil {
				if !medguard.IsKind(err, medguard.Invalid) {
					t.Fatalf("ParseConfig(%q, %v): %v is not Invalid", s, insecure, err)
				}
				continue
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("ParseConfig(%q, %v) accepted %+v, which does not validate: %v", s, insecure, cfg, err)
			}
			if !insecure && !cfg.Encrypted() {
				t.Fatalf("ParseConfig(%q) accepted a plain destination without the opt-in", s)
			}
		}
	})
}
