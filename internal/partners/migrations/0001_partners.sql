-- External partners (合作单位, SPEC §8, issue 12): the partners, their
-- agreements (scope, purpose, period, confidentiality), the researchers'
-- accounts linked to them, and the deletion confirmations (删除确认) at the
-- end of an agreement. A partner's contact person and a confirmation's
-- representative and statement are sealed with medguard's
-- "system:partners" data key; organisation names and codes, scope codes,
-- usernames, dates and document checksums are stored as such. No patient
-- data is ever stored here.
CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    org_code TEXT NOT NULL UNIQUE,
--- sqlite
    contact BLOB NOT NULL,
--- postgres
    contact BYTEA NOT NULL,
--- common
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE partner_agreements (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    title TEXT NOT NULL,
    purposes TEXT NOT NULL,
    dataset_kinds TEXT NOT NULL,
    min_k INTEGER NOT NULL,
    departments TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    confidentiality TEXT NOT NULL,
    document_sha256 TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    extended_by TEXT,
    terminated_at BIGINT,
    terminated_by TEXT,
    deletion_notified_at BIGINT
);
CREATE INDEX partner_agreements_partner ON partner_agreements (partner_id, starts_at);
CREATE INDEX partner_agreements_ends ON partner_agreements (ends_at);

CREATE TABLE partner_accounts (
    user_id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    username TEXT NOT NULL,
    linked_by TEXT NOT NULL,
    linked_at BIGINT NOT NULL
);
CREATE INDEX partner_accounts_partner ON partner_accounts (partner_id);

CREATE TABLE partner_deletions (
    agreement_id TEXT PRIMARY KEY REFERENCES partner_agreements (id),
--- sqlite
    representative BLOB NOT NULL,
    statement BLOB,
--- postgres
    representative BYTEA NOT NULL,
    statement BYTEA,
--- common
    document_sha256 TEXT NOT NULL,
    deleted_at BIGINT NOT NULL,
    received_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
