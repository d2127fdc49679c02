//! Administrative records: sites, agents and their token hashes, devices, employees, administrators, and the list of
//! PINs that punched but match no employee.
//!
//! Employee identity: an employee's `employee_id` is the PIN enrolled on every device, unique across the whole
//! organisation. A punch belongs to the employee whose id equals its PIN; a PIN with no employee is kept and listed by
//! [`Store::unknown_pins`] until someone creates the employee.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::{on_pool, on_reader, Store, StoreError};

/// A site as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    pub site_id: String,
    pub name: String,
    pub time_zone: String,
}

/// What the token check needs to know about an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub agent_id: String,
    pub site_id: String,
    pub token_hash: Vec<u8>,
    pub revoked: bool,
}

/// A device (BiometricDeviceConfiguration) to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewDevice {
    pub serial: String,
    pub site_id: String,
    pub name: String,
    pub model: Option<String>,
    pub ip: Option<String>,
    pub port: Option<u16>,
    /// The driver that reads it: `zk-tcp`, `zk-udp`, `adms`, `serial`, `modbus`, ...
    pub kind: String,
    /// IANA zone of the device's clock.
    pub time_zone: String,
    /// `IN`, `OUT` or `BOTH`.
    pub direction: String,
}

/// Device statuses an administrator can set: `active` devices are read; an `inactive` one is kept for its history.
pub const DEVICE_STATUSES: [&str; 2] = ["active", "inactive"];

/// A registered device as stored, with its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    pub device: NewDevice,
    /// One of [`DEVICE_STATUSES`].
    pub status: String,
}

/// serial, site_id, name, model, ip, port, kind, time_zone, direction, status.
type DeviceRow = (String, String, String, Option<String>, Option<String>, Option<i32>, String, String, String, String);

/// A PIN seen in punches with no matching employee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnknownPin {
    pub pin: String,
    pub site_id: String,
    pub punches: i64,
    #[schema(value_type = crate::http::api::local_time::LocalDateTime)]
    pub first_local_time: NaiveDateTime,
    #[schema(value_type = crate::http::api::local_time::LocalDateTime)]
    pub last_local_time: NaiveDateTime,
}

/// An administrator's stored credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRecord {
    pub username: String,
    pub password_hash: String,
    pub role: String,
}

/// agent_id, site_id, token_hash, revoked_at.
type AgentRow = (String, String, Vec<u8>, Option<DateTime<Utc>>);

fn insert_error(e: sqlx::Error, what: &'static str, id: &str) -> StoreError {
    let e = StoreError::from(e);
    if e.unique_violation() {
        StoreError::AlreadyExists { what, id: id.to_owned() }
    } else {
        e
    }
}

impl Store {
    /// Creates a site.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when the id is taken.
    pub async fn create_site(&self, site_id: &str, name: &str, time_zone: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO sites (site_id, name, time_zone, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(site_id)
        .bind(name)
        .bind(time_zone)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| insert_error(e, "site", site_id))?;
        Ok(())
    }

    /// The site with this id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn site(&self, site_id: &str) -> Result<Option<Site>, StoreError> {
        let row: Option<(String, String, String)> =
            on_reader!(self, |pool| sqlx::query_as("SELECT site_id, name, time_zone FROM sites WHERE site_id = $1")
                .bind(site_id)
                .fetch_optional(pool)
                .await)?;
        Ok(row.map(|(site_id, name, time_zone)| Site { site_id, name, time_zone }))
    }

    /// Creates an agent bound to an existing site, with the SHA-256 of its token's secret.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown site, [`StoreError::AlreadyExists`] when the id is taken.
    pub async fn create_agent(&self, agent_id: &str, site_id: &str, token_hash: &[u8]) -> Result<(), StoreError> {
        if self.site(site_id).await?.is_none() {
            return Err(StoreError::NotFound { what: "site", id: site_id.to_owned() });
        }
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO agents (agent_id, site_id, token_hash, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(agent_id)
        .bind(site_id)
        .bind(token_hash)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| insert_error(e, "agent", agent_id))?;
        Ok(())
    }

    /// Revokes an agent's token; its requests are refused from then on (after the auth cache's lifetime).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown agent.
    pub async fn revoke_agent(&self, agent_id: &str) -> Result<(), StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE agents SET revoked_at = $1 WHERE agent_id = $2 AND revoked_at IS NULL"
        )
        .bind(Utc::now())
        .bind(agent_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 0 && self.agent(agent_id).await?.is_none() {
            return Err(StoreError::NotFound { what: "agent", id: agent_id.to_owned() });
        }
        Ok(())
    }

    /// The agent with this id, revoked or not.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn agent(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let row: Option<AgentRow> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT agent_id, site_id, token_hash, revoked_at FROM agents WHERE agent_id = $1"
        )
        .bind(agent_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(agent_id, site_id, token_hash, revoked_at)| AgentRecord {
            agent_id,
            site_id,
            token_hash,
            revoked: revoked_at.is_some(),
        }))
    }

    /// Registers a device on an existing site. A device registered there automatically (unconfirmed, when an agent
    /// first named it) takes these settings and is confirmed.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown site, [`StoreError::AlreadyExists`] for a serial already registered.
    pub async fn add_device(&self, device: &NewDevice) -> Result<(), StoreError> {
        if self.site(&device.site_id).await?.is_none() {
            return Err(StoreError::NotFound { what: "site", id: device.site_id.clone() });
        }
        let done = on_pool!(self, |pool| sqlx::query(
            "INSERT INTO devices (serial, site_id, name, model, ip, port, kind, time_zone, direction, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (serial) DO UPDATE SET name = excluded.name, model = excluded.model, ip = excluded.ip, \
             port = excluded.port, kind = excluded.kind, time_zone = excluded.time_zone, \
             direction = excluded.direction, confirmed = excluded.confirmed \
             WHERE devices.confirmed = $11 AND devices.site_id = excluded.site_id"
        )
        .bind(&device.serial)
        .bind(&device.site_id)
        .bind(&device.name)
        .bind(&device.model)
        .bind(&device.ip)
        .bind(device.port.map(i32::from))
        .bind(&device.kind)
        .bind(&device.time_zone)
        .bind(&device.direction)
        .bind(Utc::now())
        .bind(false)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| insert_error(e, "device", &device.serial))?;
        if done == 0 {
            return Err(StoreError::AlreadyExists { what: "device", id: device.serial.clone() });
        }
        Ok(())
    }

    /// The device with this serial.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn device(&self, serial: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row: Option<DeviceRow> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT serial, site_id, name, model, ip, port, kind, time_zone, direction, status FROM devices \
             WHERE serial = $1"
        )
        .bind(serial)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(serial, site_id, name, model, ip, port, kind, time_zone, direction, status)| DeviceRecord {
            device: NewDevice {
                serial,
                site_id,
                name,
                model,
                ip,
                port: port.and_then(|p| u16::try_from(p).ok()),
                kind,
                time_zone,
                direction,
            },
            status,
        }))
    }

    /// Replaces a device's settings (everything but its serial and site) and confirms it (an automatically
    /// registered device stays unconfirmed until an administrator changes it). The device's punches are not touched:
    /// each stored punch keeps the direction and times it was read with.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a status not in [`DEVICE_STATUSES`], [`StoreError::NotFound`] for an unknown
    /// serial.
    pub async fn update_device(&self, change: &DeviceRecord) -> Result<(), StoreError> {
        if !DEVICE_STATUSES.contains(&change.status.as_str()) {
            return Err(StoreError::Invalid(format!("status: {:?} is not active or inactive", change.status)));
        }
        let d = &change.device;
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE devices SET name = $2, model = $3, ip = $4, port = $5, kind = $6, time_zone = $7, \
             direction = $8, status = $9, confirmed = $10 WHERE serial = $1"
        )
        .bind(&d.serial)
        .bind(&d.name)
        .bind(&d.model)
        .bind(&d.ip)
        .bind(d.port.map(i32::from))
        .bind(&d.kind)
        .bind(&d.time_zone)
        .bind(&d.direction)
        .bind(&change.status)
        .bind(true)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound { what: "device", id: d.serial.clone() });
        }
        Ok(())
    }

    /// Creates an employee whose id is their PIN on every device.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown site, [`StoreError::AlreadyExists`] for an id already taken.
    pub async fn add_employee(&self, employee_id: &str, name: &str, site_id: Option<&str>) -> Result<(), StoreError> {
        if let Some(site) = site_id {
            if self.site(site).await?.is_none() {
                return Err(StoreError::NotFound { what: "site", id: site.to_owned() });
            }
        }
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO employees (employee_id, name, site_id, active, created_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(employee_id)
        .bind(name)
        .bind(site_id)
        .bind(true)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| insert_error(e, "employee", employee_id))?;
        Ok(())
    }

    /// PINs that have punches but no employee, per site, with how many punches and when.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn unknown_pins(&self) -> Result<Vec<UnknownPin>, StoreError> {
        let rows: Vec<(String, String, i64, NaiveDateTime, NaiveDateTime)> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT l.pin, l.site_id, count(*), min(l.local_time), max(l.local_time) FROM all_logs l \
             WHERE NOT EXISTS (SELECT 1 FROM employees e WHERE e.employee_id = l.pin) \
             GROUP BY l.pin, l.site_id ORDER BY l.site_id, l.pin"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(pin, site_id, punches, first_local_time, last_local_time)| UnknownPin {
                pin,
                site_id,
                punches,
                first_local_time,
                last_local_time,
            })
            .collect())
    }

    /// Creates an administrator with an argon2id PHC hash.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when the username is taken.
    pub async fn create_admin(&self, username: &str, password_hash: &str, role: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO admins (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(username)
        .bind(password_hash)
        .bind(role)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| insert_error(e, "admin", username))?;
        Ok(())
    }

    /// The administrator with this username.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn admin(&self, username: &str) -> Result<Option<AdminRecord>, StoreError> {
        let row: Option<(String, String, String)> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT username, password_hash, role FROM admins WHERE username = $1"
        )
        .bind(username)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(username, password_hash, role)| AdminRecord { username, password_hash, role }))
    }
}
