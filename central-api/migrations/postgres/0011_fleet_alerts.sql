-- Fleet inventory, status history and alerts (issue 17), PostgreSQL flavour. Keep in step with
-- ../sqlite/0011_fleet_alerts.sql.

-- What the agent's latest status said beyond the columns of 0001 (protocol version 2 fields).
ALTER TABLE agent_status ADD COLUMN hostname TEXT;
ALTER TABLE agent_status ADD COLUMN dead_letters BIGINT;
ALTER TABLE agent_status ADD COLUMN reported_config_version BIGINT;
ALTER TABLE device_status ADD COLUMN kind TEXT;
ALTER TABLE device_status ADD COLUMN last_punch TIMESTAMPTZ;
-- protocol::DeviceInfo as JSON (model, firmware, platform, reported serial, counts and capacities).
ALTER TABLE device_status ADD COLUMN info_json TEXT;
-- When the device last became reachable or unreachable (as the agent reported it).
ALTER TABLE device_status ADD COLUMN reachable_since TIMESTAMPTZ;

-- Every change of an agent's or a device's state: `reachable` / `unreachable` (device_serial set), `fault_raised` /
-- `fault_cleared` (code set). `at` is when it happened as reported, `recorded_at` when central learned it.
CREATE TABLE status_changes (
    id            BIGSERIAL PRIMARY KEY,
    site_id       TEXT NOT NULL,
    agent_id      TEXT NOT NULL,
    device_serial TEXT,
    change        TEXT NOT NULL
        CHECK (change IN ('reachable', 'unreachable', 'fault_raised', 'fault_cleared')),
    code          TEXT,
    message       TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    recorded_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX status_changes_site ON status_changes (site_id, id);
CREATE INDEX status_changes_agent ON status_changes (agent_id, id);
CREATE INDEX status_changes_device ON status_changes (device_serial, id);

-- A rule per site and fault kind: when its condition has held for `for_secs`, an alert is raised and notified (a
-- webhook signed with `webhook_secret`, e-mail to `email_to`, comma-separated); when it stops holding, cleared.
CREATE TABLE alert_rules (
    id             BIGSERIAL PRIMARY KEY,
    site_id        TEXT NOT NULL REFERENCES sites (site_id),
    kind           TEXT NOT NULL,
    for_secs       BIGINT NOT NULL,
    threshold      DOUBLE PRECISION,
    buffer_limit   BIGINT,
    webhook_url    TEXT,
    webhook_secret TEXT,
    email_to       TEXT,
    max_per_hour   BIGINT NOT NULL,
    enabled        BOOLEAN NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX alert_rules_site ON alert_rules (site_id, id);

-- One row per (rule, subject) while the rule's condition holds for it (`raised_at` set once it is raised).
-- subject: `device:<serial>` or `agent:<id>`.
CREATE TABLE alert_states (
    rule_id         BIGINT NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    condition_since TIMESTAMPTZ NOT NULL,
    raised_at       TIMESTAMPTZ,
    raised_event_id BIGINT,
    message         TEXT NOT NULL,
    PRIMARY KEY (rule_id, subject)
);

-- The history of alerts: each raise and clear, kept after its rule is deleted. `suppressed`: over the rule's
-- rate limit (or the clear of a suppressed raise), recorded but not sent.
CREATE TABLE alert_events (
    id         BIGSERIAL PRIMARY KEY,
    rule_id    BIGINT NOT NULL,
    site_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    event      TEXT NOT NULL CHECK (event IN ('raised', 'cleared')),
    message    TEXT NOT NULL,
    since      TIMESTAMPTZ NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    suppressed BOOLEAN NOT NULL
);
CREATE INDEX alert_events_site ON alert_events (site_id, id);
CREATE INDEX alert_events_rule ON alert_events (rule_id, at);

-- One notification of an event on one channel (`webhook`, `email`): pending -> sending -> sent | failed, retried
-- with backoff; a `sending` row whose claim expired is taken again (a receiver may see a delivery twice: its id
-- is in the X-Alert-Delivery header and the e-mail's Message-ID).
CREATE TABLE alert_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    event_id        BIGINT NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    target          TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until   TIMESTAMPTZ,
    last_error      TEXT,
    sent_at         TIMESTAMPTZ
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (state, next_attempt_at);
CREATE INDEX alert_deliveries_event ON alert_deliveries (event_id);
