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
use crate::schema::objects::{
    ACCOUNT_TYPES, CASE_STATUSES, INDUSTRIES, INVOICE_STATUSES, INVOICE_TAGS, LEAD_SOURCES, LEAD_STATUSES, RATINGS,
    STAGES,
};
use crate::store::Org;
use crate::value::{FieldType, Value};

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Karen",
    "Wei",
    "Priya",
    "Ahmed",
    "Sofia",
    "Hiroshi",
    "Chloé",
    "Mateo",
    "Aisha",
    "Lars",
    "Zoë",
    "Noah",
    "Emma",
    "Liam",
    "Olivia",
    "Lucas",
    "Amelia",
    "Mia",
    "Ethan",
    "Ava",
    "Daniel",
    "Grace",
    "Ren",
    "Fatima",
    "Omar",
    "Ingrid",
    "José",
    "Björn",
    "Nadia",
    "Tomás",
    "Anaïs",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "O'Brien",
    "Müller",
    "Nguyen",
    "Kim",
    "Patel",
    "Tanaka",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Johansson",
    "Novak",
    "Silva",
    "Cohen",
    "Singh",
    "Chen",
    "Okafor",
    "D'Angelo",
    "Fernández",
    "Ødegaard",
];
const COMPANY_A: &[&str] = &[
    "Blue",
    "Summit",
    "Pacific",
    "Northern",
    "Granite",
    "Silver",
    "Cedar",
    "Harbor",
    "Atlas",
    "Pioneer",
    "Evergreen",
    "Golden",
    "Redwood",
    "Union",
    "Global",
    "United",
    "Vertex",
    "Crescent",
    "Liberty",
    "Sterling",
];
const COMPANY_B: &[&str] = &[
    "Logistics",
    "Systems",
    "Foods",
    "Energy",
    "Health",
    "Media",
    "Capital",
    "Analytics",
    "Robotics",
    "Textiles",
    "Airlines",
    "Pharma",
    "Networks",
    "Motors",
    "Insurance",
    "Labs",
    "Foundry",
    "Outfitters",
];
const COMPANY_C: &[&str] = &["Inc.", "LLC", "Corp.", "Ltd.", "Group", "& Co.", "GmbH", "S.A.", "Holdings", ""];
const CITIES: &[(&str, &str, &str, f64, f64)] = &[
    ("San Francisco", "CA", "94105", 37.7897, -122.3942),
    ("New York", "NY", "10001", 40.7506, -73.9972),
    ("Austin", "TX", "78701", 30.2711, -97.7437),
    ("Chicago", "IL", "60601", 41.8858, -87.6229),
    ("Seattle", "WA", "98101", 47.6114, -122.3305),
    ("Boston", "MA", "02110", 42.3570, -71.0525),
    ("Denver", "CO", "80202", 39.7491, -104.9952),
    ("Atlanta", "GA", "30303", 33.7528, -84.3916),
    ("Miami", "FL", "33131", 25.7663, -80.1917),
    ("Portland", "OR", "97204", 45.5184, -122.6768),
    ("Phoenix", "AZ", "85004", 33.4519, -112.0686),
    ("Minneapolis", "MN", "55402", 44.9760, -93.2716),
];
const STREETS: &[&str] = &[
    "Market St",
    "Main St",
    "Oak Ave",
    "Pine St",
    "Maple Dr",
    "Cedar Ln",
    "Elm St",
    "Washington Blvd",
    "Lake Shore Dr",
    "Mission St",
    "Broadway",
    "Park Ave",
];
const TITLES: &[&str] = &[
    "CEO",
    "CFO",
    "VP Sales",
    "VP Engineering",
    "Director of Operations",
    "Procurement Manager",
    "IT Manager",
    "Account Executive",
    "Buyer",
    "Controller",
    "Head of Data",
    "Office Manager",
];
const DEPARTMENTS: &[&str] =
    &["Sales", "Finance", "Engineering", "Operations", "Procurement", "IT", "Marketing", "Legal"];
const SENTENCES: &[&str] = &[
    "Renewal discussed at the quarterly review.",
    "Prefers contact by e-mail, not phone.",
    "Key account, \"strategic\" per the 2024 plan.",
    "Asked for a quote on 500 units, delivery in Q3.",
    "Migrated from the legacy CRM; check duplicates.",
    "Billing address differs from shipping, see notes.",
    "Contract signed; onboarding started.\nNext check-in in 30 days.",
    "Réunion prévue à Paris — confirmer la date.",
    "Uses three warehouses: Reno, Tulsa, and Gary.",
    "Escalated twice; root cause was a firmware bug.",
];
const PRODUCTS: &[&str] =
    &["Platform", "Analytics Suite", "Support Plan", "Hardware Refresh", "Data Migration", "Training", "Integration"];
const CASE_SUBJECTS: &[&str] = &[
    "Cannot log in",
    "Invoice discrepancy",
    "Device overheating",
    "Feature request: export to CSV",
    "Shipment delayed",
    "Password reset not received",
    "Error 500 on checkout",
    "Wrong item delivered",
];

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

    fn address(&self, r: &mut ChaCha8Rng, prefix: &str, custom: bool, set: &mut impl FnMut(&str, Value<'static>)) {
        let name = |part: &str| if custom { format!("{prefix}__{part}__s") } else { format!("{prefix}{part}") };
        if r.random_bool(0.1) {
            return;
        }
        let (city, state, zip, lat, lon) = CITIES[r.random_range(0..CITIES.len())];
        let street = if r.random_bool(0.15) {
            format!("{} {}\nSuite {}", r.random_range(1..9_999), pick(r, STREETS), r.random_range(100..999))
        } else {
            format!("{} {}", r.random_range(1..9_999), pick(r, STREETS))
        };
        set(&name("Street"), s(street));
        set(&name("City"), s(city));
        set(&name("State"), s(state));
        set(&name("PostalCode"), s(zip));
        set(&name("Country"), s("United States"));
        if r.random_bool(0.6) {
            set(&name("Latitude"), Value::Float(((lat + r.random_range(-0.05..0.05)) * 1e6).round() / 1e6));
            set(&name("Longitude"), Value::Float(((lon + r.random_range(-0.05..0.05)) * 1e6).round() / 1e6));
            set(&name("GeocodeAccuracy"), s(pick(r, &["Address", "Street", "Zip"])));
        }
    }

    fn account(&self, r: &mut ChaCha8Rng, number: u64, set: &mut impl FnMut(&str, Value<'static>)) {
        let name = company(r);
        set("Type", s(pick(r, ACCOUNT_TYPES)));
        if number > 10 && r.random_bool(0.1) {
            set("ParentId", s(ids::make("001", r.random_range(1..number))));
        }
        self.address(r, "Billing", false, set);
        if r.random_bool(0.4) {
            self.address(r, "Shipping", false, set);
        }
        set("Phone", s(phone(r)));
        let fax = phone(r);
        set("Fax", maybe(0.3, s(fax), r));
        set("AccountNumber", s(format!("CD{:06}", number % 1_000_000)));
        set("Website", s(format!("https://www.{}", domain(&name))));
        let sic = r.random_range(1000..9999).to_string();
        set("Sic", s(sic));
        set("Industry", maybe(0.9, s(pick(r, INDUSTRIES)), r));
        let revenue = (10f64.powf(r.random_range(5.0..10.5)) / 1000.0).round() * 1000.0;
        set("AnnualRevenue", maybe(0.8, Value::Float(revenue), r));
        set("NumberOfEmployees", maybe(0.8, Value::Int(10i64.pow(r.random_range(1..5)) * r.random_range(1..9)), r));
        let ownership = pick(r, &["Public", "Private", "Subsidiary", "Other"]);
        set("Ownership", s(ownership));
        if ownership == "Public" {
            let ticker: String = name.chars().filter(char::is_ascii_uppercase).take(4).collect();
            set("TickerSymbol", s(ticker));
        }
        set("Description", description(r));
        set("Rating", maybe(0.7, s(pick(r, RATINGS)), r));
        set("Site", maybe(0.3, s(pick(r, &["Headquarters", "Branch", "Warehouse", "Plant"])), r));
        set(
            "LastActivityDate",
            maybe(0.5, Value::Date(crate::value::days_from_ms(self.anchor) - r.random_range(1..700)), r),
        );
        set("AccountSource", maybe(0.6, s(pick(r, LEAD_SOURCES)), r));
        set("SicDesc", maybe(0.3, s(pick(r, &["Wholesale", "Software", "Retail Trade", "Consulting"])), r));
        set("Name", s(name));
    }

    fn person(&self, r: &mut ChaCha8Rng, set: &mut impl FnMut(&str, Value<'static>)) -> (String, String) {
        let (first, last) = (pick(r, FIRST).to_string(), pick(r, LAST).to_string());
        set("FirstName", s(first.clone()));
        set("LastName", s(last.clone()));
        set("Name", s(format!("{first} {last}")));
        (first, last)
    }

    fn contact(&self, r: &mut ChaCha8Rng, set: &mut impl FnMut(&str, Value<'static>)) {
        if r.random_bool(0.95) {
            set("AccountId", self.id("001", self.accounts, r));
        }
        let (first, last) = self.person(r, set);
        set("Salutation", maybe(0.6, s(pick(r, &["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."])), r));
        self.address(r, "Mailing", false, set);
        set("Phone", s(phone(r)));
        let mobile = phone(r);
        set("MobilePhone", maybe(0.5, s(mobile), r));
        if self.contacts > 1 && r.random_bool(0.1) {
            set("ReportsToId", self.id("003", self.contacts, r));
        }
        let dom = domain(&company(r));
        set("Email", s(format!("{}@{dom}", email_local(&first, &last))));
        set("Title", s(pick(r, TITLES)));
        set("Department", maybe(0.7, s(pick(r, DEPARTMENTS)), r));
        set("LeadSource", maybe(0.6, s(pick(r, LEAD_SOURCES)), r));
        let birth = -r.random_range(0..12_000) + 5_000;
        set("Birthdate", maybe(0.3, Value::Date(birth), r));
        set("Description", description(r));
        set("HasOptedOutOfEmail", Value::Bool(r.random_bool(0.1)));
        set("DoNotCall", Value::Bool(r.random_bool(0.05)));
    }

    fn opportunity(&self, r: &mut ChaCha8Rng, created: i64, set: &mut impl FnMut(&str, Value<'static>)) {
        set("AccountId", self.id("001", self.accounts, r));
        set("IsPrivate", Value::Bool(r.random_bool(0.05)));
        set("Name", s(format!("{} - {}", company(r), pick(r, PRODUCTS))));
        set("Description", description(r));
        let (stage, prob) = STAGES[r.random_range(0..STAGES.len())];
        set("StageName", s(stage));
        set("Amount", maybe(0.9, Value::Float((r.random_range(1_000.0..500_000.0f64) * 100.0).round() / 100.0), r));
        set("Probability", Value::Float(f64::from(prob)));
        let close = crate::value::days_from_ms(created) + r.random_range(10..240);
        set("CloseDate", Value::Date(close));
        set(
            "Type",
            maybe(
                0.7,
                s(pick(r, &["Existing Customer - Upgrade", "New Customer", "Existing Customer - Replacement"])),
                r,
            ),
        );
        set(
            "NextStep",
            maybe(0.4, s(pick(r, &["Send proposal", "Schedule demo", "Legal review", "Follow up call"])), r),
        );
        set("LeadSource", maybe(0.6, s(pick(r, LEAD_SOURCES)), r));
        let closed = stage.starts_with("Closed");
        set("IsClosed", Value::Bool(closed));
        set("IsWon", Value::Bool(stage == "Closed Won"));
        set(
            "ForecastCategory",
            s(if stage == "Closed Won" {
                "Closed"
            } else if closed {
                "Omitted"
            } else {
                "Pipeline"
            }),
        );
        let date = crate::value::date_from_days(close);
        set("FiscalYear", Value::Int(i64::from(chrono::Datelike::year(&date))));
        set("FiscalQuarter", Value::Int(i64::from(chrono::Datelike::month0(&date) / 3 + 1)));
    }

    fn lead(&self, r: &mut ChaCha8Rng, created: i64, set: &mut impl FnMut(&str, Value<'static>)) {
        let (first, last) = self.person(r, set);
        set("Salutation", maybe(0.5, s(pick(r, &["Mr.", "Ms.", "Dr."])), r));
        set("Title", s(pick(r, TITLES)));
        let co = company(r);
        set("Email", s(format!("{}@{}", email_local(&first, &last), domain(&co))));
        set("Website", maybe(0.5, s(format!("https://{}", domain(&co))), r));
        set("Company", s(co));
        self.address(r, "", false, set);
        set("Phone", s(phone(r)));
        set("Description", description(r));
        set("LeadSource", s(pick(r, LEAD_SOURCES)));
        let status = pick(r, LEAD_STATUSES);
        set("Status", s(status));
        set("Industry", maybe(0.7, s(pick(r, INDUSTRIES)), r));
        set("Rating", maybe(0.5, s(pick(r, RATINGS)), r));
        set("AnnualRevenue", maybe(0.4, Value::Float((r.random_range(1e5..1e8f64) / 1000.0).round() * 1000.0), r));
        set("NumberOfEmployees", maybe(0.5, Value::Int(r.random_range(1..20_000)), r));
        if status == "Closed - Converted" {
            set("IsConverted", Value::Bool(true));
            set("ConvertedDate", Value::Date(crate::value::days_from_ms(created) + r.random_range(1..60)));
            set("ConvertedAccountId", self.id("001", self.accounts, r));
            set("ConvertedContactId", self.id("003", self.contacts, r));
        }
        set("IsUnreadByOwner", Value::Bool(r.random_bool(0.2)));
    }

    fn case(&self, r: &mut ChaCha8Rng, number: u64, created: i64, set: &mut impl FnMut(&str, Value<'static>)) {
        set("CaseNumber", s(format!("{number:08}")));
        set("ContactId", maybe(0.9, self.id("003", self.contacts, r), r));
        set("AccountId", maybe(0.9, self.id("001", self.accounts, r), r));
        set("SuppliedEmail", maybe(0.3, s(format!("{}@example.org", email_local(pick(r, FIRST), pick(r, LAST)))), r));
        set("Type", maybe(0.8, s(pick(r, &["Mechanical", "Electrical", "Electronic", "Structural", "Other"])), r));
        let status = pick(r, CASE_STATUSES);
        set("Status", s(status));
        set("Reason", maybe(0.7, s(pick(r, &["Installation", "Performance", "Breakdown", "Feedback", "Other"])), r));
        set("Origin", s(pick(r, &["Phone", "Email", "Web"])));
        set("Subject", s(pick(r, CASE_SUBJECTS)));
        set("Priority", s(pick(r, &["High", "Medium", "Low"])));
        set("Description", description(r));
        set("IsClosed", Value::Bool(status == "Closed"));
        if status == "Closed" {
            let closed = created + r.random_range(3_600_000..30 * DAY);
            set("ClosedDate", Value::DateTime(closed.min(self.anchor) - closed.min(self.anchor).rem_euclid(1000)));
        }
        set("IsEscalated", Value::Bool(status == "Escalated"));
    }

    fn user_row(&self, r: &mut ChaCha8Rng, number: u64, set: &mut impl FnMut(&str, Value<'static>)) {
        let (first, last) = if number == 1 {
            set("FirstName", s("Integration"));
            set("LastName", s("User"));
            set("Name", s("Integration User"));
            ("Integration".to_string(), "User".to_string())
        } else {
            self.person(r, set)
        };
        let username = if number == 1 {
            self.username.clone()
        } else {
            format!("{}{number}@sandbox.example.com", email_local(&first, &last))
        };
        set("Email", s(username.clone()));
        set("Username", s(username));
        set("CompanyName", s("Sandbox Org"));
        set("Department", s(pick(r, DEPARTMENTS)));
        set("Title", s(pick(r, TITLES)));
        set("Phone", s(phone(r)));
        let alias: String =
            first.chars().take(1).chain(last.chars().filter(char::is_ascii_alphabetic).take(4)).collect();
        set("Alias", s(alias.to_ascii_lowercase()));
        set("IsActive", Value::Bool(number == 1 || r.random_bool(0.9)));
        set("TimeZoneSidKey", s(pick(r, &["America/Los_Angeles", "America/New_York", "Europe/London"])));
        set("LocaleSidKey", s("en_US"));
        set("LanguageLocaleKey", s("en_US"));
        set("UserType", s("Standard"));
        if number > 1 {
            set("ManagerId", s(ids::make("005", r.random_range(1..number.min(self.users / 5 + 2)))));
        }
        set("LastLoginDate", maybe(0.8, Value::DateTime(self.anchor - r.random_range(1..90) * DAY), r));
    }

    fn invoice(&self, r: &mut ChaCha8Rng, number: u64, created: i64, set: &mut impl FnMut(&str, Value<'static>)) {
        set("Name", s(format!("INV-{number:06}")));
        set("Account__c", self.id("001", self.accounts, r));
        set("Opportunity__c", maybe(0.5, self.id("006", self.opportunities, r), r));
        let status = pick(r, INVOICE_STATUSES);
        set("Status__c", s(status));
        let mut tags: Vec<&str> = INVOICE_TAGS.iter().copied().filter(|_| r.random_bool(0.2)).collect();
        tags.truncate(3);
        set("Tags__c", if tags.is_empty() { Value::Null } else { s(tags.join(";")) });
        let channel = if r.random_bool(0.05) { "Fax, then post" } else { pick(r, &["Email", "Portal", "Post", "EDI"]) };
        set("Channel__c", s(channel));
        set("Amount__c", Value::Float((r.random_range(50.0..250_000.0f64) * 100.0).round() / 100.0));
        set("Tax_Rate__c", Value::Float(f64::from(r.random_range(0..2_500u32)) / 100.0));
        set("Discount__c", maybe(0.3, Value::Float(f64::from(r.random_range(0..10_000u32)) / 10_000.0), r));
        set("Line_Count__c", Value::Int(r.random_range(1..120)));
        set("Ledger_Sequence__c", Value::Int(5_000_000_000 + number as i64 * 7));
        let issued = crate::value::days_from_ms(created);
        set("Issued_On__c", Value::Date(issued));
        set("Due_Date__c", Value::Date(issued + 30));
        let paid = status == "Paid";
        set("Is_Paid__c", Value::Bool(paid));
        if paid {
            let at = created + r.random_range(DAY..40 * DAY);
            let at = at.min(self.anchor);
            set("Paid_At__c", Value::DateTime(at - at.rem_euclid(1000)));
        }
        set("Reminder_Time__c", maybe(0.5, Value::Time(r.random_range(0..96u32) * 900_000), r));
        let (first, last) = (pick(r, FIRST), pick(r, LAST));
        set("Billing_Email__c", s(format!("ap.{}@example.net", email_local(first, last))));
        set("Billing_Phone__c", s(phone(r)));
        set("Portal_Url__c", s(format!("https://billing.example.com/invoices/{number}")));
        set("Notes__c", description(r));
        if r.random_bool(0.3) {
            let terms: Vec<&str> = (0..r.random_range(3..12)).map(|_| pick(r, SENTENCES)).collect();
            set("Terms__c", s(terms.join("\n")));
        }
        set("Memo_Html__c", maybe(0.3, s(format!("<p>Thank you, <b>{first}</b>!</p>")), r));
        set(
            "Bank_Account__c",
            maybe(
                0.5,
                s(format!("DE89 3704 0044 {:04} {:04}", r.random_range(0..10_000), r.random_range(0..10_000))),
                r,
            ),
        );
        if r.random_bool(0.2) {
            use base64::Engine;
            let bytes: Vec<u8> = (0..r.random_range(16..96)).map(|_| r.random()).collect();
            set("Scan__c", s(base64::engine::general_purpose::STANDARD.encode(bytes)));
        }
        set("External_Key__c", s(format!("ERP-{:08X}", mix(self.seed ^ number) as u32)));
        self.address(r, "Remit_To", true, set);
        if r.random_bool(0.4) {
            let (_, _, _, lat, lon) = CITIES[r.random_range(0..CITIES.len())];
            set("Site_Location__Latitude__s", Value::Float(lat));
            set("Site_Location__Longitude__s", Value::Float(lon));
        }
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

#[cfg(test)]
mod tests {
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
            let (Value::DateTime(c), Value::DateTime(m)) = (created, t.stored(r, col("SystemModstamp"))) else {
                panic!()
            };
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
}
