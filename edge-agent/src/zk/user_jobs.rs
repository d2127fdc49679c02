//! The jobs of [`super::jobs`] that touch users and fingerprint templates, on an open connection.

use super::client::{ClientError, ZkClient};
use super::jobs::{ZkJob, ZkJobOutput};
use super::poller::PollError;

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

impl From<PollError> for JobFailure {
    fn from(e: PollError) -> Self {
        Self::Poll(e)
    }
}

/// Carries out a user or template job.
///
/// # Errors
/// [`JobFailure`].
pub async fn run(_client: &mut ZkClient, job: ZkJob) -> Result<ZkJobOutput, JobFailure> {
    Err(JobFailure::Refused(format!("{job:?} is not supported by this driver yet")))
}
