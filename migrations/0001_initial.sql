-- Converge schema, version 1. Column names are part of the contract (DESIGN.md §1):
-- operators and tools read them with sqlite3.

-- One row per key: its latest value (NULL for a tombstone) and the version that wrote it.
CREATE TABLE kv (
    key        TEXT    PRIMARY KEY NOT NULL,       -- UTF-8, compared byte-wise
    value      BLOB,                               -- NULL when deleted
    lamport    INTEGER NOT NULL CHECK (lamport >= 1),
    origin     TEXT    NOT NULL,                   -- node id that made the write
    seq        INTEGER NOT NULL UNIQUE,            -- this node's change sequence: the feed order
    deleted    INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    updated_at TEXT    NOT NULL,                   -- wall clock when this node stored it; informational
    CHECK ((deleted = 1) = (value IS NULL))
);

-- This node: exactly one row, made with the file.
CREATE TABLE node (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    id         TEXT    NOT NULL,                   -- the node id the file belongs to
    epoch      TEXT    NOT NULL,                   -- random id made when the file was created
    lamport    INTEGER NOT NULL CHECK (lamport >= 0),  -- the Lamport clock
    next_seq   INTEGER NOT NULL CHECK (next_seq >= 1), -- the seq the next change will get
    created_at TEXT    NOT NULL
);

-- One row per peer this node replicates with.
CREATE TABLE peers (
    id           TEXT    PRIMARY KEY NOT NULL,
    url          TEXT    NOT NULL,
    epoch        TEXT,                             -- the peer's epoch as last seen; NULL before contact
    pulled_seq   INTEGER NOT NULL DEFAULT 0,       -- the peer's seq up to which this node applied its feed
    pushed_seq   INTEGER NOT NULL DEFAULT 0,       -- this node's seq up to which the peer acknowledged
    last_contact TEXT                              -- wall clock of the last successful exchange
);
