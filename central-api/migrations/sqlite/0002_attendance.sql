-- Attendance model, SQLite flavour. Keep in step with ../postgres/0002_attendance.sql (same tables, same meaning).
-- Durations are whole seconds (INTEGER); dates 'YYYY-MM-DD', local times 'YYYY-MM-DD HH:MM:SS' as sqlx writes them.

-- Per-site attendance settings: which days the sandwich rule may turn into absences.
ALTER TABLE sites ADD COLUMN sandwich TEXT NOT NULL DEFAULT 'off'
    CHECK (sandwich IN ('off', 'week_offs', 'week_offs_and_holidays'));

-- A shift with every field of the attendance rules (see the engine's Shift).
CREATE TABLE shifts (
    code                         TEXT PRIMARY KEY,
    name                         TEXT NOT NULL,
    start_time                   TEXT NOT NULL,
    end_time                     TEXT NOT NULL,
    grace_late_in_secs           INTEGER NOT NULL,
    grace_early_out_secs         INTEGER NOT NULL,
    min_half_day_secs            INTEGER NOT NULL,
    max_work_for_half_day_secs   INTEGER NOT NULL,
    overtime_before_secs         INTEGER,
    overtime_after_secs          INTEGER,
    deduct_lunch_break           INTEGER NOT NULL,
    lunch_break_start            TEXT,
    lunch_break_duration_secs    INTEGER NOT NULL,
    check_in_window_secs         INTEGER NOT NULL,
    check_out_window_secs        INTEGER NOT NULL,
    pairing                      TEXT NOT NULL CHECK (pairing IN ('first_last', 'pairs', 'by_state', 'mandays')),
    debounce_secs                INTEGER NOT NULL,
    single_punch                 TEXT NOT NULL CHECK (single_punch IN ('absent', 'half_day', 'present')),
    updated_at                   TEXT NOT NULL
);

-- Weekly-off rules: `spec` lists weekdays and nth weekdays, e.g. 'sun,sat#2,sat#4,fri#last'.
CREATE TABLE week_off_rules (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The employee's attendance profile. No shift or no site: no attendance is computed.
ALTER TABLE employees ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE employees ADD COLUMN designation TEXT NOT NULL DEFAULT '';
ALTER TABLE employees ADD COLUMN shift_code TEXT REFERENCES shifts (code);
ALTER TABLE employees ADD COLUMN week_off_rule TEXT REFERENCES week_off_rules (code);
ALTER TABLE employees ADD COLUMN date_of_joining TEXT;
ALTER TABLE employees ADD COLUMN date_of_leaving TEXT;
CREATE INDEX employees_site ON employees (site_id, employee_id);

-- HolidayList entries; site_id NULL: every site.
CREATE TABLE holidays (
    id           INTEGER PRIMARY KEY,
    holiday_date TEXT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('public', 'company', 'optional')),
    site_id      TEXT REFERENCES sites (site_id),
    created_at   TEXT NOT NULL
);
CREATE INDEX holidays_date ON holidays (holiday_date);

-- ManualLog: a punch an administrator asks for; only approved ones count.
CREATE TABLE manual_logs (
    id           INTEGER PRIMARY KEY,
    employee_id  TEXT NOT NULL REFERENCES employees (employee_id),
    local_time   TEXT NOT NULL,
    state        SMALLINT NOT NULL,
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    approval     TEXT NOT NULL DEFAULT 'pending' CHECK (approval IN ('pending', 'approved', 'rejected')),
    decided_by   TEXT,
    decided_at   TEXT
);
CREATE INDEX manual_logs_employee ON manual_logs (employee_id, local_time);

-- Time off covering whole days (from_date..to_date inclusive).
CREATE TABLE leaves (
    id           INTEGER PRIMARY KEY,
    employee_id  TEXT NOT NULL REFERENCES employees (employee_id),
    from_date    TEXT NOT NULL,
    to_date      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    paid         INTEGER NOT NULL,
    approval     TEXT NOT NULL DEFAULT 'pending' CHECK (approval IN ('pending', 'approved', 'rejected')),
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    decided_by   TEXT,
    decided_at   TEXT,
    CHECK (from_date <= to_date)
);
CREATE INDEX leaves_employee ON leaves (employee_id, from_date);

-- One row per employee-day, written only by the attendance job layer. status NULL: provisional and pending.
CREATE TABLE attendance (
    employee_id            TEXT NOT NULL,
    work_date              TEXT NOT NULL,
    shift_code             TEXT NOT NULL,
    day_kind               TEXT NOT NULL,
    status                 TEXT,
    provisional            INTEGER NOT NULL,
    closes_at              TEXT NOT NULL,
    in_time                TEXT,
    out_time               TEXT,
    total_work_secs        INTEGER NOT NULL,
    lunch_deducted_secs    INTEGER NOT NULL,
    overtime_secs          INTEGER NOT NULL,
    late_by_secs           INTEGER NOT NULL,
    early_exit_by_secs     INTEGER NOT NULL,
    flags                  TEXT NOT NULL,
    punches_counted        INTEGER NOT NULL,
    punches_collapsed      INTEGER NOT NULL,
    punches_unmatched      INTEGER NOT NULL,
    punches_outside_window INTEGER NOT NULL,
    punches_unapproved     INTEGER NOT NULL,
    leave_kind             TEXT,
    leave_paid             INTEGER,
    sandwich_original      TEXT,
    sandwich_before        TEXT,
    sandwich_after         TEXT,
    explanation            TEXT NOT NULL,
    computed_at            TEXT NOT NULL,
    PRIMARY KEY (employee_id, work_date)
) WITHOUT ROWID;

-- ManDaysAttendance: up to ten IN/OUT slots with their work, and the total.
CREATE TABLE man_days (
    employee_id TEXT NOT NULL,
    work_date   TEXT NOT NULL,
    slot_count  INTEGER NOT NULL,
    in_1 TEXT, out_1 TEXT, work_1_secs INTEGER NOT NULL,
    in_2 TEXT, out_2 TEXT, work_2_secs INTEGER NOT NULL,
    in_3 TEXT, out_3 TEXT, work_3_secs INTEGER NOT NULL,
    in_4 TEXT, out_4 TEXT, work_4_secs INTEGER NOT NULL,
    in_5 TEXT, out_5 TEXT, work_5_secs INTEGER NOT NULL,
    in_6 TEXT, out_6 TEXT, work_6_secs INTEGER NOT NULL,
    in_7 TEXT, out_7 TEXT, work_7_secs INTEGER NOT NULL,
    in_8 TEXT, out_8 TEXT, work_8_secs INTEGER NOT NULL,
    in_9 TEXT, out_9 TEXT, work_9_secs INTEGER NOT NULL,
    in_10 TEXT, out_10 TEXT, work_10_secs INTEGER NOT NULL,
    total_secs  INTEGER NOT NULL,
    PRIMARY KEY (employee_id, work_date)
) WITHOUT ROWID;

-- Where each scheduled job got to, so a rerun continues instead of repeating (and repeating is harmless anyway).
CREATE TABLE attendance_job_marks (
    job        TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    done_until TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (job, site_id)
);

-- A change that re-marks a day (store::attendance's mark_days) bumps `marks`, and the worker deletes a row only when
-- `marks` is still what it claimed. Ingest needs no bump here: SQLite has one writer connection, so a batch never
-- commits between a worker's punch query and its delete.
ALTER TABLE attendance_dirty ADD COLUMN marks INTEGER NOT NULL DEFAULT 1;
