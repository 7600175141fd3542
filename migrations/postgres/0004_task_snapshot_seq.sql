-- Switchyard task store, PostgreSQL schema version 4: snapshots written whole only from time
-- to time (issue 15). Forward-only: once released, this file is never edited.
-- NULL: `snapshot` is the task as of `last_seq` (every row written before this version). Else
-- the sequence number of the event the snapshot is as of; the events after it, up to
-- `last_seq`, are folded in when the task is read (TaskWrite::head_only).

ALTER TABLE tasks ADD COLUMN snapshot_seq BIGINT;
