-- Replicas on one database: the dispatch lease, requests followers leave for the leader,
-- and an index for followers polling task changes (see the PostgreSQL migration; SQLite
-- serves one replica, but keeps the same schema so the same code and tests run on both).

CREATE TABLE leases (
    name       TEXT    PRIMARY KEY NOT NULL,
    holder     TEXT    NOT NULL,
    token      BIGINT  NOT NULL,
    expires_ms BIGINT  NOT NULL
);

CREATE TABLE requests (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    body       TEXT    NOT NULL,
    created_ms BIGINT  NOT NULL,
    done_ms    BIGINT,
    result     TEXT
);
CREATE INDEX requests_pending ON requests (id) WHERE done_ms IS NULL;

CREATE INDEX tasks_updated ON tasks (updated_ms);
