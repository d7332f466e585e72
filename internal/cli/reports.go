package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"

	"medguard/internal/backuphealth"
	"medguard/internal/console"
	"medguard/internal/detect"
	"medguard/internal/plans"
	"medguard/internal/reports"
	"medguard/internal/risks"
	"medguard/internal/vulns"
	"medguard/internal/web"
)

// DemoHospital is the demo hospital's name, on its posture reports.
const DemoHospital = "滨江市第一人民医院"

// ReportsConfig configures the leadership's posture reports (issue 14).
type ReportsConfig struct {
	// Hospital is the hospital's name on every report (--hospital-name).
	Hospital string
	// Font is the CJK TrueType font of the PDFs (--report-font; default
	// reports.DefaultFont, from the Debian package fonts-droid-fallback).
	Font string
	// MailTo are the recipients of the scheduled reports (--report-mail-to),
	// sent through the alert mail server (--alert-smtp), the PDF attached.
	MailTo []string
	// Lang is the scheduled reports' language (--report-lang: zh-CN or en).
	Lang string
}

// openReports makes the posture reports and their sources: the figures
// come from the registers through the adapters below, which read counts
// only. The compliance history and the rectification register are wired
// by SetReportRegisters once they exist; until then the reports say "no
// compliance runs yet". A scheduled report is mailed to --report-mail-to.
func (a *App) openReports(cfg Config, d *web.Deps) {
	rc := cfg.Reports
	a.Reports = reports.New(a.DB, a.Gate, a.Identity, reports.Config{Hospital: rc.Hospital, Location: cfg.Identity.Location,
		Lang: rc.Lang, FontPath: rc.Font, RuleName: console.RuleName})
	// The compliance report's PDF (GET /api/v1/compliance/report?format=pdf)
	// is written in the same font.
	reports.UseFont(rc.Font)
	a.reportSources = reports.Sources{
		Alerts:     a.Detect,
		Incidents:  a.Incidents,
		Vulns:      openVulns{a.Vulns},
		Training:   a.Training,
		Risks:      riskLevels{a.Risks},
		Continuity: continuity{a.BackupHealth, a.Plans},
	}
	a.Reports.SetSources(a.reportSources)
	if n := cfg.Notifier; n != nil && n.SMTP != "" && len(rc.MailTo) > 0 {
		logger := cfg.Logger
		a.Reports.OnGenerated(func(ctx context.Context, r reports.Report, pdf []byte) {
			ctx = context.WithoutCancel(ctx)
			msg := reportMail(n.From, rc.MailTo, r, pdf, a.Reports.Config().Hospital, cfg.Clock.Now())
			err := n.Mail(ctx, rc.MailTo, msg)
			if err != nil {
				logger.Error("mailing a posture report failed", "report", r.ID, "error", err.Error())
			}
			if merr := a.Reports.Mailed(ctx, r.ID, len(rc.MailTo), err); merr != nil {
				logger.Error("recording a posture report's mailing failed", "report", r.ID, "error", merr.Error())
			}
		})
	}
	d.Reports = a.Reports
}

// SetReportRegisters wires the compliance history and the rectification
// register (issue 14) into the posture reports' sources (either may be
// nil: the reports then say there is none).
func (a *App) SetReportRegisters(c reports.ComplianceHistory, r reports.RectificationSource) {
	a.reportSources.Compliance, a.reportSources.Rectification = c, r
	a.Reports.SetSources(a.reportSources)
}

// openVulns reads the open vulnerabilities for the reports.
type openVulns struct{ v *vulns.Service }

// OpenVulnsAt implements reports.VulnSource.
func (o openVulns) OpenVulnsAt(ctx context.Context, at time.Time) ([]reports.OpenVuln, error) {
	fs, err := o.v.OpenAt(ctx, at)
	if err != nil {
		return nil, err
	}
	out := make([]reports.OpenVuln, 0, len(fs))
	for _, f := range fs {
		out = append(out, reports.OpenVuln{Severity: f.Severity, FirstSeen: f.FirstSeen, DueAt: f.DueAt})
	}
	return out, nil
}

// riskLevels counts the open risks for the reports.
type riskLevels struct{ r *risks.Service }

// RiskLevelsAt implements reports.RiskSource.
func (r riskLevels) RiskLevelsAt(ctx context.Context, at time.Time) (map[string]int, error) {
	return r.r.LevelsAt(ctx, at)
}

// continuity reads the backups at a glance and the drills held.
type continuity struct {
	b *backuphealth.Service
	p *plans.Service
}

// Continuity implements reports.ContinuitySource.
func (c continuity) Continuity(ctx context.Context, from, to time.Time) (reports.Continuity, error) {
	g := c.b.Glance()
	out := reports.Continuity{BackupsConfigured: g.Configured, BackupTargets: g.Targets, BackupsLate: g.Late, BackupsFailing: g.Failing,
		RPOMinutes: int(g.RPO / time.Minute), RPOLate: g.RPOLate}
	var err error
	out.DrillsHeld, out.DrillsPassed, err = c.p.DrillsHeld(ctx, from, to)
	return out, err
}

// reportMail is the mail of a scheduled report: a short text in Chinese
// and English naming the period and the PDF's SHA-256 (as in the audit
// log), and the PDF attached.
func reportMail(from string, to []string, r reports.Report, pdf []byte, hospital string, now time.Time) []byte {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	titles := map[string]string{reports.Weekly: "安全态势周报", reports.Monthly: "安全态势月报", reports.Quarterly: "安全态势季报"}
	subject := fmt.Sprintf("[medguard] %s %s %s / posture report %s", hospital, titles[r.Kind], r.Label, r.Label)
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n",
		from, strings.Join(to, ", "), mime.BEncoding.Encode("UTF-8", subject), now.Format(time.RFC1123Z), mw.Boundary())
	text, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=UTF-8"}, "Content-Transfer-Encoding": {"base64"}})
	body := fmt.Sprintf("%s %s（%s）已生成，见附件 PDF。\r\nThe %s posture report %s is attached.\r\n\r\n"+
		"PDF SHA-256（审计日志 report.generate 的对象 / the target of its report.generate audit entry）：\r\n%s\r\n",
		titles[r.Kind], r.Label, hospital, r.Kind, r.Label, r.PDFSHA256)
	writeBase64(text, []byte(body))
	att, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/pdf"}, "Content-Transfer-Encoding": {"base64"},
		"Content-Disposition": {`attachment; filename="` + r.FileName(reports.FormatPDF) + `"`}})
	writeBase64(att, pdf)
	mw.Close()
	return b.Bytes()
}

// writeBase64 writes data in base64 lines of 76 characters (RFC 2045).
func writeBase64(w interface{ Write([]byte) (int, error) }, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		w.Write([]byte(enc[:76] + "\r\n"))
		enc = enc[76:]
	}
	w.Write([]byte(enc + "\r\n"))
}

// parseRecipients reads a comma-separated list of mail addresses.
func parseRecipients(flag, v string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(s, "@") || strings.ContainsAny(s, " <>\r\n") {
			return nil, fmt.Errorf("--%s: %q is not a mail address", flag, s)
		}
		out = append(out, s)
	}
	return out, nil
}

// reportsConfig reads the reports' flags; the mail goes through the alert
// notifier's mail server.
func (f *serveFlags) reportsConfig(n *detect.Notifier) (ReportsConfig, error) {
	c := ReportsConfig{Hospital: strings.TrimSpace(f.hospital), Font: f.reportFont, Lang: f.reportLang}
	if c.Lang != "zh-CN" && c.Lang != "en" {
		return c, fmt.Errorf("--report-lang must be zh-CN or en, not %q", c.Lang)
	}
	var err error
	if c.MailTo, err = parseRecipients("report-mail-to", f.reportMailTo); err != nil {
		return c, err
	}
	if len(c.MailTo) > 0 && (n == nil || n.SMTP == "") {
		return c, errors.New("--report-mail-to needs --alert-smtp (the reports are mailed through the alert mail server)")
	}
	return c, nil
}
