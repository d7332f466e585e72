-- Detection rules changed from their defaults (the defaults live in code;
-- a stored rule of the same name replaces one), and the alerts raised.
CREATE TABLE detect_rules (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,      -- the rule as JSON
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE detect_alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    action TEXT NOT NULL,          -- alert | freeze
    username TEXT NOT NULL,        -- the actor of the triggering entry
    key_value TEXT NOT NULL,       -- what the rule counted by: user, IP or user/patient id
    count INTEGER NOT NULL,
    threshold INTEGER NOT NULL,
    window_ms BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    trigger_at BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    explanation TEXT NOT NULL,     -- opaque ids and counts only, never patient data
    status TEXT NOT NULL,          -- new | acknowledged | false_positive | escalated
    freeze_id TEXT,
    incident_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX detect_alerts_created ON detect_alerts (created_at, id);
CREATE INDEX detect_alerts_status ON detect_alerts (status, created_at);
