//! One record of a backup file, read straight from the JSON stream into its kind's columns.
//!
//! [`RecordSeed`] deserializes `{"kind":...,"data":{...},"sha256":...}` without building a `serde_json::Value`:
//! when `kind` comes before `data` (as every file this program writes has it), each member of `data` is parsed
//! into its column's [`Val`] as it is read. A file with `data` first still reads: its `data` is kept as a JSON
//! object and parsed when the record ends. Whatever is wrong with a record's content is not a deserialization
//! error (that would stop the file): it is kept and reported by [`RawRecord::check`] in the order the reader has
//! always used (structure, kind, data members, values, keys, cross-column rules, checksum), so a validation lists
//! every bad record.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::schema::{checksum, Col, Kind, KindDef, Val, KINDS};
use super::values::{json_type, not_whole, parse_int, parse_text, parse_val, type_error};

/// A record's kind, values (in column order) and checksum.
pub type Parsed = (Kind, Vec<Val>, [u8; 32]);

/// Reads the rest of an array the seeds do not keep.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads the rest of an object the seeds do not keep.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The `visit_*` methods for every JSON value but an object: each reads the value and returns `$not` of its
/// [`json_type`] word.
macro_rules! visit_non_objects {
    ($de:lifetime, $value:ty, $not:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            Ok($not("null"))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok($not("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Ok($not("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            Ok($not("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok($not("a number"))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<$value, E> {
            Ok($not("a string"))
        }
        fn visit_seq<A: SeqAccess<$de>>(self, seq: A) -> Result<$value, A::Error> {
            drain_seq(seq)?;
            Ok($not("an array"))
        }
    };
}

/// One column's value: `Ok` the value, `Err` what is wrong with it.
struct ValSeed<'d>(&'d Col);

impl<'de> DeserializeSeed<'de> for ValSeed<'_> {
    type Value = Result<Val, String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValSeed<'_> {
    fn typed(&self, found: &'static str, ok: impl FnOnce() -> Result<Val, String>) -> Result<Val, String> {
        match type_error(self.0, found) {
            Some(message) => Err(message),
            None => ok(),
        }
    }
}

impl<'de> Visitor<'de> for ValSeed<'_> {
    type Value = Result<Val, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(if self.0.nullable { Ok(Val::Null) } else { Err("must not be null".into()) })
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self.typed("a boolean", || Ok(Val::Bool(v))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.typed("a number", || parse_int(self.0, v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.typed("a number", || match i64::try_from(v) {
            Ok(i) => parse_int(self.0, i),
            Err(_) => Err(not_whole(self.0, &v.to_string())),
        }))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let shown = serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string());
        Ok(self.typed("a number", || Err(not_whole(self.0, &shown))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.typed("a string", || parse_text(self.0, v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(Err(type_error(self.0, "an array").unwrap_or_default()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(Err(type_error(self.0, "an object").unwrap_or_default()))
    }
}

/// A member name of `data`: the index of its column, or the name when the kind has no such column.
struct ColumnName<'d>(&'d KindDef);

impl<'de> DeserializeSeed<'de> for ColumnName<'_> {
    type Value = Result<usize, String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ColumnName<'_> {
    type Value = Result<usize, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        // Columns are in byte order of their names.
        Ok(self.0.cols.binary_search_by(|c| c.name.as_bytes().cmp(v.as_bytes())).map_err(|_| v.to_owned()))
    }
}

/// `data` as read.
enum Data {
    Missing,
    /// Not an object: what it was.
    NotObject(&'static str),
    /// Read into the columns of the kind named before it.
    Columns {
        vals: Vec<Option<Result<Val, String>>>,
        /// The first (in byte order) member that is not a column.
        unknown: Option<String>,
    },
    /// Read before the kind was known: parsed at the end.
    Later(serde_json::Map<String, serde_json::Value>),
}

/// `data` read into the columns of `def`.
struct DataSeed<'d>(&'d KindDef);

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Data;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let def = self.0;
        let mut vals: Vec<Option<Result<Val, String>>> = vec![None; def.cols.len()];
        let mut unknown: Option<String> = None;
        while let Some(name) = map.next_key_seed(ColumnName(def))? {
            match name {
                Ok(i) => vals[i] = Some(map.next_value_seed(ValSeed(&def.cols[i]))?),
                Err(name) => {
                    map.next_value::<IgnoredAny>()?;
                    if unknown.as_ref().is_none_or(|u| name < *u) {
                        unknown = Some(name);
                    }
                }
            }
        }
        Ok(Data::Columns { vals, unknown })
    }

    visit_non_objects!('de, Data, Data::NotObject);
}

/// A record as read, checked by [`RawRecord::check`].
pub struct RawRecord {
    /// Not an object: what it was.
    not_object: Option<&'static str>,
    /// The first (in byte order) member that is not kind, data or sha256.
    unknown: Option<String>,
    kind: Option<serde_json::Value>,
    data: Data,
    sha256: Option<serde_json::Value>,
}

impl RawRecord {
    fn not_object(what: &'static str) -> Self {
        Self { not_object: Some(what), unknown: None, kind: None, data: Data::Missing, sha256: None }
    }

    /// The record's kind when it names a known one.
    pub fn kind(&self) -> Option<Kind> {
        self.kind.as_ref().and_then(serde_json::Value::as_str).and_then(Kind::from_name)
    }

    /// Checks the record; a refusal carries the record's kind when it is known.
    ///
    /// # Errors
    /// What is wrong, in words naming the member or column.
    pub fn check(self) -> Result<Parsed, (Option<Kind>, String)> {
        let kind = self.kind();
        self.check_inner().map_err(|m| (kind, m))
    }

    fn check_inner(self) -> Result<Parsed, String> {
        if let Some(what) = self.not_object {
            return Err(format!("a record must be an object, not {what}"));
        }
        if let Some(extra) = self.unknown {
            return Err(format!("unknown member {extra:?} (a record has kind, data and sha256)"));
        }
        let kind_name = match &self.kind {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => return Err(format!("kind must be a string, not {}", json_type(other))),
            None => return Err("kind is missing".into()),
        };
        let kind = Kind::from_name(&kind_name)
            .ok_or_else(|| format!("unknown kind {kind_name:?} (known: {})", KINDS.map(Kind::name).join(", ")))?;
        let def = kind.def();
        let vals = match self.data {
            Data::Missing => return Err(format!("{kind_name}: data is missing")),
            Data::NotObject(what) => return Err(format!("{kind_name}: data must be an object, not {what}")),
            Data::Columns { vals, unknown } => {
                if let Some(extra) = unknown {
                    return Err(format!("{kind_name}: data.{extra} is not a column of {kind_name}"));
                }
                let mut out = Vec::with_capacity(def.cols.len());
                for (col, v) in def.cols.iter().zip(vals) {
                    match v {
                        None if col.later => out.push(Val::Null),
                        None => return Err(format!("{kind_name}: data.{} is missing", col.name)),
                        Some(Err(m)) => return Err(format!("{kind_name}: data.{}: {m}", col.name)),
                        Some(Ok(v)) => out.push(v),
                    }
                }
                out
            }
            Data::Later(data) => {
                if let Some(extra) = data.keys().filter(|k| def.col(k).is_none()).min() {
                    return Err(format!("{kind_name}: data.{extra} is not a column of {kind_name}"));
                }
                let mut out = Vec::with_capacity(def.cols.len());
                for col in &def.cols {
                    let Some(v) = data.get(&col.name) else {
                        if col.later {
                            out.push(Val::Null);
                            continue;
                        }
                        return Err(format!("{kind_name}: data.{} is missing", col.name));
                    };
                    out.push(parse_val(col, v).map_err(|m| format!("{kind_name}: data.{}: {m}", col.name))?);
                }
                out
            }
        };
        for k in &def.key {
            if matches!(&vals[*k], Val::Text(s) if s.trim().is_empty()) {
                return Err(format!("{kind_name}: data.{}: a key must not be empty", def.cols[*k].name));
            }
        }
        check_kind(kind, def, &vals).map_err(|m| format!("{kind_name}: {m}"))?;
        let computed = checksum(def, &vals);
        let stated = match &self.sha256 {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => return Err(format!("{kind_name}: sha256 must be a string, not {}", json_type(other))),
            None => return Err(format!("{kind_name}: sha256 is missing")),
        };
        let mut stated_bytes = [0u8; 32];
        if hex::decode_to_slice(stated, &mut stated_bytes).is_err() || stated_bytes != computed {
            return Err(format!(
                "{kind_name} {}: checksum does not match its data (the file says {stated:?}, the data gives {})",
                super::schema::key_text(def, &vals),
                hex::encode(computed)
            ));
        }
        Ok((kind, vals, computed))
    }
}

/// Checks that hold across columns of one kind.
fn check_kind(kind: Kind, def: &KindDef, vals: &[Val]) -> Result<(), String> {
    let get = |name: &str| def.col(name).and_then(|i| vals.get(i));
    match kind {
        Kind::Punch => {
            let (Some(Val::Text(serial)), Some(Val::Text(pin)), Some(Val::Local(at)), Some(Val::Bytes(key))) =
                (get("device_serial"), get("pin"), get("local_time"), get("punch_key"))
            else {
                return Err("punch columns are missing".into());
            };
            let serial: protocol::DeviceSerial =
                serial.parse().map_err(|e| format!("data.device_serial {serial:?}: {e}"))?;
            let pin: protocol::Pin = pin.parse().map_err(|e| format!("data.pin {pin:?}: {e}"))?;
            let expected = protocol::PunchKey::of(&serial, &pin, *at);
            if key.as_slice() != expected.as_bytes() {
                return Err(format!(
                    "data.punch_key {} is not the key of device {serial}, PIN {pin} at {at} ({})",
                    hex::encode(key),
                    expected.to_hex()
                ));
            }
        }
        Kind::Leave => {
            if let (Some(Val::Date(from)), Some(Val::Date(to))) = (get("from_date"), get("to_date")) {
                if to < from {
                    return Err(format!("data.to_date {to} is before from_date {from}"));
                }
            }
        }
        Kind::Site | Kind::Device => {
            if let Some(Val::Text(zone)) = get("time_zone") {
                protocol::time::parse_zone(zone).map_err(|e| format!("data.time_zone: {e}"))?;
            }
        }
        Kind::Employee => {
            if let Some(Val::Int(card)) = get("card_number") {
                if !(1..=i64::from(u32::MAX)).contains(card) {
                    return Err(format!("data.card_number {card} is not between 1 and {}", u32::MAX));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads one element of the records array into a [`RawRecord`].
pub struct RecordSeed;

impl<'de> DeserializeSeed<'de> for RecordSeed {
    type Value = RawRecord;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawRecord, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed {
    type Value = RawRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRecord, A::Error> {
        let mut record = RawRecord { not_object: None, unknown: None, kind: None, data: Data::Missing, sha256: None };
        while let Some(member) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match member.as_ref() {
                "kind" => record.kind = Some(map.next_value()?),
                "sha256" => record.sha256 = Some(map.next_value()?),
                "data" => {
                    record.data = match record.kind() {
                        Some(kind) => map.next_value_seed(DataSeed(kind.def()))?,
                        None => match map.next_value::<serde_json::Value>()? {
                            serde_json::Value::Object(data) => Data::Later(data),
                            other => Data::NotObject(json_type(&other)),
                        },
                    }
                }
                other => {
                    map.next_value::<IgnoredAny>()?;
                    if record.unknown.as_deref().is_none_or(|u| other < u) {
                        record.unknown = Some(other.to_owned());
                    }
                }
            }
        }
        Ok(record)
    }

    visit_non_objects!('de, RawRecord, RawRecord::not_object);
}
