-- Replicas on one database: the dispatch lease, requests followers leave for the leader,
-- and an index for followers polling task changes.

-- One row per lease (only 'dispatch' so far). expires_ms is on the database's clock;
-- token goes up by one each time the lease changes hands or lapses (the fencing token).
CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    token      BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);

-- A follower's cancel or e-stop, carried out once by whichever replica leads.
CREATE TABLE requests (
    id         BIGSERIAL PRIMARY KEY,
    body       JSONB  NOT NULL,
    created_ms BIGINT NOT NULL,
    done_ms    BIGINT,
    result     JSONB
);
CREATE INDEX requests_pending ON requests (id) WHERE done_ms IS NULL;

CREATE INDEX tasks_updated ON tasks (updated_ms);
