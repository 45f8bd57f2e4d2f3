//! The schema model every source produces and every destination consumes.
//!
//! - [`SluiceType`]: the closed set of column types (DESIGN "Destinations": id and
//!   reference → varchar(18), text types → text, int → 32-bit, long → 64-bit, numbers →
//!   decimal(p, s) or double, date, datetime → UTC timestamp in milliseconds, time,
//!   base64 → binary only when asked for).
//! - [`TableSchema`] / [`Column`]: one source object as one destination table, with both
//!   names of each column (the API name to query, the destination name to write).
//! - [`Cursor`]: which field bounds incremental windows, or none (full refresh).
//! - [`Window`]: the half-open range `[start, end)` of the cursor a run reads.
//! - Naming: API names → lower snake case ([`snake_case`]), with deterministic suffixes
//!   on collisions ([`assign_names`]), or kept as they are ([`Naming::Original`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A point in time as the source reports it (UTC; Salesforce gives milliseconds).
pub type Timestamp = DateTime<Utc>;

/// The type of a column, independent of source and destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SluiceType {
    /// A record Id or a reference to one: an 18-character string (varchar(18)).
    Id,
    /// Any text: string, textarea, picklist, `;`-joined multipicklist, url, email, ...
    Text,
    /// true / false.
    Boolean,
    /// 32-bit signed integer.
    Int,
    /// 64-bit signed integer.
    Long,
    /// Exact decimal with `precision` total digits, `scale` of them after the point.
    Decimal {
        /// Total significant digits (1..=38).
        precision: u8,
        /// Digits after the decimal point (≤ precision).
        scale: u8,
    },
    /// 64-bit float, for numbers whose precision is unknown or too large for a decimal.
    Double,
    /// Calendar date.
    Date,
    /// Instant in UTC with millisecond precision (timestamp with time zone).
    Timestamp,
    /// Time of day with millisecond precision.
    Time,
    /// Raw bytes (base64 fields, only when a flow asks for them).
    Binary,
}

/// Largest decimal precision every destination can hold (Arrow Decimal128, Parquet,
/// DuckDB, PostgreSQL, Redshift).
pub const MAX_DECIMAL_PRECISION: u8 = 38;

impl fmt::Display for SluiceType {
    /// The SQL-ish name shown by `sluice discover`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SluiceType::Id => f.write_str("varchar(18)"),
            SluiceType::Text => f.write_str("text"),
            SluiceType::Boolean => f.write_str("boolean"),
            SluiceType::Int => f.write_str("integer"),
            SluiceType::Long => f.write_str("bigint"),
            SluiceType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            SluiceType::Double => f.write_str("double"),
            SluiceType::Date => f.write_str("date"),
            SluiceType::Timestamp => f.write_str("timestamp with time zone"),
            SluiceType::Time => f.write_str("time"),
            SluiceType::Binary => f.write_str("binary"),
        }
    }
}

/// One column of a destination table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Destination name (lower snake case unless `naming = "original"`).
    pub name: String,
    /// Source API name, used in queries and to read records.
    pub source_name: String,
    /// Column type.
    pub ty: SluiceType,
    /// Whether the source may send null.
    pub nullable: bool,
    /// A formula field: computed at read time, so its value can change without the
    /// cursor moving; incremental runs miss such changes until a full refresh.
    pub formula: bool,
    /// Stored as a salted SHA-256 of the value (the flow's `mask`), so the type is text.
    pub masked: bool,
}

#[cfg(test)]
impl Column {
    /// A nullable column that is neither a formula nor masked: what most tests need.
    pub(crate) fn plain(name: &str, source_name: &str, ty: SluiceType) -> Column {
        Column { name: name.into(), source_name: source_name.into(), ty, nullable: true, formula: false, masked: false }
    }
}

/// Which field bounds incremental windows for an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cursor {
    /// `SystemModstamp`: bumped by users and automation alike, indexed. The default.
    SystemModstamp,
    /// `LastModifiedDate`: misses system-only updates; used when SystemModstamp is absent
    /// or not filterable.
    LastModifiedDate,
    /// `CreatedDate`: for append-only objects (`*History`, `LoginHistory`).
    CreatedDate,
    /// No usable field: every run is a full refresh.
    None,
}

impl Cursor {
    /// Preference order, best first.
    pub const CANDIDATES: [Cursor; 3] = [Cursor::SystemModstamp, Cursor::LastModifiedDate, Cursor::CreatedDate];

    /// The source field name, or `None` for full refresh.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Cursor::SystemModstamp => Some("SystemModstamp"),
            Cursor::LastModifiedDate => Some("LastModifiedDate"),
            Cursor::CreatedDate => Some("CreatedDate"),
            Cursor::None => None,
        }
    }

    /// Whether windows can be incremental.
    pub fn is_incremental(self) -> bool {
        self != Cursor::None
    }
}

/// One source object as one destination table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    /// Source object API name (`Account`, `Invoice__c`).
    pub object: String,
    /// Destination table name (`account`, `invoice__c`).
    pub table: String,
    /// Columns in source describe order.
    pub columns: Vec<Column>,
    /// The field bounding incremental windows.
    pub cursor: Cursor,
    /// Source name of the soft-delete flag (`IsDeleted`), when the object has one.
    pub deleted_flag: Option<String>,
}

impl TableSchema {
    /// The column with this source API name (case-insensitive, as SOQL is).
    pub fn column_by_source(&self, source_name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.source_name.eq_ignore_ascii_case(source_name))
    }

    /// Source API names of all columns, in order: the SELECT list.
    pub fn source_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.source_name.clone()).collect()
    }
}

/// The half-open range `[start, end)` of cursor values one extraction reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Inclusive lower bound; `None` is −∞ (a full window).
    pub start: Option<Timestamp>,
    /// Exclusive upper bound.
    pub end: Timestamp,
}

impl Window {
    /// Whether this window has no lower bound (first run, full refresh, first slice).
    pub fn is_full(&self) -> bool {
        self.start.is_none()
    }

    /// Whether `ts` lies in `[start, end)`.
    pub fn contains(&self, ts: Timestamp) -> bool {
        self.start.is_none_or(|s| s <= ts) && ts < self.end
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fmt_ts = |t: Timestamp| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        match self.start {
            Some(s) => write!(f, "[{}, {})", fmt_ts(s), fmt_ts(self.end)),
            None => write!(f, "[-inf, {})", fmt_ts(self.end)),
        }
    }
}

/// How destination identifiers are derived from API names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// Lower snake case (`BillingStreet` → `billing_street`): what warehouse users and
    /// dbt packages for Salesforce expect, and safe from engines that fold case.
    #[default]
    SnakeCase,
    /// API names as they are (`BillingStreet`); identifiers are always quoted.
    Original,
}

impl Naming {
    /// The destination name of one API name, before collision handling.
    pub fn apply(self, api_name: &str) -> String {
        match self {
            Naming::SnakeCase => snake_case(api_name),
            Naming::Original => api_name.to_owned(),
        }
    }
}

/// Lower snake case of an API name.
///
/// An underscore goes before an uppercase letter that follows a lowercase letter or a
/// digit (`SystemModstamp` → `system_modstamp`, `Field1Name` → `field1_name`), and before
/// the last capital of an acronym followed by a lowercase letter (`LastCURequestDate` →
/// `last_cu_request_date`). Existing underscores are kept as they are, so custom suffixes
/// survive (`Amount_Due__c` → `amount_due__c`, `ns__Invoice__c` → `ns__invoice__c`).
pub fn snake_case(api_name: &str) -> String {
    let chars: Vec<char> = api_name.chars().collect();
    let mut out = String::with_capacity(api_name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary =
                prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower);
            if boundary {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Destination names for a set of API names, plus a warning per collision.
///
/// Names are derived with `naming`; when several API names give the same destination
/// name, one keeps it and the others get `_2`, `_3`, ... The winner and the suffix order
/// depend only on the set of names, not on their order, so the same describe always gives
/// the same table: first the API name that already *is* the destination name apart from
/// case (`My_Field__c` for `my_field__c`), then standard before custom (no `__`), then
/// byte order of the API name. A suffixed name that is itself taken gets the next number.
/// The result is in the order of `api_names`.
pub fn assign_names(api_names: &[&str], naming: Naming) -> (Vec<String>, Vec<String>) {
    let base: Vec<String> = api_names.iter().map(|n| naming.apply(n)).collect();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, b) in base.iter().enumerate() {
        groups.entry(b.as_str()).or_default().push(i);
    }
    let mut taken: HashSet<String> = base.iter().cloned().collect();
    let mut out = base.clone();
    let mut warnings = Vec::new();
    for (name, mut members) in groups {
        if members.len() < 2 {
            continue;
        }
        members.sort_by_key(|&i| {
            let api = api_names[i];
            (!api.eq_ignore_ascii_case(name), api.contains("__"), api)
        });
        for (rank, &i) in members.iter().enumerate().skip(1) {
            let mut n = rank + 1;
            let mut candidate = format!("{name}_{n}");
            while taken.contains(&candidate) {
                n += 1;
                candidate = format!("{name}_{n}");
            }
            taken.insert(candidate.clone());
            warnings.push(format!(
                "`{}` and `{}` both become `{name}`; `{}` is written as `{candidate}`",
                api_names[members[0]], api_names[i], api_names[i]
            ));
            out[i] = candidate;
        }
    }
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn snake_case_table() {
        let cases = [
            ("Account", "account"),
            ("SystemModstamp", "system_modstamp"),
            ("BillingStreet", "billing_street"),
            ("Invoice__c", "invoice__c"),
            ("Amount_Due__c", "amount_due__c"),
            ("Id", "id"),
            ("OwnerId", "owner_id"),
            ("IsDeleted", "is_deleted"),
            ("NumberOfEmployees", "number_of_employees"),
            ("LastCURequestDate", "last_cu_request_date"),
            ("URL__c", "url__c"),
            ("MyURLField__c", "my_url_field__c"),
            ("Address2__c", "address2__c"),
            ("Field1Name", "field1_name"),
            ("ns__Invoice__c", "ns__invoice__c"),
            ("Geo__Latitude__s", "geo__latitude__s"),
            ("SLAExpirationDate__c", "sla_expiration_date__c"),
            ("already_snake", "already_snake"),
            ("A", "a"),
            ("", ""),
        ];
        for (api, want) in cases {
            assert_eq!(snake_case(api), want, "{api}");
        }
    }

    #[test]
    fn original_naming_keeps_api_names() {
        assert_eq!(Naming::Original.apply("BillingStreet"), "BillingStreet");
        assert_eq!(Naming::SnakeCase.apply("BillingStreet"), "billing_street");
    }

    #[test]
    fn assign_names_table() {
        // (api names, naming, expected names, warnings)
        let cases: [(&[&str], Naming, &[&str], usize); 6] = [
            (&["Id", "Name", "OwnerId"], Naming::SnakeCase, &["id", "name", "owner_id"], 0),
            // The one already spelled like its snake name wins, whatever the order.
            (&["MyField__c", "My_Field__c"], Naming::SnakeCase, &["my_field__c_2", "my_field__c"], 1),
            (&["My_Field__c", "MyField__c"], Naming::SnakeCase, &["my_field__c", "my_field__c_2"], 1),
            // Only the colliding names change.
            (&["Foo_Bar__c", "FooBar", "foo_bar"], Naming::SnakeCase, &["foo_bar__c", "foo_bar_2", "foo_bar"], 1),
            // A suffix that is itself taken moves on.
            (&["aB", "A_B", "a_b_2"], Naming::SnakeCase, &["a_b_3", "a_b", "a_b_2"], 1),
            (&["MyField__c", "My_Field__c"], Naming::Original, &["MyField__c", "My_Field__c"], 0),
        ];
        for (api, naming, want, nwarn) in cases {
            let (names, warnings) = assign_names(api, naming);
            assert_eq!(names, want, "{api:?}");
            assert_eq!(warnings.len(), nwarn, "{warnings:?}");
        }
    }

    #[test]
    fn assign_names_is_order_independent() {
        let a = ["CaseX__c", "Case_X__c", "Casex__c", "Other"];
        let mut b = a;
        b.reverse();
        let (na, _) = assign_names(&a, Naming::SnakeCase);
        let (nb, _) = assign_names(&b, Naming::SnakeCase);
        let map_a: BTreeMap<_, _> = a.iter().zip(&na).collect();
        let map_b: BTreeMap<_, _> = b.iter().zip(&nb).collect();
        assert_eq!(map_a, map_b);
    }

    #[test]
    fn sluice_type_names() {
        let cases = [
            (SluiceType::Id, "varchar(18)"),
            (SluiceType::Decimal { precision: 18, scale: 2 }, "decimal(18,2)"),
            (SluiceType::Timestamp, "timestamp with time zone"),
            (SluiceType::Long, "bigint"),
        ];
        for (ty, want) in cases {
            assert_eq!(ty.to_string(), want);
        }
    }

    #[test]
    fn window_contains_is_half_open() {
        let t = |s| Utc.timestamp_opt(s, 0).unwrap();
        let w = Window { start: Some(t(10)), end: t(20) };
        assert!(w.contains(t(10)) && w.contains(t(19)) && !w.contains(t(20)) && !w.contains(t(9)));
        let full = Window { start: None, end: t(20) };
        assert!(full.is_full() && full.contains(t(-1000)) && !full.contains(t(20)));
        assert_eq!(full.to_string(), "[-inf, 1970-01-01T00:00:20.000Z)");
    }

    #[test]
    fn cursor_fields() {
        assert_eq!(Cursor::SystemModstamp.field(), Some("SystemModstamp"));
        assert_eq!(Cursor::None.field(), None);
        assert!(!Cursor::None.is_incremental());
    }
}
