-- fms store schema, SQLite. Times are Unix milliseconds; JSON columns hold text written by
-- fms_msgs::codec; statuses are SCREAMING_SNAKE_CASE and priorities snake_case text.

CREATE TABLE robots (
    id            TEXT   PRIMARY KEY NOT NULL,
    name          TEXT,
    model         TEXT,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL
);

CREATE TABLE tasks (
    id              TEXT   PRIMARY KEY NOT NULL,
    robot_id        TEXT,
    assigned_robot  TEXT,
    goal            TEXT   NOT NULL,
    priority        TEXT   NOT NULL,
    timeout_s       DOUBLE PRECISION,
    parameters      TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    progress        DOUBLE PRECISION NOT NULL,
    attempts        BIGINT NOT NULL,
    max_attempts    BIGINT NOT NULL,
    retries         BIGINT NOT NULL,
    failures        BIGINT NOT NULL,
    location        TEXT,
    idempotency_key TEXT   UNIQUE,
    error           TEXT,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL
);

CREATE INDEX tasks_status ON tasks (status);
CREATE INDEX tasks_assigned_robot ON tasks (assigned_robot);
CREATE INDEX tasks_robot_id ON tasks (robot_id);
CREATE INDEX tasks_created_ms ON tasks (created_ms);

-- Append-only task history: row idx is the entry's position in Task::history.
CREATE TABLE task_events (
    task_id  TEXT   NOT NULL REFERENCES tasks (id),
    idx      BIGINT NOT NULL,
    status   TEXT   NOT NULL,
    at_ms    BIGINT NOT NULL,
    robot_id TEXT,
    note     TEXT,
    PRIMARY KEY (task_id, idx)
);

CREATE TABLE event_cursors (
    robot_id TEXT   PRIMARY KEY NOT NULL,
    epoch    BIGINT NOT NULL,
    seq      BIGINT NOT NULL
);

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms    BIGINT  NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    robot_id TEXT,
    task_id  TEXT,
    detail   TEXT    NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
