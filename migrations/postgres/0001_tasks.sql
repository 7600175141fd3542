-- Switchyard task store, PostgreSQL schema version 1.
-- Forward-only: once released, this file is never edited (sqlx checks its checksum at start);
-- a schema change is a new file with the next version number.
-- Every name is unqualified: the store runs these statements with `search_path` set to the
-- agent's schema, so several agents (and their replicas) share one database.

CREATE TABLE tasks (
    id         TEXT PRIMARY KEY,
    context_id TEXT NOT NULL,
    state      INTEGER NOT NULL,
    -- status timestamp, µs since the epoch (ListTasks order and filter)
    status_us  BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL,
    -- the a2a.v1.Task snapshot, protobuf-encoded
    snapshot   BYTEA NOT NULL
);
CREATE INDEX tasks_by_status ON tasks (status_us DESC, id DESC);
CREATE INDEX tasks_by_context ON tasks (context_id, status_us DESC, id DESC);
CREATE INDEX tasks_by_state ON tasks (state, status_us DESC, id DESC);

-- Events of each task; the primary key makes a duplicate sequence number impossible.
CREATE TABLE task_events (
    task_id TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    -- the a2a.v1.StreamResponse, protobuf-encoded
    event   BYTEA NOT NULL,
    PRIMARY KEY (task_id, seq)
);

-- Tasks per state, kept by the store's commits and sweeps in the same transactions:
-- ListTasks' totalSize without a context or timestamp filter sums at most nine rows.
CREATE TABLE task_counts (
    state INTEGER PRIMARY KEY,
    n     BIGINT NOT NULL
);

CREATE TABLE push_configs (
    task_id       TEXT NOT NULL,
    id            TEXT NOT NULL,
    -- creation order
    created       BIGINT GENERATED ALWAYS AS IDENTITY,
    -- the a2a.v1.TaskPushNotificationConfig, protobuf-encoded
    config        BYTEA NOT NULL,
    -- sequence number of the last event delivered to this config (push cursor)
    delivered_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, id)
);

-- Which replica runs which task. Times come from the database clock (now()).
CREATE TABLE task_leases (
    task_id        TEXT PRIMARY KEY,
    owner          TEXT NOT NULL,
    -- fencing token: +1 at every change of owner
    epoch          BIGINT NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    -- takeovers after the owner's lease expired (poison-task limit)
    takeovers      INTEGER NOT NULL DEFAULT 0,
    -- given up by its owner: the next acquire is not a takeover
    released       BOOLEAN NOT NULL DEFAULT false,
    -- the owner a takeover displaced, until that owner learns it (renew_leases)
    previous_owner TEXT
);
CREATE INDEX task_leases_by_owner ON task_leases (owner);
CREATE INDEX task_leases_by_previous_owner ON task_leases (previous_owner)
    WHERE previous_owner IS NOT NULL;
