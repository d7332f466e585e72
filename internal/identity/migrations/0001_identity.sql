-- Departments, staff, their roles, sign-in state, sessions and API keys.
CREATE TABLE departments (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    department_id TEXT REFERENCES departments (id),
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL,                 -- active | deactivated
    frozen_at BIGINT,                     -- set by detection; cleared by release
    frozen_reason TEXT,
--- sqlite
    totp_secret BLOB,                     -- sealed with the system:totp data key
    totp_pending BLOB,
--- postgres
    totp_secret BYTEA,
    totp_pending BYTEA,
--- common
    totp_enrolled_at BIGINT,
    totp_last_step BIGINT,                -- last accepted 30 s step: replays are refused
    cert_fingerprint TEXT UNIQUE,         -- SHA-256 of a client certificate, for mTLS sign-in
    password_changed_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    deactivated_at BIGINT,
    deactivated_by TEXT
);
CREATE INDEX users_department ON users (department_id);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    granted_by TEXT NOT NULL,
    approval_id TEXT,                     -- the four-eyes approval, for privileged roles
    PRIMARY KEY (user_id, role)
);

-- Failed sign-ins by (lower-cased) username, whether or not the user
-- exists, so that lockout reveals nothing about which usernames exist.
CREATE TABLE signin_failures (
    username TEXT NOT NULL,
    at BIGINT NOT NULL,
    ip TEXT NOT NULL
);
CREATE INDEX signin_failures_username ON signin_failures (username, at);

CREATE TABLE signin_lockouts (
    username TEXT PRIMARY KEY,
    locked_until BIGINT NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
--- sqlite
    token_hash BLOB NOT NULL UNIQUE,      -- SHA-256 of the token; the token itself is never stored
--- postgres
    token_hash BYTEA NOT NULL UNIQUE,
--- common
    user_id TEXT NOT NULL REFERENCES users (id),
    scope TEXT NOT NULL,                  -- full | mfa_enrollment
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,           -- absolute lifetime
    ended_at BIGINT,
    end_reason TEXT,
    ip TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
--- sqlite
    secret_hash BLOB NOT NULL,
--- postgres
    secret_hash BYTEA NOT NULL,
--- common
    scopes TEXT NOT NULL,                 -- space-separated permissions
    department_id TEXT REFERENCES departments (id),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);
