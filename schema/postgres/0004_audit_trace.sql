-- The audit log (append-only: a trigger refuses UPDATE, TRUNCATE, and DELETE except the
-- retention purge, which opens `audit_purge_gate` inside its own transaction) and the trace id
-- of each event.

CREATE TABLE audit_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM audit_purge_gate WHERE OLD.at < audit_purge_gate.before_at) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

ALTER TABLE events ADD COLUMN trace_id TEXT;
