-- The audit log (append-only: triggers refuse UPDATE, and DELETE except the retention purge,
-- which opens `audit_purge_gate` inside its own transaction) and the trace id of each event.

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           BIGINT NOT NULL,
    actor_id     TEXT,
    actor_key_id TEXT,
    protocol     TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    trace_id     TEXT,
    action       TEXT NOT NULL,
    target       TEXT,
    outcome      TEXT NOT NULL,
    client_ip    TEXT
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_id_id_idx ON audit_log (actor_id, id);
CREATE INDEX audit_log_action_id_idx ON audit_log (action, id);
CREATE INDEX audit_log_target_id_idx ON audit_log (target, id);

-- A row here lets the purge of the same transaction delete entries older than `before_at`;
-- the purge removes it before committing, so no other transaction ever sees it.
CREATE TABLE audit_purge_gate (
    before_at BIGINT NOT NULL
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM audit_purge_gate WHERE OLD.at < audit_purge_gate.before_at)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

ALTER TABLE events ADD COLUMN trace_id TEXT;
