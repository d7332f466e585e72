-- Alerts rank by severity (low, medium, high, critical; one step higher on
-- core data), and name the audit entry that raised them: servers sharing a
-- database see the same entries and raise each alert once, by that index.
ALTER TABLE detect_alerts ADD COLUMN severity TEXT NOT NULL DEFAULT 'medium';
ALTER TABLE detect_alerts ADD COLUMN trigger_index BIGINT;
CREATE UNIQUE INDEX detect_alerts_trigger ON detect_alerts (rule, trigger_index);
