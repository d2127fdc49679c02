//! An incremental reader of the long-lived `multipart/mixed` (Hikvision `alertStream`) and
//! `multipart/x-mixed-replace` (Dahua `eventManager.cgi?action=attach`) responses. No I/O: bytes go in as they
//! arrive, whole parts come out.
//!
//! A part is delivered as soon as its `Content-Length` bytes are in, so an event is not held back until the next
//! boundary (which may come minutes later); a part without a length ends at the next boundary. After a part, only
//! line breaks may come before the next boundary: anything else means the length lied, and the reader skips to the
//! next boundary and reports a [`Item::Resync`] (the caller treats it as a gap to backfill). Every length is bounded:
//! a part's headers by [`MAX_HEADER_BYTES`], a kept body by the caller's limit; bodies of binary parts (the face
//! pictures of Hikvision terminals) are skipped without being buffered.

/// Longest header block of one part.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Longest declared length of a skipped (binary) part.
pub const MAX_SKIPPED_PART: usize = 64 * 1024 * 1024;

/// What the reader produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// One part: its lower-cased `Content-Type` (empty when absent) and body.
    Part { content_type: String, body: Vec<u8> },
    /// A binary part (an image) whose body was skipped.
    Skipped { content_type: String, len: usize },
    /// The framing was lost and `skipped` bytes were thrown away up to the next boundary.
    Resync { skipped: usize },
    /// The closing boundary (`--boundary--`).
    End,
}

/// Why the stream cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("a part's headers exceed {MAX_HEADER_BYTES} bytes")]
    HeadersTooLong,
    #[error("a part of {len} bytes exceeds the limit of {limit}")]
    PartTooLarge { len: usize, limit: usize },
}

#[derive(Debug)]
enum State {
    /// Looking for the next delimiter line; `after_part` when a part just ended (so junk means lost framing).
    Delimiter {
        after_part: bool,
    },
    Headers,
    Body {
        content_type: String,
        remaining: Option<usize>,
        keep: bool,
        body: Vec<u8>,
        skipped: usize,
    },
    Done,
}

/// The reader of one response.
#[derive(Debug)]
pub struct MultipartReader {
    /// `--` + boundary; empty until sniffed from the first delimiter line when the header gave none.
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    state: State,
    max_part: usize,
}

/// The boundary parameter of a `Content-Type` header value (`multipart/mixed; boundary=MIME_boundary`), unquoted.
pub fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        // Some firmware writes the delimiter itself (`--myboundary`) as the parameter.
        let value = value.strip_prefix("--").unwrap_or(value);
        (!value.is_empty() && value.len() <= 200).then(|| value.to_owned())
    })
}

impl MultipartReader {
    /// A reader for `boundary` (from [`boundary_of`]); `None` takes it from the first line starting with `--`.
    /// Kept (non-binary) bodies longer than `max_part` are an error.
    pub fn new(boundary: Option<&str>, max_part: usize) -> Self {
        let delimiter = boundary.map(|b| format!("--{b}").into_bytes()).unwrap_or_default();
        Self { delimiter, buf: Vec::new(), state: State::Delimiter { after_part: false }, max_part }
    }

    /// Feeds bytes; returns the items completed by them.
    ///
    /// # Errors
    /// [`MultipartError`] when a limit is exceeded; the reader is then unusable (drop the connection).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Item>, MultipartError> {
        self.buf.extend_from_slice(bytes);
        let mut items = Vec::new();
        while self.step(&mut items)? {}
        Ok(items)
    }

    /// One state transition; false when more bytes are needed.
    fn step(&mut self, items: &mut Vec<Item>) -> Result<bool, MultipartError> {
        match &mut self.state {
            State::Done => {
                self.buf.clear();
                Ok(false)
            }
            State::Delimiter { after_part } => {
                let after_part = *after_part;
                if self.delimiter.is_empty() && !self.sniff_delimiter() {
                    return Ok(false);
                }
                let Some(at) = find(&self.buf, &self.delimiter) else {
                    // Keep a tail that may hold the start of the delimiter; the rest is preamble or junk.
                    let keep = self.delimiter.len().saturating_sub(1);
                    if self.buf.len() > keep {
                        let drop = self.buf.len() - keep;
                        if after_part && self.buf[..drop].iter().any(|b| !b.is_ascii_whitespace()) {
                            self.state = State::Delimiter { after_part: false };
                            items.push(Item::Resync { skipped: drop });
                        }
                        self.buf.drain(..drop);
                    }
                    return Ok(false);
                };
                // The rest of the delimiter line: `--` closes the stream, then the line break.
                let rest = &self.buf[at + self.delimiter.len()..];
                let Some(line_end) = rest.iter().position(|b| *b == b'\n') else {
                    if rest.starts_with(b"--") {
                        self.finish(at, after_part, items);
                        return Ok(false);
                    }
                    if rest.len() > MAX_HEADER_BYTES {
                        return Err(MultipartError::HeadersTooLong);
                    }
                    return Ok(false);
                };
                let closing = rest.starts_with(b"--");
                if after_part && self.buf[..at].iter().any(|b| !b.is_ascii_whitespace()) {
                    items.push(Item::Resync { skipped: at });
                }
                let consumed = at + self.delimiter.len() + line_end + 1;
                self.buf.drain(..consumed);
                if closing {
                    self.state = State::Done;
                    items.push(Item::End);
                } else {
                    self.state = State::Headers;
                }
                Ok(true)
            }
            State::Headers => {
                let Some((end, sep_len)) = header_end(&self.buf) else {
                    if self.buf.len() > MAX_HEADER_BYTES {
                        return Err(MultipartError::HeadersTooLong);
                    }
                    return Ok(false);
                };
                if end > MAX_HEADER_BYTES {
                    return Err(MultipartError::HeadersTooLong);
                }
                let (content_type, length) = parse_headers(&self.buf[..end]);
                self.buf.drain(..end + sep_len);
                let keep = !is_binary(&content_type);
                if let Some(len) = length {
                    let limit = if keep { self.max_part } else { MAX_SKIPPED_PART };
                    if len > limit {
                        return Err(MultipartError::PartTooLarge { len, limit });
                    }
                }
                self.state = State::Body { content_type, remaining: length, keep, body: Vec::new(), skipped: 0 };
                Ok(true)
            }
            State::Body { content_type, remaining, keep, body, skipped } => {
                match remaining {
                    Some(left) => {
                        let take = (*left).min(self.buf.len());
                        if *keep {
                            body.extend_from_slice(&self.buf[..take]);
                        } else {
                            *skipped += take;
                        }
                        self.buf.drain(..take);
                        *left -= take;
                        if *left > 0 {
                            return Ok(false);
                        }
                    }
                    None => {
                        // Ends at the line break before the next delimiter.
                        let Some(at) = find(&self.buf, &self.delimiter) else {
                            let keep_tail = self.delimiter.len() + 2;
                            if self.buf.len() > keep_tail {
                                let take = self.buf.len() - keep_tail;
                                if *keep {
                                    body.extend_from_slice(&self.buf[..take]);
                                } else {
                                    *skipped += take;
                                }
                                self.buf.drain(..take);
                            }
                            if *keep && body.len() > self.max_part {
                                return Err(MultipartError::PartTooLarge { len: body.len(), limit: self.max_part });
                            }
                            return Ok(false);
                        };
                        if *keep {
                            body.extend_from_slice(&self.buf[..at]);
                            while body.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                                body.pop();
                            }
                        } else {
                            *skipped += at;
                        }
                        self.buf.drain(..at);
                    }
                }
                if *keep && body.len() > self.max_part {
                    return Err(MultipartError::PartTooLarge { len: body.len(), limit: self.max_part });
                }
                let content_type = std::mem::take(content_type);
                let item = if *keep {
                    Item::Part { content_type, body: std::mem::take(body) }
                } else {
                    Item::Skipped { content_type, len: *skipped }
                };
                items.push(item);
                self.state = State::Delimiter { after_part: true };
                Ok(true)
            }
        }
    }

    /// Takes the delimiter from the first line starting with `--`; false while none is complete.
    fn sniff_delimiter(&mut self) -> bool {
        let mut start = 0;
        while let Some(offset) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let line = trim_line(&self.buf[start..start + offset]);
            if line.len() > 2 && line.starts_with(b"--") && line.len() <= 202 {
                self.delimiter = line.to_vec();
                self.buf.drain(..start);
                return true;
            }
            start += offset + 1;
        }
        if self.buf.len() > MAX_HEADER_BYTES {
            let drop = self.buf.len() - MAX_HEADER_BYTES;
            self.buf.drain(..drop);
        }
        false
    }

    fn finish(&mut self, at: usize, after_part: bool, items: &mut Vec<Item>) {
        if after_part && self.buf[..at].iter().any(|b| !b.is_ascii_whitespace()) {
            items.push(Item::Resync { skipped: at });
        }
        self.buf.clear();
        self.state = State::Done;
        items.push(Item::End);
    }
}

/// Whether a part of this type is binary (its body is skipped).
fn is_binary(content_type: &str) -> bool {
    content_type.starts_with("image/")
        || content_type.starts_with("video/")
        || content_type == "application/octet-stream"
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut line = line;
    while let [rest @ .., b'\r' | b' ' | b'\t'] = line {
        line = rest;
    }
    line
}

/// Where the header block ends (`\r\n\r\n` or `\n\n`) and the separator's length. An empty block (the body starting
/// right away on the next line) ends at 0.
fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    if buf.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if buf.starts_with(b"\n") {
        return Some((0, 1));
    }
    let crlf = find(buf, b"\r\n\r\n").map(|at| (at, 4));
    let lf = find(buf, b"\n\n").map(|at| (at, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The lower-cased content type and the declared length of a header block.
fn parse_headers(block: &[u8]) -> (String, Option<usize>) {
    let text = String::from_utf8_lossy(block);
    let mut content_type = String::new();
    let mut length = None;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-type") {
            content_type = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    (content_type, length)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(boundary: &str, content_type: &str, body: &str, with_length: bool) -> String {
        let length = if with_length { format!("Content-Length: {}\r\n", body.len()) } else { String::new() };
        format!("--{boundary}\r\nContent-Type: {content_type}\r\n{length}\r\n{body}\r\n")
    }

    fn bodies(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Part { body, .. } => Some(String::from_utf8_lossy(body).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_part_with_a_length_comes_out_before_the_next_boundary() {
        let mut reader = MultipartReader::new(Some("MIME_boundary"), 1024);
        let items = reader.push(part("MIME_boundary", "application/json", "{\"a\":1}", true).as_bytes()).unwrap();
        assert_eq!(bodies(&items), ["{\"a\":1}"]);
    }

    #[test]
    fn every_split_point_gives_the_same_parts() {
        let mut stream = String::new();
        stream.push_str(&part("myboundary", "text/plain", "Heartbeat", true));
        stream.push_str(&part("myboundary", "text/plain", "Code=AccessControl;action=Pulse;data={\n}", false));
        stream.push_str(&part("myboundary", "image/jpeg", "\u{1}\u{2}binary", true));
        stream.push_str(&part("myboundary", "text/plain", "last", true));
        stream.push_str("--myboundary--\r\n");
        for split in 0..stream.len() {
            let mut reader = MultipartReader::new(Some("myboundary"), 1024);
            let mut items = reader.push(&stream.as_bytes()[..split]).unwrap();
            items.extend(reader.push(&stream.as_bytes()[split..]).unwrap());
            assert_eq!(
                bodies(&items),
                ["Heartbeat", "Code=AccessControl;action=Pulse;data={\n}", "last"],
                "split at {split}"
            );
            assert!(items.contains(&Item::Skipped { content_type: "image/jpeg".into(), len: 8 }));
            assert_eq!(items.last(), Some(&Item::End));
        }
    }

    #[test]
    fn a_lying_length_is_reported_and_the_next_part_is_found() {
        let mut reader = MultipartReader::new(Some("b"), 1024);
        let stream = "--b\r\nContent-Length: 2\r\n\r\nabcdef\r\n--b\r\nContent-Length: 2\r\n\r\nok\r\n";
        let items = reader.push(stream.as_bytes()).unwrap();
        assert_eq!(bodies(&items), ["ab", "ok"]);
        assert!(items.iter().any(|i| matches!(i, Item::Resync { .. })));
    }

    #[test]
    fn the_boundary_is_sniffed_and_limits_hold() {
        let mut reader = MultipartReader::new(None, 4);
        assert_eq!(bodies(&reader.push(b"--xyz\r\n\r\nabc\r\n--xyz\r\n").unwrap()), ["abc"]);
        assert!(matches!(
            reader.push(b"Content-Length: 5\r\n\r\n"),
            Err(MultipartError::PartTooLarge { len: 5, limit: 4 })
        ));
        let mut reader = MultipartReader::new(Some("b"), 4);
        assert!(reader.push(&[b'x'; 100]).unwrap().is_empty());
        let mut headers = b"--b\r\n".to_vec();
        headers.extend(vec![b'h'; MAX_HEADER_BYTES + 1]);
        assert_eq!(reader.push(&headers), Err(MultipartError::HeadersTooLong));
    }

    #[test]
    fn boundaries_are_read_from_the_content_type() {
        assert_eq!(boundary_of("multipart/mixed; boundary=MIME_boundary").as_deref(), Some("MIME_boundary"));
        assert_eq!(boundary_of("multipart/x-mixed-replace;boundary=\"--myboundary\"").as_deref(), Some("myboundary"));
        assert_eq!(boundary_of("multipart/mixed"), None);
    }
}
