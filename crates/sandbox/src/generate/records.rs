//! The per-object generators: what a realistic Account, Contact, Opportunity, Lead,
//! Case, User and Invoice__c look like.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::words::*;
use super::{Ctx, DAY, company, description, domain, email_local, maybe, mix, phone, pick, s};
use crate::ids;
use crate::schema::objects::{
    ACCOUNT_TYPES, CASE_STATUSES, INDUSTRIES, INVOICE_STATUSES, INVOICE_TAGS, LEAD_SOURCES, LEAD_STATUSES, RATINGS,
    STAGES,
};
use crate::value::Value;

impl Ctx {
    pub(super) fn address(
        &self,
        r: &mut ChaCha8Rng,
        prefix: &str,
        custom: bool,
        set: &mut impl FnMut(&str, Value<'static>),
    ) {
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

    pub(super) fn account(&self, r: &mut ChaCha8Rng, number: u64, set: &mut impl FnMut(&str, Value<'static>)) {
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

    pub(super) fn person(&self, r: &mut ChaCha8Rng, set: &mut impl FnMut(&str, Value<'static>)) -> (String, String) {
        let (first, last) = (pick(r, FIRST).to_string(), pick(r, LAST).to_string());
        set("FirstName", s(first.clone()));
        set("LastName", s(last.clone()));
        set("Name", s(format!("{first} {last}")));
        (first, last)
    }

    pub(super) fn contact(&self, r: &mut ChaCha8Rng, set: &mut impl FnMut(&str, Value<'static>)) {
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

    pub(super) fn opportunity(&self, r: &mut ChaCha8Rng, created: i64, set: &mut impl FnMut(&str, Value<'static>)) {
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

    pub(super) fn lead(&self, r: &mut ChaCha8Rng, created: i64, set: &mut impl FnMut(&str, Value<'static>)) {
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

    pub(super) fn case(
        &self,
        r: &mut ChaCha8Rng,
        number: u64,
        created: i64,
        set: &mut impl FnMut(&str, Value<'static>),
    ) {
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

    pub(super) fn user_row(&self, r: &mut ChaCha8Rng, number: u64, set: &mut impl FnMut(&str, Value<'static>)) {
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

    pub(super) fn invoice(
        &self,
        r: &mut ChaCha8Rng,
        number: u64,
        created: i64,
        set: &mut impl FnMut(&str, Value<'static>),
    ) {
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
