-- Vulnerabilities (漏洞管理, seed 003 §3.4.1, issue 13): the findings of
-- scanner reports imported per asset (assets.id), deduplicated by a
-- fingerprint of the rule and the stable part of the location; the scans
-- imported and the sightings of each vulnerability in them; its history
-- of states; and the operations suspended while a critical vulnerability
-- of the records system is open (病案室暂停相关操作). A vulnerability's
-- description (the scanner's text), the notes of its history and the
-- reasons of suspensions are sealed with medguard's "system:vulns" data
-- key; rule ids, titles, locations, package names and versions are stored
-- as such. No patient data is ever stored here.
CREATE TABLE vulns (
    id TEXT PRIMARY KEY,
    asset_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    tool TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    cves TEXT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    score INTEGER NOT NULL,
    location TEXT NOT NULL,
    package TEXT NOT NULL,
    installed_version TEXT NOT NULL,
    fixed_version TEXT NOT NULL,
    reference TEXT NOT NULL,
--- sqlite
    description BLOB,
--- postgres
    description BYTEA,
--- common
    status TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    proposed_fixed_at BIGINT,
    proposed_by TEXT,
    fixed_at BIGINT,
    fixed_by TEXT,
    closed_at BIGINT,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    overdue_notified_at BIGINT,
    UNIQUE (asset_id, fingerprint)
);
CREATE INDEX vulns_asset ON vulns (asset_id, status);
CREATE INDEX vulns_due ON vulns (status, due_at);

CREATE TABLE vuln_scans (
    id TEXT PRIMARY KEY,
    asset_id TEXT NOT NULL,
    format TEXT NOT NULL,
    tool TEXT NOT NULL,
    full_scan INTEGER NOT NULL,
    scanned_at BIGINT NOT NULL,
    imported_at BIGINT NOT NULL,
    imported_by TEXT NOT NULL,
    report_sha256 TEXT NOT NULL,
    findings INTEGER NOT NULL,
    new_count INTEGER NOT NULL,
    seen_again INTEGER NOT NULL,
    reopened INTEGER NOT NULL,
    proposed_fixed INTEGER NOT NULL
);
CREATE INDEX vuln_scans_asset ON vuln_scans (asset_id, scanned_at);

CREATE TABLE vuln_sightings (
    vuln_id TEXT NOT NULL REFERENCES vulns (id),
    scan_id TEXT NOT NULL REFERENCES vuln_scans (id),
    PRIMARY KEY (vuln_id, scan_id)
);
CREATE INDEX vuln_sightings_scan ON vuln_sightings (scan_id);

CREATE TABLE vuln_events (
    id TEXT PRIMARY KEY,
    vuln_id TEXT NOT NULL REFERENCES vulns (id),
    at BIGINT NOT NULL,
    audit_index BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    ref TEXT NOT NULL,
--- sqlite
    note BLOB
--- postgres
    note BYTEA
--- common
);
CREATE INDEX vuln_events_vuln ON vuln_events (vuln_id, at);

CREATE TABLE vuln_suspensions (
    id TEXT PRIMARY KEY,
    vuln_id TEXT NOT NULL REFERENCES vulns (id),
    asset_id TEXT NOT NULL,
    actions TEXT NOT NULL,
--- sqlite
    reason BLOB NOT NULL,
--- postgres
    reason BYTEA NOT NULL,
--- common
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL,
    lifted_at BIGINT,
    lifted_by TEXT,
    lift_reason TEXT
);
CREATE INDEX vuln_suspensions_vuln ON vuln_suspensions (vuln_id);
CREATE UNIQUE INDEX vuln_suspensions_active ON vuln_suspensions (vuln_id) WHERE lifted_at IS NULL;
