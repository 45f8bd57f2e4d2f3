//! The change-event schema and encoding, checked byte by byte against hand-computed Avro.

use serde_json::Value as Json;

use super::avro::{EventSchema, topic_of};
use crate::schema::objects;
use crate::store::{Captured, ChangeKind};
use crate::value::Value;

fn account() -> crate::schema::ObjectDef {
    objects::all().into_iter().find(|o| o.name == "Account").unwrap()
}

fn col(def: &crate::schema::ObjectDef, name: &str) -> usize {
    def.fields.iter().position(|f| f.name == name).unwrap()
}

fn change(kind: ChangeKind, values: Vec<(usize, Value<'static>)>) -> Captured {
    Captured {
        replay: 1000,
        table: 0,
        record: "001000000000001AAA".into(),
        kind,
        values,
        commit_ms: 1_767_225_600_123,
        commit_number: 7,
        user: "005000000000001AAA".into(),
        transaction: "0000000a-0000-0000-0000-000000000000".into(),
        sequence: 1,
    }
}

#[test]
fn topics_follow_salesforce_naming() {
    assert_eq!(topic_of("Account"), "/data/AccountChangeEvent");
    assert_eq!(topic_of("Invoice__c"), "/data/Invoice__ChangeEvent");
}

#[test]
fn the_schema_is_a_record_of_the_header_then_nullable_fields_with_compounds_nested() {
    let def = account();
    let schema = EventSchema::of(&def);
    let json: Json = serde_json::from_str(&schema.json).unwrap();
    assert_eq!(json["name"], "AccountChangeEvent");
    assert_eq!(json["namespace"], "com.sforce.eventbus");
    let fields = json["fields"].as_array().unwrap();
    assert_eq!(fields[0]["name"], "ChangeEventHeader");
    let header: Vec<&str> =
        fields[0]["type"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        header,
        [
            "entityName",
            "recordIds",
            "changeType",
            "changeOrigin",
            "transactionKey",
            "sequenceNumber",
            "commitTimestamp",
            "commitNumber",
            "commitUser",
            "nulledFields",
            "diffFields",
            "changedFields"
        ]
    );
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"Id"), "the Id travels in recordIds");
    assert!(!names.contains(&"BillingCity"), "address parts are nested");
    let billing = fields.iter().find(|f| f["name"] == "BillingAddress").unwrap();
    assert_eq!(billing["type"][0], "null");
    let parts: Vec<&str> =
        billing["type"][1]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(parts.contains(&"City") && parts.contains(&"Street") && parts.contains(&"Latitude"), "{parts:?}");
    let name = fields.iter().find(|f| f["name"] == "Name").unwrap();
    assert_eq!(name["type"], serde_json::json!(["null", "string"]));
    assert_eq!(name["default"], Json::Null);
    let modstamp = fields.iter().find(|f| f["name"] == "SystemModstamp").unwrap();
    assert_eq!(modstamp["type"][1], "long");
    // Avro names are unique within a schema: two address compounds get two record names.
    let records: Vec<&str> = fields.iter().filter_map(|f| f["type"][1]["name"].as_str()).collect();
    let unique: std::collections::BTreeSet<&&str> = records.iter().collect();
    assert_eq!(unique.len(), records.len(), "{records:?}");
    // The id follows the text: the same schema, the same id.
    assert_eq!(EventSchema::of(&def).id, schema.id);
    assert_eq!(schema.id.len(), 22);
}

/// zig-zag varint, as the Avro specification defines it.
fn long(v: i64) -> Vec<u8> {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        if n < 0x80 {
            out.push(n as u8);
            return out;
        }
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
}

fn string(s: &str) -> Vec<u8> {
    let mut out = long(s.len() as i64);
    out.extend_from_slice(s.as_bytes());
    out
}

#[test]
fn an_update_encodes_the_header_bitmaps_and_only_the_changed_values() {
    let def = account();
    let schema = EventSchema::of(&def);
    let json: Json = serde_json::from_str(&schema.json).unwrap();
    let fields: Vec<String> =
        json["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
    let position = |n: &str| fields.iter().position(|f| f == n).unwrap();
    let values = vec![
        (col(&def, "Name"), Value::Str("Acme".into())),
        (col(&def, "Phone"), Value::Null),
        (col(&def, "BillingCity"), Value::Str("Lyon".into())),
    ];
    let bytes = schema.encode(&change(ChangeKind::Update, values));

    let bitmap = |positions: &[usize]| {
        let mut n = num_bitmap(positions);
        if n.is_empty() {
            n.push('0');
        }
        format!("0x{n}")
    };
    let billing = position("BillingAddress");
    let parts: Vec<String> = json["fields"][billing]["type"][1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    let city = parts.iter().position(|p| p == "City").unwrap();
    let mut want = Vec::new();
    want.extend(string("Account"));
    want.extend(long(1));
    want.extend(string("001000000000001AAA"));
    want.extend(long(0));
    want.extend(long(1)); // UPDATE
    want.extend(string(""));
    want.extend(string("0000000a-0000-0000-0000-000000000000"));
    want.extend(long(1));
    want.extend(long(1_767_225_600_123));
    want.extend(long(7));
    want.extend(string("005000000000001AAA"));
    // nulledFields: Phone.
    want.extend(long(1));
    want.extend(string(&bitmap(&[position("Phone")])));
    want.extend(long(0));
    // diffFields: none.
    want.extend(long(0));
    // changedFields: Name and Phone at the top, City inside BillingAddress.
    want.extend(long(2));
    want.extend(string(&bitmap(&[position("Name"), position("Phone")])));
    want.extend(string(&format!("{billing}-{}", bitmap(&[city]))));
    want.extend(long(0));
    for (i, f) in fields.iter().enumerate().skip(1) {
        if f == "Name" {
            want.extend(long(1));
            want.extend(string("Acme"));
        } else if i == billing {
            want.extend(long(1));
            for p in &parts {
                if p == "City" {
                    want.extend(long(1));
                    want.extend(string("Lyon"));
                } else {
                    want.extend(long(0));
                }
            }
        } else {
            want.extend(long(0));
        }
    }
    assert_eq!(bytes, want);
}

/// Upper-case hex of a bitmap with the given bits set, without leading zeros.
fn num_bitmap(positions: &[usize]) -> String {
    let top = positions.iter().max().copied().unwrap_or(0);
    let mut bytes = vec![0u8; top / 8 + 1];
    for p in positions {
        bytes[p / 8] |= 1 << (p % 8);
    }
    let hex: String = bytes.iter().rev().map(|b| format!("{b:02X}")).collect();
    hex.trim_start_matches('0').to_string()
}

#[test]
fn a_delete_carries_the_header_and_no_values() {
    let def = account();
    let schema = EventSchema::of(&def);
    let bytes = schema.encode(&change(ChangeKind::Delete, Vec::new()));
    let slots = serde_json::from_str::<Json>(&schema.json).unwrap()["fields"].as_array().unwrap().len() - 1;
    // Every field is the null branch: one zero byte each, after the header.
    assert!(bytes.ends_with(&vec![0u8; slots]));
    assert_eq!(bytes[bytes.len() - slots - 1], 0, "changedFields is empty");
}
