//! PostgreSQL's binary `COPY` format, written straight from Arrow columns.
//!
//! The format is a header, then per row a field count and per field a length (`-1` for
//! NULL) and the value in the type's binary send format, then a trailer. Encoding column
//! arrays directly, rather than through `ToSql` one value at a time, keeps the loader's
//! cost near a memory copy; the server parses binary values without the text parser.
//!
//! Arrow types map to the PostgreSQL types [`crate::consolidate::Dialect::sql_type`] gives
//! the staging columns: text → `text`/`varchar`, booleans, 32- and 64-bit integers, doubles,
//! decimals → `numeric`, dates, timestamps (any unit, as microseconds) → `timestamptz`,
//! times → `time`, binary → `bytea`.

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use bytes::{BufMut, BytesMut};

use crate::{Error, Result};

/// Days and microseconds between the Unix epoch and PostgreSQL's, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS as i64 * 86_400_000_000;

/// The signature, flags and header-extension length that open every binary COPY stream.
pub fn header(out: &mut BytesMut) {
    out.put_slice(b"PGCOPY\n\xff\r\n\0");
    out.put_i32(0);
    out.put_i32(0);
}

/// The field count of `-1` that ends the stream.
pub fn trailer(out: &mut BytesMut) {
    out.put_i16(-1);
}

/// One column, cast once to the array type its encoding reads.
enum Col {
    Text(StringArray),
    Bool(BooleanArray),
    I32(Int32Array),
    I64(Int64Array),
    F64(Float64Array),
    Numeric(Decimal128Array, u16),
    Date(Date32Array),
    Timestamp(TimestampMicrosecondArray),
    Time(Time64MicrosecondArray),
    Bytes(BinaryArray),
}

fn column(array: &ArrayRef, name: &str) -> Result<Col> {
    let cast = |to: &DataType| -> Result<ArrayRef> {
        arrow::compute::cast(array, to).map_err(|e| Error::internal(format!("COPY of column {name}: {e}")))
    };
    let down = |a: ArrayRef| a.into_data();
    Ok(match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Col::Text(down(cast(&DataType::Utf8)?).into()),
        DataType::Boolean => Col::Bool(down(array.clone()).into()),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Col::I32(down(cast(&DataType::Int32)?).into()),
        DataType::Int64 => Col::I64(down(array.clone()).into()),
        DataType::Float32 | DataType::Float64 => Col::F64(down(cast(&DataType::Float64)?).into()),
        DataType::Decimal128(_, scale) => {
            let scale = u16::try_from(*scale)
                .map_err(|_| Error::internal(format!("COPY of column {name}: negative decimal scale")))?;
            Col::Numeric(down(array.clone()).into(), scale)
        }
        DataType::Date32 => Col::Date(down(array.clone()).into()),
        DataType::Timestamp(_, tz) => {
            Col::Timestamp(down(cast(&DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))?).into())
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            Col::Time(down(cast(&DataType::Time64(TimeUnit::Microsecond))?).into())
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            Col::Bytes(down(cast(&DataType::Binary)?).into())
        }
        other => return Err(Error::internal(format!("COPY of column {name}: no PostgreSQL encoding for {other}"))),
    })
}

/// Appends every row of `batch` to `out`.
pub fn rows(batch: &RecordBatch, out: &mut BytesMut) -> Result<()> {
    let schema = batch.schema();
    let cols: Vec<Col> =
        batch.columns().iter().zip(schema.fields()).map(|(a, f)| column(a, f.name())).collect::<Result<_>>()?;
    let fields = i16::try_from(cols.len()).map_err(|_| Error::internal("COPY: more than 32767 columns"))?;
    let mut digits = Vec::new();
    for row in 0..batch.num_rows() {
        out.put_i16(fields);
        for col in &cols {
            encode(col, row, out, &mut digits);
        }
    }
    Ok(())
}

fn encode(col: &Col, row: usize, out: &mut BytesMut, digits: &mut Vec<i16>) {
    macro_rules! fixed {
        ($a:expr, $len:expr, $put:ident, $v:expr) => {{
            if $a.is_null(row) {
                out.put_i32(-1);
            } else {
                out.put_i32($len);
                out.$put($v);
            }
        }};
    }
    match col {
        Col::Text(a) => var(out, a.is_valid(row).then(|| a.value(row).as_bytes())),
        Col::Bytes(a) => var(out, a.is_valid(row).then(|| a.value(row))),
        Col::Bool(a) => fixed!(a, 1, put_u8, u8::from(a.value(row))),
        Col::I32(a) => fixed!(a, 4, put_i32, a.value(row)),
        Col::I64(a) => fixed!(a, 8, put_i64, a.value(row)),
        Col::F64(a) => fixed!(a, 8, put_f64, a.value(row)),
        Col::Date(a) => fixed!(a, 4, put_i32, a.value(row) - PG_EPOCH_DAYS),
        Col::Timestamp(a) => fixed!(a, 8, put_i64, a.value(row) - PG_EPOCH_MICROS),
        Col::Time(a) => fixed!(a, 8, put_i64, a.value(row)),
        Col::Numeric(a, scale) => {
            if a.is_null(row) {
                out.put_i32(-1);
            } else {
                numeric(a.value(row), *scale, out, digits);
            }
        }
    }
}

fn var(out: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        // Arrow caps one value at i32::MAX bytes, as PostgreSQL does.
        Some(v) => {
            out.put_i32(v.len() as i32);
            out.put_slice(v);
        }
        None => out.put_i32(-1),
    }
}

/// `numeric`'s send format: the digit count, the weight (base-10000 exponent of the first
/// digit), the sign, the display scale, then base-10000 digits with no leading or trailing
/// zero digit.
fn numeric(value: i128, scale: u16, out: &mut BytesMut, digits: &mut Vec<i16>) {
    const NEG: u16 = 0x4000;
    let negative = value < 0;
    let mut abs = value.unsigned_abs();
    // Split at the decimal point, then align the fraction to whole base-10000 digits.
    let ten_scale = 10u128.pow(u32::from(scale));
    let (mut int, frac) = (abs / ten_scale, abs % ten_scale);
    let frac_digits = usize::from(scale).div_ceil(4);
    let frac = frac * 10u128.pow((frac_digits * 4 - usize::from(scale)) as u32);
    digits.clear();
    while int > 0 {
        digits.push((int % 10_000) as i16);
        int /= 10_000;
    }
    digits.reverse();
    let weight = digits.len() as i16 - 1;
    let start = digits.len();
    abs = frac;
    for _ in 0..frac_digits {
        digits.push(0);
    }
    for i in (start..digits.len()).rev() {
        digits[i] = (abs % 10_000) as i16;
        abs /= 10_000;
    }
    // Leading zeros move the weight down; trailing zeros are implied by the scale.
    let lead = digits.iter().take_while(|d| **d == 0).count();
    let weight = if lead == digits.len() { 0 } else { weight - lead as i16 };
    let trail = digits[lead..].iter().rev().take_while(|d| **d == 0).count();
    let used = &digits[lead..digits.len() - trail];
    out.put_i32(8 + 2 * used.len() as i32);
    out.put_i16(used.len() as i16);
    out.put_i16(weight);
    out.put_u16(if negative && !used.is_empty() { NEG } else { 0 });
    out.put_u16(scale);
    for d in used {
        out.put_i16(*d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_of(v: i128, scale: u16) -> (i16, i16, u16, u16, Vec<i16>) {
        let mut out = BytesMut::new();
        numeric(v, scale, &mut out, &mut Vec::new());
        let b = &out[..];
        let n = i16::from_be_bytes([b[4], b[5]]);
        let digits = (0..n as usize).map(|i| i16::from_be_bytes([b[12 + 2 * i], b[13 + 2 * i]])).collect();
        (
            n,
            i16::from_be_bytes([b[6], b[7]]),
            u16::from_be_bytes([b[8], b[9]]),
            u16::from_be_bytes([b[10], b[11]]),
            digits,
        )
    }

    #[test]
    fn numeric_send_format() {
        // 1234.56 = 1234 * 10000^0 + 5600 * 10000^-1
        assert_eq!(numeric_of(123_456, 2), (2, 0, 0, 2, vec![1234, 5600]));
        // -0.05: leading zero digits dropped, weight -1
        assert_eq!(numeric_of(-5, 2), (1, -1, 0x4000, 2, vec![500]));
        // 0
        assert_eq!(numeric_of(0, 2), (0, 0, 0, 2, vec![]));
        // 100000000 = 1 * 10000^2: trailing zero digits dropped
        assert_eq!(numeric_of(100_000_000, 0), (1, 2, 0, 0, vec![1]));
        // 12345678.9 with scale 1
        assert_eq!(numeric_of(123_456_789, 1), (3, 1, 0, 1, vec![1234, 5678, 9000]));
        // 0.00001 at scale 5: the second fractional digit
        assert_eq!(numeric_of(1, 5), (1, -2, 0, 5, vec![1000]));
    }
}
