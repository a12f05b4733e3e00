-- Event log bookkeeping: `purged_through` is the highest event id removed by retention, so a
-- subscriber asking to resume from before it gets a clear error instead of a silent gap.
CREATE TABLE event_log_state (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
