-- Tracked jobs, the audit log and the per-site default week-off rule (issue 14), SQLite flavour. Keep in step with
-- ../postgres/0007_jobs_audit_settings.sql.

-- Employees without a week-off rule of their own follow their site's default (none: no weekly off).
ALTER TABLE sites ADD COLUMN default_week_off_rule TEXT REFERENCES week_off_rules (code);

-- Long runs started from the API or the dashboard (reprocess, close the day, the sandwich rule, backup, restore).
-- status: pending -> running -> done | failed | cancelled. A running job is held by the replica named in
-- `claimed_by` while its `heartbeat_at` is fresh; a stale one is claimed again (`attempt` + 1), and only the holder
-- of the latest attempt may record progress or the end.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    params           TEXT NOT NULL,
    site_id          TEXT,
    status           TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    requested_by     TEXT NOT NULL,
    requested_at     TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    claimed_by       TEXT,
    attempt          INTEGER NOT NULL DEFAULT 0,
    heartbeat_at     TEXT,
    progress_done    INTEGER NOT NULL DEFAULT 0,
    progress_total   INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    result           TEXT,
    error            TEXT
);
CREATE INDEX jobs_status ON jobs (status, id);

-- Every change an administrator made: who, when, from which address, what, and the values before and after (JSON).
-- Rows are only ever added; the trigger refuses any change to one.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    address     TEXT,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    site_id     TEXT,
    before_json TEXT,
    after_json  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_site ON audit_log (site_id, id);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
