-- Running sites from the central office (issue 17): managed device configuration, remote commands, users on devices.
-- Keep in step with ../sqlite/0012_fleet.sql.

-- A device's driver settings beyond the columns above, as the JSON object of the agent's [[device]] keys (checked by
-- the agent's own code before they are stored), and the agent that reads it (NULL: every managed agent of the site).
ALTER TABLE devices ADD COLUMN settings_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE devices ADD COLUMN agent_id TEXT REFERENCES agents (agent_id);

-- The version of each site's managed configuration: one more on every change of its devices, in the same transaction.
CREATE TABLE site_config_versions (
    site_id TEXT PRIMARY KEY REFERENCES sites (site_id),
    version BIGINT NOT NULL
);

-- How each agent was last heard from: its transport, whether it is managed, the configuration version it runs, and
-- the last configuration version central sent it over MQTT (and when), so a stale agent is sent it again, not spammed.
CREATE TABLE agent_links (
    agent_id            TEXT PRIMARY KEY REFERENCES agents (agent_id),
    site_id             TEXT NOT NULL,
    transport           TEXT NOT NULL CHECK (transport IN ('https', 'mqtt')),
    managed             BOOLEAN NOT NULL,
    config_version      BIGINT,
    config_sent_version BIGINT,
    config_sent_at      TIMESTAMPTZ,
    seen_at             TIMESTAMPTZ NOT NULL
);

-- Commands for agents, kept as history: pending -> delivered -> done | failed, or pending -> expired.
CREATE TABLE agent_commands (
    id                BIGSERIAL PRIMARY KEY,
    agent_id          TEXT NOT NULL REFERENCES agents (agent_id),
    site_id           TEXT NOT NULL REFERENCES sites (site_id),
    device_serial     TEXT,
    action            TEXT NOT NULL,
    action_json       TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'done', 'failed', 'expired')),
    created_at        TIMESTAMPTZ NOT NULL,
    created_by        TEXT NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    delivered_at      TIMESTAMPTZ,
    last_delivered_at TIMESTAMPTZ,
    deliveries        BIGINT NOT NULL DEFAULT 0,
    finished_at       TIMESTAMPTZ,
    detail            TEXT
);
CREATE INDEX agent_commands_agent_state ON agent_commands (agent_id, state);
CREATE INDEX agent_commands_site ON agent_commands (site_id, id);

-- Which devices hold which employees, as the last successful push or removal left them.
CREATE TABLE device_users (
    device_serial TEXT NOT NULL,
    pin           TEXT COLLATE "C" NOT NULL,
    name          TEXT NOT NULL,
    command_id    BIGINT NOT NULL,
    pushed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_serial, pin)
);
CREATE INDEX device_users_pin ON device_users (pin);
