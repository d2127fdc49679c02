//! Carrying out central's commands: at most once per `command_id` ([`super::journal`]), never after its expiry,
//! each on the device's own source (the ZKTeco poller's connection, the push device's command queue), and reported
//! with a result that says what happened.
//!
//! | action | ZKTeco (`zk`) | push (`adms`) | Hikvision, Dahua | Modbus | serial |
//! |---|---|---|---|---|---|
//! | sync clock | set time | `SET OPTIONS DateTime` | - | - | - |
//! | pull now | read the log | `CHECK` | restart (reads from its cursor) | restart | restart |
//! | re-read since | read the whole log | `DATA QUERY ATTLOG` from the date | cursor to the date, restart | counter forgotten, restart | - |
//! | refresh info | restart (identify) | `INFO` | restart | restart | restart |
//! | clear log | under the clear-log rule | - | - | - | - |
//! | users | set-user / delete-user | `DATA UPDATE/DELETE USERINFO` | - | - | - |
//! | copy fingerprints (to) | save user templates | `DATA UPDATE USERINFO` + `FINGERTMP` per finger | - | - | - |
//!
//! "-" is a failed result naming the kind. A push command's result is the device's return code, which arrives on its
//! next polls; the command waits for it until it expires (or [`PUSH_WAIT`]). Writing users reports per user
//! ([`UsersReport`] in the result's detail): done when some were written, the refused ones named with why; failed
//! when every one was refused.

use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use protocol::{
    AgentCommand, CommandAction, CommandResult, DeviceSerial, PushCommand, UserRefusal, UserUpdate, UsersReport,
};

use super::journal::Begin;
use super::Fleet;
use crate::adms::AdmsCommand;
use crate::config::{DeviceConfig, DeviceSettings};
use crate::http_terminal::cursor::EventCursor;
use crate::zk::jobs::{ZkJob, ZkJobOutput};

/// Longest wait for a push device to report a command's result (unless the command expires sooner).
pub const PUSH_WAIT: Duration = Duration::from_secs(600);
/// Longest wait for a ZKTeco poller to carry out a job.
pub const ZK_WAIT: Duration = Duration::from_secs(120);

impl Fleet {
    /// Carries out `command` once and reports its result.
    pub async fn execute(&self, command: AgentCommand) {
        let id = command.command_id;
        if command.agent != self.agent {
            tracing::warn!(id, agent = %command.agent, "ignoring a command for another agent");
            return;
        }
        let begun = self.journal.lock().await.begin(id);
        match begun {
            Ok(Begin::Run) => {}
            Ok(Begin::Running) => {
                tracing::debug!(id, "command delivered again while it runs");
                return;
            }
            Ok(Begin::Done(result)) => {
                tracing::info!(id, "command delivered again after it finished; reporting its result again");
                self.report.push(result);
                return;
            }
            Err(e) => {
                tracing::error!(id, error = %e, "cannot record the command; not carrying it out");
                return;
            }
        }
        let outcome = if command.expires_at.is_some_and(|at| at <= Utc::now()) {
            Err("expired before the agent could carry it out".to_owned())
        } else {
            tracing::info!(id, action = command.action.name(), "carrying out a command");
            self.carry_out(&command).await
        };
        let (ok, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        if ok {
            tracing::info!(id, %detail, "command done");
        } else {
            tracing::warn!(id, %detail, "command failed");
        }
        let result = CommandResult {
            command_id: id,
            ok,
            detail: protocol::envelope::truncate_text(detail),
            finished_at: Utc::now(),
        };
        if let Err(e) = self.journal.lock().await.finish(&result) {
            tracing::error!(id, error = %e, "cannot record the command's result");
        }
        self.report.push(result);
    }

    async fn carry_out(&self, command: &AgentCommand) -> Result<String, String> {
        let deadline = command.expires_at.map_or(PUSH_WAIT, |at| {
            (at - Utc::now()).to_std().unwrap_or_default().clamp(Duration::from_secs(30), PUSH_WAIT)
        });
        match &command.action {
            CommandAction::SendStatus => Ok("status sent".into()),
            CommandAction::ReloadConfig => self.reload(self.https()).await,
            CommandAction::RestartSource { device } => {
                self.sources.restart(device).await.map(|()| format!("source of {device} restarted"))
            }
            CommandAction::SyncDeviceClock { device } => {
                let config = self.device(device).await?;
                match &config.settings {
                    DeviceSettings::Zk(_) => self.zk(device, ZkJob::SetClock).await,
                    DeviceSettings::Adms(_) => {
                        let now = Utc::now().with_timezone(&config.time_zone).naive_local();
                        self.push(device, AdmsCommand::SetTime(now), deadline).await
                    }
                    other => Err(unsupported("setting the clock", other)),
                }
            }
            CommandAction::PullNow { device } => {
                let config = self.device(device).await?;
                match &config.settings {
                    DeviceSettings::Zk(_) => self.zk(device, ZkJob::ReadNow).await,
                    DeviceSettings::Adms(_) => self.push(device, AdmsCommand::Check, deadline).await,
                    _ => self.restart(device, "read from its cursor").await,
                }
            }
            CommandAction::ResyncDevice { device, since } => self.reread(device, *since, deadline).await,
            CommandAction::RefreshDeviceInfo { device } => {
                let config = self.device(device).await?;
                match &config.settings {
                    DeviceSettings::Adms(_) => self.push(device, AdmsCommand::Info, deadline).await,
                    _ => self.restart(device, "identified again").await,
                }
            }
            CommandAction::ClearDeviceLog { device } => {
                let config = self.device(device).await?;
                match &config.settings {
                    DeviceSettings::Zk(_) => self.zk(device, ZkJob::ClearLog).await,
                    other => Err(unsupported("clearing the log", other)),
                }
            }
            CommandAction::PushDevice { device, command } => {
                let config = self.device(device).await?;
                if !matches!(config.settings, DeviceSettings::Adms(_)) {
                    return Err(unsupported("a push-device command", &config.settings));
                }
                let command = match command {
                    PushCommand::SetTime { time } => AdmsCommand::SetTime(*time),
                    PushCommand::Reupload { from, until } => AdmsCommand::ReuploadSince { from: *from, until: *until },
                    PushCommand::Info => AdmsCommand::Info,
                };
                self.push(device, command, deadline).await
            }
            CommandAction::SetUsers { device, users } => {
                let users: Vec<UserUpdate> = users.iter().cloned().map(UserUpdate::from).collect();
                self.set_users(device, &users, deadline).await
            }
            CommandAction::WriteUsers { device, users } => self.set_users(device, users, deadline).await,
            CommandAction::DeleteUsers { device, pins } => {
                let config = self.device(device).await?;
                match &config.settings {
                    DeviceSettings::Zk(_) => self.zk(device, ZkJob::DeleteUsers(pins.clone())).await,
                    DeviceSettings::Adms(_) => {
                        let commands =
                            pins.iter().map(|p| AdmsCommand::DeleteUser { pin: p.as_str().to_owned() }).collect();
                        self.push_all(device, commands, deadline).await
                    }
                    other => Err(unsupported("deleting users", other)),
                }
            }
            CommandAction::CopyTemplates { pin, from, to } => self.copy_templates(pin, from, to, deadline).await,
        }
    }

    fn https(&self) -> bool {
        self.https_link.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn device(&self, device: &DeviceSerial) -> Result<DeviceConfig, String> {
        self.sources.device(device).await.ok_or_else(|| format!("device {device} is not configured on this agent"))
    }

    async fn restart(&self, device: &DeviceSerial, what: &str) -> Result<String, String> {
        self.sources.restart(device).await.map(|()| format!("source of {device} restarted ({what})"))
    }

    /// A job on a ZKTeco poller.
    async fn zk(&self, device: &DeviceSerial, job: ZkJob) -> Result<String, String> {
        let jobs = self.sources.zk_jobs(device).await.ok_or_else(|| format!("{device} has no running poller"))?;
        match jobs.run(job, ZK_WAIT).await? {
            ZkJobOutput::Done(detail) => Ok(detail),
            ZkJobOutput::Templates(user, templates) => {
                Ok(format!("read {} templates of {}", templates.len(), user.pin))
            }
            ZkJobOutput::Users(report) => users_result(&report),
        }
    }

    /// Queues a command for a push device and waits for the device's return code.
    async fn push(&self, device: &DeviceSerial, command: AdmsCommand, within: Duration) -> Result<String, String> {
        self.push_many(device, vec![command], within).await.pop().unwrap_or_else(|| Err("nothing queued".to_owned()))
    }

    /// Queues `commands` for a push device at once (it takes up to 16 a poll) and waits for each return code; one
    /// result per command, in order.
    async fn push_many(
        &self,
        device: &DeviceSerial,
        commands: Vec<AdmsCommand>,
        within: Duration,
    ) -> Vec<Result<String, String>> {
        let mut waiting: Vec<(Result<u64, String>, String)> = commands
            .into_iter()
            .map(|command| {
                let name = command.text().split_whitespace().take(3).collect::<Vec<_>>().join(" ");
                (self.push_commands.enqueue(device, command).map_err(|e| e.to_string()), name)
            })
            .collect();
        let mut results: Vec<Option<Result<String, String>>> = vec![None; waiting.len()];
        for (slot, (queued, _)) in results.iter_mut().zip(&waiting) {
            if let Err(e) = queued {
                *slot = Some(Err(e.clone()));
            }
        }
        let started = tokio::time::Instant::now();
        loop {
            for (slot, (queued, name)) in results.iter_mut().zip(&mut waiting) {
                let Ok(id) = queued else { continue };
                if slot.is_some() {
                    continue;
                }
                if let Some(outcome) = self.push_commands.outcome(device, *id) {
                    *slot = Some(if outcome.code == 0 {
                        Ok(format!("{name}: the device answered Return=0"))
                    } else {
                        Err(format!("{name}: the device answered Return={}", outcome.code))
                    });
                }
            }
            if results.iter().all(Option::is_some) {
                break;
            }
            if started.elapsed() >= within {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        results
            .into_iter()
            .zip(waiting)
            .map(|(result, (queued, _))| {
                result.unwrap_or_else(|| {
                    Err(format!(
                        "queued for {device} as command {}, but the device did not report a result within {within:?}",
                        queued.unwrap_or_default()
                    ))
                })
            })
            .collect()
    }

    /// Several push commands; all must succeed.
    async fn push_all(
        &self,
        device: &DeviceSerial,
        commands: Vec<AdmsCommand>,
        within: Duration,
    ) -> Result<String, String> {
        let count = commands.len();
        let failed: Vec<String> =
            self.push_many(device, commands, within).await.into_iter().filter_map(Result::err).collect();
        if failed.is_empty() {
            Ok(format!("{count} commands done on {device}"))
        } else {
            Err(format!("{} of {count} commands failed on {device}: {}", failed.len(), failed.join("; ")))
        }
    }

    async fn set_users(&self, device: &DeviceSerial, users: &[UserUpdate], within: Duration) -> Result<String, String> {
        let config = self.device(device).await?;
        match &config.settings {
            DeviceSettings::Zk(_) => self.zk(device, ZkJob::SetUsers(users.to_vec())).await,
            DeviceSettings::Adms(_) => {
                let commands = users.iter().map(update_user).collect();
                let results = self.push_many(device, commands, within).await;
                let refused: Vec<UserRefusal> = users
                    .iter()
                    .zip(&results)
                    .filter_map(|(u, r)| {
                        r.as_ref().err().map(|e| UserRefusal { pin: u.pin.as_str().to_owned(), reason: e.clone() })
                    })
                    .collect();
                let written = users.len() - refused.len();
                let mut summary = format!("wrote {written} users on {device} (DATA UPDATE USERINFO)");
                if !refused.is_empty() {
                    summary.push_str(&format!("; refused {}", refused.len()));
                }
                users_result(&UsersReport {
                    written: u32::try_from(written).unwrap_or(u32::MAX),
                    summary,
                    refused,
                    unlisted: 0,
                })
            }
            other => Err(unsupported("writing users", other)),
        }
    }

    async fn copy_templates(
        &self,
        pin: &protocol::Pin,
        from: &DeviceSerial,
        to: &[DeviceSerial],
        within: Duration,
    ) -> Result<String, String> {
        let source =
            self.sources.zk_jobs(from).await.ok_or_else(|| format!("{from} is not a ZKTeco device of this agent"))?;
        let (user, templates) = match source.run(ZkJob::ReadTemplates(pin.clone()), ZK_WAIT).await? {
            ZkJobOutput::Templates(user, templates) => (user, templates),
            ZkJobOutput::Done(detail) => return Err(detail),
            ZkJobOutput::Users(report) => return Err(report.summary),
        };
        if templates.is_empty() {
            return Err(format!("{pin} has no fingerprint template on {from}"));
        }
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for target in to.iter().filter(|t| *t != from) {
            let push_target =
                self.sources.device(target).await.is_some_and(|c| matches!(c.settings, DeviceSettings::Adms(_)));
            if push_target {
                let mut commands = vec![update_user(&UserUpdate::from(user.clone()))];
                commands.extend(templates.iter().map(|t| AdmsCommand::FingerTemplate {
                    pin: user.pin.as_str().to_owned(),
                    finger: t.finger,
                    valid: t.valid,
                    template: t.data.clone(),
                }));
                let errors: Vec<String> =
                    self.push_many(target, commands, within).await.into_iter().filter_map(Result::err).collect();
                if errors.is_empty() {
                    done.push(target.to_string());
                } else {
                    failed.push(format!("{target}: {}", errors.join("; ")));
                }
                continue;
            }
            let Some(jobs) = self.sources.zk_jobs(target).await else {
                failed.push(format!("{target}: not a ZKTeco or push device of this agent"));
                continue;
            };
            match jobs.run(ZkJob::WriteTemplates(user.clone(), templates.clone()), ZK_WAIT).await {
                Ok(_) => done.push(target.to_string()),
                Err(e) => failed.push(format!("{target}: {e}")),
            }
        }
        let summary = format!("{} templates of {pin} from {from} written to {}", templates.len(), done.join(", "));
        if failed.is_empty() {
            Ok(summary)
        } else {
            Err(format!("{summary}; failed: {}", failed.join("; ")))
        }
    }

    /// Re-reads a device's log from `since` (the start of that day in the device's zone), as its kind allows.
    async fn reread(
        &self,
        device: &DeviceSerial,
        since: Option<NaiveDate>,
        within: Duration,
    ) -> Result<String, String> {
        let config = self.device(device).await?;
        let from: NaiveDateTime = since
            .unwrap_or_else(|| NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default())
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default();
        match &config.settings {
            DeviceSettings::Zk(_) => self.zk(device, ZkJob::ReadNow).await,
            DeviceSettings::Adms(_) => {
                let until = (Utc::now() + chrono::Duration::days(1)).with_timezone(&config.time_zone).naive_local();
                self.push(device, AdmsCommand::ReuploadSince { from, until }, within).await
            }
            DeviceSettings::Hikvision(_) | DeviceSettings::Dahua(_) => {
                let at = protocol::time::local_to_utc(from, config.time_zone).timestamp();
                let cursor = EventCursor { seq: 0, at };
                self.buffer
                    .put_cursor(device, crate::http_terminal::CURSOR_NAME, cursor.encode())
                    .await
                    .map_err(|e| format!("cannot move the read position: {e}"))?;
                self.restart(device, &format!("reading again from {from}")).await
            }
            DeviceSettings::Modbus(_) => {
                self.buffer
                    .remove_cursor(device, crate::modbus::poller::COUNTER_CURSOR)
                    .await
                    .map_err(|e| format!("cannot reset the read position: {e}"))?;
                self.restart(device, "reading its whole event ring again (a ring has no dates)").await
            }
            other => Err(unsupported("reading again", other)),
        }
    }
}

/// The push command writing `user`: what central does not know is left out, so the device keeps its own.
fn update_user(user: &UserUpdate) -> AdmsCommand {
    AdmsCommand::UpdateUser {
        pin: user.pin.as_str().to_owned(),
        name: user.name.clone(),
        privilege: user.privilege,
        card: user.card,
    }
}

/// A write of users as a command result: done when some were written or none refused, failed when every one was
/// refused; the detail is the report, which central reads per user.
fn users_result(report: &UsersReport) -> Result<String, String> {
    if report.written > 0 || !report.any_refused() {
        Ok(report.to_detail())
    } else {
        Err(report.to_detail())
    }
}

fn unsupported(what: &str, settings: &DeviceSettings) -> String {
    format!("{what} is not possible for a {} device", settings.kind())
}
