//! The objects the sandbox org holds: Account, Contact, Opportunity, Lead, Case, User
//! and the custom `Invoice__c`, which carries every field type Salesforce has.
//!
//! Field names, types, picklists and relationships follow the standard objects of a
//! real org (a subset of their fields); the picklist values are Salesforce's defaults.

use super::{FieldDef, Formula, ObjectDef};
use crate::value::FieldType::{self, *};

fn f(name: &str, ty: FieldType) -> FieldDef {
    FieldDef::new(name, ty)
}

/// `Id`, and `IsDeleted` unless the object has no recycle bin.
fn head(recycle_bin: bool) -> Vec<FieldDef> {
    let mut v = vec![f("Id", Id).system().label("Record ID")];
    if recycle_bin {
        v.push(f("IsDeleted", Boolean).system().label("Deleted"));
    }
    v
}

/// The audit fields every object ends with.
fn audit() -> Vec<FieldDef> {
    vec![
        f("CreatedDate", DateTime).system().label("Created Date"),
        f("CreatedById", Reference).system().refs("User", "CreatedBy").label("Created By ID"),
        f("LastModifiedDate", DateTime).system().label("Last Modified Date"),
        f("LastModifiedById", Reference).system().refs("User", "LastModifiedBy").label("Last Modified By ID"),
        f("SystemModstamp", DateTime).system().label("System Modstamp"),
    ]
}

fn owner() -> FieldDef {
    f("OwnerId", Reference).required().refs("User", "Owner").label("Owner ID")
}

/// Street/City/State/PostalCode/Country/Latitude/Longitude/GeocodeAccuracy + the compound.
fn address(prefix: &str, custom: bool) -> Vec<FieldDef> {
    let name =
        |s: &str| -> std::string::String { if custom { format!("{prefix}__{s}__s") } else { format!("{prefix}{s}") } };
    let compound = if custom {
        format!("{prefix}__c")
    } else if prefix.is_empty() {
        "Address".to_string()
    } else {
        format!("{prefix}Address")
    };
    vec![
        f(&name("Street"), Textarea).part_of(&compound),
        f(&name("City"), String).len(40).part_of(&compound),
        f(&name("State"), String).len(80).part_of(&compound),
        f(&name("PostalCode"), String).len(20).part_of(&compound),
        f(&name("Country"), String).len(80).part_of(&compound),
        f(&name("Latitude"), Double).num(18, 15).part_of(&compound),
        f(&name("Longitude"), Double).num(18, 15).part_of(&compound),
        f(&name("GeocodeAccuracy"), Picklist).values(GEOCODE_ACCURACY).part_of(&compound),
        f(&compound, Address).readonly(),
    ]
}

const GEOCODE_ACCURACY: &[&str] = &[
    "Address",
    "NearAddress",
    "Block",
    "Street",
    "ExtendedZip",
    "Zip",
    "Neighborhood",
    "City",
    "County",
    "State",
    "Unknown",
];

/// Salesforce's default Industry picklist.
pub const INDUSTRIES: &[&str] = &[
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
];
/// Account.Type values.
pub const ACCOUNT_TYPES: &[&str] = &[
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
];
/// Lead source values shared by Account, Contact, Lead and Opportunity.
pub const LEAD_SOURCES: &[&str] = &["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"];
/// Rating values.
pub const RATINGS: &[&str] = &["Hot", "Warm", "Cold"];
/// Opportunity stages, in pipeline order, with their probability.
pub const STAGES: &[(&str, u32)] = &[
    ("Prospecting", 10),
    ("Qualification", 10),
    ("Needs Analysis", 20),
    ("Value Proposition", 50),
    ("Id. Decision Makers", 60),
    ("Perception Analysis", 70),
    ("Proposal/Price Quote", 75),
    ("Negotiation/Review", 90),
    ("Closed Won", 100),
    ("Closed Lost", 0),
];
/// Lead.Status values.
pub const LEAD_STATUSES: &[&str] =
    &["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"];
/// Case.Status values.
pub const CASE_STATUSES: &[&str] = &["New", "Working", "Escalated", "Closed"];
/// Invoice__c.Status__c values.
pub const INVOICE_STATUSES: &[&str] = &["Draft", "Sent", "Paid", "Overdue", "Void"];
/// Invoice__c.Tags__c values (multi-select).
pub const INVOICE_TAGS: &[&str] = &["Priority", "Recurring", "Disputed", "Partner", "Export", "Tax Exempt"];

fn account() -> ObjectDef {
    let mut fields = head(true);
    fields.extend([
        f("MasterRecordId", Reference).readonly().refs("Account", "MasterRecord"),
        f("Name", String).required().name_field().label("Account Name"),
        f("Type", Picklist).values(ACCOUNT_TYPES).label("Account Type"),
        f("ParentId", Reference).refs("Account", "Parent").label("Parent Account ID"),
    ]);
    fields.extend(address("Billing", false));
    fields.extend(address("Shipping", false));
    fields.extend([
        f("Phone", Phone).label("Account Phone"),
        f("Fax", Phone).label("Account Fax"),
        f("AccountNumber", String).len(40),
        f("Website", Url),
        f("Sic", String).len(20).label("SIC Code"),
        f("Industry", Picklist).values(INDUSTRIES),
        f("AnnualRevenue", Currency).num(18, 0),
        f("NumberOfEmployees", Int).digits(8).label("Employees"),
        f("Ownership", Picklist).values(&["Public", "Private", "Subsidiary", "Other"]),
        f("TickerSymbol", String).len(20),
        f("Description", Textarea).len(32_000).label("Account Description"),
        f("Rating", Picklist).values(RATINGS).label("Account Rating"),
        f("Site", String).len(80).label("Account Site"),
        owner(),
    ]);
    fields.extend(audit());
    fields.extend([
        f("LastActivityDate", Date).readonly(),
        f("AccountSource", Picklist).values(LEAD_SOURCES),
        f("SicDesc", String).len(80).label("SIC Description"),
    ]);
    obj("Account", "Accounts", "001", fields)
}

fn contact() -> ObjectDef {
    let mut fields = head(true);
    fields.extend([
        f("MasterRecordId", Reference).readonly().refs("Contact", "MasterRecord"),
        f("AccountId", Reference).refs("Account", "Account").label("Account ID"),
        f("LastName", String).len(80).required(),
        f("FirstName", String).len(40),
        f("Salutation", Picklist).values(&["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."]),
        f("Name", String).len(121).readonly().required().name_field().label("Full Name"),
    ]);
    fields.extend(address("Mailing", false));
    fields.extend([
        f("Phone", Phone).label("Business Phone"),
        f("MobilePhone", Phone),
        f("ReportsToId", Reference).refs("Contact", "ReportsTo").label("Reports To ID"),
        f("Email", Email),
        f("Title", String).len(128),
        f("Department", String).len(80),
        f("LeadSource", Picklist).values(LEAD_SOURCES),
        f("Birthdate", Date),
        f("Description", Textarea).len(32_000).label("Contact Description"),
        owner(),
        f("HasOptedOutOfEmail", Boolean).label("Email Opt Out"),
        f("DoNotCall", Boolean),
    ]);
    fields.extend(audit());
    fields.push(f("LastActivityDate", Date).readonly());
    obj("Contact", "Contacts", "003", fields)
}

fn opportunity() -> ObjectDef {
    let stages: Vec<&str> = STAGES.iter().map(|(s, _)| *s).collect();
    let mut fields = head(true);
    fields.extend([
        f("AccountId", Reference).refs("Account", "Account").label("Account ID"),
        f("IsPrivate", Boolean).label("Private"),
        f("Name", String).len(120).required().name_field(),
        f("Description", Textarea).len(32_000),
        f("StageName", Picklist).values(&stages).required().label("Stage"),
        f("Amount", Currency).num(18, 2),
        f("Probability", Percent).num(3, 0).label("Probability (%)"),
        f("ExpectedRevenue", Currency)
            .num(18, 2)
            .formula(Formula::Product { a: "Amount".into(), b: "Probability".into(), divisor: 100.0 })
            .label("Expected Amount"),
        f("CloseDate", Date).required(),
        f("Type", Picklist)
            .values(&[
                "Existing Customer - Upgrade",
                "Existing Customer - Replacement",
                "Existing Customer - Downgrade",
                "New Customer",
            ])
            .label("Opportunity Type"),
        f("NextStep", String).len(255),
        f("LeadSource", Picklist).values(LEAD_SOURCES),
        f("IsClosed", Boolean).readonly().label("Closed"),
        f("IsWon", Boolean).readonly().label("Won"),
        f("ForecastCategory", Picklist)
            .values(&["Omitted", "Pipeline", "BestCase", "MostLikely", "Forecast", "Closed"])
            .readonly(),
        owner(),
    ]);
    fields.extend(audit());
    fields.extend([
        f("LastActivityDate", Date).readonly(),
        f("FiscalQuarter", Int).readonly(),
        f("FiscalYear", Int).readonly(),
    ]);
    obj("Opportunity", "Opportunities", "006", fields)
}

fn lead() -> ObjectDef {
    let mut fields = head(true);
    fields.extend([
        f("MasterRecordId", Reference).readonly().refs("Lead", "MasterRecord"),
        f("LastName", String).len(80).required(),
        f("FirstName", String).len(40),
        f("Salutation", Picklist).values(&["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."]),
        f("Name", String).len(121).readonly().required().name_field().label("Full Name"),
        f("Title", String).len(128),
        f("Company", String).len(255).required(),
    ]);
    fields.extend(address("", false));
    fields.extend([
        f("Phone", Phone),
        f("MobilePhone", Phone),
        f("Email", Email),
        f("Website", Url),
        f("Description", Textarea).len(32_000),
        f("LeadSource", Picklist).values(LEAD_SOURCES),
        f("Status", Picklist).values(LEAD_STATUSES).required(),
        f("Industry", Picklist).values(INDUSTRIES),
        f("Rating", Picklist).values(RATINGS),
        f("AnnualRevenue", Currency).num(18, 0),
        f("NumberOfEmployees", Int).digits(8).label("Employees"),
        owner(),
        f("IsConverted", Boolean).label("Converted"),
        f("ConvertedDate", Date).readonly(),
        f("ConvertedAccountId", Reference).readonly().refs("Account", "ConvertedAccount"),
        f("ConvertedContactId", Reference).readonly().refs("Contact", "ConvertedContact"),
        f("IsUnreadByOwner", Boolean).label("Unread By Owner"),
    ]);
    fields.extend(audit());
    obj("Lead", "Leads", "00Q", fields)
}

fn case() -> ObjectDef {
    let mut fields = head(true);
    fields.extend([
        f("MasterRecordId", Reference).readonly().refs("Case", "MasterRecord"),
        f("CaseNumber", String).len(30).auto_number().name_field(),
        f("ContactId", Reference).refs("Contact", "Contact").label("Contact ID"),
        f("AccountId", Reference).refs("Account", "Account").label("Account ID"),
        f("SuppliedEmail", Email).label("Web Email"),
        f("Type", Picklist)
            .values(&["Mechanical", "Electrical", "Electronic", "Structural", "Other"])
            .label("Case Type"),
        f("Status", Picklist).values(CASE_STATUSES),
        f("Reason", Picklist)
            .values(&[
                "Installation",
                "Equipment Complexity",
                "Performance",
                "Breakdown",
                "Equipment Design",
                "Feedback",
                "Other",
            ])
            .label("Case Reason"),
        f("Origin", Picklist).values(&["Phone", "Email", "Web"]).label("Case Origin"),
        f("Subject", String).len(255),
        f("Priority", Picklist).values(&["High", "Medium", "Low"]),
        f("Description", Textarea).len(32_000),
        f("IsClosed", Boolean).readonly().label("Closed"),
        f("ClosedDate", DateTime).readonly().label("Closed Date"),
        f("IsEscalated", Boolean).label("Escalated"),
        owner(),
    ]);
    fields.extend(audit());
    obj("Case", "Cases", "500", fields)
}

fn user() -> ObjectDef {
    // Users cannot be deleted, so User has no IsDeleted field: a real org's shape that
    // replication must handle.
    let mut fields = head(false);
    fields.extend([
        f("Username", String).len(80).required().external_id(),
        f("LastName", String).len(80).required(),
        f("FirstName", String).len(40),
        f("Name", String).len(121).readonly().required().name_field().label("Full Name"),
        f("CompanyName", String).len(80),
        f("Department", String).len(80),
        f("Title", String).len(80),
        f("Email", Email).len(128).required(),
        f("Phone", Phone),
        f("Alias", String).len(8).required(),
        f("IsActive", Boolean).label("Active"),
        f("TimeZoneSidKey", Picklist)
            .values(&["America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Paris", "Asia/Tokyo"])
            .required()
            .label("Time Zone"),
        f("LocaleSidKey", Picklist).values(&["en_US", "en_GB", "fr_FR", "de_DE", "ja_JP"]).required().label("Locale"),
        f("LanguageLocaleKey", Picklist).values(&["en_US", "fr", "de", "ja"]).required().label("Language"),
        f("UserType", Picklist).values(&["Standard", "PowerPartner", "CspLitePortal"]).readonly(),
        f("ManagerId", Reference).refs("User", "Manager").label("Manager ID"),
        f("LastLoginDate", DateTime).readonly(),
    ]);
    fields.extend(audit());
    let mut o = obj("User", "Users", "005", fields);
    o.deletable = false;
    o
}

fn invoice() -> ObjectDef {
    let mut fields = head(true);
    fields.extend([owner(), f("Name", String).len(80).auto_number().name_field().label("Invoice Number")]);
    fields.extend(audit());
    fields.extend([
        f("LastActivityDate", Date).readonly(),
        f("Account__c", Reference).required().refs("Account", "Account__r").label("Account"),
        f("Opportunity__c", Reference).refs("Opportunity", "Opportunity__r").label("Opportunity"),
        f("Status__c", Picklist).values(INVOICE_STATUSES).label("Status"),
        f("Tags__c", Multipicklist).values(INVOICE_TAGS).label("Tags"),
        f("Channel__c", Combobox).values(&["Email", "Portal", "Post", "EDI"]).label("Channel"),
        f("Amount__c", Currency).num(16, 2).label("Amount"),
        f("Tax_Rate__c", Percent).num(5, 2).label("Tax Rate"),
        f("Discount__c", Double).num(18, 4).label("Discount"),
        f("Line_Count__c", Int).label("Line Count"),
        f("Ledger_Sequence__c", Long).label("Ledger Sequence"),
        f("Issued_On__c", Date).label("Issued On"),
        f("Due_Date__c", Date).label("Due Date"),
        f("Paid_At__c", DateTime).label("Paid At"),
        f("Reminder_Time__c", Time).label("Reminder Time"),
        f("Is_Paid__c", Boolean).label("Paid"),
        f("Billing_Email__c", Email).label("Billing Email"),
        f("Billing_Phone__c", Phone).label("Billing Phone"),
        f("Portal_Url__c", Url).label("Portal URL"),
        f("Notes__c", Textarea).label("Notes"),
        f("Terms__c", Textarea).len(32_768).label("Terms"),
        f("Memo_Html__c", Textarea).len(32_768).extra("richtextarea").label("Memo"),
        f("Bank_Account__c", EncryptedString).len(30).label("Bank Account"),
        f("Scan__c", Base64).label("Scan"),
        f("External_Key__c", String).len(40).external_id().label("External Key"),
    ]);
    fields.extend(address("Remit_To", true));
    fields.extend([
        f("Site_Location__Latitude__s", Double).num(9, 6).part_of("Site_Location__c"),
        f("Site_Location__Longitude__s", Double).num(9, 6).part_of("Site_Location__c"),
        f("Site_Location__c", Location).readonly().label("Site Location"),
        f("Days_Overdue__c", Double)
            .num(18, 0)
            .formula(Formula::DaysSince { date: "Due_Date__c".into(), unless: "Is_Paid__c".into() })
            .label("Days Overdue"),
        f("Account_Name__c", String)
            .len(1300)
            .formula(Formula::ParentField { reference: "Account__c".into(), field: "Name".into() })
            .label("Account Name"),
        f("Total_With_Tax__c", Currency)
            .num(18, 2)
            .formula(Formula::Product { a: "Amount__c".into(), b: "Tax_Rate__c".into(), divisor: 100.0 })
            .label("Tax Amount"),
    ]);
    let mut o = obj("Invoice__c", "Invoices", "a0X", fields);
    o.custom = true;
    o.label = "Invoice".into();
    o
}

fn obj(name: &str, plural: &str, prefix: &str, mut fields: Vec<FieldDef>) -> ObjectDef {
    for fd in &mut fields {
        if fd.ty == FieldType::Currency || fd.ty == FieldType::Percent || fd.ty == FieldType::Double {
            fd.groupable = false;
        }
        if fd.ty == FieldType::EncryptedString {
            fd.mask = Some("lastFour".into());
            fd.filterable = false;
            fd.sortable = false;
            fd.groupable = false;
        }
    }
    ObjectDef {
        name: name.to_string(),
        label: name.to_string(),
        label_plural: plural.to_string(),
        key_prefix: prefix.to_string(),
        custom: false,
        deletable: true,
        fields,
    }
}

/// Every object of a new org, in describeGlobal order.
pub fn all() -> Vec<ObjectDef> {
    vec![account(), case(), contact(), invoice(), lead(), opportunity(), user()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_is_about_forty_fields() {
        let a = account();
        assert!((40..=55).contains(&a.fields.len()), "{}", a.fields.len());
        assert!(a.field_index("BillingAddress").is_some());
        assert_eq!(
            a.fields[a.field_index("BillingCity").unwrap()].compound_field_name.as_deref(),
            Some("BillingAddress")
        );
    }

    #[test]
    fn invoice_uses_every_field_type() {
        let inv = invoice();
        for ty in FieldType::ALL {
            assert!(inv.fields.iter().any(|f| f.ty == ty), "missing {ty:?}");
        }
        assert!(inv.fields.iter().any(|f| f.formula.is_some()));
    }

    #[test]
    fn names_are_unique_and_prefixes_distinct() {
        let objects = all();
        let mut prefixes: Vec<_> = objects.iter().map(|o| o.key_prefix.clone()).collect();
        prefixes.dedup();
        assert_eq!(prefixes.len(), objects.len());
        for o in &objects {
            let mut names: Vec<_> = o.fields.iter().map(|f| f.name.to_lowercase()).collect();
            names.sort();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "duplicate field on {}", o.name);
        }
    }
}
