//! Reading a backup file: untrusted bytes, read as a stream with bounded memory.
//!
//! The document is parsed by serde_json element by element: the header first (format, version and metadata are
//! checked before any record is read), then each record on its own, handed to a [`Sink`]. Every length is bounded
//! before it is kept: a record may take at most [`Limits::max_record_bytes`] of input (whitespace before it
//! included), the header [`Limits::max_header_bytes`], and a file at most [`Limits::max_records`] records, so a
//! huge string, a gzip bomb or an endless file stops with an error instead of filling memory.
//!
//! Problems are of two sorts. A *fatal* one stops the reading (the JSON is broken or cut short, a wrong format or
//! version, a limit passed); it is the `Err` of [`read`]. A *record* problem (a checksum that does not match, an
//! unknown kind, a missing or mistyped column, records out of order, counts that disagree with the metadata) is
//! handed to [`Sink::problem`] and the reading goes on, so a validation lists every one. Each names the record
//! (its 1-based number in the file) and the line it ends on.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::format::{BackupType, End, Metadata, FORMAT, FORMAT_VERSION};
use super::record::{RawRecord, RecordSeed};
use super::schema::{Kind, Val, KINDS};

/// Bounds on what a file may make the reader hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Input bytes one record may take.
    pub max_record_bytes: u64,
    /// Input bytes of everything outside the records (format, version, metadata, end).
    pub max_header_bytes: u64,
    /// Records in one file.
    pub max_records: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_record_bytes: 256 * 1024, max_header_bytes: 64 * 1024, max_records: 200_000_000 }
    }
}

/// Something wrong with a file, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// The record's number in the file (1-based), when the problem is about one.
    pub record: Option<u64>,
    /// The line the reading had reached.
    pub line: u64,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.record {
            Some(r) => write!(f, "record {r} (line {}): {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for Problem {}

/// A record read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based number in the file.
    pub number: u64,
    pub line: u64,
    pub kind: Kind,
    /// In column order of the kind.
    pub vals: Vec<Val>,
    pub sha256: [u8; 32],
}

/// What the reader hands records to.
pub trait Sink {
    /// The metadata, before any record. An `Err` stops the reading.
    ///
    /// # Errors
    /// The sink's reason to stop.
    fn metadata(&mut self, _metadata: &Metadata) -> Result<(), String> {
        Ok(())
    }
    /// A record that passed every check. An `Err` stops the reading.
    ///
    /// # Errors
    /// The sink's reason to stop.
    fn record(&mut self, record: Record) -> Result<(), String>;
    /// A record problem; the reading goes on unless this returns `Err`.
    ///
    /// # Errors
    /// The sink's reason to stop.
    fn problem(&mut self, problem: Problem) -> Result<(), String>;
}

/// What a whole read found.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub metadata: Metadata,
    pub records: u64,
    /// Records of each kind actually in the file.
    pub counts: BTreeMap<Kind, u64>,
}

/// Opens a backup for reading: gzip-compressed (by its first two bytes) or plain.
///
/// # Errors
/// When the file cannot be opened.
pub fn open(path: &std::path::Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    let file = std::fs::File::open(path)?;
    decompressing(BufReader::with_capacity(64 * 1024, file))
}

/// Wraps `input` in a gzip decoder when it starts with the gzip magic bytes.
///
/// # Errors
/// When the first bytes cannot be read.
pub fn decompressing<R: BufRead + Send + 'static>(mut input: R) -> std::io::Result<Box<dyn BufRead + Send>> {
    let head = input.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(64 * 1024, flate2::bufread::MultiGzDecoder::new(input))))
    } else {
        Ok(Box::new(input))
    }
}

#[derive(Debug, Default)]
struct Position {
    line: Cell<u64>,
    since_mark: Cell<u64>,
    budget: Cell<u64>,
    over: Cell<bool>,
}

impl Position {
    fn mark(&self, budget: u64) {
        self.since_mark.set(0);
        self.budget.set(budget);
    }
}

/// Counts lines and enforces the byte budget of the element being read.
///
/// serde_json reads a `Read` one byte at a time, so this keeps its own buffer and hands bytes out of it without a
/// call into the reader below (a gzip decoder or a file) for each one.
struct Counting<R> {
    inner: R,
    pos: Rc<Position>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Read> Counting<R> {
    fn new(inner: R, pos: Rc<Position>) -> Self {
        Self { inner, pos, buf: vec![0; 64 * 1024].into_boxed_slice(), start: 0, end: 0 }
    }
}

impl<R: Read> Read for Counting<R> {
    #[inline]
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        // serde_json asks for one byte at a time: that byte without a copy call or a scan.
        if let ([slot], Some(&byte)) = (&mut *out, self.buf[..self.end].get(self.start)) {
            *slot = byte;
            self.start += 1;
            let pos = &self.pos;
            if byte == b'\n' {
                pos.line.set(pos.line.get() + 1);
            }
            let since = pos.since_mark.get() + 1;
            pos.since_mark.set(since);
            if since > pos.budget.get() {
                pos.over.set(true);
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "element too large"));
            }
            return Ok(1);
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.end = self.inner.read(&mut self.buf)?;
        }
        let n = out.len().min(self.end - self.start);
        let taken = &self.buf[self.start..self.start + n];
        out[..n].copy_from_slice(taken);
        self.start += n;
        let pos = &self.pos;
        let lines = taken.iter().filter(|b| **b == b'\n').count() as u64;
        if lines > 0 {
            pos.line.set(pos.line.get() + lines);
        }
        let since = pos.since_mark.get() + n as u64;
        pos.since_mark.set(since);
        if since > pos.budget.get() {
            pos.over.set(true);
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "element too large"));
        }
        Ok(n)
    }
}

struct Ctx<'s, S> {
    sink: &'s mut S,
    pos: Rc<Position>,
    limits: Limits,
    metadata: Option<Metadata>,
    records: u64,
    counts: BTreeMap<Kind, u64>,
    last_kind: Option<Kind>,
    fatal: Option<Problem>,
    /// What the element being read is, for the message when it passes its budget.
    reading: &'static str,
}

impl<S: Sink> Ctx<'_, S> {
    fn line(&self) -> u64 {
        self.pos.line.get() + 1
    }

    fn stop<E: de::Error>(&mut self, record: Option<u64>, message: impl Into<String>) -> E {
        self.fatal = Some(Problem { record, line: self.line(), message: message.into() });
        E::custom("stopped")
    }

    fn problem<E: de::Error>(&mut self, record: Option<u64>, message: impl Into<String>) -> Result<(), E> {
        let p = Problem { record, line: self.line(), message: message.into() };
        self.sink.problem(p).map_err(|m| self.stop(record, m))
    }

    fn on_record<E: de::Error>(&mut self, raw: RawRecord) -> Result<(), E> {
        self.records += 1;
        let number = self.records;
        if number > self.limits.max_records {
            return Err(
                self.stop(Some(number), format!("the file holds more than {} records", self.limits.max_records))
            );
        }
        match raw.check() {
            Ok((kind, vals, sha256)) => {
                *self.counts.entry(kind).or_default() += 1;
                if let Some(last) = self.last_kind.filter(|l| *l > kind) {
                    self.problem(
                        Some(number),
                        format!(
                            "a {} record after {} records: records must be in the order {}",
                            kind.name(),
                            last.name(),
                            KINDS.map(Kind::name).join(", ")
                        ),
                    )?;
                } else {
                    self.last_kind = Some(kind);
                }
                let record = Record { number, line: self.line(), kind, vals, sha256 };
                self.sink.record(record).map_err(|m| self.stop(Some(number), m))
            }
            Err((kind, message)) => {
                if let Some(kind) = kind {
                    *self.counts.entry(kind).or_default() += 1;
                }
                self.problem(Some(number), message)
            }
        }
    }
}

struct DocSeed<'c, 's, S>(&'c mut Ctx<'s, S>);

impl<'de, S: Sink> DeserializeSeed<'de> for DocSeed<'_, '_, S> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(DocVisitor(self.0))
    }
}

struct DocVisitor<'c, 's, S>(&'c mut Ctx<'s, S>);

impl<'de, S: Sink> Visitor<'de> for DocVisitor<'_, '_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a backup document (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let (mut format, mut version, mut records, mut end) = (false, false, false, None::<End>);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => {
                    let f: serde_json::Value = map.next_value()?;
                    if f.as_str() != Some(FORMAT) {
                        return Err(ctx.stop(None, format!("format is {f}, not {FORMAT:?}: this is not a backup file")));
                    }
                    format = true;
                }
                "format_version" => {
                    let v: serde_json::Value = map.next_value()?;
                    if v.as_u64() != Some(u64::from(FORMAT_VERSION)) {
                        return Err(ctx.stop(
                            None,
                            format!("unsupported format_version {v}: this central-api reads version {FORMAT_VERSION}"),
                        ));
                    }
                    version = true;
                }
                "metadata" => {
                    let v: serde_json::Value = map.next_value()?;
                    let m: Metadata =
                        serde_json::from_value(v).map_err(|e| ctx.stop::<A::Error>(None, format!("metadata: {e}")))?;
                    if m.format_version != FORMAT_VERSION {
                        return Err(ctx.stop(
                            None,
                            format!("unsupported metadata.format_version {}: this central-api reads version {FORMAT_VERSION}", m.format_version),
                        ));
                    }
                    match (m.backup_type, m.since) {
                        (BackupType::Incremental, None) => {
                            return Err(ctx.stop(None, "metadata: an incremental backup needs since"))
                        }
                        (BackupType::Full, Some(_)) => {
                            return Err(ctx.stop(None, "metadata: a full backup has no since"))
                        }
                        _ => {}
                    }
                    if let Some(unknown) = m.counts.keys().find(|k| Kind::from_name(k).is_none()) {
                        return Err(ctx.stop(None, format!("metadata.counts: unknown kind {unknown:?}")));
                    }
                    ctx.sink.metadata(&m).map_err(|e| ctx.stop::<A::Error>(None, e))?;
                    ctx.metadata = Some(m);
                }
                "records" => {
                    if !(format && version && ctx.metadata.is_some()) || records {
                        return Err(
                            ctx.stop(None, "format, format_version and metadata must come once each before records")
                        );
                    }
                    ctx.reading = "record";
                    map.next_value_seed(RecordsSeed(&mut *ctx))?;
                    ctx.reading = "header";
                    ctx.pos.mark(ctx.limits.max_header_bytes);
                    records = true;
                }
                "end" => {
                    let v: serde_json::Value = map.next_value()?;
                    end = Some(serde_json::from_value(v).map_err(|e| ctx.stop::<A::Error>(None, format!("end: {e}")))?);
                }
                other => {
                    return Err(ctx.stop(
                        None,
                        format!(
                            "unknown member {other:?} (a backup has format, format_version, metadata, records, end)"
                        ),
                    ))
                }
            }
        }
        if !records {
            return Err(ctx.stop(None, "records are missing"));
        }
        let Some(end) = end else {
            return Err(ctx.stop(None, "end is missing: the file is incomplete"));
        };
        if end.records != ctx.records {
            ctx.problem::<A::Error>(None, format!("end says {} records, the file holds {}", end.records, ctx.records))?;
        }
        if let Some(m) = ctx.metadata.clone() {
            for kind in KINDS {
                let stated = m.counts.get(kind.name()).copied().unwrap_or(0);
                let found = ctx.counts.get(&kind).copied().unwrap_or(0);
                if stated != found {
                    ctx.problem::<A::Error>(
                        None,
                        format!("metadata.counts says {stated} {} records, the file holds {found}", kind.name()),
                    )?;
                }
            }
        }
        Ok(())
    }
}

struct RecordsSeed<'c, 's, S>(&'c mut Ctx<'s, S>);

impl<'de, S: Sink> DeserializeSeed<'de> for RecordsSeed<'_, '_, S> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(RecordsVisitor(self.0))
    }
}

struct RecordsVisitor<'c, 's, S>(&'c mut Ctx<'s, S>);

impl<'de, S: Sink> Visitor<'de> for RecordsVisitor<'_, '_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.0;
        loop {
            ctx.pos.mark(ctx.limits.max_record_bytes);
            match seq.next_element_seed(RecordSeed)? {
                Some(raw) => ctx.on_record(raw)?,
                None => return Ok(()),
            }
        }
    }
}

/// Reads a whole backup from `input`, handing records and record problems to `sink`.
///
/// # Errors
/// The fatal [`Problem`] that stopped the reading.
pub fn read<R: Read, S: Sink>(input: R, limits: Limits, sink: &mut S) -> Result<Summary, Problem> {
    let pos = Rc::new(Position::default());
    pos.mark(limits.max_header_bytes);
    let counting = Counting::new(input, pos.clone());
    let mut de = serde_json::Deserializer::from_reader(counting);
    let mut ctx = Ctx {
        sink,
        pos: pos.clone(),
        limits,
        metadata: None,
        records: 0,
        counts: BTreeMap::new(),
        last_kind: None,
        fatal: None,
        reading: "header",
    };
    let result = DocSeed(&mut ctx).deserialize(&mut de).and_then(|()| de.end());
    let line = ctx.line();
    let next_record = ctx.records + 1;
    if let Err(e) = result {
        if let Some(p) = ctx.fatal.take() {
            return Err(p);
        }
        let in_record = (ctx.reading == "record").then_some(next_record);
        if pos.over.get() {
            let budget = if ctx.reading == "record" { limits.max_record_bytes } else { limits.max_header_bytes };
            return Err(Problem {
                record: in_record,
                line,
                message: format!("the {} is larger than {budget} bytes", ctx.reading),
            });
        }
        let message = if e.is_eof() {
            format!("the file ends early at line {}, column {} (is it truncated?)", e.line(), e.column())
        } else if e.is_io() {
            format!("the file cannot be read: {e} (a damaged gzip stream?)")
        } else {
            format!("not a valid backup document: {e}")
        };
        return Err(Problem { record: in_record, line: if e.line() > 0 { e.line() as u64 } else { line }, message });
    }
    let metadata =
        ctx.metadata.take().ok_or_else(|| Problem { record: None, line, message: "metadata is missing".into() })?;
    Ok(Summary { metadata, records: ctx.records, counts: ctx.counts })
}

/// A sink that keeps every record problem and counts the rest: what the fuzz test and a quick check use.
#[derive(Debug, Default)]
pub struct Collect {
    pub records: u64,
    pub problems: Vec<Problem>,
}

impl Sink for Collect {
    fn record(&mut self, _record: Record) -> Result<(), String> {
        self.records += 1;
        Ok(())
    }
    fn problem(&mut self, problem: Problem) -> Result<(), String> {
        if self.problems.len() < 1000 {
            self.problems.push(problem);
        }
        Ok(())
    }
}

/// Reads arbitrary bytes as a backup with small limits: the entry point of the reader's proptest and fuzz target.
/// Never panics; returns the problems found.
pub fn fuzz_read(bytes: &[u8]) -> Result<Collect, Problem> {
    let limits = Limits { max_record_bytes: 16 * 1024, max_header_bytes: 16 * 1024, max_records: 10_000 };
    let mut sink = Collect::default();
    let input = decompressing(BufReader::new(std::io::Cursor::new(bytes.to_vec()))).map_err(|e| Problem {
        record: None,
        line: 1,
        message: e.to_string(),
    })?;
    read(input, limits, &mut sink)?;
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::backup::schema::{canonical_data, checksum_of};
    use proptest::prelude::*;

    /// A valid document of `n` week-off rules.
    fn sample(n: usize) -> Vec<u8> {
        let def = Kind::WeekOffRule.def();
        let mut out = format!(
            "{{\"format\":\"attendance-backup\",\"format_version\":1,\"metadata\":{{\"format_version\":1,\
             \"created_at\":\"2026-01-01T00:00:00Z\",\"type\":\"full\",\"since\":null,\"counts\":{{\"week_off_rule\":{n}}},\
             \"created_by\":\"t\",\"source_database\":\"sqlite\",\"generator\":\"t\",\"checksum\":\"x\"}},\"records\":[\n"
        )
        .into_bytes();
        for i in 0..n {
            let vals = vec![
                Val::Text(format!("W{i}")),
                Val::Text("Sundays".into()),
                Val::Text("sun".into()),
                Val::Utc(chrono::DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap_or_default()),
            ];
            let mut data = Vec::new();
            canonical_data(def, &vals, &mut data);
            let sum = hex::encode(checksum_of(Kind::WeekOffRule, &data));
            if i > 0 {
                out.extend_from_slice(b",\n");
            }
            out.extend_from_slice(b"{\"kind\":\"week_off_rule\",\"data\":");
            out.extend_from_slice(&data);
            out.extend_from_slice(format!(",\"sha256\":\"{sum}\"}}").as_bytes());
        }
        out.extend_from_slice(format!("\n],\"end\":{{\"records\":{n}}}}}\n").as_bytes());
        out
    }

    #[test]
    fn a_valid_document_reads_cleanly_plain_and_gzipped() {
        let doc = sample(5);
        let read = fuzz_read(&doc).unwrap_or_default_for_test();
        assert_eq!((read.records, read.problems.len()), (5, 0), "{:?}", read.problems);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&doc);
        let read = fuzz_read(&gz.finish().unwrap_or_default()).unwrap_or_default_for_test();
        assert_eq!(read.records, 5);
    }

    trait OrDefault {
        fn unwrap_or_default_for_test(self) -> Collect;
    }
    impl OrDefault for Result<Collect, Problem> {
        fn unwrap_or_default_for_test(self) -> Collect {
            match self {
                Ok(c) => c,
                Err(p) => panic!("refused: {p}"),
            }
        }
    }

    #[test]
    fn refusals_name_the_place() {
        let doc = sample(3);
        let cut = fuzz_read(&doc[..doc.len() - 40]).err().map(|p| p.to_string()).unwrap_or_default();
        assert!(cut.contains("ends early") && cut.contains("record 3"), "{cut}");
        let text = String::from_utf8(doc.clone()).unwrap_or_default();
        let v2 = fuzz_read(text.replacen("\"format_version\":1", "\"format_version\":2", 1).as_bytes());
        assert!(v2.err().map(|p| p.message).unwrap_or_default().contains("unsupported format_version 2"));
        let tampered = fuzz_read(text.replacen("Sundays", "Sundayz", 1).as_bytes()).unwrap_or_default_for_test();
        assert_eq!(tampered.problems.len(), 1);
        assert_eq!(tampered.problems[0].record, Some(1));
        assert_eq!(tampered.problems[0].line, 2);
        assert!(tampered.problems[0].message.contains("checksum does not match"));
        let huge = text.replacen("Sundays", &"x".repeat(20_000), 1);
        let err = fuzz_read(huge.as_bytes()).err().map(|p| p.to_string()).unwrap_or_default();
        assert!(err.contains("record 1") && err.contains("larger than"), "{err}");
    }

    /// One employee record with `data` as given and its checksum computed over that text.
    fn employee_doc(data: &str) -> Vec<u8> {
        let sum = hex::encode(checksum_of(Kind::Employee, data.as_bytes()));
        format!(
            "{{\"format\":\"attendance-backup\",\"format_version\":1,\"metadata\":{{\"format_version\":1,\
             \"created_at\":\"2026-01-01T00:00:00Z\",\"type\":\"full\",\"since\":null,\"counts\":{{\"employee\":1}},\
             \"created_by\":\"t\",\"source_database\":\"sqlite\",\"generator\":\"t\",\"checksum\":\"x\"}},\
             \"records\":[\n{{\"kind\":\"employee\",\"data\":{data},\"sha256\":\"{sum}\"}}\n],\"end\":{{\"records\":1}}}}\n"
        )
        .into_bytes()
    }

    #[test]
    fn an_employee_from_before_the_device_columns_still_reads_with_its_checksum() {
        // The data as backups wrote it before card_number and device_privilege existed.
        let old = "{\"active\":true,\"created_at\":\"2026-01-01T00:00:00Z\",\"date_of_joining\":null,\
                   \"date_of_leaving\":null,\"department\":\"\",\"designation\":\"\",\"employee_id\":\"E1\",\
                   \"name\":\"A\",\"shift_code\":null,\"site_id\":null,\"week_off_rule\":null}";
        let read = fuzz_read(&employee_doc(old)).unwrap_or_default_for_test();
        assert_eq!((read.records, read.problems.len()), (1, 0), "{:?}", read.problems);
        // Written today, the same employee without a card has the same canonical text (null later columns are left
        // out), so an unchanged employee is still "identical" to its older backup.
        let def = Kind::Employee.def();
        let mut vals: Vec<Val> = def
            .cols
            .iter()
            .map(|c| match c.name.as_str() {
                "active" => Val::Bool(true),
                "created_at" => Val::Utc(chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()),
                "department" | "designation" => Val::Text(String::new()),
                "employee_id" => Val::Text("E1".into()),
                "name" => Val::Text("A".into()),
                _ => Val::Null,
            })
            .collect();
        let mut text = Vec::new();
        canonical_data(def, &vals, &mut text);
        assert_eq!(String::from_utf8_lossy(&text), old.replace(' ', ""));
        // With a card and a privilege both are in the data; a card out of range is refused by name.
        let card = def.col("card_number").unwrap_or(usize::MAX);
        let privilege = def.col("device_privilege").unwrap_or(usize::MAX);
        vals[card] = Val::Int(4_294_967_295);
        vals[privilege] = Val::Text("admin".into());
        let mut text = Vec::new();
        canonical_data(def, &vals, &mut text);
        let text = String::from_utf8_lossy(&text).into_owned();
        assert!(
            text.contains("\"card_number\":4294967295,") && text.contains("\"device_privilege\":\"admin\""),
            "{text}"
        );
        let read = fuzz_read(&employee_doc(&text)).unwrap_or_default_for_test();
        assert_eq!((read.records, read.problems.len()), (1, 0), "{:?}", read.problems);
        let zero = text.replace("4294967295", "0");
        let read = fuzz_read(&employee_doc(&zero)).unwrap_or_default_for_test();
        assert!(read.problems.first().is_some_and(|p| p.message.contains("card_number")), "{:?}", read.problems);
        let odd = text.replace("\"admin\"", "\"boss\"");
        let read = fuzz_read(&employee_doc(&odd)).unwrap_or_default_for_test();
        assert!(read.problems.first().is_some_and(|p| p.message.contains("device_privilege")), "{:?}", read.problems);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_budget() {
        // 4 MiB of spaces compress to a few KiB; the reader stops after its header budget, not at the end.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..4 {
            let _ = gz.write_all(&chunk);
        }
        let bomb = gz.finish().unwrap_or_default();
        let err = fuzz_read(&bomb).err().map(|p| p.to_string()).unwrap_or_default();
        assert!(err.contains("larger than"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        // Arbitrary bytes: refused or read, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = fuzz_read(&bytes);
        }

        // A valid document with one byte changed or cut short: refused with a place, or read with every record
        // accounted for (read cleanly, or listed as a problem).
        #[test]
        fn damaged_documents_are_refused_with_a_place(at in 0usize..4096, byte in any::<u8>(), cut in any::<bool>()) {
            let mut doc = sample(4);
            let at = at % doc.len();
            if cut { doc.truncate(at) } else { doc[at] = byte }
            match fuzz_read(&doc) {
                Ok(read) => prop_assert!(read.records + read.problems.len() as u64 >= 4 || !read.problems.is_empty()),
                Err(p) => prop_assert!(p.line >= 1 && !p.message.is_empty()),
            }
        }
    }
}
