//! The bulk read ("read with buffer") pieces, without I/O.
//!
//! 1. PREPARE_BUFFER with `<u8 1, u16 command, u32 fct, u32 ext>` asks the device to stage a table. It answers
//!    either with the whole dataset inline (a DATA packet), or ACK_OK carrying the dataset's size: at byte 1 (most
//!    firmware: `00 <size> <size> <checksum?>`) or, in a 4-byte body, at byte 0.
//! 2. READ_BUFFER `<u32 start, u32 size>` per chunk (at most [`MAX_CHUNK_TCP`] / [`MAX_CHUNK_UDP`]); the device answers
//!    PREPARE_DATA `<u32 size, ...>`, then DATA packets up to that size, then ACK_OK, all under the request's reply
//!    id; some firmware answers a chunk with one DATA packet and nothing else. [`ChunkAssembler`] follows that.
//! 3. FREE_DATA releases the staging buffer.
//!
//! Devices without buffered reads refuse PREPARE_BUFFER; the legacy requests (ATTLOG_RRQ, USERTEMP_RRQ) are answered
//! like one READ_BUFFER chunk holding the whole dataset.
//!
//! Some implementations answer a chunk or a legacy request with one ACK_DATA (2002) packet carrying the payload
//! instead of DATA: an ACK_DATA with a payload is data, never a refusal (an empty one is).

use super::command;
use super::packet::Packet;

/// Largest chunk asked for over TCP.
pub const MAX_CHUNK_TCP: usize = 0xFFC0;
/// Largest chunk asked for over UDP (the device splits it into 1024-byte DATA datagrams).
pub const MAX_CHUNK_UDP: usize = 16 * 1024;
/// Largest dataset accepted (4-byte length included): 32 MiB, 800,000 40-byte records.
pub const MAX_DATASET_LEN: usize = 32 * 1024 * 1024;

/// What a bulk read protocol step got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BufferError {
    #[error("device refused {request}: answered {} ({code})", command::name(*code))]
    Refused { request: &'static str, code: u16 },
    #[error("PREPARE_BUFFER answer of {len} bytes carries no dataset size")]
    NoSize { len: usize },
    #[error("{what} announces {size} bytes, over the limit of {limit}")]
    TooLarge { what: &'static str, size: usize, limit: usize },
    #[error("PREPARE_DATA answer of {len} bytes carries no size")]
    NoPrepareSize { len: usize },
    #[error("transfer overran: {got} bytes received for {expected} announced")]
    Overrun { got: usize, expected: usize },
    #[error("transfer ended after {got} of {expected} bytes")]
    Incomplete { got: usize, expected: usize },
    #[error("unexpected {} ({code}) during a transfer", command::name(*code))]
    Unexpected { code: u16 },
}

/// The PREPARE_BUFFER payload: `<i8 1, i16 command, i32 fct, i32 ext>`.
pub fn prepare_buffer_request(table: u16, fct: u32, ext: u32) -> Vec<u8> {
    let mut out = vec![1];
    out.extend_from_slice(&table.to_le_bytes());
    out.extend_from_slice(&fct.to_le_bytes());
    out.extend_from_slice(&ext.to_le_bytes());
    out
}

/// `(table command, fct)` of a PREPARE_BUFFER payload (the simulator uses it).
pub fn parse_prepare_buffer_request(data: &[u8]) -> Option<(u16, u32)> {
    let table = u16::from_le_bytes(data.get(1..3)?.try_into().ok()?);
    let fct = u32::from_le_bytes(data.get(3..7)?.try_into().ok()?);
    Some((table, fct))
}

/// How the device answered PREPARE_BUFFER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BufferReply {
    /// The whole dataset, inline.
    Inline(Vec<u8>),
    /// The dataset is staged; this many bytes are to be read in chunks.
    Staged(usize),
}

/// Reads the answer to PREPARE_BUFFER.
///
/// # Errors
/// [`BufferError::Refused`] for ACK_ERROR, ACK_UNKNOWN and the like (the caller falls back to the legacy request);
/// [`BufferError::NoSize`] / [`BufferError::TooLarge`] for an unusable size.
pub fn parse_prepare_buffer_reply(reply: Packet) -> Result<BufferReply, BufferError> {
    match reply.command {
        command::DATA => {
            if reply.data.len() > MAX_DATASET_LEN {
                return Err(BufferError::TooLarge {
                    what: "inline dataset",
                    size: reply.data.len(),
                    limit: MAX_DATASET_LEN,
                });
            }
            Ok(BufferReply::Inline(reply.data))
        }
        // An ACK_DATA whose payload is a whole dataset (its u32 length matches) is the inline answer; otherwise it is
        // read like ACK_OK.
        command::ACK_DATA if is_whole_dataset(&reply.data) => {
            parse_prepare_buffer_reply(Packet { command: command::DATA, ..reply })
        }
        command::ACK_OK | command::ACK_DATA => {
            let at = match reply.data.len() {
                4 => 0,
                n if n >= 5 => 1,
                len => return Err(BufferError::NoSize { len }),
            };
            let size = u32::from_le_bytes([reply.data[at], reply.data[at + 1], reply.data[at + 2], reply.data[at + 3]])
                as usize;
            if size > MAX_DATASET_LEN {
                return Err(BufferError::TooLarge { what: "staged dataset", size, limit: MAX_DATASET_LEN });
            }
            Ok(BufferReply::Staged(size))
        }
        code => Err(BufferError::Refused { request: "PREPARE_BUFFER", code }),
    }
}

/// Whether `data` is a dataset: a u32 length followed by exactly that many bytes.
fn is_whole_dataset(data: &[u8]) -> bool {
    data.split_first_chunk::<4>().is_some_and(|(len, rest)| u32::from_le_bytes(*len) as usize == rest.len())
}

/// The ACK_OK body announcing a staged dataset: `00 <size> <size> 00 00 00 00`, or `<size>` when `size_at_zero`.
pub fn staged_reply(size: usize, size_at_zero: bool) -> Vec<u8> {
    let size = (size as u32).to_le_bytes();
    if size_at_zero {
        return size.to_vec();
    }
    let mut out = vec![0];
    out.extend_from_slice(&size);
    out.extend_from_slice(&size);
    out.extend_from_slice(&[0; 4]);
    out
}

/// The READ_BUFFER payload.
pub fn read_buffer_request(start: usize, size: usize) -> Vec<u8> {
    let mut out = (start as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out
}

/// `(start, size)` of a READ_BUFFER payload (the simulator uses it).
pub fn parse_read_buffer_request(data: &[u8]) -> Option<(usize, usize)> {
    let start = i32::from_le_bytes(data.get(0..4)?.try_into().ok()?);
    let size = i32::from_le_bytes(data.get(4..8)?.try_into().ok()?);
    Some((usize::try_from(start).ok()?, usize::try_from(size).ok()?))
}

/// `(start, size)` of each chunk of a `total`-byte dataset.
pub fn chunks(total: usize, max_chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    let max_chunk = max_chunk.max(1);
    (0..total).step_by(max_chunk).map(move |start| (start, max_chunk.min(total - start)))
}

/// The PREPARE_DATA body announcing `size` bytes. The second word is what devices were seen to send (the packet
/// size they will use); pyzk relies on the body being 8 bytes.
pub fn prepare_data_body(size: usize, packet_size: usize) -> Vec<u8> {
    let mut out = (size as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&(packet_size as u32).to_le_bytes());
    out
}

/// What [`ChunkAssembler::push`] made of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkProgress {
    /// More packets are needed.
    NeedMore,
    /// The transfer is complete; these are its bytes. A trailing ACK_OK, if any, is not needed.
    Complete(Vec<u8>),
}

/// Follows one transfer (a READ_BUFFER chunk or a legacy read): PREPARE_DATA, DATA..., or a single DATA.
///
/// Feed it only packets carrying the request's reply id. Its limit bounds both the announced size and what is
/// accepted, so a device cannot make it allocate more than the chunk asked for.
#[derive(Debug)]
pub struct ChunkAssembler {
    request: &'static str,
    limit: usize,
    expected: Option<usize>,
    data: Vec<u8>,
}

impl ChunkAssembler {
    /// A transfer answering `request`, carrying at most `limit` bytes.
    pub fn new(request: &'static str, limit: usize) -> Self {
        Self { request, limit, expected: None, data: Vec::new() }
    }

    /// Bytes received so far.
    pub fn received(&self) -> usize {
        self.data.len()
    }

    /// Takes the next packet of the transfer.
    ///
    /// # Errors
    /// When the device refuses, announces too much, sends more than it announced, or ends early.
    pub fn push(&mut self, packet: Packet) -> Result<ChunkProgress, BufferError> {
        match (self.expected, packet.command) {
            (None, command::PREPARE_DATA) => {
                let Some(size) = packet.data.first_chunk::<4>().map(|b| u32::from_le_bytes(*b) as usize) else {
                    return Err(BufferError::NoPrepareSize { len: packet.data.len() });
                };
                if size > self.limit {
                    return Err(BufferError::TooLarge { what: "PREPARE_DATA", size, limit: self.limit });
                }
                if size == 0 {
                    return Ok(ChunkProgress::Complete(Vec::new()));
                }
                self.expected = Some(size);
                self.data.reserve_exact(size);
                Ok(ChunkProgress::NeedMore)
            }
            (None, code) if code == command::DATA || (code == command::ACK_DATA && !packet.data.is_empty()) => {
                if packet.data.len() > self.limit {
                    return Err(BufferError::TooLarge { what: "DATA", size: packet.data.len(), limit: self.limit });
                }
                Ok(ChunkProgress::Complete(packet.data))
            }
            (None, code) => Err(BufferError::Refused { request: self.request, code }),
            (Some(expected), command::DATA) => {
                let got = self.data.len() + packet.data.len();
                if got > expected {
                    return Err(BufferError::Overrun { got, expected });
                }
                self.data.extend_from_slice(&packet.data);
                if got == expected {
                    return Ok(ChunkProgress::Complete(std::mem::take(&mut self.data)));
                }
                Ok(ChunkProgress::NeedMore)
            }
            (Some(expected), command::ACK_OK) => Err(BufferError::Incomplete { got: self.data.len(), expected }),
            (Some(_), code) => Err(BufferError::Unexpected { code }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(command: u16, data: Vec<u8>) -> Packet {
        Packet::new(command, 1, 5, data)
    }

    #[test]
    fn request_payloads_match_the_reference() {
        assert_eq!(prepare_buffer_request(command::ATTLOG_RRQ, 0, 0), [1, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            prepare_buffer_request(command::USERTEMP_RRQ, command::FCT_USER, 0),
            [1, 0x09, 0, 5, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(parse_prepare_buffer_request(&[1, 0x09, 0, 5, 0, 0, 0, 0, 0, 0, 0]), Some((9, 5)));
        assert_eq!(read_buffer_request(0xFFC0, 100), [0xc0, 0xff, 0, 0, 100, 0, 0, 0]);
        assert_eq!(parse_read_buffer_request(&read_buffer_request(7, 9)), Some((7, 9)));
        assert_eq!(parse_read_buffer_request(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0]), None);
    }

    #[test]
    fn every_shape_of_prepare_buffer_answer() {
        // pyzk test.py: ACK_OK 00 b4130000 b4130000 cdef2300 is 5044 bytes staged.
        let golden = vec![0x00, 0xb4, 0x13, 0, 0, 0xb4, 0x13, 0, 0, 0xcd, 0xef, 0x23, 0x00];
        assert_eq!(parse_prepare_buffer_reply(packet(command::ACK_OK, golden)).unwrap(), BufferReply::Staged(5044));
        assert_eq!(
            parse_prepare_buffer_reply(packet(command::ACK_OK, staged_reply(77, false))).unwrap(),
            BufferReply::Staged(77)
        );
        assert_eq!(
            parse_prepare_buffer_reply(packet(command::ACK_OK, staged_reply(77, true))).unwrap(),
            BufferReply::Staged(77)
        );
        assert_eq!(
            parse_prepare_buffer_reply(packet(command::DATA, vec![1, 2])).unwrap(),
            BufferReply::Inline(vec![1, 2])
        );
        assert_eq!(
            parse_prepare_buffer_reply(packet(command::ACK_ERROR, vec![])).unwrap_err(),
            BufferError::Refused { request: "PREPARE_BUFFER", code: command::ACK_ERROR }
        );
        assert_eq!(
            parse_prepare_buffer_reply(packet(command::ACK_OK, vec![0, 1])).unwrap_err(),
            BufferError::NoSize { len: 2 }
        );
        let huge = staged_reply(MAX_DATASET_LEN + 1, false);
        assert!(matches!(parse_prepare_buffer_reply(packet(command::ACK_OK, huge)), Err(BufferError::TooLarge { .. })));
    }

    #[test]
    fn ack_data_with_a_payload_is_data() {
        // A whole chunk or a legacy answer in one ACK_DATA packet.
        let mut a = ChunkAssembler::new("READ_BUFFER", 100);
        assert_eq!(a.push(packet(command::ACK_DATA, vec![7; 40])).unwrap(), ChunkProgress::Complete(vec![7; 40]));
        let mut a = ChunkAssembler::new("USERTEMP_RRQ", 100);
        assert_eq!(a.push(packet(command::ACK_DATA, vec![1, 2])).unwrap(), ChunkProgress::Complete(vec![1, 2]));
        // An empty ACK_DATA carries nothing: a refusal.
        let mut a = ChunkAssembler::new("ATTLOG_RRQ", 100);
        assert_eq!(
            a.push(packet(command::ACK_DATA, vec![])).unwrap_err(),
            BufferError::Refused { request: "ATTLOG_RRQ", code: command::ACK_DATA }
        );
        let mut a = ChunkAssembler::new("READ_BUFFER", 10);
        assert!(matches!(a.push(packet(command::ACK_DATA, vec![0; 11])), Err(BufferError::TooLarge { .. })));
        // To PREPARE_BUFFER: a whole dataset inline, else a size like ACK_OK's.
        let dataset = [vec![8, 0, 0, 0], vec![5; 8]].concat();
        assert_eq!(
            parse_prepare_buffer_reply(packet(command::ACK_DATA, dataset.clone())).unwrap(),
            BufferReply::Inline(dataset)
        );
        assert_eq!(
            parse_prepare_buffer_reply(packet(command::ACK_DATA, staged_reply(5044, false))).unwrap(),
            BufferReply::Staged(5044)
        );
    }

    #[test]
    fn chunk_plan_covers_the_dataset_exactly() {
        let plan: Vec<_> = chunks(0x1_0000 * 2 + 5, MAX_CHUNK_TCP).collect();
        assert_eq!(plan.iter().map(|(_, n)| n).sum::<usize>(), 0x1_0000 * 2 + 5);
        assert_eq!(plan[0], (0, MAX_CHUNK_TCP));
        assert_eq!(plan[1].0, MAX_CHUNK_TCP);
        assert_eq!(chunks(0, 10).count(), 0);
        assert_eq!(chunks(10, 10).collect::<Vec<_>>(), vec![(0, 10)]);
    }

    #[test]
    fn assembler_follows_prepare_data_then_split_data() {
        let mut a = ChunkAssembler::new("READ_BUFFER", 3000);
        assert_eq!(
            a.push(packet(command::PREPARE_DATA, prepare_data_body(2500, 1024))).unwrap(),
            ChunkProgress::NeedMore
        );
        assert_eq!(a.push(packet(command::DATA, vec![1; 1024])).unwrap(), ChunkProgress::NeedMore);
        assert_eq!(a.push(packet(command::DATA, vec![2; 1024])).unwrap(), ChunkProgress::NeedMore);
        assert_eq!(a.received(), 2048);
        let ChunkProgress::Complete(data) = a.push(packet(command::DATA, vec![3; 452])).unwrap() else { panic!() };
        assert_eq!(data.len(), 2500);
        assert_eq!(&data[2047..2049], &[2, 3]);
    }

    #[test]
    fn assembler_takes_a_single_data_answer_and_refuses_bad_ones() {
        let mut a = ChunkAssembler::new("READ_BUFFER", 10);
        assert_eq!(a.push(packet(command::DATA, vec![9; 10])).unwrap(), ChunkProgress::Complete(vec![9; 10]));
        let mut a = ChunkAssembler::new("READ_BUFFER", 10);
        assert!(matches!(a.push(packet(command::DATA, vec![9; 11])), Err(BufferError::TooLarge { .. })));
        let mut a = ChunkAssembler::new("READ_BUFFER", 10);
        assert!(matches!(
            a.push(packet(command::PREPARE_DATA, prepare_data_body(11, 0))),
            Err(BufferError::TooLarge { .. })
        ));
        let mut a = ChunkAssembler::new("ATTLOG_RRQ", 100);
        assert_eq!(
            a.push(packet(command::ACK_ERROR, vec![])).unwrap_err(),
            BufferError::Refused { request: "ATTLOG_RRQ", code: command::ACK_ERROR }
        );
        let mut a = ChunkAssembler::new("READ_BUFFER", 100);
        a.push(packet(command::PREPARE_DATA, prepare_data_body(8, 0))).unwrap();
        assert_eq!(
            a.push(packet(command::DATA, vec![0; 9])).unwrap_err(),
            BufferError::Overrun { got: 9, expected: 8 }
        );
        let mut a = ChunkAssembler::new("READ_BUFFER", 100);
        a.push(packet(command::PREPARE_DATA, prepare_data_body(8, 0))).unwrap();
        a.push(packet(command::DATA, vec![0; 4])).unwrap();
        assert_eq!(
            a.push(packet(command::ACK_OK, vec![])).unwrap_err(),
            BufferError::Incomplete { got: 4, expected: 8 }
        );
        let mut a = ChunkAssembler::new("READ_BUFFER", 100);
        assert_eq!(a.push(packet(command::PREPARE_DATA, vec![0, 0, 0, 0])).unwrap(), ChunkProgress::Complete(vec![]));
        let mut a = ChunkAssembler::new("READ_BUFFER", 100);
        assert_eq!(a.push(packet(command::PREPARE_DATA, vec![1])).unwrap_err(), BufferError::NoPrepareSize { len: 1 });
    }
}
