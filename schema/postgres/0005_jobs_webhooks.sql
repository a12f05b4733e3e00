-- The durable job queue and signed webhooks (PostgreSQL dialect). Timestamps are microseconds
-- since the Unix epoch (UTC).

-- A job is queued (waiting for run_at), running (leased by lease_owner until locked_until),
-- succeeded or dead (gave up after its attempts). A lease that expires makes the job
-- claimable again; dedupe_key makes an enqueue idempotent (ON CONFLICT DO NOTHING).
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    dedupe_key   TEXT,
    trace_id     TEXT,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    run_at       BIGINT NOT NULL,
    locked_until BIGINT,
    lease_owner  TEXT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_dedupe_key_key ON jobs (dedupe_key);
CREATE INDEX jobs_state_run_at_idx ON jobs (state, run_at);
CREATE INDEX jobs_state_locked_until_idx ON jobs (state, locked_until);

CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    topics     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_owner_id_id_idx ON webhooks (owner_id, id);

-- One row per (webhook, topic), so an event finds its webhooks by its topics.
CREATE TABLE webhook_topics (
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    topic      TEXT NOT NULL,
    PRIMARY KEY (webhook_id, topic)
);
CREATE INDEX webhook_topics_topic_idx ON webhook_topics (topic, webhook_id);

-- Every delivery attempt: delivery_id is the delivery job's id (the Polyport-Delivery-Id
-- header, the same on every retry).
CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY,
    webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    delivery_id  TEXT NOT NULL,
    event_id     BIGINT NOT NULL,
    attempt      BIGINT NOT NULL,
    status_code  BIGINT,
    succeeded    BIGINT NOT NULL,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    attempted_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_webhook_id_id_idx ON webhook_deliveries (webhook_id, id);
