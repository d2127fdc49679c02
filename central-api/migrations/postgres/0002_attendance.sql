-- Attendance model, PostgreSQL flavour. Keep in step with ../sqlite/0002_attendance.sql (same tables, same meaning).
-- Durations are whole seconds (BIGINT); local wall-clock times are TIMESTAMP (no zone), as in all_logs.

-- Per-site attendance settings: which days the sandwich rule may turn into absences.
ALTER TABLE sites ADD COLUMN sandwich TEXT NOT NULL DEFAULT 'off'
    CHECK (sandwich IN ('off', 'week_offs', 'week_offs_and_holidays'));

-- A shift with every field of the attendance rules (see the engine's Shift).
CREATE TABLE shifts (
    code                         TEXT PRIMARY KEY,
    name                         TEXT NOT NULL,
    start_time                   TIME NOT NULL,
    end_time                     TIME NOT NULL,
    grace_late_in_secs           BIGINT NOT NULL,
    grace_early_out_secs         BIGINT NOT NULL,
    min_half_day_secs            BIGINT NOT NULL,
    max_work_for_half_day_secs   BIGINT NOT NULL,
    overtime_before_secs         BIGINT,
    overtime_after_secs          BIGINT,
    deduct_lunch_break           BOOLEAN NOT NULL,
    lunch_break_start            TIME,
    lunch_break_duration_secs    BIGINT NOT NULL,
    check_in_window_secs         BIGINT NOT NULL,
    check_out_window_secs        BIGINT NOT NULL,
    pairing                      TEXT NOT NULL CHECK (pairing IN ('first_last', 'pairs', 'by_state', 'mandays')),
    debounce_secs                BIGINT NOT NULL,
    single_punch                 TEXT NOT NULL CHECK (single_punch IN ('absent', 'half_day', 'present')),
    updated_at                   TIMESTAMPTZ NOT NULL
);

-- Weekly-off rules: `spec` lists weekdays and nth weekdays, e.g. 'sun,sat#2,sat#4,fri#last'.
CREATE TABLE week_off_rules (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- The employee's attendance profile. No shift or no site: no attendance is computed.
ALTER TABLE employees
    ADD COLUMN department TEXT NOT NULL DEFAULT '',
    ADD COLUMN designation TEXT NOT NULL DEFAULT '',
    ADD COLUMN shift_code TEXT REFERENCES shifts (code),
    ADD COLUMN week_off_rule TEXT REFERENCES week_off_rules (code),
    ADD COLUMN date_of_joining DATE,
    ADD COLUMN date_of_leaving DATE;
CREATE INDEX employees_site ON employees (site_id, employee_id);

-- HolidayList entries; site_id NULL: every site.
CREATE TABLE holidays (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    holiday_date DATE NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('public', 'company', 'optional')),
    site_id      TEXT REFERENCES sites (site_id),
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX holidays_date ON holidays (holiday_date);

-- ManualLog: a punch an administrator asks for; only approved ones count.
CREATE TABLE manual_logs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id  TEXT COLLATE "C" NOT NULL REFERENCES employees (employee_id),
    local_time   TIMESTAMP NOT NULL,
    state        SMALLINT NOT NULL,
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    approval     TEXT NOT NULL DEFAULT 'pending' CHECK (approval IN ('pending', 'approved', 'rejected')),
    decided_by   TEXT,
    decided_at   TIMESTAMPTZ
);
CREATE INDEX manual_logs_employee ON manual_logs (employee_id, local_time);

-- Time off covering whole days (from_date..to_date inclusive).
CREATE TABLE leaves (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id  TEXT COLLATE "C" NOT NULL REFERENCES employees (employee_id),
    from_date    DATE NOT NULL,
    to_date      DATE NOT NULL,
    kind         TEXT NOT NULL,
    paid         BOOLEAN NOT NULL,
    approval     TEXT NOT NULL DEFAULT 'pending' CHECK (approval IN ('pending', 'approved', 'rejected')),
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    decided_by   TEXT,
    decided_at   TIMESTAMPTZ,
    CHECK (from_date <= to_date)
);
CREATE INDEX leaves_employee ON leaves (employee_id, from_date);

-- One row per employee-day, written only by the attendance job layer. status NULL: provisional and pending.
CREATE TABLE attendance (
    employee_id            TEXT COLLATE "C" NOT NULL,
    work_date              DATE NOT NULL,
    shift_code             TEXT NOT NULL,
    day_kind               TEXT NOT NULL,
    status                 TEXT,
    provisional            BOOLEAN NOT NULL,
    closes_at              TIMESTAMP NOT NULL,
    in_time                TIMESTAMP,
    out_time               TIMESTAMP,
    total_work_secs        BIGINT NOT NULL,
    lunch_deducted_secs    BIGINT NOT NULL,
    overtime_secs          BIGINT NOT NULL,
    late_by_secs           BIGINT NOT NULL,
    early_exit_by_secs     BIGINT NOT NULL,
    flags                  TEXT NOT NULL,
    punches_counted        BIGINT NOT NULL,
    punches_collapsed      BIGINT NOT NULL,
    punches_unmatched      BIGINT NOT NULL,
    punches_outside_window BIGINT NOT NULL,
    punches_unapproved     BIGINT NOT NULL,
    leave_kind             TEXT,
    leave_paid             BOOLEAN,
    sandwich_original      TEXT,
    sandwich_before        DATE,
    sandwich_after         DATE,
    explanation            TEXT NOT NULL,
    computed_at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (employee_id, work_date)
);

-- ManDaysAttendance: up to ten IN/OUT slots with their work, and the total.
CREATE TABLE man_days (
    employee_id TEXT COLLATE "C" NOT NULL,
    work_date   DATE NOT NULL,
    slot_count  BIGINT NOT NULL,
    in_1 TIMESTAMP, out_1 TIMESTAMP, work_1_secs BIGINT NOT NULL,
    in_2 TIMESTAMP, out_2 TIMESTAMP, work_2_secs BIGINT NOT NULL,
    in_3 TIMESTAMP, out_3 TIMESTAMP, work_3_secs BIGINT NOT NULL,
    in_4 TIMESTAMP, out_4 TIMESTAMP, work_4_secs BIGINT NOT NULL,
    in_5 TIMESTAMP, out_5 TIMESTAMP, work_5_secs BIGINT NOT NULL,
    in_6 TIMESTAMP, out_6 TIMESTAMP, work_6_secs BIGINT NOT NULL,
    in_7 TIMESTAMP, out_7 TIMESTAMP, work_7_secs BIGINT NOT NULL,
    in_8 TIMESTAMP, out_8 TIMESTAMP, work_8_secs BIGINT NOT NULL,
    in_9 TIMESTAMP, out_9 TIMESTAMP, work_9_secs BIGINT NOT NULL,
    in_10 TIMESTAMP, out_10 TIMESTAMP, work_10_secs BIGINT NOT NULL,
    total_secs  BIGINT NOT NULL,
    PRIMARY KEY (employee_id, work_date)
);

-- Where each scheduled job got to, so a rerun continues instead of repeating (and repeating is harmless anyway).
CREATE TABLE attendance_job_marks (
    job        TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    done_until TIMESTAMP NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job, site_id)
);

-- A change that re-marks a day (store::attendance's mark_days) bumps `marks`, and the worker deletes a row only when
-- `marks` is still what it claimed. Ingest does not bump: it keeps the row locked until its batch commits, and every
-- reader that may delete a row (the worker's claim, a bulk job's dirty_within) locks it first, so a batch either
-- commits before the reader's punch query or re-inserts the row after the reader's delete.
ALTER TABLE attendance_dirty ADD COLUMN marks BIGINT NOT NULL DEFAULT 1;
