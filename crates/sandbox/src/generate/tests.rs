//! Tests of the generator: determinism, independence of counts, plausible rows.

use super::*;
use crate::schema::objects;

fn org(seed: u64, counts: &Counts) -> Org {
    let mut org = Org::new(objects::all(), 15 * DAY);
    populate(&mut org, counts, seed, 1_750_000_000_000, "admin@sandbox.example.com");
    org
}

fn dump(org: &Org, object: &str) -> Vec<String> {
    let t = org.table(object).unwrap();
    (0..t.len() as u32)
        .map(|r| (0..t.def.fields.len()).map(|c| format!("{:?}", t.stored(r, c))).collect::<Vec<_>>().join("|"))
        .collect()
}

#[test]
fn same_seed_same_data_and_counts_are_independent() {
    let a = org(7, &default_counts());
    let b = org(7, &default_counts());
    assert_eq!(dump(&a, "Invoice__c"), dump(&b, "Invoice__c"));
    let mut more = default_counts();
    more.retain(|(o, _)| o != "Lead");
    more.push(("Lead".into(), 900));
    let c = org(7, &more);
    assert_eq!(dump(&a, "Contact"), dump(&c, "Contact"));
    assert_ne!(dump(&a, "Contact"), dump(&org(8, &default_counts()), "Contact"));
}

#[test]
fn rows_are_plausible() {
    let org = org(1, &default_counts());
    let t = org.table("Contact").unwrap();
    let acct = org.table("Account").unwrap();
    let col = |n: &str| t.def.field_index(n).unwrap();
    let mut with_account = 0;
    for r in 0..t.len() as u32 {
        assert!(matches!(t.stored(r, col("LastName")), Value::Str(_)));
        if let Value::Str(id) = t.stored(r, col("AccountId")) {
            assert!(acct.row_of_id(&id).is_some(), "dangling {id}");
            with_account += 1;
        }
        let created = t.stored(r, col("CreatedDate"));
        let (Value::DateTime(c), Value::DateTime(m)) = (created, t.stored(r, col("SystemModstamp"))) else { panic!() };
        assert!(c <= m && m < 1_750_000_000_000 && c % 1000 == 0);
    }
    assert!(with_account > t.len() * 9 / 10);
    assert!(org.recycle_bin_len() > 0, "some rows start in the recycle bin");
    let user = org.table("User").unwrap();
    assert_eq!(
        user.stored(0, user.def.field_index("Username").unwrap()),
        Value::Str("admin@sandbox.example.com".into())
    );
}

#[test]
fn counts_parse_with_clear_errors() {
    assert_eq!(
        parse_counts("Account=100_000,Contact=5").unwrap(),
        vec![("Account".into(), 100_000), ("Contact".into(), 5)]
    );
    assert!(parse_counts("Account").unwrap_err().contains("OBJECT=COUNT"));
    assert!(parse_counts("Account=x").unwrap_err().contains("whole number"));
}
