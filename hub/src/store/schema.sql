-- The local hub's durable state. One writer thread owns the connection.
CREATE TABLE IF NOT EXISTS policies (
    name          TEXT PRIMARY KEY,
    primary_key   TEXT NOT NULL,
    secondary_key TEXT NOT NULL,
    rights        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id   TEXT PRIMARY KEY,
    json TEXT NOT NULL            -- the registry's device JSON, keys included
);
CREATE TABLE IF NOT EXISTS messages (
    seq            INTEGER PRIMARY KEY,   -- hub-wide FIFO order
    device_id      TEXT NOT NULL,
    -- state and lock as last written (a lock is not written when taken): a hub that
    -- starts loads every message Enqueued and unlocked
    state          INTEGER NOT NULL,      -- 0 Enqueued, 1 Invisible
    delivery_count INTEGER NOT NULL,
    lock_token     BLOB,                  -- 16 bytes while Invisible
    lock_expiry_ms INTEGER,
    enqueued_ms    INTEGER NOT NULL,
    expiry_ms      INTEGER NOT NULL,
    meta           TEXT NOT NULL,         -- system and application properties (JSON)
    body           BLOB NOT NULL
);
-- messages_by_device, an index no query needed, cost a B-tree write per insert and delete
-- (a purge scans the table instead)
DROP INDEX IF EXISTS messages_by_device;
CREATE TABLE IF NOT EXISTS feedback_batches (
    id             INTEGER PRIMARY KEY,
    delivery_count INTEGER NOT NULL,
    lock_token     BLOB,
    lock_expiry_ms INTEGER,
    enqueued_ms    INTEGER NOT NULL,
    expiry_ms      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback_records (
    id        INTEGER PRIMARY KEY,
    batch_id  INTEGER,                    -- NULL while waiting for a batch
    device_id TEXT NOT NULL,
    json      TEXT NOT NULL               -- the record as IoT Hub writes it
);
CREATE INDEX IF NOT EXISTS feedback_records_by_batch ON feedback_records (batch_id);
