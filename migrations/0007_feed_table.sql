-- The change feed gets a table of its own, written at its end (docs/storage.md, "The feed").
-- Until now the feed's order was a UNIQUE index on kv.seq: every overwrite of a key deleted its
-- old entry from that index, at a random page, which made a write cost about twice what the
-- row itself costs (bench/sqlite_upsert.c: 48 500 against 88 600 upserts/s in SQLite alone).
-- Now every change of a row's seq appends (seq, the row's rowid) to `feed`, by trigger, in the
-- statement that changes the row; a feed entry is current while its row still has its seq,
-- and the writer deletes the others from the front of the table (`KVStore.compactFeed`).
--   sqlite3 data/A.db "SELECT kv.* FROM feed JOIN kv ON kv.rowid = feed.row AND kv.seq = feed.seq ORDER BY feed.seq"
-- kv is rebuilt to drop the UNIQUE on seq (SQLite cannot drop a constraint in place); rowids
-- are kept, and so are its indexes, triggers and the members view.
DROP VIEW members;

CREATE TABLE kv_rebuilt (
    key        TEXT    PRIMARY KEY NOT NULL,       -- UTF-8, compared byte-wise
    value      BLOB,                               -- NULL when deleted
    lamport    INTEGER NOT NULL CHECK (lamport >= 1),
    origin     TEXT    NOT NULL,                   -- node id that made the write
    seq        INTEGER NOT NULL,                   -- this node's change sequence: the feed order
    deleted    INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    updated_at TEXT    NOT NULL,                   -- wall clock when this node stored it; informational
    expires_at INTEGER,                            -- milliseconds since the epoch; NULL: never
    CHECK ((deleted = 1) = (value IS NULL))
);

INSERT INTO kv_rebuilt (rowid, key, value, lamport, origin, seq, deleted, updated_at, expires_at)
    SELECT rowid, key, value, lamport, origin, seq, deleted, updated_at, expires_at FROM kv;

DROP TABLE kv;
ALTER TABLE kv_rebuilt RENAME TO kv;

CREATE INDEX kv_tombstones_by_seq ON kv (seq) WHERE deleted = 1;
CREATE INDEX kv_expiring ON kv (expires_at) WHERE deleted = 0 AND expires_at IS NOT NULL;

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

CREATE TABLE feed (
    seq INTEGER PRIMARY KEY,                       -- the seq a row took
    row INTEGER NOT NULL                           -- that row's rowid in kv
);

INSERT INTO feed (seq, row) SELECT seq, rowid FROM kv;

CREATE TRIGGER kv_feed_after_insert AFTER INSERT ON kv BEGIN
    INSERT INTO feed (seq, row) VALUES (new.seq, new.rowid);
END;

CREATE TRIGGER kv_feed_after_update AFTER UPDATE OF seq ON kv WHEN new.seq <> old.seq BEGIN
    INSERT INTO feed (seq, row) VALUES (new.seq, new.rowid);
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
