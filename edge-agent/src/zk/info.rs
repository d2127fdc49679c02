//! What a device says about itself: serial, platform, firmware, name, counts and capacities, and its clock.

use chrono::NaiveDateTime;

use super::client::{ClientError, ZkClient};
use super::options;
use super::sizes::DeviceSizes;

/// The device's identity and state. Text fields are `None` when the device does not answer them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub serial: Option<String>,
    pub platform: Option<String>,
    pub firmware: Option<String>,
    pub device_name: Option<String>,
    pub vendor: Option<String>,
    pub sizes: DeviceSizes,
    /// The device's wall-clock time when it was asked.
    pub time: NaiveDateTime,
}

impl ZkClient {
    /// Reads [`DeviceInfo`].
    ///
    /// # Errors
    /// On link failures and timeouts, or when sizes or time are refused.
    pub async fn device_info(&mut self) -> Result<DeviceInfo, ClientError> {
        Ok(DeviceInfo {
            serial: self.read_option(options::SERIAL_NUMBER).await?,
            platform: self.read_option(options::PLATFORM).await?,
            firmware: self.firmware_version().await?,
            device_name: self.read_option(options::DEVICE_NAME).await?,
            vendor: self.read_option(options::OEM_VENDOR).await?,
            sizes: self.read_sizes().await?,
            time: self.get_time().await?,
        })
    }
}
