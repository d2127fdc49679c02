-- Backups (issue 15), PostgreSQL flavour. Keep in step with ../sqlite/0010_backup_change_times.sql.
-- When a site, device or employee last changed, so an incremental backup carries the change. Triggers set it, so
-- every path that updates these tables is covered; NULL means unchanged since created_at.
ALTER TABLE sites ADD COLUMN updated_at TIMESTAMPTZ;
ALTER TABLE devices ADD COLUMN updated_at TIMESTAMPTZ;
ALTER TABLE employees ADD COLUMN updated_at TIMESTAMPTZ;

CREATE FUNCTION backup_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END;
$$;
CREATE TRIGGER sites_updated_at BEFORE UPDATE ON sites
    FOR EACH ROW EXECUTE FUNCTION backup_touch_updated_at();
CREATE TRIGGER devices_updated_at BEFORE UPDATE ON devices
    FOR EACH ROW EXECUTE FUNCTION backup_touch_updated_at();
CREATE TRIGGER employees_updated_at BEFORE UPDATE ON employees
    FOR EACH ROW EXECUTE FUNCTION backup_touch_updated_at();
