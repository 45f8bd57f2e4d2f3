//! Describe JSON → [`TableSchema`]. Pure.
//!
//! Rules (DESIGN "Destinations" and "One flow, one run"; reference §2.3):
//!
//! - Types: id, reference → [`SluiceType::Id`]; string, picklist, multipicklist (`;`-joined),
//!   textarea, url, email, phone, combobox, encryptedstring, anyType, complexvalue, json →
//!   text; boolean; int → 32-bit; long → 64-bit; double, currency, percent →
//!   decimal(precision, scale) when describe gives a precision of 1..=38, else double;
//!   date; datetime → UTC timestamp; time. An unknown type is read as text, with a
//!   warning, rather than failing the flow.
//! - Compound fields (`address`, `location`) are skipped: their components
//!   (`BillingStreet`, ..., whose `compoundFieldName` names the compound) are ordinary
//!   columns. Compounds are `calculated` in describe too; they are skipped, not flagged.
//!   Listing a compound in a flow's `fields` (or `exclude`) means its components.
//! - base64 fields are skipped unless the flow's `fields` names them (REST returns a URL
//!   to each blob, and Bulk cannot read them at all).
//! - A field is a formula when it is `calculated` with a non-empty `calculatedFormula`.
//! - Cursor: the first of `SystemModstamp`, `LastModifiedDate`, `CreatedDate` that is a
//!   `filterable` datetime; none → full refresh. A missing `filterable` counts as false:
//!   a full refresh is slow but never wrong.
//! - `Id`, the cursor and `IsDeleted` are always selected (dedup, windows, deletes need
//!   them); excluding one is an error, leaving one out of `fields` adds it.
//! - `mask`ed fields must be replicated and cannot be the Id, cursor or delete flag; their
//!   columns are text (a salted SHA-256 of the value).
//! - Names in `fields` / `exclude` / `mask` match case-insensitively, as SOQL does; every unknown
//!   name is reported in one error, with a suggestion when one is close.

use std::collections::HashSet;

use serde_json::Value;

use crate::config::FlowConfig;
use crate::error::{Error, Result};
use crate::model::{Column, Cursor, Naming, SluiceType, TableSchema, assign_names};

/// Which fields of an object a flow wants (its `fields` / `exclude` / `mask` options).
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    /// Only these fields (plus Id, cursor, IsDeleted); `None` for all.
    pub fields: Option<&'a [String]>,
    /// Fields to leave out.
    pub exclude: &'a [String],
    /// Fields stored as a salted SHA-256 (their columns become text).
    pub mask: &'a [String],
    /// Column names chosen for fields, `(API name, column)`.
    pub rename: &'a [(String, String)],
    /// How destination names are derived.
    pub naming: Naming,
}

impl<'a> Selection<'a> {
    /// The selection a configured flow asks for.
    pub fn for_flow(flow: &'a FlowConfig, naming: Naming) -> Self {
        Self { fields: flow.fields.as_deref(), exclude: &flow.exclude, mask: &flow.mask, rename: &flow.rename, naming }
    }
}

/// The schema of one object and what was left out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// The table to replicate into.
    pub schema: TableSchema,
    /// Fields not replicated, and why (shown by `sluice discover`).
    pub skipped: Vec<Skipped>,
    /// Things the user should know (name collisions, cursor fallback, unknown types).
    pub warnings: Vec<String>,
}

impl Described {
    /// Whether Bulk API 2.0 can read the selected fields (it cannot read base64).
    pub fn bulk_compatible(&self) -> bool {
        !self.schema.columns.iter().any(|c| c.ty == SluiceType::Binary)
    }
}

/// A field that is not replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its API name.
    pub field: String,
    /// Why.
    pub reason: SkipReason,
}

/// Why a field is not replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// An address or location compound; its components are columns.
    Compound,
    /// A base64 field the flow did not ask for.
    Base64,
}

/// What a Salesforce field type becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// A column of this type.
    Column(SluiceType),
    /// An address or location compound (skipped; its components are columns).
    Compound,
    /// base64 (binary only when asked for).
    Base64,
    /// A type this version of sluice does not know (read as text).
    Unknown,
}

/// Maps a describe `type` (with its `precision` and `scale`) to a sluice type.
pub fn map_type(sf_type: &str, precision: u64, scale: u64) -> Mapping {
    use SluiceType as T;
    let column = |t| Mapping::Column(t);
    match sf_type.to_ascii_lowercase().as_str() {
        "id" | "reference" => column(T::Id),
        "string"
        | "picklist"
        | "multipicklist"
        | "textarea"
        | "url"
        | "email"
        | "phone"
        | "combobox"
        | "encryptedstring"
        | "anytype"
        | "complexvalue"
        | "json"
        | "datacategorygroupreference" => column(T::Text),
        "boolean" => column(T::Boolean),
        "int" => column(T::Int),
        "long" => column(T::Long),
        "double" | "currency" | "percent" => {
            let max = u64::from(crate::model::MAX_DECIMAL_PRECISION);
            if (1..=max).contains(&precision) && scale <= precision {
                // Both fit in u8: precision ≤ 38 and scale ≤ precision.
                column(T::Decimal { precision: precision as u8, scale: scale as u8 })
            } else {
                column(T::Double)
            }
        }
        "date" => column(T::Date),
        "datetime" => column(T::Timestamp),
        "time" => column(T::Time),
        "base64" => Mapping::Base64,
        "address" | "location" => Mapping::Compound,
        _ => Mapping::Unknown,
    }
}

/// One field of a describe, as far as sluice needs it.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    ty: String,
    mapping: Mapping,
    formula: bool,
    compound: Option<String>,
    filterable: bool,
    nullable: bool,
}

fn parse_field(value: &Value) -> Option<Field> {
    let text = |k: &str| value.get(k).and_then(Value::as_str);
    let flag = |k: &str| value.get(k).and_then(Value::as_bool);
    let num = |k: &str| value.get(k).and_then(Value::as_u64).unwrap_or(0);
    let name = text("name")?.to_owned();
    let ty = text("type")?.to_owned();
    let mapping = map_type(&ty, num("precision"), num("scale"));
    let formula = flag("calculated") == Some(true) && text("calculatedFormula").is_some_and(|f| !f.trim().is_empty());
    Some(Field {
        name,
        ty,
        mapping,
        formula: formula && mapping != Mapping::Compound,
        compound: text("compoundFieldName").map(str::to_owned),
        filterable: flag("filterable") == Some(true),
        nullable: flag("nillable") != Some(false),
    })
}

/// Builds the table schema of one object from its describe (`GET .../describe`).
pub fn table_schema(describe: &Value, selection: &Selection<'_>) -> Result<Described> {
    let object = describe
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::external_fatal("describe response has no object name"))?;
    if describe.get("queryable").and_then(Value::as_bool) == Some(false) {
        return Err(Error::user(format!("{object} cannot be queried (describe says queryable: false)")));
    }
    let raw = describe
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::external_fatal(format!("describe of {object} has no fields list")))?;
    let fields: Vec<Field> = raw.iter().filter_map(parse_field).collect();
    let find = |name: &str| fields.iter().find(|f| f.name.eq_ignore_ascii_case(name));
    let id = find("Id").ok_or_else(|| Error::user(format!("{object} has no Id field; sluice cannot replicate it")))?;

    let mut warnings = Vec::new();
    let cursor = Cursor::CANDIDATES
        .into_iter()
        .find(|c| {
            c.field()
                .and_then(find)
                .is_some_and(|f| f.filterable && f.mapping == Mapping::Column(SluiceType::Timestamp))
        })
        .unwrap_or(Cursor::None);
    match cursor {
        Cursor::SystemModstamp => {}
        Cursor::None => warnings.push(format!(
            "{object} has no filterable SystemModstamp, LastModifiedDate or CreatedDate: every run reads it in full"
        )),
        other => warnings.push(format!(
            "{object} has no filterable SystemModstamp: windows use {} instead",
            other.field().unwrap_or_default()
        )),
    }
    let deleted = find("IsDeleted").filter(|f| f.mapping == Mapping::Column(SluiceType::Boolean));
    let required: Vec<(&str, &str)> = std::iter::once((id.name.as_str(), "the record key"))
        .chain(cursor.field().and_then(find).map(|f| (f.name.as_str(), "the cursor")))
        .chain(deleted.map(|f| (f.name.as_str(), "the delete flag")))
        .collect();

    // Resolve the flow's lists to describe names, all unknown names at once.
    let mut unknown = Vec::new();
    let mut resolve = |list: &[String], option: &str| -> HashSet<String> {
        let mut out = HashSet::new();
        for name in list {
            match find(name) {
                Some(f) if f.mapping == Mapping::Compound => {
                    out.extend(components(&fields, &f.name));
                }
                Some(f) => {
                    out.insert(f.name.clone());
                }
                None => unknown.push(format!("`{name}` in {option}{}", suggestion(name, &fields))),
            }
        }
        out
    };
    let listed = selection.fields.map(|l| resolve(l, "fields"));
    let excluded = resolve(selection.exclude, "exclude");
    let masked = resolve(selection.mask, "mask");
    // `rename`: describe name → column name. A compound field has no column of its own.
    let mut renamed: Vec<(String, &str)> = Vec::new();
    for (name, column) in selection.rename {
        match find(name) {
            Some(f) if f.mapping == Mapping::Compound => {
                return Err(Error::user(format!(
                    "{object}: rename cannot rename {}, a compound field with no column of its own; rename its \
                     components (e.g. `{}`)",
                    f.name,
                    components(&fields, &f.name).first().map_or("", String::as_str)
                )));
            }
            Some(f) => renamed.push((f.name.clone(), column.as_str())),
            None => unknown.push(format!("`{name}` in rename{}", suggestion(name, &fields))),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::user(format!("{object} has no field {}", unknown.join(", "))));
    }
    let renamed_set: HashSet<String> = renamed.iter().map(|(f, _)| f.clone()).collect();
    for (set, verb) in
        [(&excluded, "exclude cannot remove"), (&masked, "mask cannot hide"), (&renamed_set, "rename cannot rename")]
    {
        let refused: Vec<String> = required
            .iter()
            .filter(|(name, _)| set.contains(*name))
            .map(|(name, role)| format!("{name} ({role})"))
            .collect();
        if !refused.is_empty() {
            return Err(Error::user(format!("{object}: {verb} {}", refused.join(", "))));
        }
    }

    let mut skipped = Vec::new();
    let mut chosen: Vec<&Field> = Vec::new();
    for field in &fields {
        let is_required = required.iter().any(|(n, _)| *n == field.name);
        let wanted = is_required || listed.as_ref().is_none_or(|l| l.contains(&field.name));
        if !wanted || excluded.contains(&field.name) {
            continue;
        }
        match field.mapping {
            Mapping::Compound => skipped.push(Skipped { field: field.name.clone(), reason: SkipReason::Compound }),
            Mapping::Base64 if listed.is_none() => {
                skipped.push(Skipped { field: field.name.clone(), reason: SkipReason::Base64 })
            }
            Mapping::Unknown => {
                warnings
                    .push(format!("{object}.{} has type `{}`, unknown to sluice: read as text", field.name, field.ty));
                chosen.push(field);
            }
            _ => chosen.push(field),
        }
    }

    let unread: Vec<&str> =
        masked.iter().filter(|m| !chosen.iter().any(|f| &f.name == *m)).map(String::as_str).collect();
    if !unread.is_empty() {
        return Err(Error::user(format!("{object}: mask names fields that are not replicated: {}", unread.join(", "))));
    }
    let unread: Vec<&str> =
        renamed_set.iter().filter(|r| !chosen.iter().any(|f| &f.name == *r)).map(String::as_str).collect();
    if !unread.is_empty() {
        return Err(Error::user(format!(
            "{object}: rename names fields that are not replicated: {}",
            unread.join(", ")
        )));
    }
    let names = column_names(object, &chosen, &renamed, selection.naming, &mut warnings)?;
    let columns = chosen
        .iter()
        .zip(names)
        .map(|(f, name)| Column {
            name,
            source_name: f.name.clone(),
            ty: match f.mapping {
                _ if masked.contains(&f.name) => SluiceType::Text,
                Mapping::Column(t) => t,
                Mapping::Base64 => SluiceType::Binary,
                Mapping::Compound | Mapping::Unknown => SluiceType::Text,
            },
            nullable: f.nullable,
            formula: f.formula,
            masked: masked.contains(&f.name),
        })
        .collect();
    let schema = TableSchema {
        object: object.to_owned(),
        table: selection.naming.apply(object),
        columns,
        cursor,
        deleted_flag: deleted.map(|f| f.name.clone()),
    };
    Ok(Described { schema, skipped, warnings })
}

/// The column of each chosen field: its `rename`, else the naming rule's name (colliding
/// derived names made unique, with a warning). A renamed column that meets another column's
/// name is an error: sluice does not pick a different name for one the user chose.
fn column_names(
    object: &str,
    chosen: &[&Field],
    renamed: &[(String, &str)],
    naming: Naming,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>> {
    let rename_of = |field: &Field| renamed.iter().find(|(f, _)| *f == field.name).map(|(_, c)| (*c).to_owned());
    let derived_api: Vec<&str> = chosen.iter().filter(|f| rename_of(f).is_none()).map(|f| f.name.as_str()).collect();
    let (derived, collisions) = assign_names(&derived_api, naming);
    warnings.extend(collisions.into_iter().map(|w| format!("{object}: {w}")));
    let mut derived = derived.into_iter();
    let names: Vec<String> =
        chosen.iter().map(|f| rename_of(f).unwrap_or_else(|| derived.next().unwrap_or_default())).collect();
    let mut clashes = Vec::new();
    for (field, column) in renamed {
        let same: Vec<&str> = chosen
            .iter()
            .zip(&names)
            .filter(|(f, n)| f.name != *field && n.eq_ignore_ascii_case(column))
            .map(|(f, _)| f.name.as_str())
            .collect();
        if !same.is_empty() {
            clashes.push(format!("`{field}` → `{column}` meets the column of `{}`", same.join("`, `")));
        }
    }
    if !clashes.is_empty() {
        return Err(Error::user(format!(
            "{object}: rename gives two fields one column: {}; choose another name",
            clashes.join("; ")
        )));
    }
    Ok(names)
}

/// The components of a compound field (its `compoundFieldName` children).
fn components(fields: &[Field], compound: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|f| f.mapping != Mapping::Compound && f.compound.as_deref() == Some(compound))
        .map(|f| f.name.clone())
        .collect()
}

/// ` (did you mean `X`?)` for the closest field name within a small edit distance.
fn suggestion(name: &str, fields: &[Field]) -> String {
    let lower = name.to_ascii_lowercase();
    fields
        .iter()
        .map(|f| (edit_distance(&lower, &f.name.to_ascii_lowercase()), &f.name))
        .filter(|(d, _)| *d <= 2.max(lower.len() / 5))
        .min()
        .map(|(_, n)| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// One object of describeGlobal (`GET .../sobjects`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// API name.
    pub name: String,
    /// Human label.
    pub label: String,
    /// A custom object (`__c`).
    pub custom: bool,
    /// Whether SOQL can read it.
    pub queryable: bool,
    /// Whether records can be retrieved.
    pub retrieveable: bool,
    /// Whether getUpdated/getDeleted support it.
    pub replicateable: bool,
}

impl ObjectInfo {
    /// Whether sluice can replicate it: it must be queryable and retrievable.
    pub fn is_replicable(&self) -> bool {
        self.queryable && self.retrieveable
    }
}

/// The objects of a describeGlobal response, in its order.
pub fn objects(describe_global: &Value) -> Result<Vec<ObjectInfo>> {
    let list = describe_global
        .get("sobjects")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::external_fatal("describeGlobal response has no sobjects list"))?;
    Ok(list
        .iter()
        .filter_map(|o| {
            let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
            let name = o.get("name").and_then(Value::as_str)?.to_owned();
            Some(ObjectInfo {
                label: o.get("label").and_then(Value::as_str).unwrap_or(&name).to_owned(),
                name,
                custom: flag("custom"),
                queryable: flag("queryable"),
                retrieveable: flag("retrieveable"),
                replicateable: flag("replicateable"),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests;
