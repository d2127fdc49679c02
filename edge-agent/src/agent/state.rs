//! What the agent's tasks share: identity, the buffer, the device board, faults and forward counters.

use std::sync::Arc;
use std::time::Instant;

use protocol::{AgentId, SiteId};

use crate::adms::CommandQueue;
use crate::buffer::Buffer;
use crate::device_status::DeviceStatusBoard;
use crate::faults::Faults;
use crate::forward::ForwardMetrics;

/// The agent's software version, as reported in status and metrics.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

pub struct AgentState {
    pub agent: AgentId,
    pub site: SiteId,
    pub started: Instant,
    pub buffer: Buffer,
    pub board: DeviceStatusBoard,
    pub faults: Faults,
    pub forward: Arc<ForwardMetrics>,
    /// Commands for push (ADMS) devices, queued on the local endpoint and handed out on their polls.
    pub push_commands: Arc<CommandQueue>,
    /// The configuration version and command results the status reports.
    pub report: Arc<crate::fleet::Report>,
}

impl AgentState {
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
