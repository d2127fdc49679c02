-- Backups (issue 15), SQLite flavour. Keep in step with ../postgres/0010_backup_change_times.sql.
-- When a site, device or employee last changed, so an incremental backup carries the change. Triggers set it, so
-- every path that updates these tables is covered; NULL means unchanged since created_at. The text has the form
-- sqlx writes instants in (RFC 3339, +00:00), so it compares with them as text.
ALTER TABLE sites ADD COLUMN updated_at TEXT;
ALTER TABLE devices ADD COLUMN updated_at TEXT;
ALTER TABLE employees ADD COLUMN updated_at TEXT;

CREATE TRIGGER sites_updated_at AFTER UPDATE ON sites FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE sites SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE site_id = NEW.site_id;
END;
CREATE TRIGGER devices_updated_at AFTER UPDATE ON devices FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE devices SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE serial = NEW.serial;
END;
CREATE TRIGGER employees_updated_at AFTER UPDATE ON employees FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE employees SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
    WHERE employee_id = NEW.employee_id;
END;
