//! The realtime event stream of an HTTP terminal: one long-lived response read chunk by chunk through the
//! [`MultipartReader`](super::multipart::MultipartReader), each part turned into [`StreamItem`]s by the driver's
//! part parser.

use std::collections::VecDeque;
use std::time::Duration;

use super::multipart::{Item, MultipartReader};
use super::terminal::{DeviceEvent, TerminalError};

/// What the stream delivered.
#[derive(Debug, Clone)]
pub enum StreamItem {
    /// A sign of life without an event.
    Heartbeat,
    Event(DeviceEvent),
    /// Something was lost (broken framing, an unreadable part): the history must be read to fill the gap.
    Gap(String),
}

/// Turns one part (lower-cased content type, body) into stream items.
pub type PartParser = Box<dyn FnMut(&str, &[u8]) -> Vec<StreamItem> + Send>;

/// One open event stream.
pub struct EventStream {
    response: reqwest::Response,
    reader: MultipartReader,
    parse: PartParser,
    pending: VecDeque<StreamItem>,
    ended: bool,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").field("url", self.response.url()).field("pending", &self.pending.len()).finish()
    }
}

impl EventStream {
    /// Wraps an open response (status already checked) with its boundary.
    pub fn new(response: reqwest::Response, boundary: Option<&str>, max_part: usize, parse: PartParser) -> Self {
        Self {
            response,
            reader: MultipartReader::new(boundary, max_part),
            parse,
            pending: VecDeque::new(),
            ended: false,
        }
    }

    /// The next item; `Ok(None)` when the device closed the stream.
    ///
    /// # Errors
    /// [`TerminalError::StreamIdle`] when nothing arrived for `idle`, [`TerminalError::Stream`] for a broken
    /// connection or framing beyond the limits.
    pub async fn next(&mut self, idle: Duration) -> Result<Option<StreamItem>, TerminalError> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Ok(Some(item));
            }
            if self.ended {
                return Ok(None);
            }
            let chunk = tokio::time::timeout(idle, self.response.chunk())
                .await
                .map_err(|_| TerminalError::StreamIdle(idle))?
                .map_err(|e| TerminalError::Stream(format!("event stream broke: {e}")))?;
            let Some(chunk) = chunk else {
                self.ended = true;
                continue;
            };
            let items = self.reader.push(&chunk).map_err(|e| TerminalError::Stream(e.to_string()))?;
            let mut alive = false;
            for item in items {
                match item {
                    Item::Part { content_type, body } => {
                        let parsed = (self.parse)(&content_type, &body);
                        alive |= parsed.is_empty();
                        self.pending.extend(parsed);
                    }
                    Item::Skipped { .. } => alive = true,
                    Item::Resync { skipped } => {
                        self.pending.push_back(StreamItem::Gap(format!(
                            "the event stream's framing was lost; {skipped} bytes skipped"
                        )));
                    }
                    Item::End => self.ended = true,
                }
            }
            if alive && self.pending.is_empty() {
                return Ok(Some(StreamItem::Heartbeat));
            }
        }
    }
}
