//! Running sites from the central office (migration `0012_fleet.sql`): devices with their driver settings and the
//! site's configuration version, how each agent was last heard from, commands with their history, and which devices
//! hold which employees.
//!
//! Every change of a site's devices increments the site's configuration version in the same transaction, so an agent
//! running version `n` runs exactly the devices central had at `n`. A command moves `pending -> delivered ->
//! done | failed` (or `pending -> expired`) only through the conditional updates here, so two replicas never hand
//! out the same pending command as new twice, and a result is taken only from the agent the command is for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::admin::{DeviceRecord, NewDevice, DEVICE_STATUSES};
use super::{on_pool, on_reader, on_tx, Store, StoreError, Tx};

/// A device with everything the managed configuration needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedDeviceRecord {
    #[serde(flatten)]
    pub record: DeviceRecord,
    /// The JSON object of driver settings (the agent's `[[device]]` keys beyond the columns).
    pub settings_json: String,
    /// The agent that reads the device (`None`: every agent of the site).
    pub agent_id: Option<String>,
}

/// How an agent was last heard from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentLink {
    pub agent_id: String,
    pub site_id: String,
    /// `https` or `mqtt`.
    pub transport: String,
    pub managed: bool,
    pub config_version: Option<i64>,
    pub seen_at: DateTime<Utc>,
}

/// One command with its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CommandRecord {
    pub id: i64,
    pub agent_id: String,
    pub site_id: String,
    pub device_serial: Option<String>,
    /// `sync_clock`, `pull_now`, ... ([`protocol::CommandAction::name`]).
    pub action: String,
    /// The action as sent (JSON).
    #[schema(value_type = Object)]
    pub action_detail: serde_json::Value,
    /// `pending`, `delivered`, `done`, `failed` or `expired`.
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub deliveries: i64,
    pub finished_at: Option<DateTime<Utc>>,
    /// What the agent said (or why it expired).
    pub detail: Option<String>,
    /// For a command that wrote users: which were written and which the device refused, and why.
    pub user_outcome: Option<UserOutcome>,
}

/// Per user, how a command that wrote users went (`fleet::users` builds it from the users the command carried and
/// the agent's [`protocol::UsersReport`]). The command is `done` when some were written, with `partial` set when
/// others were refused; `failed` when none was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserOutcome {
    /// PINs written (added or replaced).
    pub written: Vec<String>,
    /// PINs refused, with the reason.
    #[schema(value_type = Vec<Object>)]
    pub refused: Vec<protocol::UserRefusal>,
    /// Refusals the agent counted but could not list (its report is bounded); their PINs are in neither list.
    pub unlisted: u32,
    /// Some users were written and others refused.
    pub partial: bool,
}

/// A command to create.
#[derive(Debug, Clone)]
pub struct NewCommand {
    pub agent_id: String,
    pub site_id: String,
    pub device_serial: Option<String>,
    pub action: protocol::CommandAction,
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
}

/// A device that holds an employee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HeldBy {
    pub device_serial: String,
    pub site_id: Option<String>,
    pub name: String,
    pub pushed_at: DateTime<Utc>,
    pub command_id: i64,
}

const COMMAND_COLUMNS: &str = "id, agent_id, site_id, device_serial, action, action_json, state, created_at, \
    created_by, expires_at, delivered_at, deliveries, finished_at, detail, user_outcome_json";

type CommandRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    DateTime<Utc>,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    i64,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
);

fn command_of(row: CommandRow) -> CommandRecord {
    let (id, agent_id, site_id, device_serial, action, json, state, created_at, created_by, expires_at, delivered_at) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10);
    CommandRecord {
        id,
        agent_id,
        site_id,
        device_serial,
        action,
        action_detail: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
        state,
        created_at,
        created_by,
        expires_at,
        delivered_at,
        deliveries: row.11,
        finished_at: row.12,
        detail: row.13,
        user_outcome: row.14.and_then(|json| serde_json::from_str(&json).ok()),
    }
}

impl CommandRecord {
    /// The action as the protocol carries it.
    pub fn action(&self) -> Option<protocol::CommandAction> {
        serde_json::from_value(self.action_detail.clone()).ok()
    }

    /// Whether the command wrote some users and the device refused others.
    pub fn partial(&self) -> bool {
        self.user_outcome.as_ref().is_some_and(|o| o.partial)
    }
}

/// serial, site_id, name, model, ip, port, kind, time_zone, direction, status, settings_json, agent_id.
type FullRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i32>,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

const FULL_COLUMNS: &str =
    "serial, site_id, name, model, ip, port, kind, time_zone, direction, status, settings_json, agent_id";

fn full_of(row: FullRow) -> ManagedDeviceRecord {
    let (serial, site_id, name, model, ip, port, kind, time_zone, direction, status, settings_json, agent_id) = row;
    ManagedDeviceRecord {
        record: DeviceRecord {
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
        },
        settings_json,
        agent_id,
    }
}

/// Increments the site's configuration version inside `tx`; returns the new version.
async fn bump_version(tx: &mut Tx, site: &str) -> Result<i64, StoreError> {
    let version: (i64,) = on_tx!(tx, |conn| sqlx::query_as(
        "INSERT INTO site_config_versions (site_id, version) VALUES ($1, 1) \
         ON CONFLICT (site_id) DO UPDATE SET version = site_config_versions.version + 1 RETURNING version"
    )
    .bind(site)
    .fetch_one(&mut *conn)
    .await?);
    Ok(version.0)
}

fn insert_error(e: sqlx::Error, serial: &str) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::AlreadyExists { what: "device", id: serial.to_owned() }
        }
        other => StoreError::Database(other),
    }
}

impl Store {
    /// A device with its settings and agent.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn managed_device(&self, serial: &str) -> Result<Option<ManagedDeviceRecord>, StoreError> {
        let sql = format!("SELECT {FULL_COLUMNS} FROM devices WHERE serial = $1");
        let row: Option<FullRow> =
            on_reader!(self, |pool| sqlx::query_as(&sql).bind(serial).fetch_optional(pool).await)?;
        Ok(row.map(full_of))
    }

    /// Registers a device with its settings; the site's configuration version goes up. Returns the new version.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] for a serial already registered, [`StoreError::Database`].
    pub async fn add_managed_device(&self, device: &ManagedDeviceRecord) -> Result<i64, StoreError> {
        let d = &device.record.device;
        let mut tx = self.begin().await?;
        let registered = on_tx!(&mut tx, |conn| sqlx::query(
            "INSERT INTO devices (serial, site_id, name, model, ip, port, kind, time_zone, direction, status, \
             created_at, settings_json, agent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (serial) DO UPDATE SET name = excluded.name, model = excluded.model, ip = excluded.ip, \
             port = excluded.port, kind = excluded.kind, time_zone = excluded.time_zone, \
             direction = excluded.direction, status = excluded.status, settings_json = excluded.settings_json, \
             agent_id = excluded.agent_id, confirmed = $14 \
             WHERE devices.confirmed = $15 AND devices.site_id = excluded.site_id"
        )
        .bind(&d.serial)
        .bind(&d.site_id)
        .bind(&d.name)
        .bind(&d.model)
        .bind(&d.ip)
        .bind(d.port.map(i32::from))
        .bind(&d.kind)
        .bind(&d.time_zone)
        .bind(&d.direction)
        .bind(&device.record.status)
        .bind(Utc::now())
        .bind(&device.settings_json)
        .bind(&device.agent_id)
        // A device first seen in punches (unconfirmed, at this site) takes these settings and is confirmed.
        .bind(true)
        .bind(false)
        .execute(&mut *conn)
        .await
        .map_err(|e| insert_error(e, &d.serial))?
        .rows_affected());
        if registered == 0 {
            return Err(StoreError::AlreadyExists { what: "device", id: d.serial.clone() });
        }
        let version = bump_version(&mut tx, &d.site_id).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Replaces a device's settings (not its serial or site); the site's configuration version goes up.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Invalid`] for an unknown status, [`StoreError::Database`].
    pub async fn update_managed_device(&self, device: &ManagedDeviceRecord) -> Result<i64, StoreError> {
        if !DEVICE_STATUSES.contains(&device.record.status.as_str()) {
            return Err(StoreError::Invalid(format!("status: {:?} is not active or inactive", device.record.status)));
        }
        let d = &device.record.device;
        let mut tx = self.begin().await?;
        let done = on_tx!(&mut tx, |conn| sqlx::query(
            "UPDATE devices SET name = $2, model = $3, ip = $4, port = $5, kind = $6, time_zone = $7, \
             direction = $8, status = $9, settings_json = $10, agent_id = $11, confirmed = $13 \
             WHERE serial = $1 AND site_id = $12"
        )
        .bind(&d.serial)
        .bind(&d.name)
        .bind(&d.model)
        .bind(&d.ip)
        .bind(d.port.map(i32::from))
        .bind(&d.kind)
        .bind(&d.time_zone)
        .bind(&d.direction)
        .bind(&device.record.status)
        .bind(&device.settings_json)
        .bind(&device.agent_id)
        .bind(&d.site_id)
        // An administrator's change confirms a device first seen in punches.
        .bind(true)
        .execute(&mut *conn)
        .await?
        .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound { what: "device", id: d.serial.clone() });
        }
        let version = bump_version(&mut tx, &d.site_id).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Removes a device from the registry (its punches stay); the site's configuration version goes up.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Database`].
    pub async fn delete_device(&self, serial: &str, site: &str) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let done = on_tx!(&mut tx, |conn| sqlx::query("DELETE FROM devices WHERE serial = $1 AND site_id = $2")
            .bind(serial)
            .bind(site)
            .execute(&mut *conn)
            .await?
            .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound { what: "device", id: serial.to_owned() });
        }
        on_tx!(&mut tx, |conn| sqlx::query("DELETE FROM device_users WHERE device_serial = $1")
            .bind(serial)
            .execute(&mut *conn)
            .await?
            .rows_affected());
        let version = bump_version(&mut tx, site).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Marks a change of the site's devices made elsewhere (the older device endpoints): the version goes up.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn bump_config_version(&self, site: &str) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let version = bump_version(&mut tx, site).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// The site's configuration version (0 before its first device change).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn config_version(&self, site: &str) -> Result<i64, StoreError> {
        let row: Option<(i64,)> =
            on_reader!(self, |pool| sqlx::query_as("SELECT version FROM site_config_versions WHERE site_id = $1")
                .bind(site)
                .fetch_optional(pool)
                .await)?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// The site's configuration version and the active devices `agent` reads (assigned to it, or to no agent), in
    /// serial order, read together.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn agent_devices(&self, site: &str, agent: &str) -> Result<(i64, Vec<ManagedDeviceRecord>), StoreError> {
        let mut tx = self.begin().await?;
        let version: Option<(i64,)> =
            on_tx!(&mut tx, |conn| sqlx::query_as("SELECT version FROM site_config_versions WHERE site_id = $1")
                .bind(site)
                .fetch_optional(&mut *conn)
                .await?);
        let sql = format!(
            "SELECT {FULL_COLUMNS} FROM devices WHERE site_id = $1 AND status = 'active' \
             AND (agent_id IS NULL OR agent_id = $2) ORDER BY serial"
        );
        let rows: Vec<FullRow> =
            on_tx!(&mut tx, |conn| sqlx::query_as(&sql).bind(site).bind(agent).fetch_all(&mut *conn).await?);
        tx.commit().await?;
        Ok((version.map_or(0, |v| v.0), rows.into_iter().map(full_of).collect()))
    }

    /// Records how an agent was heard from (on every status and poll).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn record_link(
        &self,
        agent: &str,
        site: &str,
        transport: &str,
        config_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let version = config_version.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO agent_links (agent_id, site_id, transport, managed, config_version, seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agent_id) DO UPDATE SET site_id = excluded.site_id, \
             transport = excluded.transport, managed = excluded.managed, config_version = excluded.config_version, \
             seen_at = excluded.seen_at"
        )
        .bind(agent)
        .bind(site)
        .bind(transport)
        .bind(version.is_some())
        .bind(version)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// How `agent` was last heard from.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn agent_link(&self, agent: &str) -> Result<Option<AgentLink>, StoreError> {
        type Row = (String, String, String, bool, Option<i64>, DateTime<Utc>);
        let row: Option<Row> = on_reader!(self, |pool| {
            sqlx::query_as(
            "SELECT agent_id, site_id, transport, managed, config_version, seen_at FROM agent_links WHERE agent_id = $1"
        )
        .bind(agent)
        .fetch_optional(pool)
        .await
        })?;
        Ok(row.map(|(agent_id, site_id, transport, managed, config_version, seen_at)| AgentLink {
            agent_id,
            site_id,
            transport,
            managed,
            config_version,
            seen_at,
        }))
    }

    /// Managed MQTT agents (not revoked) that run another configuration version than their site's and were not sent
    /// that version since `resend_before`: `(agent, site, version)`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn stale_mqtt_agents(
        &self,
        resend_before: DateTime<Utc>,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        on_reader!(self, |pool| sqlx::query_as(
            "SELECT l.agent_id, l.site_id, COALESCE(v.version, 0) FROM agent_links l \
             JOIN agents a ON a.agent_id = l.agent_id AND a.revoked_at IS NULL AND a.site_id = l.site_id \
             LEFT JOIN site_config_versions v ON v.site_id = l.site_id \
             WHERE l.transport = 'mqtt' AND l.managed AND COALESCE(l.config_version, -1) <> COALESCE(v.version, 0) \
             AND (COALESCE(l.config_sent_version, -1) <> COALESCE(v.version, 0) OR l.config_sent_at IS NULL \
                  OR l.config_sent_at < $1)"
        )
        .bind(resend_before)
        .fetch_all(pool)
        .await)
        .map_err(StoreError::from)
    }

    /// Claims sending configuration `version` to `agent` (false when another replica did since `resend_before`).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn claim_config_send(
        &self,
        agent: &str,
        version: i64,
        resend_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE agent_links SET config_sent_version = $2, config_sent_at = $3 WHERE agent_id = $1 \
             AND (COALESCE(config_sent_version, -1) <> $2 OR config_sent_at IS NULL OR config_sent_at < $4)"
        )
        .bind(agent)
        .bind(version)
        .bind(Utc::now())
        .bind(resend_before)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Stores a new pending command; returns its id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn create_command(&self, command: &NewCommand) -> Result<i64, StoreError> {
        let json = serde_json::to_string(&command.action)
            .map_err(|e| StoreError::Invalid(format!("cannot serialise the command: {e}")))?;
        let id: (i64,) = on_pool!(self, |pool| {
            sqlx::query_as(
            "INSERT INTO agent_commands (agent_id, site_id, device_serial, action, action_json, state, created_at, \
             created_by, expires_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8) RETURNING id"
        )
        .bind(&command.agent_id)
        .bind(&command.site_id)
        .bind(&command.device_serial)
        .bind(command.action.name())
        .bind(json)
        .bind(Utc::now())
        .bind(&command.created_by)
        .bind(command.expires_at)
        .fetch_one(pool)
        .await
        })?;
        Ok(id.0)
    }

    /// Moves pending commands whose expiry passed to `expired`; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn expire_commands(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE agent_commands SET state = 'expired', finished_at = $1, \
             detail = 'expired before it was delivered to the agent' WHERE state = 'pending' AND expires_at <= $1"
        )
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// Hands out `agent`'s commands: pending ones not expired, and delivered ones without a result last handed out
    /// before `redeliver_before` (a lost answer; the agent carries out each id once), at most `limit`, oldest first.
    /// Each one returned is marked delivered.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn claim_commands(
        &self,
        agent: &str,
        now: DateTime<Utc>,
        redeliver_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        let sql = format!(
            "SELECT {COMMAND_COLUMNS} FROM agent_commands WHERE agent_id = $1 AND \
             ((state = 'pending' AND expires_at > $2) OR \
              (state = 'delivered' AND last_delivered_at < $3 AND deliveries < 20)) ORDER BY id LIMIT $4"
        );
        let rows: Vec<CommandRow> = on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(agent)
            .bind(now)
            .bind(redeliver_before)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        let mut claimed = Vec::new();
        for row in rows {
            let command = command_of(row);
            if self.mark_delivered(command.id, &command.state, now).await? {
                claimed.push(command);
            }
        }
        Ok(claimed)
    }

    /// Pending, unexpired commands of agents last heard over MQTT, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn pending_mqtt_commands(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        let sql = format!(
            "SELECT {COMMAND_COLUMNS} FROM agent_commands WHERE state = 'pending' AND expires_at > $1 AND agent_id IN \
             (SELECT agent_id FROM agent_links WHERE transport = 'mqtt') ORDER BY id LIMIT $2"
        );
        let rows: Vec<CommandRow> =
            on_reader!(self, |pool| sqlx::query_as(&sql).bind(now).bind(limit).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(command_of).collect())
    }

    /// Marks a command delivered if it is still in `state` (false: someone else moved it).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn mark_delivered(&self, id: i64, state: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE agent_commands SET state = 'delivered', delivered_at = COALESCE(delivered_at, $2), \
             last_delivered_at = $2, deliveries = deliveries + 1 WHERE id = $1 AND state = $3"
        )
        .bind(id)
        .bind(now)
        .bind(state)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Records a result `agent` reported, with the per-user outcome of a command that wrote users (in the same
    /// statement, so whoever sees the command finished sees its outcome); only for its own commands that have none
    /// yet. Returns the finished command when it did.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn finish_command(
        &self,
        agent: &str,
        result: &protocol::CommandResult,
        outcome: Option<&UserOutcome>,
    ) -> Result<Option<CommandRecord>, StoreError> {
        let Ok(id) = i64::try_from(result.command_id) else { return Ok(None) };
        let outcome = outcome.map(|o| serde_json::to_string(o).unwrap_or_default());
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE agent_commands SET state = $3, finished_at = $4, detail = $5, user_outcome_json = $6 \
             WHERE id = $1 AND agent_id = $2 AND state IN ('pending', 'delivered')"
        )
        .bind(id)
        .bind(agent)
        .bind(if result.ok { "done" } else { "failed" })
        .bind(result.finished_at)
        .bind(&result.detail)
        .bind(&outcome)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Ok(None);
        }
        self.command(id).await
    }

    /// One command.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn command(&self, id: i64) -> Result<Option<CommandRecord>, StoreError> {
        let sql = format!("SELECT {COMMAND_COLUMNS} FROM agent_commands WHERE id = $1");
        let row: Option<CommandRow> = on_pool!(self, |pool| sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(command_of))
    }

    /// Commands of the sites `scope` sees (all for `None`), newest first, filtered by site, device and state.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_commands(
        &self,
        scope: Option<&str>,
        site: Option<&str>,
        device: Option<&str>,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        let sql = format!(
            "SELECT {COMMAND_COLUMNS} FROM agent_commands WHERE ($1 IS NULL OR site_id IN \
             (SELECT site_id FROM admin_sites WHERE username = $1)) AND ($2 IS NULL OR site_id = $2) \
             AND ($3 IS NULL OR device_serial = $3) AND ($4 IS NULL OR state = $4) ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<CommandRow> = on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(scope)
            .bind(site)
            .bind(device)
            .bind(state)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(command_of).collect())
    }

    /// Records that `device` holds these `(pin, name)` after command `command_id`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn record_device_users(
        &self,
        device: &str,
        users: &[(String, String)],
        command_id: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for (pin, name) in users {
            on_tx!(&mut tx, |conn| {
                sqlx::query(
                "INSERT INTO device_users (device_serial, pin, name, command_id, pushed_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device_serial, pin) DO UPDATE SET name = excluded.name, \
                 command_id = excluded.command_id, pushed_at = excluded.pushed_at"
            )
            .bind(device)
            .bind(pin)
            .bind(name)
            .bind(command_id)
            .bind(Utc::now())
            .execute(&mut *conn)
            .await?
            .rows_affected()
            });
        }
        tx.commit().await
    }

    /// Records that `device` no longer holds these PINs.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn remove_device_users(&self, device: &str, pins: &[String]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for pin in pins {
            on_tx!(&mut tx, |conn| sqlx::query("DELETE FROM device_users WHERE device_serial = $1 AND pin = $2")
                .bind(device)
                .bind(pin)
                .execute(&mut *conn)
                .await?
                .rows_affected());
        }
        tx.commit().await
    }

    /// The devices holding `pin`, as pushes and removals left them.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn devices_holding(&self, pin: &str) -> Result<Vec<HeldBy>, StoreError> {
        type Row = (String, Option<String>, String, DateTime<Utc>, i64);
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT u.device_serial, d.site_id, u.name, u.pushed_at, u.command_id FROM device_users u \
             LEFT JOIN devices d ON d.serial = u.device_serial WHERE u.pin = $1 ORDER BY u.device_serial"
        )
        .bind(pin)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(device_serial, site_id, name, pushed_at, command_id)| HeldBy {
                device_serial,
                site_id,
                name,
                pushed_at,
                command_id,
            })
            .collect())
    }

    /// The agents that read `serial` at `site`: its assigned agent; else the agent that last reported it; else
    /// every agent of the site that is not revoked.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn agents_of_device(&self, serial: &str, site: &str) -> Result<Vec<String>, StoreError> {
        let live = self.site_agents(site).await?;
        let assigned: Option<(Option<String>,)> =
            on_reader!(self, |pool| sqlx::query_as("SELECT agent_id FROM devices WHERE serial = $1 AND site_id = $2")
                .bind(serial)
                .bind(site)
                .fetch_optional(pool)
                .await)?;
        if let Some(agent) = assigned.and_then(|a| a.0).filter(|a| live.contains(a)) {
            return Ok(vec![agent]);
        }
        let reported: Option<(String,)> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT agent_id FROM device_status WHERE device_serial = $1 AND site_id = $2"
        )
        .bind(serial)
        .bind(site)
        .fetch_optional(pool)
        .await)?;
        if let Some(agent) = reported.map(|r| r.0).filter(|a| live.contains(a)) {
            return Ok(vec![agent]);
        }
        Ok(live)
    }

    /// The site's agents that are not revoked.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn site_agents(&self, site: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT agent_id FROM agents WHERE site_id = $1 AND revoked_at IS NULL ORDER BY agent_id"
        )
        .bind(site)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The site's active devices, with settings.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn site_devices(&self, site: &str) -> Result<Vec<ManagedDeviceRecord>, StoreError> {
        let sql =
            format!("SELECT {FULL_COLUMNS} FROM devices WHERE site_id = $1 AND status = 'active' ORDER BY serial");
        let rows: Vec<FullRow> = on_reader!(self, |pool| sqlx::query_as(&sql).bind(site).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(full_of).collect())
    }
}
