-- Central schema, SQLite flavour. Keep in step with ../postgres/0001_initial.sql (same tables, same meaning).

CREATE TABLE sites (
    site_id    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    time_zone  TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- One row per edge agent. Only the SHA-256 of the token's secret is kept; the token itself is shown once.
CREATE TABLE agents (
    agent_id   TEXT PRIMARY KEY,
    site_id    TEXT NOT NULL REFERENCES sites (site_id),
    token_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- BiometricDeviceConfiguration. The serial is unique across the organisation.
CREATE TABLE devices (
    serial     TEXT PRIMARY KEY,
    site_id    TEXT NOT NULL REFERENCES sites (site_id),
    name       TEXT NOT NULL,
    model      TEXT,
    ip         TEXT,
    port       INTEGER,
    kind       TEXT NOT NULL,
    time_zone  TEXT NOT NULL,
    direction  TEXT NOT NULL CHECK (direction IN ('IN', 'OUT', 'BOTH')),
    status     TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL
);

-- employee_id is the PIN enrolled on every device, unique across the organisation.
CREATE TABLE employees (
    employee_id TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    site_id     TEXT REFERENCES sites (site_id),
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL
);

-- Every physical punch exactly once. The punch key is a hash of exactly (device serial, PIN, local time), so the
-- unique constraint is declared on those three columns: the same rule, but new punches land near the end of the index
-- (devices write in time order) instead of at random places, which keeps inserts fast as the table grows. punch_key
-- is kept as the punch's stable id. No foreign keys: a punch from a device or PIN nobody registered yet is stored all
-- the same. local_date is the local calendar day, which the attendance engine reads by.
CREATE TABLE all_logs (
    id              INTEGER PRIMARY KEY,
    punch_key       BLOB NOT NULL,
    site_id         TEXT NOT NULL,
    device_serial   TEXT NOT NULL,
    pin             TEXT NOT NULL,
    local_time      TEXT NOT NULL,
    local_date      TEXT GENERATED ALWAYS AS (substr(local_time, 1, 10)) VIRTUAL,
    utc_time        TEXT NOT NULL,
    state           SMALLINT NOT NULL,
    verify          SMALLINT NOT NULL,
    work_code       BIGINT NOT NULL,
    source          TEXT NOT NULL,
    direction       TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    agent_seq       BIGINT NOT NULL,
    batch_first_seq BIGINT NOT NULL,
    batch_last_seq  BIGINT NOT NULL,
    received_at     TEXT NOT NULL,
    CONSTRAINT all_logs_punch_unique UNIQUE (device_serial, local_time, pin)
);
CREATE INDEX all_logs_day_pin ON all_logs (local_date, pin, local_time);

-- (employee, local date) pairs whose attendance must be recomputed. Every new punch marks its date and the day
-- before (a night shift that started the day before may own it). The attendance engine consumes these rows.
CREATE TABLE attendance_dirty (
    employee_id TEXT NOT NULL,
    work_date   TEXT NOT NULL,
    marked_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (employee_id, work_date)
);

-- People who administer the service (issue 8 builds sessions on this). Passwords are argon2id PHC strings.
CREATE TABLE admins (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- The latest status each agent reported.
CREATE TABLE agent_status (
    agent_id                TEXT PRIMARY KEY,
    site_id                 TEXT NOT NULL,
    sent_at                 TEXT NOT NULL,
    received_at             TEXT NOT NULL,
    agent_version           TEXT NOT NULL,
    uptime_secs             BIGINT NOT NULL,
    buffer_depth            BIGINT NOT NULL,
    oldest_unacked_age_secs BIGINT,
    faults_json             TEXT NOT NULL,
    command_results_json    TEXT NOT NULL
);

-- The latest status of each device, as its agent last reported it.
CREATE TABLE device_status (
    device_serial    TEXT PRIMARY KEY,
    agent_id         TEXT NOT NULL,
    site_id          TEXT NOT NULL,
    reachable        INTEGER NOT NULL,
    last_success     TEXT,
    record_count     BIGINT,
    user_count       BIGINT,
    clock_drift_secs BIGINT,
    faults_json      TEXT NOT NULL,
    received_at      TEXT NOT NULL
);

-- One row each time a fault code appears (it was not in the previous status of the same agent or device).
CREATE TABLE fault_history (
    id            INTEGER PRIMARY KEY,
    agent_id      TEXT NOT NULL,
    device_serial TEXT,
    code          TEXT NOT NULL,
    message       TEXT NOT NULL,
    since         TEXT NOT NULL,
    recorded_at   TEXT NOT NULL
);
CREATE INDEX fault_history_agent ON fault_history (agent_id, recorded_at);
