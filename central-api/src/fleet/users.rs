//! Which devices hold whom, and how a write of users went per user.
//!
//! A `write_users` or `set_users` command's result carries the agent's [`UsersReport`] (which users the device
//! refused, and why): the users the command carried minus those refused were written. That per-user outcome is kept
//! with the command ([`UserOutcome`], stored with the result in one statement); a command is `done` when some users
//! were written (`partial` when others were refused) and `failed` when none was. Written users are recorded on the
//! device (`device_users`); a `copy_templates` command that finished `done` records its PIN on its target devices, a
//! `delete_users` one removes its PINs. The record is what central pushed and removed; users enrolled on a terminal
//! by hand are not in it.

use std::collections::HashSet;

use protocol::{CommandAction, UsersReport};

use crate::store::fleet::{CommandRecord, UserOutcome};
use crate::store::{Store, StoreError};

/// The PINs and names a command that writes users carries.
fn written_users(action: &CommandAction) -> Option<Vec<(String, String)>> {
    match action {
        CommandAction::SetUsers { users, .. } => {
            Some(users.iter().map(|u| (u.pin.as_str().to_owned(), u.name.clone())).collect())
        }
        CommandAction::WriteUsers { users, .. } => {
            Some(users.iter().map(|u| (u.pin.as_str().to_owned(), u.name.clone())).collect())
        }
        _ => None,
    }
}

/// The per-user outcome of a command that carried `users` and finished in `state` with `detail`. Without a report
/// (an agent of the previous release, or a failure before any user was tried), `done` means all were written and
/// anything else none.
pub fn outcome_of(users: &[(String, String)], state: &str, detail: Option<&str>) -> UserOutcome {
    let report = detail.and_then(UsersReport::from_detail);
    let Some(report) = report else {
        let written = if state == "done" { users.iter().map(|(pin, _)| pin.clone()).collect() } else { Vec::new() };
        return UserOutcome { written, ..UserOutcome::default() };
    };
    let refused: HashSet<&str> = report.refused.iter().map(|r| r.pin.as_str()).collect();
    let written: Vec<String> = if report.unlisted == 0 {
        users.iter().map(|(pin, _)| pin.clone()).filter(|pin| !refused.contains(pin.as_str())).collect()
    } else {
        // Some refusals are not named: only as many as the agent says were written are known to be, and not which.
        Vec::new()
    };
    let partial = report.written > 0 && report.any_refused();
    UserOutcome { written, refused: report.refused, unlisted: report.unlisted, partial }
}

/// The per-user outcome `result` gives `command`, when the command writes users.
pub fn outcome_for(command: &CommandRecord, result: &protocol::CommandResult) -> Option<UserOutcome> {
    let users = written_users(&command.action()?)?;
    let state = if result.ok { "done" } else { "failed" };
    Some(outcome_of(&users, state, Some(&result.detail)))
}

/// Updates `device_users` after a command finished: the users a write wrote, the PINs a removal removed, the PIN a
/// copy copied.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn after_result(store: &Store, command: &CommandRecord) -> Result<(), StoreError> {
    let Some(action) = command.action() else { return Ok(()) };
    if let Some(users) = written_users(&action) {
        let outcome = command.user_outcome.clone().unwrap_or_else(|| outcome_of(&users, &command.state, None));
        let written: HashSet<&str> = outcome.written.iter().map(String::as_str).collect();
        let held: Vec<(String, String)> = users.into_iter().filter(|(pin, _)| written.contains(pin.as_str())).collect();
        if let Some(device) = action.device() {
            store.record_device_users(device.as_str(), &held, command.id).await?;
        }
        return Ok(());
    }
    if command.state != "done" {
        return Ok(());
    }
    match action {
        CommandAction::DeleteUsers { device, pins } => {
            let pins: Vec<String> = pins.into_iter().map(|p| p.as_str().to_owned()).collect();
            store.remove_device_users(device.as_str(), &pins).await
        }
        CommandAction::CopyTemplates { pin, from, to } => {
            let name = store
                .devices_holding(pin.as_str())
                .await?
                .into_iter()
                .find(|h| h.device_serial == from.as_str())
                .map(|h| h.name)
                .unwrap_or_default();
            for target in to.iter().filter(|t| *t != &from) {
                store
                    .record_device_users(target.as_str(), &[(pin.as_str().to_owned(), name.clone())], command.id)
                    .await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use protocol::UserRefusal;

    use super::*;

    fn users() -> Vec<(String, String)> {
        ["1001", "A-17", "1003"].iter().map(|p| ((*p).to_owned(), format!("name {p}"))).collect()
    }

    #[test]
    fn a_partly_refused_write_names_who_was_written_and_who_was_not() {
        let report = UsersReport {
            written: 2,
            summary: "wrote 2 users".into(),
            refused: vec![UserRefusal { pin: "A-17".into(), reason: "not a number".into() }],
            unlisted: 0,
        };
        let outcome = outcome_of(&users(), "done", Some(&report.to_detail()));
        assert_eq!(outcome.written, ["1001", "1003"]);
        assert_eq!(outcome.refused[0].pin, "A-17");
        assert!(outcome.partial);
        let plain = outcome_of(&users(), "done", Some("wrote 3 users"));
        assert_eq!((plain.written.len(), plain.partial), (3, false));
        let failed = outcome_of(&users(), "failed", Some("device unreachable"));
        assert!(failed.written.is_empty() && !failed.partial);
        let unlisted = UsersReport { unlisted: 1, ..report };
        let outcome = outcome_of(&users(), "done", Some(&unlisted.to_detail()));
        assert!(outcome.written.is_empty() && outcome.partial, "not knowing who, none is claimed written");
    }
}
