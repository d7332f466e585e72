package pgtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a real S3-compatible server (versitygw, posix backend in a
// temporary directory) serving TLS with a self-signed certificate for
// "localhost" (pgBackRest checks the endpoint's host name against the
// certificate's DNS names and speaks only TLS to S3).
type S3 struct {
	Endpoint string // "localhost"
	Port     int
	Bucket   string
	Region   string
	Key      string
	Secret   string
	// CAFile is the certificate (its own authority), readable by the
	// PostgreSQL user.
	CAFile string
	// Client reads the bucket directly, to check what arrived.
	Client *minio.Client
}

// S3Required reports whether CI demands an S3 server (MEDGUARD_TEST_S3=1).
func S3Required() bool { return os.Getenv("MEDGUARD_TEST_S3") == "1" }

// StartS3 starts versitygw with a bucket "medguard-pg" in dir (a
// directory of Dir), or skips (fails under MEDGUARD_TEST_S3=1) without it.
func StartS3(t testing.TB, dir string) *S3 {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		if gobin := filepath.Join(os.Getenv("HOME"), "go", "bin", "versitygw"); fileExists(gobin) {
			bin, err = gobin, nil
		}
	}
	if err != nil {
		if S3Required() {
			t.Fatal("MEDGUARD_TEST_S3=1 but versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		}
		t.Skip("versitygw not installed; set MEDGUARD_TEST_S3=1 to require it")
	}
	s := &S3{Endpoint: "localhost", Port: FreePort(t), Bucket: "medguard-pg", Region: "us-east-1",
		Key: "medguardpgtest", Secret: "medguard-pg-test-secret"}
	root := filepath.Join(dir, "s3")
	if err := os.MkdirAll(filepath.Join(root, s.Bucket), 0o700); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := selfSigned(t)
	s.CAFile = filepath.Join(dir, "s3-ca.pem")
	keyFile := filepath.Join(dir, "s3-key.pem")
	if err := os.WriteFile(s.CAFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--access", s.Key, "--secret", s.Secret, "--port", "127.0.0.1:"+strconv.Itoa(s.Port),
		"--cert", s.CAFile, "--key", keyFile, "--quiet", "posix", root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	s.Client, err = minio.New(net.JoinHostPort(s.Endpoint, strconv.Itoa(s.Port)), &minio.Options{
		Creds: credentials.NewStaticV4(s.Key, s.Secret, ""), Secure: true, Region: s.Region,
		BucketLookup: minio.BucketLookupPath, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			t.Fatal("versitygw did not start")
		}
		time.Sleep(50 * time.Millisecond) // waiting for the server to listen, not timing it
	}
	return s
}

// selfSigned makes a certificate for localhost, its own authority.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
