-- Tombstones in seq order, for the purge (DESIGN.md §2): it deletes the tombstones every peer
-- has acknowledged, and must find them without scanning the live rows.
CREATE INDEX kv_tombstones_by_seq ON kv (seq) WHERE deleted = 1;
