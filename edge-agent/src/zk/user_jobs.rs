//! The jobs of [`super::jobs`] that touch users and fingerprint templates, on an open connection: write users, delete
//! them, read a person's templates, write a person with their templates.
//!
//! Every job reads the user table first: it finds people by PIN (the uid is the device's own key), and tells the
//! record size to write (28 or 72 bytes; an empty table does not tell, and then pyzk's default for the transport is
//! used, [`user_write::default_layout`]). A device's refusal fails the job and keeps the connection; a lost
//! connection fails it and ends the session.

use std::collections::HashSet;

use protocol::{DeviceUser, Pin};

use super::client::{ClientError, ZkClient};
use super::jobs::{ZkJob, ZkJobOutput};
use super::poller::PollError;
use super::templates::Template;
use super::user_calls::UserTable;
use super::user_write::{self, UserWriteError};
use super::users::{UserLayout, UserRecord};

/// Why a job did not succeed.
#[derive(Debug)]
pub enum JobFailure {
    /// The device or the rules refused it; the connection is fine.
    Refused(String),
    /// The connection failed: the job's answer, and the session ends.
    Poll(PollError),
}

impl From<ClientError> for JobFailure {
    fn from(e: ClientError) -> Self {
        Self::Poll(PollError::Device(e))
    }
}

/// A failed request of a user job: the device's answer (a refusal, a malformed table) fails the job only; a lost or
/// silent connection also ends the session.
fn device(e: ClientError) -> JobFailure {
    if e.connection_lost() || e.is_unreachable() {
        JobFailure::Poll(PollError::Device(e))
    } else {
        JobFailure::Refused(e.to_string())
    }
}

impl From<PollError> for JobFailure {
    fn from(e: PollError) -> Self {
        Self::Poll(e)
    }
}

impl From<UserWriteError> for JobFailure {
    fn from(e: UserWriteError) -> Self {
        Self::Refused(e.to_string())
    }
}

/// Carries out a user or template job.
///
/// # Errors
/// [`JobFailure`].
pub async fn run(client: &mut ZkClient, job: ZkJob) -> Result<ZkJobOutput, JobFailure> {
    match job {
        ZkJob::SetUsers(users) => set_users(client, &users).await,
        ZkJob::DeleteUsers(pins) => delete_users(client, &pins).await,
        ZkJob::ReadTemplates(pin) => read_templates(client, &pin).await,
        ZkJob::WriteTemplates(user, templates) => write_templates(client, &user, &templates).await,
        other => Err(JobFailure::Refused(format!("{other:?} is not a user job"))),
    }
}

/// The table with the layout to write in.
async fn table(client: &mut ZkClient) -> Result<(UserLayout, UserTable), JobFailure> {
    let table = client.read_user_table().await.map_err(device)?;
    let layout = table.layout.unwrap_or_else(|| user_write::default_layout(client.transport()));
    Ok((layout, table))
}

/// Whether a device record is `pin` (a 28-byte record holds the PIN as a number, so "007" is 7).
fn is_pin(layout: UserLayout, record: &UserRecord, pin: &Pin) -> bool {
    match layout {
        UserLayout::Small => {
            record.user_id.parse::<u32>().ok().is_some_and(|n| pin.as_str().parse::<u32>().ok() == Some(n))
        }
        UserLayout::Large => record.user_id == pin.as_str(),
    }
}

fn find<'a>(layout: UserLayout, table: &'a UserTable, pin: &Pin) -> Option<&'a UserRecord> {
    table.users.iter().find(|u| is_pin(layout, u, pin))
}

async fn set_users(client: &mut ZkClient, users: &[DeviceUser]) -> Result<ZkJobOutput, JobFailure> {
    let (layout, mut table) = table(client).await?;
    let mut taken: HashSet<u16> = table.users.iter().map(|u| u.uid).collect();
    let (mut added, mut replaced, mut refused) = (0usize, 0usize, Vec::new());
    for user in users {
        let existing = find(layout, &table, &user.pin).cloned();
        let uid = match &existing {
            Some(e) => e.uid,
            None => user_write::next_uid(&taken)?,
        };
        let record = match user_write::device_record(layout, uid, user, existing.as_ref()) {
            Ok(record) => record,
            Err(e) => {
                refused.push(e.to_string());
                continue;
            }
        };
        client.set_user(layout, &record).await.map_err(device)?;
        taken.insert(uid);
        if existing.is_some() {
            replaced += 1;
            table.users.retain(|u| u.uid != uid);
        } else {
            added += 1;
        }
        table.users.push(record);
    }
    if added + replaced > 0 {
        client.refresh_data().await.map_err(device)?;
    }
    let size = layout.size();
    let done = format!("wrote {} users ({added} added, {replaced} replaced, {size}-byte records)", added + replaced);
    if refused.is_empty() {
        Ok(ZkJobOutput::Done(done))
    } else {
        Err(JobFailure::Refused(format!("{done}; refused {}: {}", refused.len(), refused.join("; "))))
    }
}

async fn delete_users(client: &mut ZkClient, pins: &[Pin]) -> Result<ZkJobOutput, JobFailure> {
    let (layout, table) = table(client).await?;
    let mut deleted = 0usize;
    for pin in pins {
        if let Some(record) = find(layout, &table, pin) {
            client.delete_user(record.uid).await.map_err(device)?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        client.refresh_data().await.map_err(device)?;
    }
    Ok(ZkJobOutput::Done(format!(
        "deleted {deleted} users with their fingerprints ({} were not on the device)",
        pins.len() - deleted
    )))
}

async fn read_templates(client: &mut ZkClient, pin: &Pin) -> Result<ZkJobOutput, JobFailure> {
    let (layout, table) = table(client).await?;
    let record = find(layout, &table, pin).ok_or_else(|| JobFailure::Refused(format!("{pin} is not on the device")))?;
    let user = user_write::central_user(record)
        .ok_or_else(|| JobFailure::Refused(format!("the device's record of {pin} cannot be read back")))?;
    let uid = record.uid;
    let templates: Vec<Template> = client
        .read_templates(table.sizes.fingerprints)
        .await
        .map_err(device)?
        .into_iter()
        .filter(|t| t.uid == uid)
        .map(|t| t.template)
        .collect();
    Ok(ZkJobOutput::Templates(user, templates))
}

async fn write_templates(
    client: &mut ZkClient,
    user: &DeviceUser,
    templates: &[Template],
) -> Result<ZkJobOutput, JobFailure> {
    let (layout, table) = table(client).await?;
    let existing = find(layout, &table, &user.pin);
    let uid = match existing {
        Some(e) => e.uid,
        None => user_write::next_uid(&table.users.iter().map(|u| u.uid).collect())?,
    };
    let record = user_write::device_record(layout, uid, user, existing)?;
    client.save_user_templates(layout, &record, templates).await.map_err(device)?;
    Ok(ZkJobOutput::Done(format!("wrote {} and {} fingerprint templates (uid {uid})", user.pin, templates.len())))
}
