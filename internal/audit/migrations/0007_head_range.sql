-- The tree's compact range at the head: the hashes of the perfect subtrees
-- that cover [0, range_size), concatenated (32 bytes each, largest first) —
-- what the next append builds on. With several servers on one PostgreSQL,
-- each batch after another server's read them from the tiles under the
-- head's lock, a round trip while the other servers waited; now they come
-- with the head itself. range_size says which size they belong to: a head
-- moved by a server of an earlier version, which does not write them, is
-- read from the tiles as before. "audit verify" checks them against the
-- entries, as it checks the tiles.
ALTER TABLE audit_head ADD COLUMN range_size BIGINT;
--- sqlite
ALTER TABLE audit_head ADD COLUMN range_hashes BLOB;
--- postgres
ALTER TABLE audit_head ADD COLUMN range_hashes BYTEA;
