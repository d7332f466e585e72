-- Legal holds (诉讼保全 / 封存, docs/retention.md): while a hold is active,
-- the records it covers cannot be destroyed. A hold covers every record of
-- one patient (patient_id) or the records named in legal_hold_records. The
-- reason and the reference (a dispute, a court case) are free text that
-- may name a patient: sealed with the system key "legal_holds". A hold is
-- never deleted: lifting it (a four-eyes request) sets lifted_*.
CREATE TABLE legal_holds (
    id TEXT PRIMARY KEY,
    patient_id TEXT REFERENCES patients (id),
--- sqlite
    reason BLOB NOT NULL,
    reference BLOB NOT NULL,
--- postgres
    reason BYTEA NOT NULL,
    reference BYTEA NOT NULL,
--- common
    placed_by TEXT NOT NULL,
    placed_by_name TEXT NOT NULL,
    placed_at BIGINT NOT NULL,
    lifted_by_name TEXT,
    lifted_at BIGINT,
    lift_approval TEXT
);
CREATE INDEX legal_holds_active ON legal_holds (lifted_at, id);

CREATE TABLE legal_hold_records (
    hold_id TEXT NOT NULL REFERENCES legal_holds (id),
    record_id TEXT NOT NULL REFERENCES records (id),
    PRIMARY KEY (hold_id, record_id)
);
