package cli_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard/internal/cli"
)

// issue makes a CA and a client certificate signed by it.
func issue(t *testing.T, dir string) (caPath string, client tls.Certificate, clientPEM string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "某医院 CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	caPath = filepath.Join(dir, "ca.pem")
	os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "zhangwei"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return caPath, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// A doctor with a registered client certificate signs in with it and a
// password, without TOTP; without the certificate, TOTP enrolment applies.
func TestClientCertificateSignIn(t *testing.T) {
	caPath, cert, certPEM := issue(t, t.TempDir())
	s := start(t, "--client-ca", caPath)
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	u := map[string]any{"id": s.staff("zhangwei", "张建国", "CARD", "doctor", "Yiyuan#Ceshi2026")}
	// A doctor's certificate is a second factor: registering it takes a
	// second person.
	a := s.json(202, "PUT", "/api/v1/users/"+u["id"].(string)+"/certificate", admin, map[string]string{"certificate": certPEM,
		"reason": "为张医生登记数字证书"})["approval"].(map[string]any)
	s.json(200, "POST", "/api/v1/approvals/"+a["id"].(string)+"/approve", s.security(), map[string]string{"note": "已核对证书"})
	if p := s.problem(422, "PUT", "/api/v1/users/"+u["id"].(string)+"/certificate", admin, map[string]string{"certificate": "not a cert"}); p["field"] != "certificate" {
		t.Fatalf("%v", p)
	}

	// Without the certificate: enrolment is required.
	if in := s.login("zhangwei", "Yiyuan#Ceshi2026", ""); in["mfa_enrollment_required"] != true {
		t.Fatalf("without certificate: %v", in)
	}
	// With it: a full session at once.
	tr := s.client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	s.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	in := s.login("zhangwei", "Yiyuan#Ceshi2026", "")
	if in["mfa_enrollment_required"] != false {
		t.Fatalf("with certificate: %v", in)
	}
	s.json(200, "GET", "/api/v1/patients", in["token"].(string), nil)
	// The certificate is a second factor, not a replacement for the password.
	s.problem(401, "POST", "/api/v1/auth/login", "", map[string]string{"username": "zhangwei", "password": "Wrong#Pass2026"})
}

// The key file may come from the environment instead of the data
// directory; the data is then sealed with its cipher and keys.
func TestKeysFromEnvironment(t *testing.T) {
	keys := `{"format":"medguard-keys/1","cipher":"AES-256-GCM",` +
		`"index_key":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)) + `",` +
		`"keks":[{"version":1,"secret":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)) + `","created_at":"2026-01-01T00:00:00Z"}]}`
	s := startEnv(t, map[string]string{"MEDGUARD_KEYS": keys})
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	if _, err := os.Stat(filepath.Join(s.dir, "keys", "medguard.keys")); !os.IsNotExist(err) {
		t.Fatalf("a key file was written although MEDGUARD_KEYS was set: %v", err)
	}
	// A bad MEDGUARD_KEYS stops the server with a clear error.
	err := cli.Run(context.Background(), []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"},
		func(k string) string {
			if k == "MEDGUARD_KEYS" {
				return `{"format":"nope"}`
			}
			return ""
		}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "key file") {
		t.Fatalf("bad MEDGUARD_KEYS: %v", err)
	}
}
