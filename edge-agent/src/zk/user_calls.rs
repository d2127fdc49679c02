//! The requests on [`ZkClient`] that change the user table or move fingerprint templates: USER_WRQ, DELETE_USER,
//! the template table read, the buffered upload (FREE_DATA, PREPARE_DATA, DATA packets of 1024 bytes) and
//! SAVE_USER_TEMPLATES, each change followed by REFRESHDATA as pyzk does. The bytes are built in [`super::user_write`]
//! and [`super::templates`].

use tracing::debug;

use super::bulk::Table;
use super::client::{ClientError, ZkClient};
use super::command;
use super::sizes::DeviceSizes;
use super::templates::{self, Template, TemplateRecord, UPLOAD_CHUNK};
use super::user_write;
use super::users::{self, UserLayout, UserRecord};

/// The device's user table as read for a change.
#[derive(Debug, Clone)]
pub struct UserTable {
    /// The record size the users came in; `None` when the table is empty (it does not tell).
    pub layout: Option<UserLayout>,
    pub users: Vec<UserRecord>,
    pub sizes: DeviceSizes,
}

impl ZkClient {
    /// Counts, then the user table with its record size.
    ///
    /// # Errors
    /// As [`ZkClient::read_dataset`], and when the table cannot be decoded.
    pub async fn read_user_table(&mut self) -> Result<UserTable, ClientError> {
        let sizes = self.read_sizes().await?;
        if sizes.users == Some(0) {
            return Ok(UserTable { layout: None, users: Vec::new(), sizes });
        }
        let dataset = self.read_dataset(Table::Users).await?;
        let (layout, users) = users::parse_users_with_layout(&dataset, sizes.users)?;
        Ok(UserTable { layout, users, sizes })
    }

    /// Writes one user (added, or replaced when its uid exists). Call [`ZkClient::refresh_data`] after the last one.
    ///
    /// # Errors
    /// When the device refuses.
    pub async fn set_user(&mut self, layout: UserLayout, record: &UserRecord) -> Result<(), ClientError> {
        self.request_ok(command::USER_WRQ, &user_write::user_write_request(layout, record)).await.map(|_| ())
    }

    /// Deletes the user with `uid` (the device drops its templates with it).
    ///
    /// # Errors
    /// When the device refuses.
    pub async fn delete_user(&mut self, uid: u16) -> Result<(), ClientError> {
        self.request_ok(command::DELETE_USER, &user_write::delete_user_request(uid)).await.map(|_| ())
    }

    /// Makes the device take what was written into use.
    ///
    /// # Errors
    /// When the device refuses.
    pub async fn refresh_data(&mut self) -> Result<(), ClientError> {
        self.request_ok(command::REFRESH_DATA, &[]).await.map(|_| ())
    }

    /// Reads the whole template table. `count` is the fingerprint count from GET_FREE_SIZES (0 skips the read).
    ///
    /// # Errors
    /// As [`ZkClient::read_dataset`], and when a record is malformed (every length is checked).
    pub async fn read_templates(&mut self, count: Option<u32>) -> Result<Vec<TemplateRecord>, ClientError> {
        if count == Some(0) {
            return Ok(Vec::new());
        }
        let dataset = self.read_dataset(Table::Templates).await?;
        templates::parse_templates(&dataset).map_err(|e| ClientError::Templates(e.to_string()))
    }

    /// Writes a user and its fingers in one upload (pyzk's `save_user_template`), then REFRESHDATA.
    ///
    /// # Errors
    /// When a template is refused by [`templates::encode_upload`] or the device refuses a step.
    pub async fn save_user_templates(
        &mut self,
        layout: UserLayout,
        record: &UserRecord,
        fingers: &[Template],
    ) -> Result<(), ClientError> {
        let upload =
            templates::encode_upload(layout, record, fingers).map_err(|e| ClientError::Templates(e.to_string()))?;
        self.send_buffer(&upload).await?;
        self.request_ok(command::SAVE_USER_TEMPLATES, &templates::SAVE_USER_TEMPLATES_BODY).await?;
        self.refresh_data().await
    }

    /// Stages `data` on the device: FREE_DATA, PREPARE_DATA with its size, DATA packets of [`UPLOAD_CHUNK`] bytes.
    async fn send_buffer(&mut self, data: &[u8]) -> Result<(), ClientError> {
        if let Err(e) = self.request_ok(command::FREE_DATA, &[]).await {
            debug!(error = %e, "FREE_DATA before an upload failed; preparing anyway");
        }
        let size = u32::try_from(data.len()).map_err(|_| ClientError::Templates("upload over 4 GiB".into()))?;
        self.request_ok(command::PREPARE_DATA, &size.to_le_bytes()).await?;
        for chunk in data.chunks(UPLOAD_CHUNK) {
            self.request_ok(command::DATA, chunk).await?;
        }
        Ok(())
    }
}
