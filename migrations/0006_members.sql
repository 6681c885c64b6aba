-- Cluster members (docs/operations.md, "Members") are ordinary rows of kv under the reserved
-- keys char(1) || 'member/' || id, whose value is the text 'STATE URL EPOCH', so they replicate,
-- merge and repair like every key. They are the cluster's, not the user's: the key counts leave
-- them out (the triggers of 0003 again, with a condition on the key), and so do lists and scans.
--   sqlite3 data/A.db "SELECT * FROM members"
DROP TRIGGER kv_counts_after_insert;
DROP TRIGGER kv_counts_after_delete;
DROP TRIGGER kv_counts_after_update;

CREATE TRIGGER kv_counts_after_insert AFTER INSERT ON kv WHEN new.key >= ' ' BEGIN
    UPDATE kv_counts SET live = live + 1 - new.deleted, tombstones = tombstones + new.deleted
    WHERE singleton = 1;
END;

CREATE TRIGGER kv_counts_after_delete AFTER DELETE ON kv WHEN old.key >= ' ' BEGIN
    UPDATE kv_counts SET live = live - 1 + old.deleted, tombstones = tombstones - old.deleted
    WHERE singleton = 1;
END;

CREATE TRIGGER kv_counts_after_update AFTER UPDATE OF deleted ON kv
    WHEN old.deleted <> new.deleted AND new.key >= ' ' BEGIN
    UPDATE kv_counts SET live = live + old.deleted - new.deleted, tombstones = tombstones - old.deleted + new.deleted
    WHERE singleton = 1;
END;

CREATE VIEW members AS
    SELECT substr(key, 9) AS id,
           substr(state_url_epoch, 1, instr(state_url_epoch, ' ') - 1) AS state,
           substr(url_epoch, 1, instr(url_epoch, ' ') - 1) AS url,
           substr(url_epoch, instr(url_epoch, ' ') + 1) AS epoch,
           lamport, origin, updated_at
    FROM (
        SELECT key, lamport, origin, updated_at, CAST(value AS TEXT) AS state_url_epoch,
               substr(CAST(value AS TEXT), instr(CAST(value AS TEXT), ' ') + 1) AS url_epoch
        FROM kv
        WHERE key >= char(1) || 'member/' AND key < char(1) || 'member0' AND deleted = 0
    );
