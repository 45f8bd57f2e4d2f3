//! What a test asks of the fake: the object and records it serves ([`Script`]), how it
//! misbehaves ([`Misbehave`]), and what it records of each request ([`Recorded`]).

use serde_json::{Map, Value};

/// The access token the fake hands out and the only one it accepts.
pub const ACCESS_TOKEN: &str = "00DFAKE00000001!AQ4AQFakeSalesforceSessionToken";

/// What the fake serves and how it misbehaves.
#[derive(Debug, Clone)]
pub struct Script {
    /// API name of the one object served (describe, query, Bulk).
    pub object: String,
    /// The object's describe fields, in order (also the Bulk CSV columns).
    pub fields: Vec<Field>,
    /// Exactly what REST returns per record: values may be any JSON, malformed or not.
    /// `attributes` is added (first) when a record has none.
    pub records: Vec<Map<String, Value>>,
    /// REST records per page, and Bulk rows per results page unless `maxRecords` is smaller.
    pub page_size: usize,
    /// The misbehaviours, all off by default.
    pub misbehave: Misbehave,
}

/// One describe field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// API name.
    pub name: String,
    /// Describe `type`: `id`, `string`, `datetime`, `boolean`, `int`, `double`, …
    pub ty: String,
    /// Describe `filterable`.
    pub filterable: bool,
    /// Describe `nillable`.
    pub nillable: bool,
}

/// Scripted misbehaviours; [`Default`] turns them all off.
#[derive(Debug, Clone, Default)]
pub struct Misbehave {
    /// The REST listing reports `totalSize` = all records but says `done: true` after this
    /// many records.
    pub truncate_rest_after: Option<usize>,
    /// The Bulk job reports `numberRecordsProcessed` = all records, but the results end
    /// (`Sforce-Locator: null`) after this many rows; each page's `Sforce-NumberOfRecords`
    /// is truthful for that page.
    pub truncate_bulk_after: Option<usize>,
    /// Bulk job info leaves out `numberRecordsProcessed`.
    pub bulk_omit_processed: bool,
    /// Bulk jobs stay `InProgress` for ever (a PATCH to `Aborted` still works).
    pub bulk_stuck: bool,
    /// The first REST page of a listing says `done: false` with `nextRecordsUrl` = this
    /// absolute base + `/services/data/vXX.X/query/01gFAKE-<page end>` (another origin).
    pub foreign_next_url: Option<String>,
    /// The token response's `instance_url` (default: this server's own base URL).
    pub instance_url: Option<String>,
    /// These endpoints accept the request (after the session check) and never answer
    /// until shutdown.
    pub hang: Vec<Endpoint>,
}

/// An endpoint that can be told to hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /services/oauth2/token`.
    Login,
    /// `GET …/sobjects/{object}/describe`.
    Describe,
    /// `GET …/query`, `…/queryAll` and their next pages.
    Query,
    /// `POST …/jobs/query`.
    BulkCreate,
    /// `GET …/jobs/query/{id}`.
    BulkStatus,
    /// `GET …/jobs/query/{id}/results`.
    BulkResults,
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query string, as sent.
    pub path_and_query: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Host` header, if any.
    pub host: Option<String>,
}

impl Field {
    /// A filterable, nillable field.
    pub fn new(name: &str, ty: &str) -> Field {
        Field { name: name.into(), ty: ty.into(), filterable: true, nillable: true }
    }

    /// The same field, not nillable.
    pub fn required(self) -> Field {
        Field { nillable: false, ..self }
    }
}

impl Script {
    /// The default object and fields serving `records`, with no misbehaviour.
    pub fn with_records(records: Vec<Map<String, Value>>) -> Script {
        Script {
            object: "Widget__c".into(),
            fields: vec![
                Field::new("Id", "id").required(),
                Field::new("Name", "string"),
                Field::new("SystemModstamp", "datetime").required(),
                Field::new("IsDeleted", "boolean").required(),
                Field::new("Happened__c", "datetime"),
            ],
            records,
            page_size: 2,
            misbehave: Misbehave::default(),
        }
    }

    /// An ordinary record of the default fields: not deleted, `Happened__c` null.
    /// `stamp` is REST's datetime form, e.g. `2024-01-01T00:00:00.000+0000`. The server adds
    /// Salesforce's `attributes` (type and URL of the script's object) when it serves it.
    pub fn record(id: &str, name: &str, stamp: &str) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert("Id".into(), id.into());
        record.insert("Name".into(), name.into());
        record.insert("SystemModstamp".into(), stamp.into());
        record.insert("IsDeleted".into(), false.into());
        record.insert("Happened__c".into(), Value::Null);
        record
    }
}

impl Default for Script {
    /// `Widget__c` with five ordinary records (`a00FAKE00000000001` … `05`, stamped
    /// 2024-01-01 … 05 at midnight UTC), two per page.
    fn default() -> Script {
        Script::with_records(
            (1..=5)
                .map(|n| {
                    Script::record(
                        &format!("a00FAKE{n:011}"),
                        &format!("Widget {n}"),
                        &format!("2024-01-0{n}T00:00:00.000+0000"),
                    )
                })
                .collect(),
        )
    }
}
