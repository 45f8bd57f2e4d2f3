//! The org's metadata: objects, their fields, and the properties describe reports.
//!
//! Field definitions are built with a small builder whose defaults follow what real
//! describes show per type (text `byteLength = 3 × length`, currency precision 18,
//! `int` using `digits`, system fields read-only...), so the object catalogue in
//! [`objects`] only states what differs from the type's norm.

pub mod describe;
pub mod objects;

use crate::value::FieldType;

/// A value computed at read time: Salesforce formula fields never bump SystemModstamp,
/// which is exactly why incremental replication misses their changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    /// `TODAY() - <date field>` in days while `<boolean field>` is false, else null.
    DaysSince {
        /// The date field subtracted from today.
        date: String,
        /// When this field is true the result is null (e.g. the invoice is paid).
        unless: String,
    },
    /// A field of the parent record: `<relationship>.<field>`.
    ParentField {
        /// The lookup field on this object.
        reference: String,
        /// The field read from the parent.
        field: String,
    },
    /// `<a> * <b> / <divisor>` over two number fields (null when either is null).
    Product {
        /// First factor.
        a: String,
        /// Second factor.
        b: String,
        /// Divides the product (100 turns a percent into a fraction).
        divisor: f64,
    },
}

impl Formula {
    /// The formula text describe shows in `calculatedFormula`.
    pub fn text(&self) -> String {
        match self {
            Formula::DaysSince { date, unless } => {
                format!("IF({unless}, NULL, TODAY() - {date})")
            }
            Formula::ParentField { reference, field } => {
                format!("{}.{field}", relationship_of(reference))
            }
            Formula::Product { a, b, divisor } => format!("{a} * {b} / {divisor}"),
        }
    }
}

/// The relationship name Salesforce derives from a lookup field's name.
pub fn relationship_of(reference: &str) -> String {
    if let Some(base) = reference.strip_suffix("__c") {
        format!("{base}__r")
    } else if let Some(base) = reference.strip_suffix("Id") {
        base.to_string()
    } else {
        reference.to_string()
    }
}

/// One field of an object, with everything describe reports about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// API name, e.g. `BillingCity` or `Amount__c`.
    pub name: String,
    /// Human label.
    pub label: String,
    /// Salesforce field type.
    pub ty: FieldType,
    /// Max characters for text types, else 0.
    pub length: u32,
    /// Total digits for decimals.
    pub precision: u32,
    /// Digits right of the point for decimals.
    pub scale: u32,
    /// Digits for `int`.
    pub digits: u32,
    /// Whether null is allowed.
    pub nillable: bool,
    /// Whether the API may set it on insert.
    pub createable: bool,
    /// Whether the API may change it.
    pub updateable: bool,
    /// Whether it may appear in WHERE.
    pub filterable: bool,
    /// Whether it may appear in ORDER BY.
    pub sortable: bool,
    /// Whether it may appear in GROUP BY.
    pub groupable: bool,
    /// Whether the value is unique.
    pub unique: bool,
    /// Whether it is an external Id.
    pub external_id: bool,
    /// Whether it is the object's name field.
    pub name_field: bool,
    /// Whether the server fills it on create.
    pub defaulted_on_create: bool,
    /// Whether it is an auto-number.
    pub auto_number: bool,
    /// Whether it is a custom field.
    pub custom: bool,
    /// Whether the text is HTML.
    pub html_formatted: bool,
    /// `extraTypeInfo` (`plaintextarea`, `richtextarea`, `imageurl`, ...).
    pub extra_type_info: Option<String>,
    /// Picklist values in order.
    pub picklist: Vec<String>,
    /// Whether the picklist rejects other values.
    pub restricted_picklist: bool,
    /// Target objects of a reference.
    pub reference_to: Vec<String>,
    /// Relationship name of a reference (`Owner`, `Account__r`).
    pub relationship_name: Option<String>,
    /// The compound field this component belongs to.
    pub compound_field_name: Option<String>,
    /// Read-time formula, for calculated fields.
    pub formula: Option<Formula>,
    /// Mask character type for encrypted strings.
    pub mask: Option<String>,
}

impl FieldDef {
    /// A field with the defaults real describes show for `ty`.
    pub fn new(name: &str, ty: FieldType) -> Self {
        let custom = name.ends_with("__c") || name.ends_with("__s");
        let (length, precision, scale, digits) = match ty {
            FieldType::Id | FieldType::Reference => (18, 0, 0, 0),
            FieldType::String | FieldType::Combobox | FieldType::EncryptedString => (255, 0, 0, 0),
            FieldType::Picklist | FieldType::Multipicklist => (255, 0, 0, 0),
            FieldType::Textarea => (255, 0, 0, 0),
            FieldType::Phone => (40, 0, 0, 0),
            FieldType::Url => (255, 0, 0, 0),
            FieldType::Email => (80, 0, 0, 0),
            FieldType::Currency => (0, 18, 2, 0),
            FieldType::Percent => (0, 5, 2, 0),
            FieldType::Double => (0, 18, 2, 0),
            FieldType::Int => (0, 0, 0, 9),
            FieldType::Long => (0, 0, 0, 18),
            _ => (0, 0, 0, 0),
        };
        let compound = ty.is_compound();
        let sortable =
            !matches!(ty, FieldType::Multipicklist | FieldType::Base64 | FieldType::Address | FieldType::Location);
        FieldDef {
            name: name.to_string(),
            label: label_for(name),
            ty,
            length,
            precision,
            scale,
            digits,
            nillable: !matches!(ty, FieldType::Id | FieldType::Boolean),
            createable: !compound && ty != FieldType::Id,
            updateable: !compound && ty != FieldType::Id,
            filterable: !compound && ty != FieldType::Base64,
            sortable,
            groupable: sortable
                && !matches!(
                    ty,
                    FieldType::Double
                        | FieldType::Currency
                        | FieldType::Percent
                        | FieldType::DateTime
                        | FieldType::Textarea
                ),
            unique: false,
            external_id: false,
            name_field: false,
            defaulted_on_create: ty == FieldType::Id || ty == FieldType::Boolean,
            auto_number: false,
            custom,
            html_formatted: false,
            extra_type_info: None,
            picklist: Vec::new(),
            restricted_picklist: false,
            reference_to: Vec::new(),
            relationship_name: None,
            compound_field_name: None,
            formula: None,
            mask: None,
        }
    }

    /// Sets the maximum text length.
    pub fn len(mut self, length: u32) -> Self {
        self.length = length;
        if length > 255 && self.ty == FieldType::Textarea {
            // Long text areas cannot be filtered or sorted in SOQL.
            self.filterable = false;
            self.sortable = false;
            self.groupable = false;
            self.extra_type_info.get_or_insert_with(|| "plaintextarea".into());
        }
        self
    }

    /// Sets decimal precision and scale.
    pub fn num(mut self, precision: u32, scale: u32) -> Self {
        self.precision = precision;
        self.scale = scale;
        self
    }

    /// Sets the digits of an integer field.
    pub fn digits(mut self, digits: u32) -> Self {
        self.digits = digits;
        self
    }

    /// Sets the label.
    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_string();
        self
    }

    /// Sets picklist values.
    pub fn values(mut self, values: &[&str]) -> Self {
        self.picklist = values.iter().map(|v| v.to_string()).collect();
        self
    }

    /// Makes the field a lookup to `target` with the given relationship name.
    pub fn refs(mut self, target: &str, relationship: &str) -> Self {
        self.reference_to = vec![target.to_string()];
        self.relationship_name = Some(relationship.to_string());
        self
    }

    /// Marks the field as a component of `compound`.
    pub fn part_of(mut self, compound: &str) -> Self {
        self.compound_field_name = Some(compound.to_string());
        self
    }

    /// Makes the field required.
    pub fn required(mut self) -> Self {
        self.nillable = false;
        self
    }

    /// Makes the field read-only through the API (system or calculated fields).
    pub fn readonly(mut self) -> Self {
        self.createable = false;
        self.updateable = false;
        self
    }

    /// System audit fields: required, read-only, set by the server.
    pub fn system(self) -> Self {
        let mut f = self.readonly().required();
        f.defaulted_on_create = true;
        f
    }

    /// Makes the field the object's name field.
    pub fn name_field(mut self) -> Self {
        self.name_field = true;
        self
    }

    /// Makes the field a unique external Id.
    pub fn external_id(mut self) -> Self {
        self.external_id = true;
        self.unique = true;
        self
    }

    /// Makes the field an auto-number (server-assigned text).
    pub fn auto_number(mut self) -> Self {
        self.auto_number = true;
        self.defaulted_on_create = true;
        self.nillable = false;
        self.readonly()
    }

    /// Makes the field a read-time formula.
    pub fn formula(mut self, formula: Formula) -> Self {
        self.formula = Some(formula);
        self.readonly()
    }

    /// Sets `extraTypeInfo`.
    pub fn extra(mut self, info: &str) -> Self {
        self.extra_type_info = Some(info.to_string());
        if info == "richtextarea" {
            self.html_formatted = true;
        }
        self
    }

    /// Whether the value is computed rather than stored.
    pub fn calculated(&self) -> bool {
        self.formula.is_some() || self.ty.is_compound()
    }

    /// `byteLength` as describe reports it: three bytes per character for text.
    pub fn byte_length(&self) -> u32 {
        if matches!(self.ty, FieldType::Id | FieldType::Reference) {
            // Ids are ASCII: real describes show byteLength 18 for length 18.
            self.length
        } else if self.ty.is_text() && self.length > 0 {
            self.length * 3
        } else if self.ty == FieldType::Base64 {
            self.length
        } else {
            0
        }
    }
}

/// Derives a label from an API name: `BillingCity` → `Billing City`, `Amount_Due__c` → `Amount Due`.
pub fn label_for(name: &str) -> String {
    let base = name.strip_suffix("__c").or_else(|| name.strip_suffix("__s")).unwrap_or(name);
    let mut label = String::with_capacity(base.len() + 4);
    let chars: Vec<char> = base.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !label.ends_with(' ') {
                label.push(' ');
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let boundary = c.is_ascii_uppercase()
            && prev.is_some_and(|p| {
                p.is_ascii_lowercase() || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
            });
        if boundary && !label.ends_with(' ') {
            label.push(' ');
        }
        label.push(c);
    }
    if label.ends_with(" Id") && label.len() > 3 {
        label.truncate(label.len() - 3);
        label.push_str(" ID");
    }
    label
}

/// One object (sObject) of the org.
#[derive(Debug, Clone)]
pub struct ObjectDef {
    /// API name (`Account`, `Invoice__c`).
    pub name: String,
    /// Singular label.
    pub label: String,
    /// Plural label.
    pub label_plural: String,
    /// Three-character Id prefix.
    pub key_prefix: String,
    /// Whether the object is custom.
    pub custom: bool,
    /// Whether records can be deleted (User records cannot).
    pub deletable: bool,
    /// Fields in describe order.
    pub fields: Vec<FieldDef>,
}

impl ObjectDef {
    /// Position of a field by exact API name.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// A field by name, case-insensitively (as SOQL and the REST API look names up).
    pub fn field_ci(&self, name: &str) -> Option<(usize, &FieldDef)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name.eq_ignore_ascii_case(name))
    }

    /// Whether the object keeps deleted rows in a recycle bin (has `IsDeleted`).
    pub fn has_is_deleted(&self) -> bool {
        self.field_index("IsDeleted").is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_like_salesforce() {
        for (name, label) in [
            ("BillingCity", "Billing City"),
            ("Amount_Due__c", "Amount Due"),
            ("OwnerId", "Owner ID"),
            ("SystemModstamp", "System Modstamp"),
            ("IsDeleted", "Is Deleted"),
            ("Remit_To__City__s", "Remit To City"),
        ] {
            assert_eq!(label_for(name), label);
        }
    }

    #[test]
    fn relationship_names_follow_the_lookup() {
        assert_eq!(relationship_of("OwnerId"), "Owner");
        assert_eq!(relationship_of("Account__c"), "Account__r");
    }

    #[test]
    fn long_text_is_not_filterable() {
        let f = FieldDef::new("Description", FieldType::Textarea).len(32_000);
        assert!(!f.filterable && !f.sortable);
        assert_eq!(f.byte_length(), 96_000);
    }
}
