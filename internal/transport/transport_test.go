package transport_test

import (
	"sync"
	"testing"

	"medguard/internal/transport"
)

func TestRegister(t *testing.T) {
	var r transport.Register
	if st := r.Status(); len(st.Links) != 0 || len(st.Plain()) != 0 {
		t.Fatalf("an empty register: %+v", st)
	}
	r.Set(transport.Link{Name: transport.SIEM, Target: "10.20.0.8:514", Protocol: "plain TCP", OptIn: "--siem-insecure"})
	r.Set(transport.Link{Name: transport.API, Target: "0.0.0.0:8443", Encrypted: true, Protocol: "TLS 1.3"})
	r.Set(transport.Link{Name: transport.Database, Target: "127.0.0.1:5432", Protocol: "plain", Local: true, OptIn: "sslmode=disable"})
	// Set replaces the link of the same name.
	r.Set(transport.Link{Name: transport.SIEM, Target: "siem.xxyy-hospital.cn:6514", Encrypted: true, Protocol: "TLS 1.3"})

	st := r.Status()
	var names []string
	for _, l := range st.Links {
		names = append(names, l.Name)
	}
	if len(names) != 3 || names[0] != "api" || names[1] != "database" || names[2] != "siem" {
		t.Fatalf("links %v, want api, database, siem", names)
	}
	if l, ok := st.Link(transport.SIEM); !ok || !l.Encrypted || l.Target != "siem.xxyy-hospital.cn:6514" {
		t.Fatalf("siem: %+v, %v", l, ok)
	}
	if _, ok := st.Link(transport.Webhook); ok {
		t.Fatal("a webhook that was never set")
	}
	plain := st.Plain()
	if len(plain) != 1 || plain[0].Name != transport.Database || !plain[0].Local {
		t.Fatalf("plain links %+v, want the local database", plain)
	}
	// A Status is a copy: changing it changes nothing in the register.
	st.Links[0].Encrypted = false
	if l, _ := r.Status().Link(transport.API); !l.Encrypted {
		t.Fatal("the register shares its links")
	}
}

// The register is safe for concurrent use (run with -race).
func TestRegisterConcurrent(t *testing.T) {
	var r transport.Register
	var wg sync.WaitGroup
	for _, name := range []string{transport.API, transport.SIEM, transport.Webhook, transport.SMTP, transport.Database} {
		wg.Add(2)
		go func() { defer wg.Done(); r.Set(transport.Link{Name: name, Encrypted: true}) }()
		go func() { defer wg.Done(); _ = r.Status().Plain() }()
	}
	wg.Wait()
	if n := len(r.Status().Links); n != 5 {
		t.Fatalf("%d links, want 5", n)
	}
}
