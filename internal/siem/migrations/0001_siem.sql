-- SIEM forwarding (§5). The audit log is the spool: for each destination
-- this table holds only the index of the next entry to send, moved forward
-- after the receiver has acknowledged a batch.
CREATE TABLE siem_cursor (
    destination TEXT PRIMARY KEY,
    next_idx BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
