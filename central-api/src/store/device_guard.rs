//! Which punches of a batch may enter AllLogs: only those whose device is registered at the batch's site (issue 12,
//! the cross-site write). Runs inside the batch's transaction, before the insert:
//!
//! 1. the batch's devices are looked up in `devices`;
//! 2. a device registered nowhere is registered at the batch's site, unconfirmed (`confirmed = false`), named by its
//!    serial, in the site's zone, with a driver kind guessed from the punch's source: an administrator confirms it by
//!    changing it;
//! 3. punches of devices registered at another site are held aside ([`Held`], stored by [`super::quarantine`]) and
//!    the devices are reported ([`ForeignDevice`]) so the ingest service raises a fault both sites see.
//!
//! Registration uses `ON CONFLICT DO NOTHING` and reads the sites again afterwards, so two sites' agents naming the
//! same new device at once register it once, at whichever committed first; the other's punches are held.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use sqlx::{PgConnection, SqliteConnection};

use super::rows::{BatchRows, PunchRow};
use super::StoreError;

/// A punch kept out of AllLogs because its device belongs to another site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub row: PunchRow,
    /// The site the device is registered at.
    pub device_site: String,
    /// Why it was held, for the administrator.
    pub reason: String,
}

/// A device of another site that a batch named, with how many of its punches were held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignDevice {
    pub serial: String,
    /// The site it is registered at.
    pub site: String,
    pub punches: u32,
}

/// A batch's punches sorted by where they go.
#[derive(Debug, Clone, Default)]
pub struct Routed {
    /// Into AllLogs (still in the unique index's order).
    pub stored: Vec<PunchRow>,
    /// Into the quarantine.
    pub held: Vec<Held>,
    /// Other sites' devices named, by serial.
    pub foreign: Vec<ForeignDevice>,
}

/// The driver kind a device probably is, from the source of its punches (an administrator corrects it when
/// confirming the device).
pub fn kind_of_source(source: &str) -> &'static str {
    match source {
        "zk-pull" | "zk-realtime" => "zk-tcp",
        "adms-push" => "adms",
        "serial" => "serial",
        "modbus" => "modbus",
        "hikvision" => "hikvision",
        "dahua" => "dahua",
        _ => "unknown",
    }
}

/// Distinct serials of the batch with the kind of their first punch.
fn devices_of(batch: &BatchRows) -> BTreeMap<&str, &'static str> {
    let mut devices = BTreeMap::new();
    for row in &batch.rows {
        devices.entry(row.device.as_str()).or_insert_with(|| kind_of_source(row.source));
    }
    devices
}

/// Splits `batch` given the site each device is registered at. A device missing from `sites` (registered nowhere)
/// is the batch's own. Pure.
pub fn split(batch: &BatchRows, sites: &HashMap<String, String>) -> Routed {
    let mut routed = Routed::default();
    let mut foreign: BTreeMap<&str, ForeignDevice> = BTreeMap::new();
    for row in &batch.rows {
        match sites.get(&row.device) {
            Some(site) if *site != batch.site => {
                foreign
                    .entry(row.device.as_str())
                    .or_insert_with(|| ForeignDevice { serial: row.device.clone(), site: site.clone(), punches: 0 })
                    .punches += 1;
                let reason = format!(
                    "device {} is registered at site {site}, not at site {} of agent {}",
                    row.device, batch.site, batch.agent
                );
                routed.held.push(Held { row: row.clone(), device_site: site.clone(), reason });
            }
            _ => routed.stored.push(row.clone()),
        }
    }
    routed.foreign = foreign.into_values().collect();
    routed
}

fn pairs_json(devices: &BTreeMap<&str, &'static str>) -> Result<String, StoreError> {
    let pairs: Vec<[&str; 2]> = devices.iter().map(|(serial, kind)| [*serial, *kind]).collect();
    serde_json::to_string(&pairs).map_err(|e| StoreError::Invalid(e.to_string()))
}

const SQLITE_SITES: &str = "SELECT d.serial, d.site_id FROM devices d \
     WHERE d.serial IN (SELECT json_extract(j.value, '$[0]') FROM json_each($1) j)";

const SQLITE_REGISTER: &str = "INSERT INTO devices (serial, site_id, name, kind, time_zone, direction, status, \
     created_at, confirmed) \
     SELECT json_extract(j.value, '$[0]'), s.site_id, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), \
            s.time_zone, 'BOTH', 'active', $3, 0 \
     FROM json_each($1) j JOIN sites s ON s.site_id = $2 WHERE true \
     ON CONFLICT (serial) DO NOTHING";

/// [`route`] on SQLite, inside the batch's transaction.
///
/// # Errors
/// [`StoreError::Database`].
pub(super) async fn route_sqlite(conn: &mut SqliteConnection, batch: &BatchRows) -> Result<Routed, StoreError> {
    let devices = devices_of(batch);
    let json = pairs_json(&devices)?;
    let mut sites: HashMap<String, String> =
        sqlx::query_as(SQLITE_SITES).bind(&json).fetch_all(&mut *conn).await?.into_iter().collect();
    let missing: BTreeMap<&str, &'static str> =
        devices.iter().filter(|(serial, _)| !sites.contains_key(**serial)).map(|(s, k)| (*s, *k)).collect();
    if !missing.is_empty() {
        let json = pairs_json(&missing)?;
        let done =
            sqlx::query(SQLITE_REGISTER).bind(&json).bind(&batch.site).bind(Utc::now()).execute(&mut *conn).await?;
        tracing::info!(site = %batch.site, agent = %batch.agent, devices = ?missing.keys().collect::<Vec<_>>(),
            registered = done.rows_affected(), "devices seen for the first time registered as unconfirmed");
        let again: Vec<(String, String)> = sqlx::query_as(SQLITE_SITES).bind(&json).fetch_all(&mut *conn).await?;
        sites.extend(again);
    }
    Ok(split(batch, &sites))
}

const PG_SITES: &str = "SELECT serial, site_id FROM devices WHERE serial = ANY($1::text[])";

const PG_REGISTER: &str = "INSERT INTO devices (serial, site_id, name, kind, time_zone, direction, status, \
     created_at, confirmed) \
     SELECT d.serial, s.site_id, d.serial, d.kind, s.time_zone, 'BOTH', 'active', $4, FALSE \
     FROM UNNEST($1::text[], $2::text[]) AS d(serial, kind) JOIN sites s ON s.site_id = $3 \
     ORDER BY d.serial ON CONFLICT (serial) DO NOTHING";

/// [`route`] on PostgreSQL, inside the batch's transaction.
///
/// # Errors
/// [`StoreError::Database`].
pub(super) async fn route_postgres(conn: &mut PgConnection, batch: &BatchRows) -> Result<Routed, StoreError> {
    route_postgres_known(conn, batch, &mut HashMap::new()).await
}

/// [`route_postgres`] for one batch of a group stored in one transaction: `sites` holds the devices already read
/// (or registered) in this transaction, and gains this batch's.
///
/// # Errors
/// [`StoreError::Database`].
pub(super) async fn route_postgres_known(
    conn: &mut PgConnection,
    batch: &BatchRows,
    sites: &mut HashMap<String, String>,
) -> Result<Routed, StoreError> {
    let devices = devices_of(batch);
    let unknown: Vec<&str> = devices.keys().copied().filter(|serial| !sites.contains_key(*serial)).collect();
    if !unknown.is_empty() {
        let found: Vec<(String, String)> = sqlx::query_as(PG_SITES).bind(&unknown).fetch_all(&mut *conn).await?;
        sites.extend(found);
    }
    let missing: Vec<(&str, &'static str)> =
        devices.iter().filter(|(serial, _)| !sites.contains_key(**serial)).map(|(s, k)| (*s, *k)).collect();
    if !missing.is_empty() {
        let serials: Vec<&str> = missing.iter().map(|(s, _)| *s).collect();
        let kinds: Vec<&str> = missing.iter().map(|(_, k)| *k).collect();
        let done = sqlx::query(PG_REGISTER)
            .bind(&serials)
            .bind(&kinds)
            .bind(&batch.site)
            .bind(Utc::now())
            .execute(&mut *conn)
            .await?;
        tracing::info!(site = %batch.site, agent = %batch.agent, devices = ?serials,
            registered = done.rows_affected(), "devices seen for the first time registered as unconfirmed");
        let again: Vec<(String, String)> = sqlx::query_as(PG_SITES).bind(&serials).fetch_all(&mut *conn).await?;
        sites.extend(again);
    }
    Ok(split(batch, sites))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use protocol::PunchKey;

    fn row(device: &str, minute: u32) -> PunchRow {
        let local = NaiveDate::from_ymd_opt(2026, 3, 2).and_then(|d| d.and_hms_opt(9, minute, 0)).expect("time");
        PunchRow {
            key: PunchKey::from_bytes([minute as u8; 16]),
            device: device.into(),
            pin: "7".into(),
            local_time: local,
            utc_time: local.and_utc(),
            state: 0,
            verify: 1,
            work_code: 0,
            source: "zk-pull",
            direction: "IN",
            agent_seq: i64::from(minute),
            raw_state: None,
            raw_verify: None,
        }
    }

    #[test]
    fn punches_of_other_sites_devices_are_held_and_counted() {
        let batch = BatchRows {
            site: "A".into(),
            agent: "gate-a".into(),
            first_seq: 1,
            last_seq: 4,
            rows: vec![row("DEV-A", 1), row("DEV-B", 2), row("DEV-B", 3), row("NEW", 4)],
        };
        let sites: HashMap<String, String> =
            [("DEV-A".to_owned(), "A".to_owned()), ("DEV-B".to_owned(), "B".to_owned())].into();
        let routed = split(&batch, &sites);
        let stored: Vec<&str> = routed.stored.iter().map(|r| r.device.as_str()).collect();
        assert_eq!(stored, ["DEV-A", "NEW"], "own and unregistered devices are stored");
        assert_eq!(routed.held.len(), 2);
        assert!(routed.held.iter().all(|h| h.device_site == "B"));
        assert_eq!(routed.held[0].reason, "device DEV-B is registered at site B, not at site A of agent gate-a");
        assert_eq!(routed.foreign, [ForeignDevice { serial: "DEV-B".into(), site: "B".into(), punches: 2 }]);
        assert_eq!(devices_of(&batch).len(), 3);
    }

    #[test]
    fn kinds_follow_the_source() {
        assert_eq!(kind_of_source("adms-push"), "adms");
        assert_eq!(kind_of_source("zk-realtime"), "zk-tcp");
        assert_eq!(kind_of_source("sql"), "unknown");
    }
}
