//! Tests of the store's write semantics: stamps, recycle bin, late commits, formulas.

use super::*;
use crate::ids;
use crate::schema::objects;
use crate::value::Value;

fn org() -> Org {
    Org::new(objects::all(), 15 * 86_400_000)
}

fn insert(org: &mut Org, object: &str, values: &[(&str, Value<'static>)], stamp: i64) -> u64 {
    let t = org.table_index(object).unwrap();
    let number = org.tables[t].allocate_number();
    let values = values.iter().map(|(n, v)| (org.tables[t].def.field_index(n).unwrap(), v.clone())).collect();
    let user = org.user_id.clone();
    org.apply(&Change::Insert { table: t, number, values }, stamp, &user).unwrap();
    number
}

#[test]
fn writes_stamp_modstamp_to_the_second() {
    let mut org = org();
    let n = insert(&mut org, "Account", &[("Name", Value::Str("Acme".into()))], 1_700_000_000_123);
    let t = &org.tables[0];
    let row = t.row_of_number(n).unwrap();
    assert_eq!(t.modstamp(row), 1_700_000_000_000);
    assert_eq!(t.stored(row, t.sys.is_deleted.unwrap()), Value::Bool(false));
    let user = org.user_id.clone();
    org.apply(&Change::Update { table: 0, number: n, values: vec![], system: true }, 1_700_000_005_000, &user).unwrap();
    let t = &org.tables[0];
    assert_eq!(t.modstamp(row), 1_700_000_005_000);
    assert_eq!(t.stored(row, t.sys.last_modified), Value::DateTime(1_700_000_000_000));
}

#[test]
fn deleted_rows_are_purged_after_retention() {
    let mut org = org();
    let n = insert(&mut org, "Account", &[("Name", Value::Str("Acme".into()))], 0);
    let user = org.user_id.clone();
    org.apply(&Change::Delete { table: 0, number: n }, 1_000, &user).unwrap();
    assert_eq!(org.apply(&Change::Delete { table: 0, number: n }, 2_000, &user), Err(ChangeError::Deleted));
    org.tick(1_000 + org.retention_ms - 1);
    assert!(!org.tables[0].purged[0]);
    org.tick(1_000 + org.retention_ms);
    assert!(org.tables[0].purged[0]);
    assert_eq!(org.tables[0].row_of_id(&ids::make("001", n)), None);
}

#[test]
fn late_writes_appear_only_when_due_with_their_old_stamp() {
    let mut org = org();
    let t = org.table_index("Account").unwrap();
    let number = org.tables[t].allocate_number();
    let name = org.tables[t].def.field_index("Name").unwrap();
    let user = org.user_id.clone();
    org.apply_late(
        Change::Insert { table: t, number, values: vec![(name, Value::Str("Late".into()))] },
        10_000,
        &user,
        70_000,
    );
    org.tick(69_999);
    assert!(org.tables[t].is_empty());
    org.tick(70_000);
    assert_eq!(org.tables[t].modstamp(0), 10_000);
}

#[test]
fn formulas_are_computed_at_read_time() {
    let mut org = org();
    let acct = insert(&mut org, "Account", &[("Name", Value::Str("Parent Co".into()))], 0);
    let inv = insert(
        &mut org,
        "Invoice__c",
        &[
            ("Account__c", Value::Str(ids::make("001", acct).into())),
            ("Due_Date__c", Value::Date(100)),
            ("Amount__c", Value::Float(200.0)),
            ("Tax_Rate__c", Value::Float(10.0)),
        ],
        0,
    );
    let t = org.table_index("Invoice__c").unwrap();
    let row = org.tables[t].row_of_number(inv).unwrap();
    let col = |n: &str| org.tables[t].def.field_index(n).unwrap();
    assert_eq!(org.cell(t, row, col("Days_Overdue__c"), 110), Value::Float(10.0));
    assert_eq!(org.cell(t, row, col("Days_Overdue__c"), 111), Value::Float(11.0));
    assert_eq!(org.cell(t, row, col("Account_Name__c"), 0), Value::Str("Parent Co".into()));
    assert_eq!(org.cell(t, row, col("Total_With_Tax__c"), 0), Value::Float(20.0));
    assert_eq!(org.tables[t].stored(row, col("Name")), Value::Str("INV-000001".into()));
}

#[test]
fn users_cannot_be_deleted() {
    let mut org = org();
    let n = insert(&mut org, "User", &[("LastName", Value::Str("Ng".into()))], 0);
    let t = org.table_index("User").unwrap();
    let user = org.user_id.clone();
    assert_eq!(org.apply(&Change::Delete { table: t, number: n }, 0, &user), Err(ChangeError::NotDeletable));
}
