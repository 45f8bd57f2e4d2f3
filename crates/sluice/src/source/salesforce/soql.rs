//! SOQL text for one window of one object, and the literal formatting it needs. Pure.
//!
//! The query shape (DESIGN "One flow, one run", step 2):
//!
//! ```text
//! SELECT <fields> FROM <object> WHERE <cursor> >= <start> AND <cursor> < <end> [AND (<where>)]
//! ```
//!
//! - Datetime literals are unquoted UTC with milliseconds, `2024-01-02T03:04:05.000Z`:
//!   quoting one is `INVALID_FIELD`, and a `+hh:mm` offset would turn into a space unless
//!   percent-encoded, so sluice always writes `Z`.
//! - A full window has no lower bound (`<cursor> < <end>` only); an object without a
//!   cursor (full refresh) has no window predicate at all.
//! - The user's `where` is wrapped in parentheses so an `OR` inside it cannot widen the
//!   window (config validation has already checked its parentheses and quotes balance).
//! - There is no `ORDER BY`: staging de-duplicates by Id and cursor, ordering only makes
//!   large queries slower, and Bulk 2.0 advises against it.
//! - REST sends SOQL in the URL (`GET .../queryAll?q=`), limited to
//!   [`REST_MAX_URL_BYTES`]. [`QuerySpec::split`] cuts a field list that does not fit
//!   into several queries over the same window, each carrying `Id` and the cursor, so the
//!   REST reader can stitch rows back together by Id (and check the versions agree).

use std::fmt;

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::model::{Timestamp, Window};

/// The longest request URL Salesforce accepts for a GET (HTTP 414 above it). Counted
/// here over the whole URL, scheme and host included, which is the conservative reading.
pub const REST_MAX_URL_BYTES: usize = 16_384;

/// A SOQL datetime literal: unquoted, UTC, milliseconds, `Z`.
pub fn datetime_literal(ts: Timestamp) -> String {
    ts.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A SOQL date literal: `YYYY-MM-DD`, unquoted.
pub fn date_literal(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A SOQL string literal: single quotes, with `\` escapes for quote, backslash and
/// control characters, so any value (an Id for keyset paging, a user value) is safe.
pub fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A literal value in a SOQL condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Literal<'a> {
    /// `null` (SOQL tests nulls with `= null` / `!= null`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A quoted, escaped string.
    Text(&'a str),
    /// An unquoted date.
    Date(NaiveDate),
    /// An unquoted UTC datetime.
    DateTime(Timestamp),
}

impl fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Text(s) => f.write_str(&string_literal(s)),
            Literal::Date(d) => f.write_str(&date_literal(*d)),
            Literal::DateTime(t) => f.write_str(&datetime_literal(*t)),
        }
    }
}

/// Whether `name` is a plain API name (`Account`, `Amount_Due__c`, `ns__Foo__c`): SOQL
/// cannot quote identifiers, so nothing else may reach the query text.
pub fn is_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `application/x-www-form-urlencoded` form of a query value, byte for byte what
/// HTTP clients send for `?q=`: `A-Z a-z 0-9 * - . _` kept, space → `+`, the rest `%XX`.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(encoded_len(value));
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Length of [`encode_query_value`]`(value)` without building it.
pub fn encoded_len(value: &str) -> usize {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' | b' ' => 1,
            _ => 3,
        })
        .sum()
}

/// Bytes left for the encoded SOQL after `base` (e.g.
/// `https://x.my.salesforce.com/services/data/v62.0/queryAll?q=`).
pub fn url_budget(base: &str) -> usize {
    REST_MAX_URL_BYTES.saturating_sub(base.len())
}

/// The cursor predicate of a query: which field, which window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<'a> {
    /// The cursor field (`SystemModstamp`).
    pub field: &'a str,
    /// The half-open window on it.
    pub window: Window,
}

/// One query over one object: what to select, which window, which extra filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuerySpec<'a> {
    /// Object API name.
    pub object: &'a str,
    /// Field API names to select, in order.
    pub fields: &'a [String],
    /// The window on the cursor; `None` for objects read by full refresh.
    pub range: Option<Range<'a>>,
    /// The flow's `where`, wrapped in parentheses.
    pub filter: Option<&'a str>,
}

/// One of several queries that together select a field list too long for one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The fields of this query: `Id`, the cursor, then a run of the others.
    pub fields: Vec<String>,
    /// The SOQL text.
    pub soql: String,
}

impl<'a> QuerySpec<'a> {
    /// `SELECT <fields> FROM <object> WHERE ...`.
    pub fn select(&self) -> Result<String> {
        if self.fields.is_empty() {
            return Err(Error::internal(format!("query on {} selects no fields", self.object)));
        }
        self.check_names(self.fields)?;
        Ok(format!("SELECT {} FROM {}{}", self.fields.join(", "), self.object, self.where_clause()))
    }

    /// `SELECT COUNT() FROM <object> WHERE ...` over the same window and filter: the
    /// row count REST returns as `totalSize` (used to choose REST or Bulk, and to verify).
    pub fn count(&self) -> Result<String> {
        self.check_names(&[])?;
        Ok(format!("SELECT COUNT() FROM {}{}", self.object, self.where_clause()))
    }

    /// The WHERE clause with its leading space, or empty.
    fn where_clause(&self) -> String {
        let mut conditions = Vec::new();
        if let Some(Range { field, window }) = self.range {
            if let Some(start) = window.start {
                conditions.push(format!("{field} >= {}", datetime_literal(start)));
            }
            conditions.push(format!("{field} < {}", datetime_literal(window.end)));
        }
        if let Some(filter) = self.filter.map(str::trim).filter(|f| !f.is_empty()) {
            conditions.push(format!("({filter})"));
        }
        if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) }
    }

    fn check_names(&self, fields: &[String]) -> Result<()> {
        let cursor = self.range.map(|r| r.field);
        let bad: Vec<&str> = std::iter::once(self.object)
            .chain(cursor)
            .chain(fields.iter().map(String::as_str))
            .filter(|n| !is_api_name(n))
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::internal(format!("not an API name in a query on {}: {bad:?}", self.object)))
        }
    }

    /// Splits the query so each one's encoded SOQL fits in `budget` bytes (see
    /// [`url_budget`]). Returns one chunk with the fields unchanged when it fits already.
    /// Otherwise every chunk starts with `Id` and the cursor field, followed by a run of
    /// the remaining fields in their order; together the chunks select every field once
    /// (apart from the repeated keys). Fails when even one field per query does not fit.
    pub fn split(&self, budget: usize) -> Result<Vec<Chunk>> {
        let whole = self.select()?;
        if encoded_len(&whole) <= budget {
            return Ok(vec![Chunk { fields: self.fields.to_vec(), soql: whole }]);
        }
        let keys: Vec<String> = std::iter::once("Id").chain(self.range.map(|r| r.field)).map(str::to_owned).collect();
        let rest: Vec<&String> =
            self.fields.iter().filter(|f| !keys.iter().any(|k| k.eq_ignore_ascii_case(f))).collect();
        // Form-encoding is byte by byte, so the encoded length of the text is the sum of
        // its parts: the fixed text around the list, each field, and ", " between fields.
        let fixed = encoded_len("SELECT ") + encoded_len(&format!(" FROM {}{}", self.object, self.where_clause()));
        let sep = encoded_len(", ");
        let keys_len: usize = keys.iter().map(|k| encoded_len(k) + sep).sum();
        let mut chunks: Vec<Vec<String>> = Vec::new();
        let mut current: Vec<String> = Vec::new();
        let mut used = fixed + keys_len;
        for field in rest {
            let len = encoded_len(field);
            if !current.is_empty() && used + sep + len > budget {
                chunks.push(std::mem::take(&mut current));
                used = fixed + keys_len;
            }
            let add = if current.is_empty() { len } else { sep + len };
            if used + add > budget {
                return Err(Error::user(format!(
                    "the query on {} is too long for a REST URL even with one field per request \
                     ({} bytes, at most {budget}); shorten the flow's `where` or use api = \"bulk\"",
                    self.object,
                    used + add
                )));
            }
            used += add;
            current.push(field.clone());
        }
        if !current.is_empty() || chunks.is_empty() {
            chunks.push(current);
        }
        chunks
            .into_iter()
            .map(|extra| {
                let fields: Vec<String> = keys.iter().cloned().chain(extra).collect();
                let soql = QuerySpec { fields: &fields, ..*self }.select()?;
                if encoded_len(&soql) > budget {
                    return Err(Error::internal(format!("split query on {} still too long", self.object)));
                }
                Ok(Chunk { fields, soql })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(s: i64, ms: u32) -> Timestamp {
        Utc.timestamp_opt(s, ms * 1_000_000).unwrap()
    }
    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn literal_table() {
        let cases = [
            (Literal::Null, "null"),
            (Literal::Bool(true), "true"),
            (Literal::Int(-42), "-42"),
            (Literal::Text("Acme"), "'Acme'"),
            (Literal::Text("O'Brien"), r"'O\'Brien'"),
            (Literal::Text(r"C:\temp"), r"'C:\\temp'"),
            (Literal::Text("two\nlines\r\tend"), r"'two\nlines\r\tend'"),
            (Literal::Text("say \"hi\""), r#"'say \"hi\"'"#),
            (Literal::Text("x' OR Name != '"), r"'x\' OR Name != \''"),
            (Literal::Text("naïve ☃"), "'naïve ☃'"),
            (Literal::Date(NaiveDate::from_ymd_opt(2025, 12, 16).unwrap()), "2025-12-16"),
            (Literal::DateTime(t(1_704_164_645, 0)), "2024-01-02T03:04:05.000Z"),
            (Literal::DateTime(t(1_704_164_645, 7)), "2024-01-02T03:04:05.007Z"),
        ];
        for (lit, want) in cases {
            assert_eq!(lit.to_string(), want, "{lit:?}");
        }
    }

    #[test]
    fn select_table() {
        let fields = strings(&["Id", "Name", "SystemModstamp"]);
        let win = Window { start: Some(t(1_704_164_645, 0)), end: t(1_704_168_245, 0) };
        let full = Window { start: None, end: t(1_704_168_245, 0) };
        let range = |window| Some(Range { field: "SystemModstamp", window });
        let q = |range, filter| QuerySpec { object: "Account", fields: &fields, range, filter };
        let cases = [
            (
                q(range(win), None),
                "SELECT Id, Name, SystemModstamp FROM Account WHERE SystemModstamp >= 2024-01-02T03:04:05.000Z \
                 AND SystemModstamp < 2024-01-02T04:04:05.000Z",
            ),
            (
                q(range(full), None),
                "SELECT Id, Name, SystemModstamp FROM Account WHERE SystemModstamp < 2024-01-02T04:04:05.000Z",
            ),
            (
                q(range(win), Some("Type = 'Customer' OR Rating = 'Hot'")),
                "SELECT Id, Name, SystemModstamp FROM Account WHERE SystemModstamp >= 2024-01-02T03:04:05.000Z \
                 AND SystemModstamp < 2024-01-02T04:04:05.000Z AND (Type = 'Customer' OR Rating = 'Hot')",
            ),
            (q(None, None), "SELECT Id, Name, SystemModstamp FROM Account"),
            (
                q(None, Some("IsActive__c = true")),
                "SELECT Id, Name, SystemModstamp FROM Account WHERE (IsActive__c = true)",
            ),
            (q(None, Some("   ")), "SELECT Id, Name, SystemModstamp FROM Account"),
        ];
        for (spec, want) in cases {
            assert_eq!(spec.select().unwrap(), want);
        }
        assert_eq!(
            q(range(win), Some("A = 1")).count().unwrap(),
            "SELECT COUNT() FROM Account WHERE SystemModstamp >= 2024-01-02T03:04:05.000Z \
             AND SystemModstamp < 2024-01-02T04:04:05.000Z AND (A = 1)"
        );
        assert_eq!(q(None, None).count().unwrap(), "SELECT COUNT() FROM Account");
    }

    #[test]
    fn select_refuses_non_identifiers() {
        let bad = strings(&["Id", "Name FROM User --"]);
        let spec = QuerySpec { object: "Account", fields: &bad, range: None, filter: None };
        assert!(spec.select().is_err());
        let ok = strings(&["Id"]);
        let spec = QuerySpec { object: "Account; DELETE", fields: &ok, range: None, filter: None };
        assert!(spec.count().is_err());
        let none: Vec<String> = Vec::new();
        assert!(QuerySpec { object: "Account", fields: &none, range: None, filter: None }.select().is_err());
    }

    #[test]
    fn api_name_table() {
        for (name, ok) in [
            ("Account", true),
            ("Amount_Due__c", true),
            ("ns__Geo__Latitude__s", true),
            ("Field2", true),
            ("2Field", false),
            ("_x", false),
            ("", false),
            ("Owner.Name", false),
            ("a b", false),
        ] {
            assert_eq!(is_api_name(name), ok, "{name}");
        }
    }

    #[test]
    fn query_encoding() {
        assert_eq!(encode_query_value("SELECT Id, Name FROM A"), "SELECT+Id%2C+Name+FROM+A");
        assert_eq!(encode_query_value("x >= 2024-01-02T03:04:05.000Z"), "x+%3E%3D+2024-01-02T03%3A04%3A05.000Z");
        assert_eq!(encode_query_value("'a+b'é"), "%27a%2Bb%27%C3%A9");
        for s in ["SELECT Id, Name FROM A", "'a+b'é", "*-._~!"] {
            assert_eq!(encoded_len(s), encode_query_value(s).len());
        }
        assert_eq!(url_budget("https://h/services/data/v62.0/queryAll?q="), REST_MAX_URL_BYTES - 41);
    }

    #[test]
    fn short_field_list_is_one_chunk_unchanged() {
        let fields = strings(&["Name", "Id", "SystemModstamp"]);
        let win = Window { start: None, end: t(0, 0) };
        let spec = QuerySpec {
            object: "Account",
            fields: &fields,
            range: Some(Range { field: "SystemModstamp", window: win }),
            filter: None,
        };
        let chunks = spec.split(16_000).unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].fields, fields);
    }

    #[test]
    fn long_field_list_splits_and_every_url_fits() {
        let base = "https://example.my.salesforce.com/services/data/v62.0/queryAll?q=";
        let mut fields = strings(&["Id", "IsDeleted", "SystemModstamp"]);
        fields.extend((0..1500).map(|i| format!("Custom_Field_Number_{i:04}__c")));
        let win = Window { start: Some(t(1_704_164_645, 0)), end: t(1_704_168_245, 0) };
        for filter in [None, Some("Name LIKE 'A%' AND Amount__c > 100")] {
            let spec = QuerySpec {
                object: "Invoice__c",
                fields: &fields,
                range: Some(Range { field: "SystemModstamp", window: win }),
                filter,
            };
            assert!(base.len() + encoded_len(&spec.select().unwrap()) > REST_MAX_URL_BYTES);
            let chunks = spec.split(url_budget(base)).unwrap();
            assert!(chunks.len() >= 3, "{}", chunks.len());
            let mut union: Vec<String> = Vec::new();
            for chunk in &chunks {
                let url = format!("{base}{}", encode_query_value(&chunk.soql));
                assert!(url.len() <= REST_MAX_URL_BYTES, "{}", url.len());
                assert_eq!(&chunk.fields[..2], &strings(&["Id", "SystemModstamp"])[..]);
                assert_eq!(chunk.soql, QuerySpec { fields: &chunk.fields, ..spec }.select().unwrap());
                for f in &chunk.fields {
                    if !union.contains(f) {
                        union.push(f.clone());
                    }
                }
            }
            let mut want = fields.clone();
            want.sort();
            union.sort();
            assert_eq!(union, want);
            // Non-key fields appear in exactly one chunk.
            let total: usize = chunks.iter().map(|c| c.fields.len() - 2).sum();
            assert_eq!(total, fields.len() - 2);
            // Greedy packing: the chunks are full, not one field each.
            assert!(chunks.len() < 6);
        }
    }

    #[test]
    fn split_fails_clearly_when_the_filter_alone_is_too_long() {
        let fields = strings(&["Id", "Name"]);
        let filter = format!("Name IN ({})", vec!["'x'"; 3000].join(", "));
        let spec = QuerySpec { object: "Account", fields: &fields, range: None, filter: Some(&filter) };
        let err = spec.split(url_budget("https://h/services/data/v62.0/queryAll?q=")).unwrap_err();
        assert_eq!(err.kind, crate::error::Kind::User);
        assert!(err.message.contains("too long for a REST URL"), "{}", err.message);
    }
}
