//! People on terminals (issue 17): what central asks an agent to write ([`UserUpdate`], carried by
//! [`crate::CommandAction::WriteUsers`]) and how the agent reports a write that devices refused in part
//! ([`UsersReport`], in a [`crate::CommandResult`]'s `detail`).
//!
//! A [`UserUpdate`] says only what central knows: a card or a privilege left out keeps the one the terminal holds
//! (a new user gets no card and the ordinary user level). So a site-wide push never demotes an administrator enrolled
//! on the terminal, nor wipes a card central was never told about.
//!
//! A [`UsersReport`] is JSON inside the result's `detail` (at most [`MAX_TEXT_LEN`] bytes, so it changes no envelope
//! bytes): how many users were written, and which were refused and why. Central knows the users it sent, so the
//! written ones are those sent and not refused; refusals that did not fit are counted in `unlisted`.

use serde::{Deserialize, Serialize};

use crate::codec::DecodeError;
use crate::envelope::{check_privilege, check_user_name, DeviceUser};
use crate::ids::Pin;
use crate::limits::MAX_TEXT_LEN;

/// A person to write to a terminal; `None` keeps what the terminal holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdate {
    pub pin: Pin,
    /// At most [`crate::envelope::MAX_USER_NAME_LEN`] bytes.
    pub name: String,
    /// The card number (1 to 4294967295: both ZKTeco user layouts keep a u32); `None` keeps the terminal's.
    pub card: Option<u32>,
    /// 0 user, 2 enroller, 6 administrator, 14 super administrator; `None` keeps the terminal's (0 for a new user).
    pub privilege: Option<u8>,
}

impl UserUpdate {
    /// Checks the name's length and characters, the card and the privilege level.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_user_name(&self.pin, &self.name)?;
        if self.card == Some(0) {
            return Err(DecodeError::invalid(
                "users.card",
                format!("0 for PIN {}: leave the card out instead", self.pin),
            ));
        }
        match self.privilege {
            Some(privilege) => check_privilege(&self.pin, privilege),
            None => Ok(()),
        }
    }
}

impl From<DeviceUser> for UserUpdate {
    /// A [`DeviceUser`] as an update: its card 0 means "keep the terminal's", its privilege is always written.
    fn from(user: DeviceUser) -> Self {
        Self {
            pin: user.pin,
            name: user.name,
            card: (user.card != 0).then_some(user.card),
            privilege: Some(user.privilege),
        }
    }
}

/// One user a device (or the agent, for the device's layout) refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRefusal {
    pub pin: String,
    pub reason: String,
}

/// The outcome of writing users to one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersReport {
    /// Users written (added or replaced).
    pub written: u32,
    /// What the device said of the write as a whole (`wrote 3 users (2 added, 1 replaced, 72-byte records)`).
    pub summary: String,
    /// Users refused, with why.
    pub refused: Vec<UserRefusal>,
    /// Refusals not listed because the detail is bounded.
    pub unlisted: u32,
}

/// The longest reason kept per refusal, in bytes.
pub const MAX_REFUSAL_REASON: usize = 120;

impl UsersReport {
    /// Whether some users were refused.
    pub fn any_refused(&self) -> bool {
        !self.refused.is_empty() || self.unlisted > 0
    }

    /// The report as a result's `detail`: JSON of at most [`MAX_TEXT_LEN`] bytes. Reasons are cut to
    /// [`MAX_REFUSAL_REASON`] bytes and the summary to 200; refusals that do not fit are counted in `unlisted`.
    pub fn to_detail(&self) -> String {
        let mut report = self.clone();
        report.summary = cut(&report.summary, 200).to_owned();
        for refusal in &mut report.refused {
            refusal.reason = cut(&refusal.reason, MAX_REFUSAL_REASON).to_owned();
            refusal.pin = cut(&refusal.pin, crate::limits::MAX_PIN_LEN).to_owned();
        }
        loop {
            let text = serde_json::to_string(&report).unwrap_or_default();
            if text.len() <= MAX_TEXT_LEN || report.refused.is_empty() {
                return text;
            }
            report.refused.pop();
            report.unlisted += 1;
        }
    }

    /// Reads a report back from a result's `detail`; `None` when the detail is not one.
    pub fn from_detail(detail: &str) -> Option<Self> {
        if !detail.starts_with('{') {
            return None;
        }
        serde_json::from_str(detail).ok()
    }
}

fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_leaves_out_what_central_does_not_know() {
        let user = DeviceUser { pin: "1001".parse().unwrap(), name: "Asha".into(), card: 0, privilege: 6 };
        let update = UserUpdate::from(user);
        assert_eq!((update.card, update.privilege), (None, Some(6)));
        assert!(update.validate().is_ok());
        let bad = UserUpdate { card: Some(0), ..update.clone() };
        assert!(bad.validate().unwrap_err().to_string().contains("users.card"));
        let bad = UserUpdate { privilege: Some(3), ..update };
        assert!(bad.validate().unwrap_err().to_string().contains("users.privilege"));
    }

    #[test]
    fn a_report_fits_the_detail_and_counts_what_it_leaves_out() {
        let refused: Vec<UserRefusal> =
            (0..100).map(|i| UserRefusal { pin: format!("E{i:04}"), reason: "x".repeat(300) }).collect();
        let report = UsersReport { written: 400, summary: "wrote 400 users".into(), refused, unlisted: 0 };
        let detail = report.to_detail();
        assert!(detail.len() <= MAX_TEXT_LEN, "{}", detail.len());
        let back = UsersReport::from_detail(&detail).unwrap();
        assert_eq!(back.refused.len() as u32 + back.unlisted, 100);
        assert!(back.refused.iter().all(|r| r.reason.len() == MAX_REFUSAL_REASON));
        assert_eq!(back.written, 400);
        assert!(UsersReport::from_detail("wrote 3 users").is_none());
    }
}
