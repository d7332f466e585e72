CREATE INDEX things_created ON things (created_at);
