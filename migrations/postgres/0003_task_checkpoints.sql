-- Switchyard task store, PostgreSQL schema version 3: execution checkpoints (issue 13 item 8).
-- Forward-only: once released, this file is never edited.
-- The running execution's checkpoint of each task (TaskEvents::checkpoint), written in the
-- same transaction as the events it follows; a resumed execution (restart, takeover) starts
-- from it instead of from scratch. Deleted when a new execution starts and when the task is
-- swept.

CREATE TABLE task_checkpoints (
    task_id TEXT PRIMARY KEY,
    data    BYTEA NOT NULL
);
