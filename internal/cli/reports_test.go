package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"medguard/internal/reports"
)

// TestReportMail checks the mail of a scheduled report: its subject in
// Chinese, a text naming the PDF's SHA-256, and the PDF attached, whose
// bytes are the report's.
func TestReportMail(t *testing.T) {
	pdf := []byte("%PDF-1.3\n安全态势月报\x00\x01\x02" + strings.Repeat("x", 300))
	sum := sha256.Sum256(pdf)
	r := reports.Report{ID: "0123456789abcdefghjkmnpqrs", Kind: reports.Monthly, Label: "2026-11", PDFSHA256: hex.EncodeToString(sum[:])}
	raw := reportMail("medguard@xxyy-hospital.cn", []string{"yuanzhang@xxyy-hospital.cn", "xinxike@xxyy-hospital.cn"}, r, pdf,
		"滨江市第一人民医院", time.Date(2026, 12, 1, 0, 5, 0, 0, time.UTC))
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || !strings.Contains(subject, "滨江市第一人民医院 安全态势月报 2026-11") {
		t.Errorf("subject %q, %v", subject, err)
	}
	if m.Header.Get("To") != "yuanzhang@xxyy-hospital.cn, xinxike@xxyy-hospital.cn" {
		t.Errorf("to %q", m.Header.Get("To"))
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q", m.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var text string
	var attached []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // multipart decodes quoted-printable only: base64 by hand
		dec, err := decodeBase64Lines(b)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "application/pdf") {
			attached = dec
			if p.FileName() != "posture-monthly-2026-11.pdf" {
				t.Errorf("file name %q", p.FileName())
			}
		} else {
			text = string(dec)
		}
	}
	if !bytes.Equal(attached, pdf) {
		t.Error("the attachment is not the PDF")
	}
	if !strings.Contains(text, r.PDFSHA256) || !strings.Contains(text, "安全态势月报 2026-11") {
		t.Errorf("text %q", text)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("a line of %d characters", len(line))
		}
	}
}

func decodeBase64Lines(b []byte) ([]byte, error) {
	return io.ReadAll(base64Decoder(strings.NewReader(strings.ReplaceAll(string(b), "\r\n", ""))))
}

// TestReportFlags: --report-mail-to needs the alert mail server and real
// addresses; --report-lang is zh-CN or en.
func TestReportFlags(t *testing.T) {
	for _, c := range []struct {
		f  serveFlags
		ok bool
	}{
		{serveFlags{reportLang: "zh-CN"}, true},
		{serveFlags{reportLang: "fr"}, false},
		{serveFlags{reportLang: "en", reportMailTo: "yuanzhang@xxyy-hospital.cn"}, false},
		{serveFlags{reportLang: "en", reportMailTo: "not an address"}, false},
	} {
		if _, err := c.f.reportsConfig(nil); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.f, err)
		}
	}
}

func base64Decoder(r io.Reader) io.Reader { return base64.NewDecoder(base64.StdEncoding, r) }
