package retention

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard/internal/audit"
)

func testSigner(t *testing.T, dir string) *audit.Signer {
	t.Helper()
	s, _, err := audit.LoadOrCreateSigner(filepath.Join(dir, "audit-log.key"), "hospital.example/medguard")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPeriods(t *testing.T) {
	leap := time.Date(1996, 2, 29, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		typ         string
		inAdmission bool
		configured  int
		class       Class
		years       int
		ends        time.Time
	}{
		{"outpatient_note", false, 15, Outpatient, 15, time.Date(2011, 3, 1, 8, 0, 0, 0, time.UTC)},
		{"lab_report", true, 15, Inpatient, 30, time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)},
		{"discharge_summary", true, 30, Inpatient, 30, time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)},
		{"progress_note", false, 40, Inpatient, 40, time.Date(2036, 2, 29, 8, 0, 0, 0, time.UTC)},
		{"prescription", false, 20, Outpatient, 20, time.Date(2016, 2, 29, 8, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		if got := ClassOf(c.typ, c.inAdmission); got != c.class {
			t.Errorf("%s: class %s, want %s", c.typ, got, c.class)
		}
		y := Years(c.configured, c.typ, c.inAdmission)
		if y != c.years {
			t.Errorf("%s: %d years, want %d", c.typ, y, c.years)
		}
		if e := Ends(leap, y); !e.Equal(c.ends) {
			t.Errorf("%s: ends %s, want %s", c.typ, e, c.ends)
		}
	}
	if DefaultYears("admission_note") != 30 || DefaultYears("outpatient_note") != 15 || DefaultYears("hiv_test") != 15 {
		t.Error("default years")
	}
}

func sample() Certificate {
	at := time.Date(2056, 2, 29, 3, 4, 5, 0, time.UTC)
	return Certificate{ID: "01JTEST", Origin: "hospital.example/medguard", DestroyedAt: at, ApprovalID: "01JAPPROVAL",
		RequestedBy: "bingan.wang", RequestedAt: at.Add(-time.Hour), ApprovedBy: "anquan.li", AuditIndex: 42,
		Records: []DestroyedRecord{{ID: "01JREC", Type: "outpatient_note", Department: "CARD", Class: Outpatient,
			RecordDate: at.AddDate(-20, 0, 0), RetentionYears: 15, RetentionEnded: at.AddDate(-5, 0, 0), Versions: 2,
			Method: CryptoShred, KeyID: "record:01JREC"}},
		Counts: map[string]int{"outpatient_note": 1}, KeysShredded: []string{"record:01JREC"},
		BackupRetentionDays: 365, BackupsExpireBy: at.AddDate(0, 0, 365)}
}

func TestCertificateVerifiesAndTamperFails(t *testing.T) {
	dir := t.TempDir()
	s := testSigner(t, dir)
	signed, err := Sign(s, sample())
	if err != nil {
		t.Fatal(err)
	}
	l := OpenLedger(filepath.Join(dir, LedgerFile), s)
	if err := l.Append(signed); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(l.Path())
	if _, err := Verify(data, s.VerifierKey()); err != nil {
		t.Fatalf("a good certificate: %v", err)
	}
	if strings.Contains(string(data), "张") {
		t.Fatal("patient data in a certificate")
	}
	tampers := map[string]func(string) string{
		"a record id":  func(d string) string { return strings.Replace(d, `"id":"01JREC"`, `"id":"01JREX"`, 1) },
		"the approver": func(d string) string { return strings.Replace(d, "anquan.li", "anquan.wu", 1) },
		"the backup date": func(d string) string {
			return strings.Replace(d, `"backup_retention_days":365`, `"backup_retention_days":30`, 1)
		},
		"an added field":   func(d string) string { return strings.Replace(d, `"format"`, `"extra":1,"format"`, 1) },
		"the signed note":  func(d string) string { return strings.Replace(d, "anquan.li", "anquan.wu", 2) },
		"another key":      nil,
		"a truncated note": func(d string) string { return strings.Replace(d, `\n\n`, `\n`, 1) },
	}
	for name, f := range tampers {
		d, key := string(data), s.VerifierKey()
		if f != nil {
			d = f(d)
		} else {
			key = testSigner(t, t.TempDir()).VerifierKey()
		}
		if d == string(data) && f != nil {
			t.Fatalf("%s: the tamper changed nothing", name)
		}
		if _, err := Verify([]byte(d), key); err == nil {
			t.Errorf("%s: a tampered certificate verifies", name)
		}
	}
	// The ledger reads back; an edited line is refused, naming it.
	got, err := l.Read()
	if err != nil || len(got) != 1 || got[0].Certificate.ID != "01JTEST" {
		t.Fatalf("ledger: %v %v", got, err)
	}
	os.WriteFile(l.Path(), []byte(strings.Replace(string(data), "anquan.li", "anquan.wu", 1)), 0o600)
	if _, err := l.Read(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("an edited ledger: %v", err)
	}
	// A line cut short by a crash is not a destruction.
	os.WriteFile(l.Path(), append(data, data[:40]...), 0o600)
	if got, err := l.Read(); err != nil || len(got) != 1 {
		t.Fatalf("a partial last line: %v %v", got, err)
	}
}
