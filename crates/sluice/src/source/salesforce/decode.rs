//! Pages → Arrow [`RecordBatch`]es typed from a [`TableSchema`]. Pure.
//!
//! Both wire formats go through the same per-type text parsers, so REST JSON and Bulk
//! CSV of the same rows give identical batches:
//!
//! - REST JSON (`{"totalSize", "done", "nextRecordsUrl", "records": [...]}`): each
//!   field's raw JSON text is taken as is — a number's digits (never through `f64`, so
//!   decimals keep every digit), a string unescaped, `null` as null. Compound parents
//!   (`BillingAddress`) and `attributes` are ignored: their components are columns.
//! - Bulk CSV (header on every page): cells matched to columns by header name; an empty
//!   cell is null.
//! - An empty text value is null in both (CSV cannot tell them apart, and Salesforce
//!   does not store empty strings).
//! - Types: Id/text → Utf8; boolean; int → Int32; long → Int64; decimal(p,s) →
//!   Decimal128(p,s), rounded half away from zero to the scale; double → Float64; date →
//!   Date32; datetime → Timestamp(ms, "UTC") from `…+0000` and `…Z` alike; time →
//!   Time32(ms); binary → Binary (REST gives a blob URL, resolved by the caller).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder,
    Int64Builder, StringBuilder, Time32MillisecondBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use chrono::{NaiveDate, NaiveTime, Timelike};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::model::{SluiceType, TableSchema};

/// Field metadata key holding a column's source API name.
pub const SOURCE_NAME_KEY: &str = "sluice.source_name";

/// The Arrow type of a sluice type.
pub fn arrow_type(ty: SluiceType) -> DataType {
    match ty {
        SluiceType::Id | SluiceType::Text => DataType::Utf8,
        SluiceType::Boolean => DataType::Boolean,
        SluiceType::Int => DataType::Int32,
        SluiceType::Long => DataType::Int64,
        SluiceType::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
        SluiceType::Double => DataType::Float64,
        SluiceType::Date => DataType::Date32,
        SluiceType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        SluiceType::Time => DataType::Time32(TimeUnit::Millisecond),
        SluiceType::Binary => DataType::Binary,
    }
}

/// The Arrow schema of a table: destination column names, every column nullable, the
/// source API name in the field metadata.
pub fn arrow_schema(schema: &TableSchema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .columns
        .iter()
        .map(|c| {
            let ty = if c.masked { DataType::Utf8 } else { arrow_type(c.ty) };
            Field::new(&c.name, ty, true)
                .with_metadata(HashMap::from([(SOURCE_NAME_KEY.to_owned(), c.source_name.clone())]))
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// One REST query page, records kept as raw JSON.
#[derive(Debug, Deserialize)]
pub struct RestPage<'a> {
    /// Rows of the whole query.
    #[serde(rename = "totalSize")]
    pub total_size: u64,
    /// Whether this is the last page.
    pub done: bool,
    /// Path of the next page.
    #[serde(rename = "nextRecordsUrl", default)]
    pub next_records_url: Option<String>,
    /// The records: field name → raw JSON value.
    #[serde(borrow)]
    pub records: Vec<HashMap<Cow<'a, str>, &'a RawValue>>,
}

impl<'a> RestPage<'a> {
    /// Parses a page body.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        serde_json::from_slice(body)
            .map_err(|e| Error::external(format!("a query page is not the expected JSON ({e})")))
    }
}

/// A REST record: raw JSON value of a field by API name.
pub trait JsonRecord {
    /// The raw value of `field`, if the record has it.
    fn raw(&self, field: &str) -> Option<&RawValue>;
}

impl JsonRecord for HashMap<Cow<'_, str>, &RawValue> {
    fn raw(&self, field: &str) -> Option<&RawValue> {
        self.get(field).copied().or_else(|| self.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)).map(|(_, v)| *v))
    }
}

impl JsonRecord for HashMap<String, Box<RawValue>> {
    fn raw(&self, field: &str) -> Option<&RawValue> {
        self.get(field)
            .map(AsRef::as_ref)
            .or_else(|| self.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)).map(|(_, v)| v.as_ref()))
    }
}

/// The text of a raw JSON scalar: `None` for null, a string unescaped, a number or
/// boolean as written. Objects and arrays are refused.
pub fn json_text(raw: &RawValue) -> Result<Option<Cow<'_, str>>> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        None | Some(b'n') => Ok(None),
        Some(b'"') => serde_json::from_str::<Cow<'_, str>>(text)
            .map(Some)
            .map_err(|e| Error::external(format!("bad JSON string {text:.40} ({e})"))),
        Some(b'{') | Some(b'[') => Err(Error::external(format!("expected a scalar, got {text:.60}"))),
        Some(_) => Ok(Some(Cow::Borrowed(text))),
    }
}

/// Decodes REST records into one batch. `blob` turns a base64 field's blob URL into its
/// bytes (REST never inlines them); it is only called for binary columns.
pub fn json_batch<R: JsonRecord>(
    schema: &TableSchema,
    arrow: &SchemaRef,
    records: &[R],
    blob: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<RecordBatch> {
    let mut builders = builders(schema, records.len())?;
    for record in records {
        for (col, b) in schema.columns.iter().zip(builders.iter_mut()) {
            push_json(b, record.raw(&col.source_name), blob)
                .map_err(|e| at_record(e, schema, &col.source_name, record.raw("Id")))?;
        }
    }
    finish(arrow, builders, records.len())
}

/// Decodes the rows of a [`JsonPage`] (raw values in column order) into one batch.
pub fn json_rows_batch(
    schema: &TableSchema,
    arrow: &SchemaRef,
    rows: &[Vec<Option<&RawValue>>],
    blob: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<RecordBatch> {
    let mut builders = builders(schema, rows.len())?;
    let id = schema.columns.iter().position(|c| c.source_name == "Id");
    for row in rows {
        for ((col, b), raw) in schema.columns.iter().zip(builders.iter_mut()).zip(row) {
            push_json(b, *raw, blob)
                .map_err(|e| at_record(e, schema, &col.source_name, id.and_then(|i| row.get(i).copied().flatten())))?;
        }
    }
    finish(arrow, builders, rows.len())
}

/// `e` about one value, said of the record it came from: `Object.Field of record <Id>: …`.
/// A value the source sent malformed stays malformed when read again, so it is not retried.
fn at_record(e: Error, schema: &TableSchema, field: &str, id: Option<&RawValue>) -> Error {
    let id = id.and_then(|raw| json_text(raw).ok().flatten()).map(|t| t.into_owned());
    value_error(e, schema, field, id.as_deref())
}

/// See [`at_record`]; `id` as text (`None` when the record's Id is unknown).
fn value_error(e: Error, schema: &TableSchema, field: &str, id: Option<&str>) -> Error {
    let record = match id {
        Some(id) => format!(" of record {id:.18}"),
        None => " of a record without an Id".to_owned(),
    };
    Error { retry: crate::Retry::Never, ..e }.context(format!("{}.{field}{record}", schema.object))
}

fn push_json(b: &mut Builder, raw: Option<&RawValue>, blob: &dyn Fn(&str) -> Option<Vec<u8>>) -> Result<()> {
    let raw = raw.ok_or_else(|| Error::external("the field is missing (REST returns every selected field)"))?;
    b.push(json_text(raw)?.as_deref(), blob)
}

/// A REST query page parsed for one schema: the paging fields, and each record's raw
/// values in column order (`None` where a record lacks the field). Parsing allocates one
/// vector per record, not a map.
#[derive(Debug)]
pub struct JsonPage<'a> {
    /// Rows of the whole query.
    pub total_size: u64,
    /// Whether this is the last page.
    pub done: bool,
    /// Path of the next page.
    pub next_records_url: Option<String>,
    /// The records.
    pub rows: Vec<Vec<Option<&'a RawValue>>>,
}

impl<'a> JsonPage<'a> {
    /// Parses a page body for `schema`.
    pub fn parse(schema: &TableSchema, body: &'a [u8]) -> Result<Self> {
        let names: Vec<&str> = schema.columns.iter().map(|c| c.source_name.as_str()).collect();
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut de = serde_json::Deserializer::from_slice(body);
        let page = serde::de::DeserializeSeed::deserialize(Seed::Page(&names, &index), &mut de)
            .and_then(|page| de.end().map(|()| page))
            .map_err(|e| Error::external(format!("a query page is not the expected JSON ({e})")))?;
        match page {
            Parsed::Page(page) => Ok(page),
            _ => Err(Error::internal("page parser returned no page")),
        }
    }
}

/// What [`Seed`] produced.
enum Parsed<'de> {
    Page(JsonPage<'de>),
    Rows(Vec<Vec<Option<&'de RawValue>>>),
    Row(Vec<Option<&'de RawValue>>),
}

/// One serde seed for the three levels of a page: the page, its records, one record.
#[derive(Clone, Copy)]
enum Seed<'s> {
    Page(&'s [&'s str], &'s HashMap<&'s str, usize>),
    Rows(&'s [&'s str], &'s HashMap<&'s str, usize>),
    Row(&'s [&'s str], &'s HashMap<&'s str, usize>),
}

impl<'de> serde::de::DeserializeSeed<'de> for Seed<'_> {
    type Value = Parsed<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        match self {
            Seed::Rows(..) => d.deserialize_seq(self),
            _ => d.deserialize_map(self),
        }
    }
}

impl<'de> serde::de::Visitor<'de> for Seed<'_> {
    type Value = Parsed<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a query page")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
        let Seed::Rows(names, index) = self else { return Err(serde::de::Error::custom("unexpected array")) };
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(row) = seq.next_element_seed(Seed::Row(names, index))? {
            if let Parsed::Row(row) = row {
                rows.push(row);
            }
        }
        Ok(Parsed::Rows(rows))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        use serde::de::IgnoredAny;
        match self {
            Seed::Page(names, index) => {
                let mut page = JsonPage { total_size: 0, done: true, next_records_url: None, rows: Vec::new() };
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match key.as_ref() {
                        "totalSize" => page.total_size = map.next_value()?,
                        "done" => page.done = map.next_value()?,
                        "nextRecordsUrl" => page.next_records_url = map.next_value()?,
                        "records" => {
                            if let Parsed::Rows(rows) = map.next_value_seed(Seed::Rows(names, index))? {
                                page.rows = rows;
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Parsed::Page(page))
            }
            Seed::Row(names, index) => {
                let mut row: Vec<Option<&'de RawValue>> = vec![None; names.len()];
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let at = index
                        .get(key.as_ref())
                        .copied()
                        .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(&key)));
                    match at {
                        Some(i) => row[i] = Some(map.next_value::<&'de RawValue>()?),
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Parsed::Row(row))
            }
            Seed::Rows(..) => Err(serde::de::Error::custom("unexpected object")),
        }
    }
}

/// A map key, borrowed from the body unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Decodes one Bulk CSV page (with its header row) into one batch. An empty body or a
/// header alone is an empty batch.
pub fn csv_batch(schema: &TableSchema, arrow: &SchemaRef, body: &[u8], delimiter: u8) -> Result<RecordBatch> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(false).from_reader(body);
    let mut records = reader.byte_records();
    let Some(header) = records.next() else {
        return finish(arrow, builders(schema, 0)?, 0);
    };
    let header = header.map_err(|e| Error::external(format!("bad CSV header in a Bulk result ({e})")))?;
    let positions: Vec<usize> = schema
        .columns
        .iter()
        .map(|c| {
            header.iter().position(|h| std::str::from_utf8(h).is_ok_and(|h| h.eq_ignore_ascii_case(&c.source_name)))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::external(format!("a Bulk result of {} lacks selected columns", schema.object)))?;
    let mut builders = builders(schema, 1024)?;
    let mut rows = 0;
    let no_blob = |_: &str| None;
    let id_at = schema.columns.iter().position(|c| c.source_name == "Id").map(|i| positions[i]);
    for record in records {
        let record = record.map_err(|e| Error::external(format!("bad CSV row in a Bulk result ({e})")))?;
        let id = || id_at.and_then(|at| record.get(at)).and_then(|c| std::str::from_utf8(c).ok());
        for ((col, b), &at) in schema.columns.iter().zip(builders.iter_mut()).zip(&positions) {
            let cell = record.get(at).ok_or_else(|| Error::external("a Bulk CSV row is shorter than its header"))?;
            std::str::from_utf8(cell)
                .map_err(|_| Error::external("the CSV cell is not UTF-8"))
                .and_then(|text| b.push((!text.is_empty()).then_some(text), &no_blob))
                .map_err(|e| value_error(e, schema, &col.source_name, id()))?;
        }
        rows += 1;
    }
    finish(arrow, builders, rows)
}

fn finish(arrow: &SchemaRef, builders: Vec<Builder>, rows: usize) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = builders.into_iter().map(Builder::finish).collect();
    RecordBatch::try_new_with_options(arrow.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(rows)))
        .map_err(|e| Error::internal(format!("cannot assemble a record batch: {e}")))
}

enum Builder {
    Utf8(StringBuilder),
    Bool(BooleanBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    Dec(Decimal128Builder, u8, u8),
    F64(Float64Builder),
    Date(Date32Builder),
    Ts(TimestampMillisecondBuilder),
    Time(Time32MillisecondBuilder),
    Bin(BinaryBuilder),
}

fn builders(schema: &TableSchema, capacity: usize) -> Result<Vec<Builder>> {
    schema
        .columns
        .iter()
        .map(|c| {
            Ok(match if c.masked { SluiceType::Text } else { c.ty } {
                SluiceType::Id | SluiceType::Text => {
                    Builder::Utf8(StringBuilder::with_capacity(capacity, capacity * 16))
                }
                SluiceType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
                SluiceType::Int => Builder::I32(Int32Builder::with_capacity(capacity)),
                SluiceType::Long => Builder::I64(Int64Builder::with_capacity(capacity)),
                SluiceType::Decimal { precision, scale } => Builder::Dec(
                    Decimal128Builder::with_capacity(capacity)
                        .with_precision_and_scale(precision, scale as i8)
                        .map_err(|e| Error::internal(format!("decimal({precision},{scale}): {e}")))?,
                    precision,
                    scale,
                ),
                SluiceType::Double => Builder::F64(Float64Builder::with_capacity(capacity)),
                SluiceType::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
                SluiceType::Timestamp => {
                    Builder::Ts(TimestampMillisecondBuilder::with_capacity(capacity).with_timezone("UTC"))
                }
                SluiceType::Time => Builder::Time(Time32MillisecondBuilder::with_capacity(capacity)),
                SluiceType::Binary => Builder::Bin(BinaryBuilder::with_capacity(capacity, 0)),
            })
        })
        .collect()
}

impl Builder {
    /// Appends one value given as text (`None`: null).
    fn push(&mut self, text: Option<&str>, blob: &dyn Fn(&str) -> Option<Vec<u8>>) -> Result<()> {
        let Some(t) = text.filter(|t| !t.is_empty()) else {
            match self {
                Builder::Utf8(b) => b.append_null(),
                Builder::Bool(b) => b.append_null(),
                Builder::I32(b) => b.append_null(),
                Builder::I64(b) => b.append_null(),
                Builder::Dec(b, ..) => b.append_null(),
                Builder::F64(b) => b.append_null(),
                Builder::Date(b) => b.append_null(),
                Builder::Ts(b) => b.append_null(),
                Builder::Time(b) => b.append_null(),
                Builder::Bin(b) => b.append_null(),
            }
            return Ok(());
        };
        let bad = |what: &str| Error::external(format!("`{t:.60}` is not a valid {what}"));
        match self {
            Builder::Utf8(b) => b.append_value(t),
            Builder::Bool(b) => b.append_value(parse_bool(t).ok_or_else(|| bad("boolean"))?),
            Builder::I32(b) => {
                let v = parse_integer(t).ok_or_else(|| bad("integer"))?;
                b.append_value(i32::try_from(v).map_err(|_| bad("32-bit integer"))?)
            }
            Builder::I64(b) => b.append_value(parse_integer(t).ok_or_else(|| bad("64-bit integer"))?),
            Builder::Dec(b, p, s) => {
                b.append_value(parse_decimal(t, *p, *s).ok_or_else(|| bad(&format!("decimal({p},{s})")))?)
            }
            Builder::F64(b) => b.append_value(t.parse::<f64>().map_err(|_| bad("number"))?),
            Builder::Date(b) => b.append_value(parse_date(t).ok_or_else(|| bad("date"))?),
            Builder::Ts(b) => b.append_value(parse_datetime_ms(t).ok_or_else(|| bad("datetime"))?),
            Builder::Time(b) => b.append_value(parse_time_ms(t).ok_or_else(|| bad("time"))?),
            Builder::Bin(b) => match blob(t) {
                Some(bytes) => b.append_value(bytes),
                None => b.append_null(),
            },
        }
        Ok(())
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::Utf8(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::I32(mut b) => Arc::new(b.finish()),
            Builder::I64(mut b) => Arc::new(b.finish()),
            Builder::Dec(mut b, ..) => Arc::new(b.finish()),
            Builder::F64(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Ts(mut b) => Arc::new(b.finish()),
            Builder::Time(mut b) => Arc::new(b.finish()),
            Builder::Bin(mut b) => Arc::new(b.finish()),
        }
    }
}

fn parse_bool(t: &str) -> Option<bool> {
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An integer, also when written with a zero fraction or an exponent (`12.0`, `1.2E1`).
pub fn parse_integer(t: &str) -> Option<i64> {
    t.parse::<i64>().ok().or_else(|| i64::try_from(parse_decimal(t, 38, 0)?).ok().filter(|_| exact(t)))
}

/// Whether the decimal text has no non-zero digits after the point (after the exponent).
fn exact(t: &str) -> bool {
    parse_decimal(t, 38, 6).is_some_and(|v| v % 1_000_000 == 0)
}

/// Parses decimal text (`-12.345`, `1.5E7`, `1e-3`) to an integer scaled by `10^scale`,
/// rounding half away from zero; `None` if it is not a number or needs more than
/// `precision` digits.
pub fn parse_decimal(t: &str, precision: u8, scale: u8) -> Option<i128> {
    let (negative, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // digits × 10^(exp − frac.len()) scaled by 10^scale, without allocating.
    let all = || int.bytes().chain(frac.bytes());
    let lead = all().take_while(|&b| b == b'0').count();
    let n = int.len() + frac.len() - lead;
    let shift = exp.checked_sub(i32::try_from(frac.len()).ok()?)?.checked_add(i32::from(scale))?;
    let limit = 10i128.checked_pow(u32::from(precision))?;
    let mut value: i128 = 0;
    let mut round_up = false;
    if shift >= 0 {
        for b in all().skip(lead) {
            value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        if value != 0 {
            value = value.checked_mul(10i128.checked_pow(shift.unsigned_abs())?)?;
        }
    } else {
        let drop = shift.unsigned_abs() as usize;
        let keep = n.saturating_sub(drop);
        for b in all().skip(lead).take(keep) {
            value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        // The first dropped digit decides (half away from zero).
        round_up = drop <= n && all().nth(lead + keep).is_some_and(|d| d >= b'5');
    }
    if round_up {
        value = value.checked_add(1)?;
    }
    if value >= limit {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// Days since 1970-01-01 of `YYYY-MM-DD`.
pub fn parse_date(t: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok()?;
    let days = d.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days();
    i32::try_from(days).ok()
}

/// Milliseconds since the epoch of a datetime in REST (`…+0000`), CSV (`…Z`) or any
/// RFC 3339 form (`…+01:00`), with or without fractional seconds.
pub fn parse_datetime_ms(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    // Fast path: `YYYY-MM-DDTHH:MM:SS.sss` + `Z` | `+0000`.
    // Bytes, not `&str` slices: the text is untrusted and may put a multibyte character at
    // any offset, where slicing a `str` would panic.
    if b.len() >= 24 && b[10] == b'T' && b[19] == b'.' && (&b[23..] == b"Z" || &b[23..] == b"+0000") {
        let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<u32>().ok();
        let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let time = NaiveTime::from_hms_milli_opt(num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?)?;
        return Some(date.and_time(time).and_utc().timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .or_else(|_| chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.timestamp_millis())
}

/// Milliseconds since midnight of `HH:MM:SS[.sss][Z]`.
pub fn parse_time_ms(t: &str) -> Option<i32> {
    let t = t.strip_suffix('Z').unwrap_or(t);
    let time = NaiveTime::parse_from_str(t, "%H:%M:%S%.f").ok()?;
    i32::try_from(time.num_seconds_from_midnight() * 1000 + time.nanosecond() / 1_000_000).ok()
}

#[cfg(test)]
mod tests;
