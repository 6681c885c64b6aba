-- Per-key expiry (docs/resp.md, "Expiry"). expires_at is part of the row's write, replicated
-- with it: when the value stops existing, in milliseconds since the Unix epoch (UTC); NULL for
-- never. A row whose expires_at has passed reads as absent; the node's expiry sweep then turns
-- it into a tombstone with the same version (value NULL, a new seq), which is purged like any
-- tombstone once every peer has acknowledged it.
--   sqlite3 data/A.db "SELECT key, datetime(expires_at / 1000, 'unixepoch') FROM kv WHERE expires_at IS NOT NULL"
ALTER TABLE kv ADD COLUMN expires_at INTEGER;

-- The live rows that will expire, by time: what the sweep reads, without scanning the rest.
CREATE INDEX kv_expiring ON kv (expires_at) WHERE deleted = 0 AND expires_at IS NOT NULL;
