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
    assert!(org.changes.is_empty(), "not captured before it commits");
    org.tick(70_000);
    assert_eq!(org.tables[t].modstamp(0), 10_000);
    // Captured when it commits, with its old stamp.
    let (all, _) = org.changes.after(0, 10, |_| true);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].commit_ms, 70_000);
    let modstamp = org.tables[t].sys.modstamp;
    assert!(all[0].values.contains(&(modstamp, Value::DateTime(10_000))));
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

#[test]
fn every_committed_write_is_captured_once_in_commit_order() {
    let mut org = org();
    let n =
        insert(&mut org, "Account", &[("Name", Value::Str("Acme".into())), ("Phone", Value::Str("1".into()))], 1_000);
    let t = org.table_index("Account").unwrap();
    let (name, phone) =
        (org.tables[t].def.field_index("Name").unwrap(), org.tables[t].def.field_index("Phone").unwrap());
    let user = org.user_id.clone();
    let update = vec![(name, Value::Str("Acme 2".into())), (phone, Value::Null)];
    org.apply(&Change::Update { table: t, number: n, values: update, system: false }, 2_000, &user).unwrap();
    // A write that fails is not captured.
    assert!(org.apply(&Change::Undelete { table: t, number: n }, 2_500, &user).is_err());
    org.apply(&Change::Delete { table: t, number: n }, 3_000, &user).unwrap();
    org.apply(&Change::Undelete { table: t, number: n }, 4_000, &user).unwrap();
    // Purging a record already in the recycle bin emits nothing; a hard delete of a live one does.
    org.apply(&Change::Delete { table: t, number: n }, 5_000, &user).unwrap();
    org.apply(&Change::Purge { table: t, number: n }, 6_000, &user).unwrap();

    let (all, _) = org.changes.after(0, 100, |_| true);
    let kinds: Vec<ChangeKind> = all.iter().map(|c| c.kind).collect();
    use ChangeKind::*;
    assert_eq!(kinds, [Create, Update, Delete, Undelete, Delete]);
    let id = ids::make("001", n);
    assert!(all.iter().all(|c| c.record == id && c.table == t && c.sequence == 1 && c.user == user));
    let replays: Vec<u64> = all.iter().map(|c| c.replay).collect();
    assert!(replays.windows(2).all(|w| w[1] > w[0] + 1), "increasing, never contiguous: {replays:?}");
    let keys: std::collections::BTreeSet<&str> = all.iter().map(|c| c.transaction.as_str()).collect();
    assert_eq!(keys.len(), all.len(), "one transaction each");

    let create = &all[0];
    assert!(create.values.contains(&(name, Value::Str("Acme".into()))));
    assert!(create.values.iter().all(|(_, v)| !v.is_null()), "a create carries the fields with a value");
    let update = &all[1];
    let changed: Vec<usize> = update.values.iter().map(|(c, _)| *c).collect();
    let sys = org.tables[t].sys;
    assert!(changed.contains(&name) && changed.contains(&phone) && changed.contains(&sys.modstamp));
    assert!(update.values.contains(&(phone, Value::Null)));
    assert_eq!(update.commit_ms, 2_000);
    assert!(all[2].values.is_empty() && all[4].values.is_empty());
    assert!(all[3].values.contains(&(name, Value::Str("Acme 2".into()))));
}

#[test]
fn changes_expire_after_the_retention() {
    let mut org = org();
    org.changes.retention_ms = 60_000;
    insert(&mut org, "Account", &[("Name", Value::Str("Old".into()))], 1_000);
    let first = org.changes.latest();
    insert(&mut org, "Account", &[("Name", Value::Str("New".into()))], 61_001);
    assert!(!org.changes.holds(first));
    assert_eq!(org.changes.len(), 1);
    assert!(org.changes.latest() > first);
    // Positioned at the expired change, a subscriber missed nothing: the change after it is
    // held. Positioned before it, it missed that change.
    assert!(!org.changes.missed_after(first));
    assert!(org.changes.missed_after(first - 1));
    assert!(!org.changes.missed_after(org.changes.latest()));
    // Passing over changes other topics want: the position still moves.
    let (none, examined) = org.changes.after(0, 10, |_| false);
    assert!(none.is_empty());
    assert_eq!(examined, org.changes.latest());
}
