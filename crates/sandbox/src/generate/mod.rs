//! Deterministic, realistic records for a new org.
//!
//! Row `n` of an object is a pure function of (seed, object, n, anchor): each row has
//! its own RNG, so changing one object's count leaves every other object's data as it
//! was, and references are computed from record numbers (Contact → Account #17)
//! without looking anything up. Timestamps spread over the six years before the
//! anchor (midnight UTC of the day the org starts), skewed to recent years as a
//! growing org's are; a fifth of rows arrive in bulk loads whose 200 rows share one
//! `SystemModstamp`; about 1 % of rows sit in the recycle bin, deleted in the last
//! ten days. Text includes commas, quotes, line breaks and non-ASCII letters so
//! every client's CSV and JSON handling is exercised.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ids;
use crate::schema::ObjectDef;
use crate::store::Org;
use crate::value::{FieldType, Value};

mod records;
#[cfg(test)]
mod tests;
mod words;

use words::*;

/// How many records of each object a new org holds.
pub type Counts = Vec<(String, u64)>;

/// The counts used when `--records` is not given.
pub fn default_counts() -> Counts {
    [
        ("Account", 1_000),
        ("Contact", 2_000),
        ("Opportunity", 1_500),
        ("Lead", 500),
        ("Case", 800),
        ("User", 50),
        ("Invoice__c", 2_000),
    ]
    .into_iter()
    .map(|(o, n)| (o.to_string(), n))
    .collect()
}

const DAY: i64 = 86_400_000;
const ORG_AGE: i64 = 6 * 365 * DAY;

/// Fills `org` with `counts` records per object. `username` becomes User #1, the
/// integration user every API call runs as.
pub fn populate(org: &mut Org, counts: &Counts, seed: u64, anchor_ms: i64, username: &str) {
    let count_of = |name: &str| counts.iter().find(|(o, _)| o == name).map_or(0, |(_, n)| *n);
    let ctx = Ctx {
        seed,
        anchor: anchor_ms,
        accounts: count_of("Account"),
        contacts: count_of("Contact"),
        opportunities: count_of("Opportunity"),
        users: count_of("User").max(1),
        username: username.to_string(),
    };
    // Objects are independent, so generate them on separate threads.
    std::thread::scope(|scope| {
        for table in org.tables.iter_mut() {
            let n = count_of(&table.def.name);
            let ctx = &ctx;
            scope.spawn(move || {
                table.reserve(n as usize);
                let slots = Slots::new(&table.def);
                for number in 1..=n {
                    let mut row = vec![Value::Null; table.def.fields.len()];
                    let deleted = ctx.row(&table.def, &slots, number, &mut row);
                    let r = table.push_row(number, &row);
                    if let Some(at) = deleted {
                        table.deleted_at[r as usize] = at;
                    }
                }
                for _ in 0..n {
                    table.allocate_auto_number();
                }
            });
        }
    });
    org.rebuild_recycle_bin();
}

/// One generated row (every field, describe order) for record `number` of `table`;
/// references point into the org as it is now. Churn inserts and updates use it.
pub fn row_for(org: &Org, table: usize, number: u64, seed: u64, anchor_ms: i64) -> Vec<Value<'static>> {
    let len = |n: &str| org.table(n).map_or(0, |t| t.len() as u64);
    let ctx = Ctx {
        seed,
        anchor: anchor_ms,
        accounts: len("Account"),
        contacts: len("Contact"),
        opportunities: len("Opportunity"),
        users: len("User").max(1),
        username: format!("user{number}@sandbox.example.com"),
    };
    let def = &org.tables[table].def;
    let mut row = vec![Value::Null; def.fields.len()];
    ctx.row(def, &Slots::new(def), number, &mut row);
    row
}

struct Slots(HashMap<String, usize>);

impl Slots {
    fn new(def: &ObjectDef) -> Self {
        Slots(def.fields.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect())
    }
}

struct Ctx {
    seed: u64,
    anchor: i64,
    accounts: u64,
    contacts: u64,
    opportunities: u64,
    users: u64,
    username: String,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: spreads (seed, object, number) over the RNG's seed space.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn object_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn s(v: impl Into<String>) -> Value<'static> {
    Value::Str(v.into().into())
}

fn maybe(p: f64, v: Value<'static>, rng: &mut ChaCha8Rng) -> Value<'static> {
    if rng.random_bool(p) { v } else { Value::Null }
}

fn phone(rng: &mut ChaCha8Rng) -> String {
    format!("({}) 555-{:04}", rng.random_range(201..990), rng.random_range(0..10_000))
}

fn company(rng: &mut ChaCha8Rng) -> String {
    let c = pick(rng, COMPANY_C);
    let name = format!("{} {}", pick(rng, COMPANY_A), pick(rng, COMPANY_B));
    if c.is_empty() { name } else { format!("{name} {c}") }
}

fn domain(company: &str) -> String {
    let base: String =
        company.split_whitespace().take(2).collect::<String>().chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{}.example.com", base.to_ascii_lowercase())
}

fn email_local(first: &str, last: &str) -> String {
    let clean = |s: &str| s.chars().filter(char::is_ascii_alphabetic).collect::<String>().to_ascii_lowercase();
    format!("{}.{}", clean(first), clean(last))
}

fn description(rng: &mut ChaCha8Rng) -> Value<'static> {
    match rng.random_range(0..10) {
        0..=5 => Value::Null,
        6..=8 => s(pick(rng, SENTENCES)),
        _ => s(format!("{} {}", pick(rng, SENTENCES), pick(rng, SENTENCES))),
    }
}

impl Ctx {
    fn rng(&self, object: &str, number: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(mix(self.seed ^ object_hash(object) ^ mix(number)))
    }

    fn id(&self, prefix: &str, max: u64, rng: &mut ChaCha8Rng) -> Value<'static> {
        if max == 0 { Value::Null } else { s(ids::make(prefix, rng.random_range(1..=max))) }
    }

    fn user(&self, rng: &mut ChaCha8Rng) -> Value<'static> {
        self.id("005", self.users, rng)
    }

    /// Created / last-modified / modstamp, and a deletion time for recycle-bin rows.
    fn times(&self, object: &str, number: u64, rng: &mut ChaCha8Rng) -> (i64, i64, i64, Option<i64>) {
        let block = number / 200;
        let mut brng = self.rng(object, u64::MAX - block);
        let age = |u: f64| (ORG_AGE as f64 * u * u) as i64;
        let created = if brng.random_bool(0.2) {
            self.anchor - DAY - age(brng.random::<f64>())
        } else {
            self.anchor - DAY - age(rng.random::<f64>())
        };
        let created = created - created.rem_euclid(1000);
        let mut modified = created;
        if rng.random_bool(0.7) {
            let span = (self.anchor - created) as f64;
            modified = self.anchor - (span * rng.random::<f64>().powi(2)) as i64;
        }
        let mut modstamp = modified;
        if rng.random_bool(0.1) {
            modstamp += ((self.anchor - modified) as f64 * rng.random::<f64>()) as i64;
        }
        let truncate = |t: i64| t - t.rem_euclid(1000);
        let (modified, mut modstamp) = (truncate(modified), truncate(modstamp));
        let deleted = (object != "User" && rng.random_bool(0.01)).then(|| {
            let at = truncate(self.anchor - rng.random_range(0..10 * DAY));
            modstamp = at.max(modstamp);
            modstamp
        });
        (created, modified.min(modstamp), modstamp, deleted)
    }

    fn row(&self, def: &ObjectDef, slots: &Slots, number: u64, row: &mut [Value<'static>]) -> Option<i64> {
        let mut rng = self.rng(&def.name, number);
        let (created, modified, modstamp, deleted) = self.times(&def.name, number, &mut rng);
        let mut set = |name: &str, v: Value<'static>| {
            if let Some(&i) = slots.0.get(name) {
                row[i] = v;
            }
        };
        set("Id", s(ids::make(&def.key_prefix, number)));
        set("IsDeleted", Value::Bool(deleted.is_some()));
        set("CreatedDate", Value::DateTime(created));
        set("LastModifiedDate", Value::DateTime(modified));
        set("SystemModstamp", Value::DateTime(modstamp));
        let creator = self.user(&mut rng);
        set("CreatedById", creator.clone());
        set("LastModifiedById", if rng.random_bool(0.5) { creator } else { self.user(&mut rng) });
        set("OwnerId", self.user(&mut rng));
        let r = &mut rng;
        match def.name.as_str() {
            "Account" => self.account(r, number, &mut set),
            "Contact" => self.contact(r, &mut set),
            "Opportunity" => self.opportunity(r, created, &mut set),
            "Lead" => self.lead(r, created, &mut set),
            "Case" => self.case(r, number, created, &mut set),
            "User" => self.user_row(r, number, &mut set),
            "Invoice__c" => self.invoice(r, number, created, &mut set),
            _ => {}
        }
        // Every boolean is non-null, as on Salesforce.
        for (i, f) in def.fields.iter().enumerate() {
            if f.ty == FieldType::Boolean && row[i].is_null() && !f.calculated() {
                row[i] = Value::Bool(false);
            }
        }
        deleted
    }
}

/// Parses `Account=100000,Contact=50000`.
pub fn parse_counts(spec: &str) -> Result<Counts, String> {
    spec.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (name, n) =
                pair.split_once('=').ok_or_else(|| format!("`{pair}` is not OBJECT=COUNT (e.g. Account=100000)"))?;
            let n: u64 =
                n.trim().replace('_', "").parse().map_err(|_| format!("`{n}` in `{pair}` is not a whole number"))?;
            Ok((name.trim().to_string(), n))
        })
        .collect()
}
