//! Field types and cell values of the org, and their wire formats.
//!
//! Salesforce writes the same value differently per API: REST JSON datetimes are
//! `2024-06-11T08:30:10.000+0000` (offset without colon), Bulk 2.0 CSV datetimes are
//! `2024-06-11T08:30:10.000Z`, times are `13:05:30.000Z` in both, and a CSV null is an
//! empty field. Every formatter lives here so the REST and Bulk paths cannot drift.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike};

/// Salesforce field `type` values (the partner WSDL `fieldType` enum) the org uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// The record's own 18-character Id.
    Id,
    /// A lookup or master-detail Id.
    Reference,
    /// Free text.
    String,
    /// One value of a fixed list.
    Picklist,
    /// Several values of a fixed list, joined by `;`.
    Multipicklist,
    /// A picklist that also accepts free text.
    Combobox,
    /// Text area, rich text or long text area.
    Textarea,
    /// Phone number text.
    Phone,
    /// URL text.
    Url,
    /// E-mail text.
    Email,
    /// Encrypted text (returned masked to users without the permission).
    EncryptedString,
    /// `true` / `false`, never null.
    Boolean,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// Floating point number.
    Double,
    /// Money, a double on the wire.
    Currency,
    /// Percentage, a double on the wire.
    Percent,
    /// Calendar date.
    Date,
    /// Instant in time, UTC.
    DateTime,
    /// Time of day.
    Time,
    /// Binary blob; queries return a URL to it.
    Base64,
    /// Compound address (street, city, ...).
    Address,
    /// Compound geolocation (latitude, longitude).
    Location,
}

impl FieldType {
    /// The `type` string describe returns.
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Reference => "reference",
            Self::String => "string",
            Self::Picklist => "picklist",
            Self::Multipicklist => "multipicklist",
            Self::Combobox => "combobox",
            Self::Textarea => "textarea",
            Self::Phone => "phone",
            Self::Url => "url",
            Self::Email => "email",
            Self::EncryptedString => "encryptedstring",
            Self::Boolean => "boolean",
            Self::Int => "int",
            Self::Long => "long",
            Self::Double => "double",
            Self::Currency => "currency",
            Self::Percent => "percent",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Time => "time",
            Self::Base64 => "base64",
            Self::Address => "address",
            Self::Location => "location",
        }
    }

    /// Every field type, in the partner WSDL's order.
    pub const ALL: [FieldType; 23] = [
        Self::Id,
        Self::Reference,
        Self::String,
        Self::Picklist,
        Self::Multipicklist,
        Self::Combobox,
        Self::Textarea,
        Self::Phone,
        Self::Url,
        Self::Email,
        Self::EncryptedString,
        Self::Boolean,
        Self::Int,
        Self::Long,
        Self::Double,
        Self::Currency,
        Self::Percent,
        Self::Date,
        Self::DateTime,
        Self::Time,
        Self::Base64,
        Self::Address,
        Self::Location,
    ];

    /// Parses a describe `type` string (used by the admin API to add fields).
    pub fn from_api_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.api_name().eq_ignore_ascii_case(name))
    }

    /// The `soapType` describe returns.
    pub fn soap_type(self) -> &'static str {
        match self {
            Self::Id | Self::Reference => "tns:ID",
            Self::Boolean => "xsd:boolean",
            Self::Int => "xsd:int",
            Self::Long => "xsd:long",
            Self::Double | Self::Currency | Self::Percent => "xsd:double",
            Self::Date => "xsd:date",
            Self::DateTime => "xsd:dateTime",
            Self::Time => "xsd:time",
            Self::Base64 => "xsd:base64Binary",
            Self::Address => "urn:address",
            Self::Location => "urn:location",
            _ => "xsd:string",
        }
    }

    /// Whether values of this type are text (compared case-insensitively, `LIKE`-able).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Self::Id
                | Self::Reference
                | Self::String
                | Self::Picklist
                | Self::Multipicklist
                | Self::Combobox
                | Self::Textarea
                | Self::Phone
                | Self::Url
                | Self::Email
                | Self::EncryptedString
        )
    }

    /// Whether values of this type are numbers.
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Int | Self::Long | Self::Double | Self::Currency | Self::Percent)
    }

    /// Compound types are read-only views over their component fields.
    pub fn is_compound(self) -> bool {
        matches!(self, Self::Address | Self::Location)
    }
}

/// One cell as read from the org. Text borrows from the store where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An int or long.
    Int(i64),
    /// A double, currency or percent.
    Float(f64),
    /// Any text type.
    Str(Cow<'a, str>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Milliseconds since the Unix epoch, UTC.
    DateTime(i64),
    /// Milliseconds since midnight.
    Time(u32),
}

impl Value<'_> {
    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Detaches the value from the store's borrow.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Float(f),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Date(d) => Value::Date(d),
            Value::DateTime(t) => Value::DateTime(t),
            Value::Time(t) => Value::Time(t),
        }
    }

    /// The REST JSON form of the value.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
            }
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::Date(d) => serde_json::Value::String(format_date(*d)),
            Value::DateTime(t) => serde_json::Value::String(format_datetime_rest(*t)),
            Value::Time(t) => serde_json::Value::String(format_time(*t)),
        }
    }

    /// Appends the Bulk 2.0 CSV text of the value (unquoted; the CSV writer quotes).
    /// Null is the empty string, as Salesforce writes it.
    pub fn write_csv_text(&self, out: &mut String) {
        match self {
            Value::Null => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => write_number(*f, out),
            Value::Str(s) => out.push_str(s),
            Value::Date(d) => out.push_str(&format_date(*d)),
            Value::DateTime(t) => write_datetime(*t, "Z", out),
            Value::Time(t) => out.push_str(&format_time(*t)),
        }
    }
}

/// Year, month, day of a day count since the epoch (H. Hinnant's `civil_from_days`):
/// pure integer arithmetic, because formatting a million datetimes through a general
/// calendar library dominates the cost of a Bulk result.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Appends `YYYY-MM-DDTHH:MM:SS.sss` and `zone` (`Z` or `+0000`).
fn write_datetime(ms: i64, zone: &str, out: &mut String) {
    let (days, in_day) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
    let (y, mo, d) = civil_from_days(days);
    let secs = in_day / 1000;
    let mut buf = [0u8; 23];
    let mut put = |at: usize, v: i64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y.clamp(0, 9999), 4);
    put(5, i64::from(mo), 2);
    put(8, i64::from(d), 2);
    put(11, secs / 3600, 2);
    put(14, secs / 60 % 60, 2);
    put(17, secs % 60, 2);
    put(20, in_day % 1000, 3);
    for (i, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')] {
        buf[i] = c;
    }
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
    out.push_str(zone);
}

/// Writes a double the way Salesforce's CSV does: plain digits, no exponent for the
/// magnitudes an org stores, and integers without a trailing `.0`.
fn write_number(f: f64, out: &mut String) {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        let _ = write!(out, "{}", f as i64);
    } else {
        let _ = write!(out, "{f}");
    }
}

const DAY_MS: i64 = 86_400_000;

/// `YYYY-MM-DD` for days since the epoch.
pub fn format_date(days: i32) -> String {
    let d = date_from_days(days);
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// Converts days since the epoch to a calendar date.
pub fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap_or(NaiveDate::MIN)
}

/// Days since the epoch of a calendar date.
pub fn days_from_date(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - 719_163
}

/// Days since the epoch of the UTC day containing `ms`.
pub fn days_from_ms(ms: i64) -> i32 {
    ms.div_euclid(DAY_MS) as i32
}

/// REST JSON datetime: `2024-06-11T08:30:10.000+0000`.
pub fn format_datetime_rest(ms: i64) -> String {
    let mut s = String::with_capacity(28);
    write_datetime(ms, "+0000", &mut s);
    s
}

/// Time of day: `13:05:30.000Z`.
pub fn format_time(ms: u32) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    format!("{h:02}:{m:02}:{:02}.{:03}Z", rest / 1000, rest % 1000)
}

/// Parses the datetime forms clients send in JSON bodies and query strings:
/// RFC 3339 (`Z` or `+00:00`), and Salesforce's `+0000` without colon.
pub fn parse_datetime(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok().map(|t| t.timestamp_millis())
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<i32> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(days_from_date)
}

/// Parses `HH:MM:SS[.sss][Z]`.
pub fn parse_time(s: &str) -> Option<u32> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .ok()
        .map(|t| t.num_seconds_from_midnight() * 1000 + t.nanosecond() / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_text(v: &Value<'_>) -> String {
        let mut s = String::new();
        v.write_csv_text(&mut s);
        s
    }

    #[test]
    fn formats_match_salesforce() {
        let ms = parse_datetime("2024-06-11T08:30:10.000+0000").unwrap();
        assert_eq!(format_datetime_rest(ms), "2024-06-11T08:30:10.000+0000");
        assert_eq!(csv_text(&Value::DateTime(ms)), "2024-06-11T08:30:10.000Z");
        assert_eq!(parse_datetime("2024-06-11T08:30:10Z"), Some(ms));
        assert_eq!(format_time(parse_time("13:05:30.000Z").unwrap()), "13:05:30.000Z");
        assert_eq!(format_date(parse_date("2025-12-16").unwrap()), "2025-12-16");
        assert_eq!(format_date(0), "1970-01-01");
    }

    #[test]
    fn fast_datetime_formatting_agrees_with_chrono() {
        for ms in [0i64, 951_782_400_000, 1_709_164_799_999, 4_102_444_800_123, 1_718_094_610_000, -86_400_000] {
            let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
            assert_eq!(csv_text(&Value::DateTime(ms)), t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            assert_eq!(format_datetime_rest(ms), t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
        }
    }

    #[test]
    fn csv_null_is_empty_and_numbers_are_plain() {
        let mut s = String::new();
        Value::Null.write_csv_text(&mut s);
        assert_eq!(s, "");
        Value::Float(15_000_000.0).write_csv_text(&mut s);
        assert_eq!(s, "15000000");
        s.clear();
        Value::Float(12.5).write_csv_text(&mut s);
        assert_eq!(s, "12.5");
    }

    #[test]
    fn api_names_round_trip() {
        for name in ["id", "multipicklist", "datetime", "location", "encryptedstring"] {
            assert_eq!(FieldType::from_api_name(name).unwrap().api_name(), name);
        }
    }
}
