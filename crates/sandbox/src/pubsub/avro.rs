//! Change events in Avro, as the Pub/Sub API delivers them: each object's change-event
//! schema ([`EventSchema`], the JSON a `GetSchema` call returns) and the binary encoding
//! of one captured change against it. Written for the sandbox alone: sluice decodes with
//! code of its own, so a misreading of the format in one cannot hide in the other.
//!
//! The schema is a record `<Object>ChangeEvent` (custom `Foo__c`: `Foo__ChangeEvent`) in
//! namespace `com.sforce.eventbus`: first `ChangeEventHeader`, then every field of the
//! object but the Id (the header's `recordIds` carries it) and formula fields, each a
//! union of null and its type with default null. The parts of a compound field (an
//! address, a geolocation) are one nested record in the compound's place. Types: text,
//! Ids and picklists `string`; `boolean`; `int`; `long`; numbers, currency and percent
//! `double`; date and time `long` (date: ms since the epoch at midnight UTC; time: ms since
//! midnight); date-time `long` (ms since the epoch).
//!
//! `changedFields`, `nulledFields` and `diffFields` are bitmaps written as hex strings:
//! bit `i` stands for the record's field `i` (the header is field 0); changes inside a
//! compound follow as `"{position}-{bitmap}"` over the nested record's fields.

use std::fmt::Write as _;

use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::schema::{FieldDef, ObjectDef};
use crate::store::{Captured, ChangeKind};
use crate::value::{FieldType, Value};

/// The Avro type of a field's values (inside its null union).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Boolean,
    Int,
    Long,
    Double,
}

fn kind_of(ty: FieldType) -> Kind {
    match ty {
        FieldType::Boolean => Kind::Boolean,
        FieldType::Int => Kind::Int,
        FieldType::Long | FieldType::Date | FieldType::DateTime | FieldType::Time => Kind::Long,
        FieldType::Double | FieldType::Currency | FieldType::Percent => Kind::Double,
        _ => Kind::String,
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::String => "string",
        Kind::Boolean => "boolean",
        Kind::Int => "int",
        Kind::Long => "long",
        Kind::Double => "double",
    }
}

/// One field of the event record after the header.
#[derive(Debug, Clone)]
enum Slot {
    /// A plain field: its position in the object.
    Field { name: String, col: usize, kind: Kind },
    /// A compound field: its parts (name in the nested record, position in the object).
    Compound { name: String, parts: Vec<(String, usize, Kind)> },
}

/// The change-event schema of one object, and how its fields map to the record.
#[derive(Debug, Clone)]
pub struct EventSchema {
    /// The object's API name.
    pub object: String,
    /// The schema as JSON text.
    pub json: String,
    /// Its id: derived from the text, so a schema that changes gets a new id.
    pub id: String,
    slots: Vec<Slot>,
}

/// The topic of one object's change events: `/data/AccountChangeEvent`,
/// `/data/Foo__ChangeEvent` for `Foo__c`.
pub fn topic_of(object: &str) -> String {
    format!("/data/{}", event_name(object))
}

/// `AccountChangeEvent`, `Foo__ChangeEvent` for `Foo__c`.
fn event_name(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(custom) => format!("{custom}__ChangeEvent"),
        None => format!("{object}ChangeEvent"),
    }
}

/// Whether the object's field `f` is in its change events (outside any compound).
fn carried(f: &FieldDef) -> bool {
    f.ty != FieldType::Id && f.formula.is_none() && !f.ty.is_compound() && f.compound_field_name.is_none()
}

/// A compound part's name in the nested record: `BillingCity` in `BillingAddress` is
/// `City`; `Location__Latitude__s` in `Location__c` is `Latitude__s`.
fn part_name(compound: &str, part: &str) -> String {
    let stem = compound.strip_suffix("Address").or_else(|| compound.strip_suffix("__c").map(|_| ""));
    match stem {
        Some("") => {
            let custom = compound.trim_end_matches("__c");
            part.strip_prefix(custom).map(|p| p.trim_start_matches('_').to_string()).unwrap_or_else(|| part.to_string())
        }
        Some(stem) => part.strip_prefix(stem).unwrap_or(part).to_string(),
        None => part.to_string(),
    }
}

impl EventSchema {
    /// The schema of `def`'s change events, fields in describe order.
    pub fn of(def: &ObjectDef) -> Self {
        let mut slots = Vec::new();
        for (col, f) in def.fields.iter().enumerate() {
            if f.ty.is_compound() && f.formula.is_none() {
                let parts: Vec<(String, usize, Kind)> = def
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.compound_field_name.as_deref() == Some(f.name.as_str()))
                    .map(|(c, p)| (part_name(&f.name, &p.name), c, kind_of(p.ty)))
                    .collect();
                if !parts.is_empty() {
                    slots.push(Slot::Compound { name: f.name.clone(), parts });
                }
            } else if carried(f) {
                slots.push(Slot::Field { name: f.name.clone(), col, kind: kind_of(f.ty) });
            }
        }
        let mut fields = vec![json!({"name": "ChangeEventHeader", "type": header_schema()})];
        // A compound's record type is defined once (`Address`) and named by later compounds
        // of the same shape, as Avro requires of a name used twice.
        let mut defined: Vec<(String, Vec<Json>)> = Vec::new();
        for slot in &slots {
            fields.push(match slot {
                Slot::Field { name, kind, .. } => {
                    json!({"name": name, "type": ["null", kind_name(*kind)], "default": null})
                }
                Slot::Compound { name, parts } => {
                    let nested: Vec<Json> = parts
                        .iter()
                        .map(|(p, _, k)| json!({"name": p, "type": ["null", kind_name(*k)], "default": null}))
                        .collect();
                    let ty = match defined.iter().find(|(_, f)| *f == nested) {
                        Some((record, _)) => json!(record),
                        None => {
                            let record = compound_type_name(def, name, &defined);
                            defined.push((record.clone(), nested.clone()));
                            json!({"type": "record", "name": record, "fields": nested})
                        }
                    };
                    json!({"name": name, "type": ["null", ty], "default": null})
                }
            });
        }
        let schema = json!({
            "type": "record",
            "name": event_name(&def.name),
            "namespace": "com.sforce.eventbus",
            "fields": fields,
        });
        let json = schema.to_string();
        let digest = Sha256::digest(json.as_bytes());
        let id = base64url(&digest[..16]);
        EventSchema { object: def.name.clone(), json, id, slots }
    }

    /// The Avro binary encoding of `change` (of this schema's object) as one event. Its
    /// `changeOrigin` is empty, as for writes that name no client.
    pub fn encode(&self, change: &Captured) -> Vec<u8> {
        // The carried values by field position, looked up once per slot.
        let mut by_col: Vec<Option<&Value<'static>>> = Vec::new();
        for (c, v) in &change.values {
            if by_col.len() <= *c {
                by_col.resize(c + 1, None);
            }
            by_col[*c] = Some(v);
        }
        let value_of = |col: usize| by_col.get(col).copied().flatten();
        // A carried value of an update is a changed field, and a null one a nulled field.
        let mark = |changed: &mut Bitmap, nulled: &mut Bitmap, bit: usize, col: usize| {
            if let Some(v) = value_of(col) {
                changed.set(bit);
                if v.is_null() {
                    nulled.set(bit);
                }
            }
        };
        let mut changed = Bitmap::default();
        let mut nulled = Bitmap::default();
        let mut nested_changed = Vec::new();
        let mut nested_nulled = Vec::new();
        if change.kind == ChangeKind::Update {
            for (i, slot) in self.slots.iter().enumerate() {
                let position = i + 1;
                match slot {
                    Slot::Field { col, .. } => mark(&mut changed, &mut nulled, position, *col),
                    Slot::Compound { parts, .. } => {
                        let (mut c, mut n) = (Bitmap::default(), Bitmap::default());
                        for (j, (_, col, _)) in parts.iter().enumerate() {
                            mark(&mut c, &mut n, j, *col);
                        }
                        if !c.is_empty() {
                            nested_changed.push(format!("{position}-{}", c.hex()));
                        }
                        if !n.is_empty() {
                            nested_nulled.push(format!("{position}-{}", n.hex()));
                        }
                    }
                }
            }
        }
        let bitmaps = |top: Bitmap, nested: Vec<String>| -> Vec<String> {
            if top.is_empty() && nested.is_empty() {
                return Vec::new();
            }
            std::iter::once(top.hex()).chain(nested).collect()
        };
        let mut out = Vec::with_capacity(256);
        // ChangeEventHeader, in header_schema's order.
        put_str(&mut out, &self.object);
        put_array(&mut out, std::slice::from_ref(&change.record));
        put_long(&mut out, change_type_index(change.kind));
        put_str(&mut out, "");
        put_str(&mut out, &change.transaction);
        put_long(&mut out, i64::from(change.sequence));
        put_long(&mut out, change.commit_ms);
        put_long(&mut out, change.commit_number as i64);
        put_str(&mut out, &change.user);
        put_array(&mut out, &bitmaps(nulled, nested_nulled));
        put_array(&mut out, &[]);
        put_array(&mut out, &bitmaps(changed, nested_changed));
        for slot in &self.slots {
            match slot {
                Slot::Field { col, kind, .. } => put_optional(&mut out, *kind, value_of(*col)),
                Slot::Compound { parts, .. } => {
                    if parts.iter().any(|(_, col, _)| value_of(*col).is_some_and(|v| !v.is_null())) {
                        put_long(&mut out, 1);
                        for (_, col, kind) in parts {
                            put_optional(&mut out, *kind, value_of(*col));
                        }
                    } else {
                        put_long(&mut out, 0);
                    }
                }
            }
        }
        out
    }
}

/// The nested record's type name of a compound field: `Address` or `Location`, with the
/// field's name in front for a second shape of the same kind (Avro names are unique).
fn compound_type_name(def: &ObjectDef, field: &str, defined: &[(String, Vec<Json>)]) -> String {
    let ty = def.fields.iter().find(|f| f.name == field).map(|f| f.ty);
    let base = if ty == Some(FieldType::Address) { "Address" } else { "Location" };
    if defined.iter().any(|(name, _)| name == base) { format!("{field}_{base}") } else { base.to_string() }
}

/// The `ChangeEventHeader` record's schema.
fn header_schema() -> Json {
    let strings = json!({"type": "array", "items": "string"});
    json!({
        "type": "record",
        "name": "ChangeEventHeader",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": strings},
            {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "symbols": CHANGE_TYPES}},
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": strings},
            {"name": "diffFields", "type": strings},
            {"name": "changedFields", "type": strings},
        ],
    })
}

/// The `ChangeType` enum's symbols, in order.
const CHANGE_TYPES: [&str; 10] = [
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
];

fn change_type_index(kind: ChangeKind) -> i64 {
    CHANGE_TYPES.iter().position(|s| *s == kind.symbol()).unwrap_or(0) as i64
}

/// Field positions as a bitmap (bit `i`: position `i`), written as `0x` and upper-case hex.
#[derive(Debug, Default)]
struct Bitmap(Vec<u8>);

impl Bitmap {
    fn set(&mut self, i: usize) {
        if self.0.len() <= i / 8 {
            self.0.resize(i / 8 + 1, 0);
        }
        self.0[i / 8] |= 1 << (i % 8);
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    fn hex(&self) -> String {
        let mut out = String::from("0x");
        let mut started = false;
        for byte in self.0.iter().rev() {
            if !started && *byte == 0 {
                continue;
            }
            if started {
                let _ = write!(out, "{byte:02X}");
            } else {
                let _ = write!(out, "{byte:X}");
                started = true;
            }
        }
        if !started {
            out.push('0');
        }
        out
    }
}

/// Avro `long` / `int`: zig-zag, then base-128 little-endian.
fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

/// An array of strings: one block, then the empty block that ends it.
fn put_array(out: &mut Vec<u8>, items: &[String]) {
    if !items.is_empty() {
        put_long(out, items.len() as i64);
        for item in items {
            put_str(out, item);
        }
    }
    put_long(out, 0);
}

/// A `["null", kind]` union: branch 1 and the value, or branch 0 for no value (a value
/// whose shape is not its field's type never occurs; it would be written as null).
fn put_optional(out: &mut Vec<u8>, kind: Kind, value: Option<&Value<'static>>) {
    let mut bytes = Vec::new();
    let written = match (kind, value) {
        (_, None | Some(Value::Null)) => false,
        (Kind::Boolean, Some(Value::Bool(b))) => {
            bytes.push(u8::from(*b));
            true
        }
        (Kind::Int | Kind::Long, Some(Value::Int(i))) => {
            put_long(&mut bytes, *i);
            true
        }
        (Kind::Long, Some(Value::Date(days))) => {
            put_long(&mut bytes, i64::from(*days) * 86_400_000);
            true
        }
        (Kind::Long, Some(Value::DateTime(ms))) => {
            put_long(&mut bytes, *ms);
            true
        }
        (Kind::Long, Some(Value::Time(ms))) => {
            put_long(&mut bytes, i64::from(*ms));
            true
        }
        (Kind::Double, Some(Value::Float(f))) => {
            bytes.extend_from_slice(&f.to_le_bytes());
            true
        }
        (Kind::String, Some(v)) => {
            put_str(&mut bytes, &text_of(v));
            true
        }
        _ => false,
    };
    put_long(out, i64::from(written));
    out.extend_from_slice(&bytes);
}

fn text_of(v: &Value<'static>) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Date(d) => d.to_string(),
        Value::DateTime(ms) => ms.to_string(),
        Value::Time(ms) => ms.to_string(),
        Value::Null => String::new(),
    }
}

/// URL-safe base64 without padding (schema ids look like `nTowGbw-ipH4sznrGpeohg`).
fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
