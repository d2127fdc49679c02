//! The jobs of [`super::jobs`] that touch users and fingerprint templates, on an open connection: write users, delete
//! them, read a person's templates, write a person with their templates.
//!
//! Every job reads the user table first: it finds people by PIN (the uid is the device's own key), and tells the
//! record size to write (28 or 72 bytes; an empty table does not tell, and then pyzk's default for the transport is
//! used, [`user_write::default_layout`]). Writing users goes on past a user the layout cannot hold or the device
//! refuses, and reports each refusal by PIN ([`UsersReport`]); elsewhere a device's refusal fails the job and keeps
//! the connection. A lost connection fails the job and ends the session.

use std::collections::HashSet;

use protocol::{DeviceUser, Pin, UserRefusal, UserUpdate, UsersReport};

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

async fn set_users(client: &mut ZkClient, users: &[UserUpdate]) -> Result<ZkJobOutput, JobFailure> {
    let (layout, mut table) = table(client).await?;
    let mut taken: HashSet<u16> = table.users.iter().map(|u| u.uid).collect();
    let (mut added, mut replaced, mut refused) = (0usize, 0usize, Vec::new());
    for user in users {
        let refuse = |reason: String| UserRefusal { pin: user.pin.as_str().to_owned(), reason };
        let existing = find(layout, &table, &user.pin).cloned();
        let uid = match &existing {
            Some(e) => e.uid,
            None => match user_write::next_uid(&taken) {
                Ok(uid) => uid,
                Err(e) => {
                    refused.push(refuse(e.to_string()));
                    continue;
                }
            },
        };
        let record = match user_write::device_record(layout, uid, user, existing.as_ref()) {
            Ok(record) => record,
            Err(e) => {
                refused.push(refuse(e.to_string()));
                continue;
            }
        };
        match client.set_user(layout, &record).await.map_err(device) {
            Ok(()) => {}
            Err(JobFailure::Refused(reason)) => {
                refused.push(refuse(format!("the device refused the write: {reason}")));
                continue;
            }
            Err(lost) => return Err(lost),
        }
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
    let written = added + replaced;
    let summary = format!("wrote {written} users ({added} added, {replaced} replaced, {size}-byte records)");
    let summary = if refused.is_empty() { summary } else { format!("{summary}; refused {}", refused.len()) };
    Ok(ZkJobOutput::Users(UsersReport {
        written: u32::try_from(written).unwrap_or(u32::MAX),
        summary,
        refused,
        unlisted: 0,
    }))
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
    let record = user_write::device_record(layout, uid, &UserUpdate::from(user.clone()), existing)?;
    client.save_user_templates(layout, &record, templates).await.map_err(device)?;
    Ok(ZkJobOutput::Done(format!("wrote {} and {} fingerprint templates (uid {uid})", user.pin, templates.len())))
}
