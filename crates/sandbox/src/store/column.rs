//! Typed columns with sentinel nulls and an arena for text.
//!
//! A million Accounts of ~45 fields must fit in well under 1.5 GB. A row of boxed
//! values would cost ~2 KB (a 24-byte enum per cell plus a heap block per string);
//! a column of `i64`s with `i64::MIN` for null costs 8 bytes a cell, and text costs
//! 8 bytes of span plus its bytes in one shared buffer. Updates append new text to
//! the buffer; the old bytes are garbage, which churn at replication rates never
//! makes significant.

use std::borrow::Cow;

use crate::value::{FieldType, Value};

const NULL_SPAN: u32 = u32::MAX;

/// One column of a table.
#[derive(Debug)]
pub enum Column {
    /// Text of any text type, plus base64 payloads.
    Text {
        /// `(start, len)` into `data`; `len == u32::MAX` is null.
        spans: Vec<(u32, u32)>,
        /// All text of the column, back to back.
        data: String,
    },
    /// 0 = false, 1 = true, 2 = null.
    Bool(Vec<u8>),
    /// int and long; `i64::MIN` is null.
    Int(Vec<i64>),
    /// double, currency, percent; NaN is null (Salesforce stores no NaN).
    Float(Vec<f64>),
    /// Days since the epoch; `i32::MIN` is null.
    Date(Vec<i32>),
    /// Milliseconds since the epoch; `i64::MIN` is null.
    DateTime(Vec<i64>),
    /// Milliseconds since midnight; `u32::MAX` is null.
    Time(Vec<u32>),
    /// Calculated fields (formulas, compounds): nothing stored.
    Virtual,
}

impl Column {
    /// An empty column for a field of type `ty`, pre-filled with `rows` nulls
    /// (a field added at run time starts null on every existing row).
    pub fn new(ty: FieldType, calculated: bool, rows: usize) -> Self {
        if calculated {
            return Column::Virtual;
        }
        match ty {
            FieldType::Boolean => Column::Bool(vec![2; rows]),
            FieldType::Int | FieldType::Long => Column::Int(vec![i64::MIN; rows]),
            FieldType::Double | FieldType::Currency | FieldType::Percent => Column::Float(vec![f64::NAN; rows]),
            FieldType::Date => Column::Date(vec![i32::MIN; rows]),
            FieldType::DateTime => Column::DateTime(vec![i64::MIN; rows]),
            FieldType::Time => Column::Time(vec![u32::MAX; rows]),
            FieldType::Address | FieldType::Location => Column::Virtual,
            _ => Column::Text { spans: vec![(0, NULL_SPAN); rows], data: String::new() },
        }
    }

    /// Reserves room for `n` more rows.
    pub fn reserve(&mut self, n: usize) {
        match self {
            Column::Text { spans, .. } => spans.reserve(n),
            Column::Bool(v) => v.reserve(n),
            Column::Int(v) => v.reserve(n),
            Column::Float(v) => v.reserve(n),
            Column::Date(v) => v.reserve(n),
            Column::DateTime(v) => v.reserve(n),
            Column::Time(v) => v.reserve(n),
            Column::Virtual => {}
        }
    }

    /// Appends a row. Values of the wrong kind are stored as null; callers coerce first.
    pub fn push(&mut self, v: &Value<'_>) {
        match self {
            Column::Text { spans, data } => {
                let span = text_span(data, v);
                spans.push(span);
            }
            Column::Bool(c) => c.push(match v {
                Value::Bool(b) => *b as u8,
                _ => 2,
            }),
            Column::Int(c) => c.push(match v {
                Value::Int(i) => *i,
                Value::Float(f) => *f as i64,
                _ => i64::MIN,
            }),
            Column::Float(c) => c.push(match v {
                Value::Float(f) => *f,
                Value::Int(i) => *i as f64,
                _ => f64::NAN,
            }),
            Column::Date(c) => c.push(match v {
                Value::Date(d) => *d,
                _ => i32::MIN,
            }),
            Column::DateTime(c) => c.push(match v {
                Value::DateTime(t) => *t,
                _ => i64::MIN,
            }),
            Column::Time(c) => c.push(match v {
                Value::Time(t) => *t,
                _ => u32::MAX,
            }),
            Column::Virtual => {}
        }
    }

    /// Overwrites row `row`.
    pub fn set(&mut self, row: usize, v: &Value<'_>) {
        match self {
            Column::Text { spans, data } => spans[row] = text_span(data, v),
            Column::Bool(c) => {
                c[row] = match v {
                    Value::Bool(b) => *b as u8,
                    _ => 2,
                }
            }
            Column::Int(c) => {
                c[row] = match v {
                    Value::Int(i) => *i,
                    Value::Float(f) => *f as i64,
                    _ => i64::MIN,
                }
            }
            Column::Float(c) => {
                c[row] = match v {
                    Value::Float(f) => *f,
                    Value::Int(i) => *i as f64,
                    _ => f64::NAN,
                }
            }
            Column::Date(c) => {
                c[row] = match v {
                    Value::Date(d) => *d,
                    _ => i32::MIN,
                }
            }
            Column::DateTime(c) => {
                c[row] = match v {
                    Value::DateTime(t) => *t,
                    _ => i64::MIN,
                }
            }
            Column::Time(c) => {
                c[row] = match v {
                    Value::Time(t) => *t,
                    _ => u32::MAX,
                }
            }
            Column::Virtual => {}
        }
    }

    /// Reads row `row`; text borrows from the column.
    pub fn get(&self, row: usize) -> Value<'_> {
        match self {
            Column::Text { spans, data } => {
                let (start, len) = spans[row];
                if len == NULL_SPAN {
                    Value::Null
                } else {
                    Value::Str(Cow::Borrowed(&data[start as usize..(start + len) as usize]))
                }
            }
            Column::Bool(c) => match c[row] {
                2 => Value::Null,
                b => Value::Bool(b == 1),
            },
            Column::Int(c) => match c[row] {
                i64::MIN => Value::Null,
                i => Value::Int(i),
            },
            Column::Float(c) => {
                let f = c[row];
                if f.is_nan() { Value::Null } else { Value::Float(f) }
            }
            Column::Date(c) => match c[row] {
                i32::MIN => Value::Null,
                d => Value::Date(d),
            },
            Column::DateTime(c) => match c[row] {
                i64::MIN => Value::Null,
                t => Value::DateTime(t),
            },
            Column::Time(c) => match c[row] {
                u32::MAX => Value::Null,
                t => Value::Time(t),
            },
            Column::Virtual => Value::Null,
        }
    }

    /// Bytes held, for the memory report.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Column::Text { spans, data } => spans.capacity() * 8 + data.capacity(),
            Column::Bool(c) => c.capacity(),
            Column::Int(c) => c.capacity() * 8,
            Column::Float(c) => c.capacity() * 8,
            Column::Date(c) => c.capacity() * 4,
            Column::DateTime(c) => c.capacity() * 8,
            Column::Time(c) => c.capacity() * 4,
            Column::Virtual => 0,
        }
    }
}

fn text_span(data: &mut String, v: &Value<'_>) -> (u32, u32) {
    let text: Cow<'_, str> = match v {
        Value::Null => return (0, NULL_SPAN),
        Value::Str(s) => Cow::Borrowed(s.as_ref()),
        Value::Bool(b) => Cow::Owned(b.to_string()),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Float(f) => Cow::Owned(f.to_string()),
        _ => return (0, NULL_SPAN),
    };
    let start = data.len() as u32;
    data.push_str(&text);
    (start, text.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_including_null() {
        let cases: Vec<(FieldType, Value<'static>)> = vec![
            (FieldType::String, Value::Str("héllo".into())),
            (FieldType::Boolean, Value::Bool(true)),
            (FieldType::Int, Value::Int(-7)),
            (FieldType::Currency, Value::Float(12.5)),
            (FieldType::Date, Value::Date(20_000)),
            (FieldType::DateTime, Value::DateTime(1_700_000_000_000)),
            (FieldType::Time, Value::Time(3_600_000)),
        ];
        for (ty, v) in cases {
            let mut c = Column::new(ty, false, 1);
            assert_eq!(c.get(0), Value::Null);
            c.push(&v);
            assert_eq!(c.get(1), v);
            c.set(0, &v);
            c.set(1, &Value::Null);
            assert_eq!((c.get(0), c.get(1)), (v.clone(), Value::Null));
        }
    }
}
