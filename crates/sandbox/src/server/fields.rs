//! Fields added while the org runs (the admin API's `add_field` and the `fields_added`
//! knob): one checked path into the store for both.

use super::state::AppState;
use crate::schema::FieldDef;
use crate::value::FieldType;

/// The longest long text area Salesforce allows, in characters.
pub const MAX_TEXTAREA_LENGTH: u32 = 131_072;

/// Adds a custom field to an object at run time; existing rows read null. `length` sets a
/// text field's length (a long text area up to [`MAX_TEXTAREA_LENGTH`], a string up to 255).
pub fn add_field(
    state: &AppState,
    object: &str,
    name: &str,
    ty: &str,
    values: &[String],
    length: Option<u32>,
) -> Result<(), String> {
    let ty = FieldType::from_api_name(ty)
        .filter(|t| !t.is_compound() && !matches!(t, FieldType::Id | FieldType::Reference))
        .ok_or_else(|| format!("`{ty}` is not a field type that can be added (use string, textarea, picklist, multipicklist, email, phone, url, boolean, int, long, double, currency, percent, date, datetime, time)"))?;
    if !name.ends_with("__c") || name.len() < 4 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{name}` is not a custom field name (letters, digits and _, ending in __c)"));
    }
    let mut org = state.org.write();
    let t = org.table_index(object).ok_or_else(|| format!("unknown object `{object}`"))?;
    if org.tables[t].def.field_ci(name).is_some() {
        return Err(format!("{object} already has a field `{name}`"));
    }
    let mut field = FieldDef::new(name, ty);
    if !values.is_empty() {
        field.picklist = values.to_vec();
    }
    if let Some(length) = length {
        let max = match ty {
            FieldType::Textarea => MAX_TEXTAREA_LENGTH,
            FieldType::String | FieldType::Url | FieldType::Combobox => 255,
            _ => return Err(format!("`length` applies to text fields, not to `{}`", ty.api_name())),
        };
        if !(1..=max).contains(&length) {
            return Err(format!("length {length} is out of range for `{}`: 1 to {max}", ty.api_name()));
        }
        field.length = length;
    }
    org.tables[t].add_field(field);
    Ok(())
}
