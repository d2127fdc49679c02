-- Holidays and manual logs get the unique keys that backups merge on (a holiday: its site, date and name; a manual log:
-- its employee, local time and state), so two rows can no longer claim one key. Rows already duplicated are folded
-- into one first: for holidays the oldest row stays; for manual logs the most decided one (approved, then pending,
-- then rejected), then the oldest.
DELETE FROM holidays h USING holidays k
 WHERE COALESCE(h.site_id, '') = COALESCE(k.site_id, '')
   AND h.holiday_date = k.holiday_date AND h.name = k.name AND h.id > k.id;
CREATE UNIQUE INDEX holidays_key ON holidays ((COALESCE(site_id, '')), holiday_date, name);

DELETE FROM manual_logs m USING manual_logs k
 WHERE k.employee_id = m.employee_id AND k.local_time = m.local_time AND k.state = m.state
   AND (CASE k.approval WHEN 'approved' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END,  k.id)
     < (CASE m.approval WHEN 'approved' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, m.id);
CREATE UNIQUE INDEX manual_logs_key ON manual_logs (employee_id, local_time, state);
