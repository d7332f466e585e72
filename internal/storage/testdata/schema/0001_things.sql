CREATE TABLE things (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
--- sqlite
    payload BLOB,
--- postgres
    payload BYTEA,
--- common
    created_at BIGINT NOT NULL
);
CREATE TABLE parts (
    id TEXT PRIMARY KEY,
    thing_id TEXT NOT NULL REFERENCES things(id)
);
