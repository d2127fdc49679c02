//! Which devices hold whom: a `set_users` or `copy_templates` command that finished `done` records its PINs on its
//! devices, a `delete_users` one removes them (`device_users`). The record is what central pushed and removed;
//! users enrolled on a terminal by hand are not in it.

use protocol::CommandAction;

use crate::store::fleet::CommandRecord;
use crate::store::{Store, StoreError};

/// Updates `device_users` after a command finished.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn after_result(store: &Store, command: &CommandRecord) -> Result<(), StoreError> {
    if command.state != "done" {
        return Ok(());
    }
    match command.action() {
        Some(CommandAction::SetUsers { device, users }) => {
            let users: Vec<(String, String)> = users.into_iter().map(|u| (u.pin.as_str().to_owned(), u.name)).collect();
            store.record_device_users(device.as_str(), &users, command.id).await
        }
        Some(CommandAction::DeleteUsers { device, pins }) => {
            let pins: Vec<String> = pins.into_iter().map(|p| p.as_str().to_owned()).collect();
            store.remove_device_users(device.as_str(), &pins).await
        }
        Some(CommandAction::CopyTemplates { pin, from, to }) => {
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
