//! Tests of describe → schema, on small fixtures shaped like real describes (reference
//! §2.3: every field carries `name`, `type`, `calculated`, `calculatedFormula`,
//! `compoundFieldName`, `filterable`, `nillable`, `precision`, `scale`, ...).

use serde_json::{Value, json};

use super::*;
use crate::error::Kind;

/// A describe field with the keys sluice reads and a few it ignores.
fn field(name: &str, ty: &str, extra: Value) -> Value {
    let soap = match ty {
        "id" | "reference" => "tns:ID",
        "boolean" => "xsd:boolean",
        "datetime" => "xsd:dateTime",
        "double" | "currency" | "percent" => "xsd:double",
        "address" => "urn:address",
        _ => "xsd:string",
    };
    let mut f = json!({
        "name": name, "type": ty, "soapType": soap, "label": name,
        "calculated": false, "calculatedFormula": null, "compoundFieldName": null,
        "filterable": true, "nillable": true, "precision": 0, "scale": 0, "digits": 0,
        "length": 0, "byteLength": 0, "custom": name.ends_with("__c"),
    });
    if let (Some(f), Some(extra)) = (f.as_object_mut(), extra.as_object()) {
        f.extend(extra.clone());
    }
    f
}

fn describe(name: &str, fields: Vec<Value>) -> Value {
    json!({ "name": name, "label": name, "queryable": true, "retrieveable": true, "keyPrefix": "001", "fields": fields })
}

/// An Account-like object with one field of every kind the rules care about.
fn account() -> Value {
    let none = json!({});
    let addr = json!({ "compoundFieldName": "BillingAddress" });
    describe(
        "Account",
        vec![
            field("Id", "id", json!({ "nillable": false, "length": 18 })),
            field("IsDeleted", "boolean", json!({ "nillable": false })),
            field("Name", "string", json!({ "nillable": false, "length": 255 })),
            field("BillingAddress", "address", json!({ "calculated": true, "filterable": false })),
            field("BillingStreet", "textarea", addr.clone()),
            field("BillingCity", "string", addr.clone()),
            field(
                "BillingLatitude",
                "double",
                json!({ "compoundFieldName": "BillingAddress", "precision": 18, "scale": 15 }),
            ),
            field("AnnualRevenue", "currency", json!({ "precision": 18, "scale": 0 })),
            field("NumberOfEmployees", "int", json!({ "digits": 8 })),
            field("OwnerId", "reference", json!({ "nillable": false, "referenceTo": ["User"] })),
            field("Industry", "picklist", none.clone()),
            field("Tags__c", "multipicklist", none.clone()),
            field("Probability__c", "percent", json!({ "precision": 3, "scale": 0 })),
            field("Ratio__c", "double", json!({ "precision": 0, "scale": 0 })),
            field("Huge__c", "double", json!({ "precision": 40, "scale": 2 })),
            field("Big__c", "long", none.clone()),
            field("Since__c", "date", none.clone()),
            field("Opens__c", "time", none.clone()),
            field(
                "Score__c",
                "double",
                json!({ "calculated": true, "calculatedFormula": "AnnualRevenue / 1000", "precision": 18, "scale": 2 }),
            ),
            field("RollUp__c", "currency", json!({ "calculated": true, "precision": 18, "scale": 2 })),
            field("Logo__c", "base64", json!({ "filterable": false })),
            field("Geo__c", "location", json!({ "calculated": true, "filterable": false })),
            field("Geo__Latitude__s", "double", json!({ "compoundFieldName": "Geo__c", "precision": 18, "scale": 15 })),
            field(
                "Geo__Longitude__s",
                "double",
                json!({ "compoundFieldName": "Geo__c", "precision": 18, "scale": 15 }),
            ),
            field("Future__c", "hologram", none.clone()),
            field("CreatedDate", "datetime", json!({ "nillable": false })),
            field("LastModifiedDate", "datetime", json!({ "nillable": false })),
            field("SystemModstamp", "datetime", json!({ "nillable": false })),
        ],
    )
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn all() -> Selection<'static> {
    Selection::default()
}

#[test]
fn type_mapping_table() {
    use SluiceType as T;
    let dec = |p, s| Mapping::Column(T::Decimal { precision: p, scale: s });
    let rows = [
        ("id", 0, 0, Mapping::Column(T::Id)),
        ("reference", 0, 0, Mapping::Column(T::Id)),
        ("string", 0, 0, Mapping::Column(T::Text)),
        ("picklist", 0, 0, Mapping::Column(T::Text)),
        ("multipicklist", 0, 0, Mapping::Column(T::Text)),
        ("textarea", 0, 0, Mapping::Column(T::Text)),
        ("url", 0, 0, Mapping::Column(T::Text)),
        ("email", 0, 0, Mapping::Column(T::Text)),
        ("phone", 0, 0, Mapping::Column(T::Text)),
        ("combobox", 0, 0, Mapping::Column(T::Text)),
        ("encryptedstring", 0, 0, Mapping::Column(T::Text)),
        ("anyType", 0, 0, Mapping::Column(T::Text)),
        ("boolean", 0, 0, Mapping::Column(T::Boolean)),
        ("int", 0, 0, Mapping::Column(T::Int)),
        ("long", 0, 0, Mapping::Column(T::Long)),
        ("currency", 18, 2, dec(18, 2)),
        ("percent", 3, 0, dec(3, 0)),
        ("double", 18, 15, dec(18, 15)),
        ("double", 38, 38, dec(38, 38)),
        ("double", 0, 0, Mapping::Column(T::Double)),
        ("double", 39, 2, Mapping::Column(T::Double)),
        ("currency", 2, 5, Mapping::Column(T::Double)),
        ("date", 0, 0, Mapping::Column(T::Date)),
        ("datetime", 0, 0, Mapping::Column(T::Timestamp)),
        ("time", 0, 0, Mapping::Column(T::Time)),
        ("base64", 0, 0, Mapping::Base64),
        ("address", 0, 0, Mapping::Compound),
        ("location", 0, 0, Mapping::Compound),
        ("hologram", 0, 0, Mapping::Unknown),
    ];
    for (ty, p, s, want) in rows {
        assert_eq!(map_type(ty, p, s), want, "{ty}({p},{s})");
    }
}

#[test]
fn account_schema_with_all_fields() {
    let d = table_schema(&account(), &all()).unwrap();
    let s = &d.schema;
    assert_eq!((s.object.as_str(), s.table.as_str()), ("Account", "account"));
    assert_eq!(s.cursor, Cursor::SystemModstamp);
    assert_eq!(s.deleted_flag.as_deref(), Some("IsDeleted"));
    let col = |n: &str| s.column_by_source(n).unwrap_or_else(|| panic!("no column {n}"));
    // (source, destination name, type, nullable, formula)
    let rows = [
        ("Id", "id", SluiceType::Id, false, false),
        ("IsDeleted", "is_deleted", SluiceType::Boolean, false, false),
        ("BillingStreet", "billing_street", SluiceType::Text, true, false),
        ("BillingLatitude", "billing_latitude", SluiceType::Decimal { precision: 18, scale: 15 }, true, false),
        ("AnnualRevenue", "annual_revenue", SluiceType::Decimal { precision: 18, scale: 0 }, true, false),
        ("NumberOfEmployees", "number_of_employees", SluiceType::Int, true, false),
        ("OwnerId", "owner_id", SluiceType::Id, false, false),
        ("Tags__c", "tags__c", SluiceType::Text, true, false),
        ("Ratio__c", "ratio__c", SluiceType::Double, true, false),
        ("Huge__c", "huge__c", SluiceType::Double, true, false),
        ("Big__c", "big__c", SluiceType::Long, true, false),
        ("Since__c", "since__c", SluiceType::Date, true, false),
        ("Opens__c", "opens__c", SluiceType::Time, true, false),
        ("Score__c", "score__c", SluiceType::Decimal { precision: 18, scale: 2 }, true, true),
        ("RollUp__c", "roll_up__c", SluiceType::Decimal { precision: 18, scale: 2 }, true, false),
        ("Geo__Latitude__s", "geo__latitude__s", SluiceType::Decimal { precision: 18, scale: 15 }, true, false),
        ("Future__c", "future__c", SluiceType::Text, true, false),
        ("SystemModstamp", "system_modstamp", SluiceType::Timestamp, false, false),
    ];
    for (source, name, ty, nullable, formula) in rows {
        let c = col(source);
        assert_eq!((c.name.as_str(), c.ty, c.nullable, c.formula), (name, ty, nullable, formula), "{source}");
    }
    for absent in ["BillingAddress", "Geo__c", "Logo__c"] {
        assert!(s.column_by_source(absent).is_none(), "{absent} should be skipped");
    }
    assert_eq!(
        d.skipped,
        vec![
            Skipped { field: "BillingAddress".into(), reason: SkipReason::Compound },
            Skipped { field: "Logo__c".into(), reason: SkipReason::Base64 },
            Skipped { field: "Geo__c".into(), reason: SkipReason::Compound },
        ]
    );
    assert_eq!(s.columns.len(), 25);
    assert!(d.warnings.iter().any(|w| w.contains("Future__c") && w.contains("hologram")), "{:?}", d.warnings);
    assert!(d.bulk_compatible());
}

#[test]
fn cursor_choice_table() {
    let dt = |name: &str, filterable: bool| field(name, "datetime", json!({ "filterable": filterable }));
    let id = || field("Id", "id", json!({}));
    let rows: Vec<(&str, Vec<Value>, Cursor)> = vec![
        (
            "all three",
            vec![id(), dt("CreatedDate", true), dt("LastModifiedDate", true), dt("SystemModstamp", true)],
            Cursor::SystemModstamp,
        ),
        (
            "modstamp not filterable",
            vec![id(), dt("CreatedDate", true), dt("LastModifiedDate", true), dt("SystemModstamp", false)],
            Cursor::LastModifiedDate,
        ),
        ("only created", vec![id(), dt("CreatedDate", true)], Cursor::CreatedDate),
        ("none filterable", vec![id(), dt("CreatedDate", false), dt("SystemModstamp", false)], Cursor::None),
        ("no timestamps", vec![id(), field("Name", "string", json!({}))], Cursor::None),
        (
            "modstamp with the wrong type",
            vec![id(), field("SystemModstamp", "date", json!({})), dt("CreatedDate", true)],
            Cursor::CreatedDate,
        ),
        (
            "filterable missing counts as false",
            vec![id(), json!({ "name": "SystemModstamp", "type": "datetime" })],
            Cursor::None,
        ),
    ];
    for (name, fields, want) in rows {
        let d = table_schema(&describe("LoginHistory", fields), &all()).unwrap();
        assert_eq!(d.schema.cursor, want, "{name}");
        assert_eq!(d.warnings.is_empty(), want == Cursor::SystemModstamp, "{name}: {:?}", d.warnings);
        if let Some(f) = want.field() {
            assert!(d.schema.column_by_source(f).is_some(), "{name}: cursor not selected");
        }
    }
}

#[test]
fn fields_option_selects_and_adds_required() {
    let fields = owned(&["name", "BillingAddress", "Logo__c"]);
    let sel = Selection { fields: Some(&fields), ..all() };
    let d = table_schema(&account(), &sel).unwrap();
    assert_eq!(
        d.schema.source_names(),
        owned(&[
            "Id",
            "IsDeleted",
            "Name",
            "BillingStreet",
            "BillingCity",
            "BillingLatitude",
            "Logo__c",
            "SystemModstamp"
        ])
    );
    assert_eq!(d.schema.column_by_source("Logo__c").map(|c| c.ty), Some(SluiceType::Binary));
    assert!(!d.bulk_compatible());
    assert!(d.skipped.is_empty());
}

#[test]
fn selection_from_a_configured_flow() {
    let text = "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x\"\nauth = \"client_credentials\"\n\
                client_id = \"i\"\nclient_secret = \"s\"\n[destination]\ntype = \"files\"\npath = \"o\"\nmask_salt = \"s\"\n\
                [[flows]]\nobject = \"Account\"\nfields = [\"Name\", \"Industry\"]\nmask = [\"Industry\"]\n";
    let config = crate::pipeline::load_config(text, "x.toml", &|_: &str| None).unwrap();
    let sel = Selection::for_flow(&config.flows[0], config.destination.naming());
    let d = table_schema(&account(), &sel).unwrap();
    assert_eq!(d.schema.source_names(), owned(&["Id", "IsDeleted", "Name", "Industry", "SystemModstamp"]));
    assert!(d.schema.column_by_source("Industry").unwrap().masked);
}

#[test]
fn exclude_option() {
    let exclude = owned(&["BillingAddress", "industry", "Score__c"]);
    let d = table_schema(&account(), &Selection { exclude: &exclude, ..all() }).unwrap();
    for gone in ["BillingStreet", "BillingCity", "BillingLatitude", "Industry", "Score__c"] {
        assert!(d.schema.column_by_source(gone).is_none(), "{gone}");
    }
    assert!(d.schema.column_by_source("Name").is_some());
}

#[test]
fn mask_option() {
    let mask = owned(&["phone_missing", "AnnualRevenue", "name"]);
    let err = table_schema(&account(), &Selection { mask: &mask, ..all() }).unwrap_err();
    assert!(err.message.contains("`phone_missing` in mask"), "{}", err.message);

    let mask = owned(&["AnnualRevenue", "name"]);
    let d = table_schema(&account(), &Selection { mask: &mask, ..all() }).unwrap();
    let col = |n: &str| d.schema.column_by_source(n).unwrap().clone();
    assert_eq!((col("AnnualRevenue").ty, col("AnnualRevenue").masked), (SluiceType::Text, true));
    assert_eq!((col("Name").ty, col("Name").masked), (SluiceType::Text, true));
    assert!(!col("Industry").masked);

    let rows: [(&[&str], &[&str], &str); 3] = [
        (&["SystemModstamp"], &[], "mask cannot hide SystemModstamp (the cursor)"),
        (&["IsDeleted"], &[], "mask cannot hide IsDeleted (the delete flag)"),
        (&["Industry"], &["Industry"], "mask names fields that are not replicated: Industry"),
    ];
    for (mask, exclude, needle) in rows {
        let (mask, exclude) = (owned(mask), owned(exclude));
        let err = table_schema(&account(), &Selection { mask: &mask, exclude: &exclude, ..all() }).unwrap_err();
        assert_eq!(err.kind, Kind::User);
        assert!(err.message.contains(needle), "{}", err.message);
    }
}

fn renames(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect()
}

#[test]
fn rename_option() {
    // A renamed field takes its column; a field whose derived name it would have collided
    // with keeps its own; the rest follow the naming rule.
    let rename = renames(&[("Name", "account_name"), ("industry", "sector")]);
    let d = table_schema(&account(), &Selection { rename: &rename, ..all() }).unwrap();
    let col = |n: &str| d.schema.column_by_source(n).unwrap().name.clone();
    assert_eq!(
        (col("Name"), col("Industry"), col("AnnualRevenue")),
        ("account_name".into(), "sector".into(), "annual_revenue".into())
    );
    assert_eq!(col("Id"), "id");

    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let rows: [Case; 6] = [
        (&[("Nmae", "x")], &[], "`Nmae` in rename (did you mean `Name`?)"),
        (&[("SystemModstamp", "changed_at")], &[], "rename cannot rename SystemModstamp (the cursor)"),
        (&[("IsDeleted", "gone")], &[], "rename cannot rename IsDeleted (the delete flag)"),
        (&[("Industry", "sector")], &["Industry"], "rename names fields that are not replicated: Industry"),
        (&[("Industry", "annual_revenue")], &[], "`Industry` → `annual_revenue` meets the column of `AnnualRevenue`"),
        (&[("BillingAddress", "address")], &[], "rename cannot rename BillingAddress, a compound field"),
    ];
    for (rename, exclude, needle) in rows {
        let (rename, exclude) = (renames(rename), owned(exclude));
        let err = table_schema(&account(), &Selection { rename: &rename, exclude: &exclude, ..all() }).unwrap_err();
        assert_eq!(err.kind, Kind::User);
        assert!(err.message.contains(needle), "{needle}: {}", err.message);
    }
}

#[test]
fn bad_selections_are_user_errors_naming_everything() {
    let rows: [(&[&str], &[&str], &[&str]); 4] = [
        (&["Nmae", "Bogus__c", "Id"], &[], &["`Nmae` in fields (did you mean `Name`?)", "`Bogus__c` in fields"]),
        (&[], &["Industy"], &["`Industy` in exclude (did you mean `Industry`?)"]),
        (
            &[],
            &["Id", "SystemModstamp", "IsDeleted"],
            &["Id (the record key)", "SystemModstamp (the cursor)", "IsDeleted (the delete flag)"],
        ),
        (&[], &["systemmodstamp"], &["SystemModstamp (the cursor)"]),
    ];
    for (fields, exclude, needles) in rows {
        let (fields, exclude) = (owned(fields), owned(exclude));
        let sel = Selection { fields: (!fields.is_empty()).then_some(&fields[..]), exclude: &exclude, ..all() };
        let err = table_schema(&account(), &sel).unwrap_err();
        assert_eq!(err.kind, Kind::User);
        assert!(err.message.starts_with("Account"), "{}", err.message);
        for needle in needles {
            assert!(err.message.contains(needle), "{} lacks {needle}", err.message);
        }
    }
}

#[test]
fn naming_collisions_and_original_names() {
    let fields = vec![
        field("Id", "id", json!({})),
        field("MyField__c", "string", json!({})),
        field("My_Field__c", "string", json!({})),
        field("SystemModstamp", "datetime", json!({})),
    ];
    let d = table_schema(&describe("Invoice__c", fields.clone()), &all()).unwrap();
    let names: Vec<&str> = d.schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "my_field__c_2", "my_field__c", "system_modstamp"]);
    assert!(d.warnings.iter().any(|w| w.contains("MyField__c") && w.contains("my_field__c_2")), "{:?}", d.warnings);

    let sel = Selection { naming: Naming::Original, ..all() };
    let d = table_schema(&describe("Invoice__c", fields), &sel).unwrap();
    assert_eq!(d.schema.table, "Invoice__c");
    assert_eq!(d.schema.columns[1].name, "MyField__c");
    assert!(d.warnings.is_empty());
}

#[test]
fn malformed_or_unusable_describes() {
    let no_id = describe("Thing__c", vec![field("Name", "string", json!({}))]);
    assert_eq!(table_schema(&no_id, &all()).unwrap_err().kind, Kind::User);
    let mut hidden = account();
    hidden["queryable"] = json!(false);
    assert_eq!(table_schema(&hidden, &all()).unwrap_err().kind, Kind::User);
    assert_eq!(table_schema(&json!({ "fields": [] }), &all()).unwrap_err().kind, Kind::External);
    assert_eq!(table_schema(&json!({ "name": "X" }), &all()).unwrap_err().kind, Kind::External);
}

#[test]
fn describe_global_objects() {
    let global = json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
        { "name": "Account", "label": "Account", "custom": false, "queryable": true, "retrieveable": true, "replicateable": true, "keyPrefix": "001" },
        { "name": "Invoice__c", "label": "Invoice", "custom": true, "queryable": true, "retrieveable": true, "replicateable": true, "keyPrefix": "a0X" },
        { "name": "AccountChangeEvent", "label": "Account Change Event", "custom": false, "queryable": false, "retrieveable": false, "replicateable": false, "keyPrefix": null },
    ]});
    let objs = objects(&global).unwrap();
    let names: Vec<(&str, bool)> = objs.iter().map(|o| (o.name.as_str(), o.is_replicable())).collect();
    assert_eq!(names, [("Account", true), ("Invoice__c", true), ("AccountChangeEvent", false)]);
    assert!(objs[1].custom && objs[1].label == "Invoice");
    assert!(objects(&json!({})).is_err());
}
