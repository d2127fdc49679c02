//! The OpenAPI schema of a local wall-clock date-time (`2026-11-02T09:00:00`, no offset): devices speak local time
//! and attendance is computed on it, so these fields are not RFC 3339 `date-time`s. Fields of type
//! `NaiveDateTime` in API types say `#[schema(value_type = LocalDateTime)]`.

use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// `YYYY-MM-DDTHH:MM:SS`, optionally with a fraction of a second, never with an offset.
pub const PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?$";

/// A local date-time in the API document (see the module's doc).
pub struct LocalDateTime;

impl utoipa::PartialSchema for LocalDateTime {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("local-date-time".into())))
            .pattern(Some(PATTERN))
            .description(Some(
                "A local wall-clock date-time at the site (ISO 8601 without an offset), e.g. 2026-11-02T09:00:00",
            ))
            .examples(["2026-11-02T09:00:00"])
            .into()
    }
}

impl utoipa::ToSchema for LocalDateTime {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_a_string_with_the_local_pattern_and_chrono_writes_that_shape() {
        let schema = serde_json::to_value(<LocalDateTime as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!((schema["type"].as_str(), schema["pattern"].as_str()), (Some("string"), Some(PATTERN)));
        assert_eq!(schema["format"], "local-date-time", "not RFC 3339 date-time: there is no offset");
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let written = serde_json::to_value(day.and_hms_opt(9, 0, 0)).unwrap();
        assert_eq!(written, "2026-11-02T09:00:00");
        let fraction = serde_json::to_value(day.and_hms_milli_opt(9, 0, 0, 500)).unwrap();
        assert_eq!(fraction, "2026-11-02T09:00:00.500", "a fraction of 1-9 digits, as the pattern allows");
    }
}
