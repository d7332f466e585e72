-- How far the search index was complete when the head last moved: the
-- appender that moves the head with the batch's index rows written in the
-- same transaction, onto an index complete up to the batch, sets it to the
-- new size; any other move leaves it behind the size. With several servers
-- on one PostgreSQL, a batch after another server's used to ask the index
-- for its end (a round trip under the head's lock, while the other servers
-- waited); now indexed_size = size says it with the head. A head moved by a
-- server of an earlier version, which does not write it, leaves it behind,
-- and the index is asked as before.
ALTER TABLE audit_head ADD COLUMN indexed_size BIGINT;
