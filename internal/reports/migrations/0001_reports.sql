-- The leadership's posture reports (安全态势报告, issue 14): each report
-- generated, with its figures (counts and staff, never patients) and the
-- bytes of its HTML and PDF as they were delivered, their SHA-256, and the
-- audit entry that signed it (report.generate, whose target is the PDF's
-- SHA-256). A scheduled report's slot (kind and period) is unique, so that
-- several servers make it once; a report on demand has a slot of its own.
CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    lang TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    slot TEXT NOT NULL UNIQUE,
    partial INTEGER NOT NULL,
    generated_at BIGINT NOT NULL,
    generated_by TEXT NOT NULL,
    figures TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
--- sqlite
    html BLOB NOT NULL,
    pdf BLOB NOT NULL,
--- postgres
    html BYTEA NOT NULL,
    pdf BYTEA NOT NULL,
--- common
    html_sha256 TEXT NOT NULL,
    pdf_sha256 TEXT NOT NULL,
    audit_index BIGINT NOT NULL,
    mailed_at BIGINT,
    mail_error TEXT NOT NULL
);
CREATE INDEX reports_kind ON reports (kind, period_start);
CREATE INDEX reports_pdf ON reports (pdf_sha256);
