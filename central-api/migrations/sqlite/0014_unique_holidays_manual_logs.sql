-- Holidays and manual logs get the unique keys that backups merge on (a holiday: its site, date and name; a manual log:
-- its employee, local time and state), so two rows can no longer claim one key. Rows already duplicated are folded
-- into one first: for holidays the oldest row stays; for manual logs the most decided one (approved, then pending,
-- then rejected), then the oldest.
DELETE FROM holidays
 WHERE EXISTS (SELECT 1 FROM holidays k
                WHERE COALESCE(k.site_id, '') = COALESCE(holidays.site_id, '')
                  AND k.holiday_date = holidays.holiday_date AND k.name = holidays.name AND k.id < holidays.id);
CREATE UNIQUE INDEX holidays_key ON holidays (COALESCE(site_id, ''), holiday_date, name);

DELETE FROM manual_logs
 WHERE EXISTS (SELECT 1 FROM manual_logs k
                WHERE k.employee_id = manual_logs.employee_id AND k.local_time = manual_logs.local_time
                  AND k.state = manual_logs.state
                  AND (CASE k.approval WHEN 'approved' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, k.id)
                    < (CASE manual_logs.approval WHEN 'approved' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END,
                       manual_logs.id));
CREATE UNIQUE INDEX manual_logs_key ON manual_logs (employee_id, local_time, state);
