-- Issue 12 (hostile review), SQLite flavour. Keep in step with ../postgres/0008_cross_site_guard.sql.

-- A device first seen in an agent's punches or status is registered at that agent's site, unconfirmed, until an
-- administrator reviews it (a change of the device through the API or the dashboard confirms it).
ALTER TABLE devices ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 1;

-- A fault about another site than the agent's (an agent naming that site's device): that site's administrators see
-- it too.
ALTER TABLE fault_history ADD COLUMN other_site_id TEXT;
CREATE INDEX fault_history_other_site ON fault_history (other_site_id, id);

-- Punches an agent sent naming a device registered at another site: kept aside, never in all_logs, until an
-- administrator releases them (into all_logs, under the device's site at that time) or discards them.
-- site_id/agent_id: who sent it; device_site_id: where the device was registered when it arrived.
CREATE TABLE punch_quarantine (
    id              INTEGER PRIMARY KEY,
    site_id         TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    device_site_id  TEXT NOT NULL,
    punch_key       BLOB NOT NULL,
    device_serial   TEXT NOT NULL,
    pin             TEXT NOT NULL,
    local_time      TEXT NOT NULL,
    utc_time        TEXT NOT NULL,
    state           SMALLINT NOT NULL,
    verify          SMALLINT NOT NULL,
    work_code       BIGINT NOT NULL,
    source          TEXT NOT NULL,
    direction       TEXT NOT NULL,
    agent_seq       BIGINT NOT NULL,
    batch_first_seq BIGINT NOT NULL,
    batch_last_seq  BIGINT NOT NULL,
    reason          TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'released', 'discarded')),
    decided_by      TEXT,
    decided_at      TEXT,
    CONSTRAINT punch_quarantine_unique UNIQUE (site_id, device_serial, local_time, pin)
);
CREATE INDEX punch_quarantine_device_site ON punch_quarantine (device_site_id, id);
CREATE INDEX punch_quarantine_site ON punch_quarantine (site_id, id);

-- Administrators' API tokens: an optional expiry, and when each was last used.
ALTER TABLE admin_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE admin_tokens ADD COLUMN last_used_at TEXT;
