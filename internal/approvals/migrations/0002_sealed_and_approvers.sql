-- Approvals say who may decide them (a security officer; the head of one
-- department), keep their free text sealed (a reason may name a patient),
-- may keep a sealed secret for their run (the requester's half of a split
-- password), and name what their run changed.
ALTER TABLE approvals ADD COLUMN approve_security INTEGER NOT NULL DEFAULT 1;
ALTER TABLE approvals ADD COLUMN approve_department TEXT;
ALTER TABLE approvals ADD COLUMN target_type TEXT;
ALTER TABLE approvals ADD COLUMN target_id TEXT;
--- sqlite
ALTER TABLE approvals ADD COLUMN reason_sealed BLOB;
ALTER TABLE approvals ADD COLUMN note_sealed BLOB;
ALTER TABLE approvals ADD COLUMN secret BLOB;
--- postgres
ALTER TABLE approvals ADD COLUMN reason_sealed BYTEA;
ALTER TABLE approvals ADD COLUMN note_sealed BYTEA;
ALTER TABLE approvals ADD COLUMN secret BYTEA;
--- common
CREATE INDEX approvals_requester ON approvals (requested_by, id);
