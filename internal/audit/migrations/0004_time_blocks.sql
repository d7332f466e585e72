-- The time span of each block of 4,096 consecutive entries, kept with the
-- search index: a search over a time range reads only the blocks whose span
-- meets it. Entries' times follow their indexes only roughly (several
-- servers, concurrent requests), so the span is what makes this exact.
CREATE TABLE audit_time_blocks (
    block BIGINT PRIMARY KEY,
    min_ms BIGINT NOT NULL,
    max_ms BIGINT NOT NULL
);
INSERT INTO audit_time_blocks (block, min_ms, max_ms)
    SELECT idx / 4096, MIN(time_ms), MAX(time_ms) FROM audit_index GROUP BY idx / 4096;
