-- Switchyard task store, PostgreSQL schema version 2: idempotent SendMessage.
-- Forward-only: once released, this file is never edited.
-- The task that accepted each message, keyed by the contextId the client sent ('' when none)
-- and the messageId; the first task recorded for a key keeps it. Written in the same
-- transaction as the commit that creates (or continues) the task.

CREATE TABLE task_messages (
    context_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    PRIMARY KEY (context_id, message_id)
);
CREATE INDEX task_messages_by_task ON task_messages (task_id);
