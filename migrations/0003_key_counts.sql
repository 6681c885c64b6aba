-- How many live keys and tombstones `kv` holds, kept by triggers in the same transaction as
-- every change to `kv` (local writes, merged rows, purges, and edits made with sqlite3), so
-- `/status`, `/metrics` and start-up read two numbers instead of counting every row.
CREATE TABLE kv_counts (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    live       INTEGER NOT NULL,                   -- rows with deleted = 0
    tombstones INTEGER NOT NULL                    -- rows with deleted = 1
);

-- The one full count, when a file made before this migration gets it.
INSERT INTO kv_counts (singleton, live, tombstones)
    SELECT 1, count(*) - coalesce(sum(deleted), 0), coalesce(sum(deleted), 0) FROM kv;

CREATE TRIGGER kv_counts_after_insert AFTER INSERT ON kv BEGIN
    UPDATE kv_counts SET live = live + 1 - new.deleted, tombstones = tombstones + new.deleted
    WHERE singleton = 1;
END;

CREATE TRIGGER kv_counts_after_delete AFTER DELETE ON kv BEGIN
    UPDATE kv_counts SET live = live - 1 + old.deleted, tombstones = tombstones - old.deleted
    WHERE singleton = 1;
END;

-- An overwrite changes the counts only when it turns a live key into a tombstone or back.
CREATE TRIGGER kv_counts_after_update AFTER UPDATE OF deleted ON kv WHEN old.deleted <> new.deleted BEGIN
    UPDATE kv_counts SET live = live + old.deleted - new.deleted, tombstones = tombstones - old.deleted + new.deleted
    WHERE singleton = 1;
END;
