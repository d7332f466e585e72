package reports_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"medguard/internal/reports"
)

// shanghai is the hospital's zone in the tests.
var shanghai = time.FixedZone("CST", 8*3600)

// fakes are sources with figures that change from period to period.
type fakes struct{ scores []reports.ComplianceScore }

func (fakes) AlertsByRule(_ context.Context, from, to time.Time) (map[string]int, error) {
	w := int(from.Unix()/86400) % 7
	return map[string]int{"bulk_read_user": 2 + w, "failed_signin_ip": 1 + w%3, "vuln_overdue": w % 2, "something_new": 1}, nil
}

func (fakes) IncidentsByGrade(_ context.Context, from, to time.Time) (map[int]int, error) {
	return map[int]int{1: int(from.Unix()/86400) % 2, 2: 1, 3: 2}, nil
}

func (fakes) OpenVulnsAt(_ context.Context, at time.Time) ([]reports.OpenVuln, error) {
	var out []reports.OpenVuln
	for i, s := range []string{"critical", "high", "high", "medium", "medium", "medium", "low"} {
		first := at.Add(-time.Duration(i*17+1) * 24 * time.Hour)
		out = append(out, reports.OpenVuln{Severity: s, FirstSeen: first, DueAt: first.Add(7 * 24 * time.Hour)})
	}
	return out, nil
}

func (fakes) CoverageAt(_ context.Context, at time.Time) (int, int, error) {
	return 40, 30 + int(at.Unix()/86400)%10, nil
}

func (fakes) RiskLevelsAt(context.Context, time.Time) (map[string]int, error) {
	return map[string]int{"low": 3, "medium": 4, "high": 2, "critical": 1}, nil
}

func (fakes) Continuity(context.Context, time.Time, time.Time) (reports.Continuity, error) {
	return reports.Continuity{BackupsConfigured: true, BackupTargets: 3, BackupsLate: 1, RPOMinutes: 12, DrillsHeld: 2, DrillsPassed: 1}, nil
}

func (f fakes) ComplianceScores(context.Context, time.Time, time.Time) ([]reports.ComplianceScore, error) {
	return f.scores, nil
}

func allSources(f fakes) reports.Sources {
	return reports.Sources{Alerts: f, Incidents: f, Vulns: f, Training: f, Risks: f, Continuity: f, Compliance: f}
}

// pdfTools says whether the PDF tests run: with MEDGUARD_TEST_PDF=1 they
// must (and fail without the font or poppler), otherwise they skip when
// either is missing.
func pdfTools(t *testing.T) {
	t.Helper()
	must := os.Getenv("MEDGUARD_TEST_PDF") == "1"
	missing := ""
	if _, err := os.Stat(reports.DefaultFont); err != nil {
		missing = reports.DefaultFont + " (apt-get install fonts-droid-fallback)"
	}
	for _, tool := range []string{"pdftotext", "pdffonts", "pdftoppm"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = tool + " (apt-get install poppler-utils)"
		}
	}
	switch {
	case missing != "" && must:
		t.Fatalf("MEDGUARD_TEST_PDF=1 but %s is missing", missing)
	case missing != "":
		t.Skipf("%s is missing (MEDGUARD_TEST_PDF=1 makes this a failure)", missing)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// pages renders each page of pdf as a PNG at 50 dpi and decodes them.
func pages(t *testing.T, pdf []byte) []image.Image {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "r.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "pdftoppm", "-r", "50", "-png", path, filepath.Join(dir, "page"))
	files, _ := filepath.Glob(filepath.Join(dir, "page*.png"))
	var out []image.Image
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, img)
	}
	if len(out) == 0 {
		t.Fatal("pdftoppm made no page")
	}
	return out
}

// inked counts the pixels that are not white.
func inked(img image.Image) (ink, total int) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			total++
			if r>>8+g>>8+bl>>8 < 3*235 {
				ink++
			}
		}
	}
	return
}

// census counts a region's dark and coloured (saturated) pixels.
func census(img image.Image, r image.Rectangle) (dark, coloured, total int) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			R, G, B := int(cr>>8), int(cg>>8), int(cb>>8)
			total++
			if R+G+B < 200 {
				dark++
			}
			if max(R, G, B)-min(R, G, B) > 60 {
				coloured++
			}
		}
	}
	return
}

func pdfText(t *testing.T, pdf []byte) (text, fonts string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	return run(t, "pdftotext", "-layout", path, "-"), run(t, "pdffonts", path)
}

// TestPostureReportPDFRendersChineseAndCharts renders a monthly report in
// Chinese and looks at it: pdftotext finds the Chinese title, the hospital,
// the period and figures; pdffonts finds the CJK font embedded; the page
// images have dark pixels in the title area (glyphs drawn, not boxes or
// nothing), coloured pixels in the charts, and no blank page.
func TestPostureReportPDFRendersChineseAndCharts(t *testing.T) {
	pdfTools(t)
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, shanghai)
	p := reports.LastComplete(reports.Monthly, now, shanghai)
	src := allSources(fakes{scores: []reports.ComplianceScore{{At: now.AddDate(0, -3, 0), Score: 71, Passed: 20, Failed: 8, Total: 28},
		{At: now.AddDate(0, -1, -5), Score: 82, Passed: 23, Failed: 5, Total: 28}}})
	f, err := reports.Compute(context.Background(), src, "滨江市第一人民医院", "zh-CN", p, now)
	if err != nil {
		t.Fatal(err)
	}
	f.GeneratedBy = "郑国华"
	r := &reports.Renderer{}
	digest, err := f.ContentDigest()
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := r.PDF(f, shanghai, digest)
	if err != nil {
		t.Fatal(err)
	}
	text, fonts := pdfText(t, pdf)
	for _, want := range []string{"安全态势月报", "滨江市第一人民医院", "2026-11", "郑国华", "告警趋势", "培训覆盖率", "合规得分", "82 分",
		"bulk_read_user", digest} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext does not find %q in:\n%s", want, text)
		}
	}
	if !strings.Contains(fonts, "CID TrueType") || !regexp.MustCompile(`CID TrueType +Identity-H +yes`).MatchString(fonts) {
		t.Errorf("pdffonts does not show the CJK font embedded:\n%s", fonts)
	}
	imgs := pages(t, pdf)
	if len(imgs) < 3 {
		t.Fatalf("%d pages, want the cover, the trends and more", len(imgs))
	}
	for i, img := range imgs {
		ink, total := inked(img)
		if ink < total/200 {
			t.Errorf("page %d looks blank: %d inked pixels of %d", i+1, ink, total)
		}
	}
	// The cover's title (26 pt, centred, about 55 mm from the top): at 50
	// dpi a millimetre is about 2 pixels.
	b := imgs[0].Bounds()
	mm := float64(b.Dx()) / 210
	title := image.Rect(int(40*mm), int(50*mm), int(170*mm), int(68*mm))
	if dark, _, total := census(imgs[0], title); dark < total/40 {
		t.Errorf("the title area has %d dark pixels of %d: the Chinese title is not drawn", dark, total)
	}
	// The second page holds charts: coloured bars and lines.
	if _, coloured, total := census(imgs[1], imgs[1].Bounds()); coloured < total/100 {
		t.Errorf("the charts' page has %d coloured pixels of %d", coloured, total)
	}
	if t.Failed() || os.Getenv("MEDGUARD_KEEP_PDF") != "" {
		os.WriteFile(filepath.Join(os.TempDir(), "medguard-report-failed.pdf"), pdf, 0o600)
	}
}

// TestPostureReportInEnglish renders the same report in English.
func TestPostureReportInEnglish(t *testing.T) {
	pdfTools(t)
	now := time.Date(2027, 1, 4, 1, 0, 0, 0, shanghai)
	p := reports.LastComplete(reports.Weekly, now, shanghai)
	f, err := reports.Compute(context.Background(), reports.Sources{Alerts: fakes{}, Vulns: fakes{}}, "Binjiang No.1 People's Hospital", "en", p, now)
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := (&reports.Renderer{}).PDF(f, shanghai, "")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pdfText(t, pdf)
	for _, want := range []string{"Weekly security posture summary", "2026-W53", "no compliance runs yet", "Page 2"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext does not find %q in:\n%s", want, text)
		}
	}
}

// TestCompliancePDF renders a compliance report with measured and attested
// checks in Chinese.
func TestCompliancePDF(t *testing.T) {
	pdfTools(t)
	in := reports.ComplianceInput{Hospital: "滨江市第一人民医院", GeneratedAt: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC), Location: shanghai,
		Checks: []reports.ComplianceCheck{
			{ID: "departed_access", TitleZH: "离职人员权限清理", TitleEN: "Departed staff with access", Clauses: []string{"GB/T 22239-2019 8.1.4.2"},
				Status: "fail", Value: "1", Evidence: "离职医生 王芳 仍有有效 API 密钥 1 个", Kind: "measured"},
			{ID: "machine_room_fire", TitleZH: "机房消防设施", TitleEN: "Machine room fire suppression", Clauses: []string{"GB/T 22239-2019 7.1.1.4"},
				Status: "pass", Value: "已佐证", Evidence: "信息科 吴燕 上传巡检照片，周强 复核签字", Kind: "attested"},
		}}
	pdf, err := reports.CompliancePDF("zh-CN", in)
	if err != nil {
		t.Fatal(err)
	}
	text, fonts := pdfText(t, pdf)
	for _, want := range []string{"合规检查报告", "离职人员权限清理", "GB/T 22239-2019 8.1.4.2", "不通过", "人工佐证", "系统测量", "吴燕"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext does not find %q in:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`CID TrueType +Identity-H +yes`).MatchString(fonts) {
		t.Errorf("pdffonts:\n%s", fonts)
	}
	img := pages(t, pdf)[0]
	if _, coloured, _ := census(img, img.Bounds()); coloured == 0 {
		t.Error("the summary bar is not drawn")
	}
}

// TestMissingFontIsAClearError names the font and the package to install.
func TestMissingFontIsAClearError(t *testing.T) {
	r := &reports.Renderer{FontPath: filepath.Join(t.TempDir(), "none.ttf")}
	_, err := r.CompliancePDF("zh-CN", reports.ComplianceInput{})
	if err == nil || !strings.Contains(err.Error(), "fonts-droid-fallback") || !strings.Contains(err.Error(), "none.ttf") {
		t.Fatalf("err = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "x.ttc")
	os.WriteFile(bad, []byte("ttcf\x00\x01\x00\x00 a collection"), 0o600)
	if _, err := (&reports.Renderer{FontPath: bad}).CompliancePDF("en", reports.ComplianceInput{}); err == nil || !strings.Contains(err.Error(), "TrueType") {
		t.Fatalf("err = %v", err)
	}
}
