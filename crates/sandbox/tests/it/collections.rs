//! sObject Collections (`/composite/sobjects`, API 42.0+), which jsforce uses for every
//! multi-record create / retrieve / update / destroy: one result per record in request
//! order, 200 even when records fail, `allOrNone` rolling everything back. Also the
//! admin truth dump under gzip, as Python's requests asks for it by default.

use std::io::Read;

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::common::{Sandbox, assert_json_ok, header};

async fn call(sb: &Sandbox, method: Method, path: &str, body: Option<Json>) -> (StatusCode, Json) {
    let mut r = sb.req(method, &sb.data(path));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    assert_json_ok(resp.headers());
    (status, resp.json().await.unwrap())
}

async fn truth_row(sb: &Sandbox, object: &str, id: &str) -> serde_json::Map<String, Json> {
    let mut rows: Vec<_> = sb.truth(object).await.into_iter().filter(|r| r["Id"] == id).collect();
    assert_eq!(rows.len(), 1, "{id} once in the {object} truth");
    rows.remove(0)
}

#[tokio::test]
async fn collections_create_retrieve_update_delete() {
    let sb = Sandbox::start().await;
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "LastName": "Coll \"One\", Inc", "DoNotCall": true},
        {"attributes": {"type": "Account"}, "Name": "Coll Two"},
        {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
        {"attributes": {"type": "Nope__c"}, "Name": "x"},
    ]});
    let (status, res) = call(&sb, Method::POST, "/composite/sobjects", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let res = res.as_array().unwrap();
    assert_eq!(res.len(), 4);
    let c1 = res[0]["id"].as_str().unwrap().to_string();
    let a2 = res[1]["id"].as_str().unwrap().to_string();
    assert!(c1.starts_with("003") && a2.starts_with("001"));
    assert_eq!(res[0], json!({"id": c1, "success": true, "errors": []}));
    assert_eq!(res[2]["success"], json!(false));
    assert!(res[2].get("id").is_none());
    assert_eq!(res[2]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(res[2]["errors"][0]["fields"], json!(["LastName"]));
    assert_eq!(res[3]["errors"][0]["statusCode"], "INVALID_TYPE");
    let row = truth_row(&sb, "Contact", &c1).await;
    assert_eq!(
        (&row["LastName"], &row["DoNotCall"], &row["IsDeleted"]),
        (&json!("Coll \"One\", Inc"), &json!(true), &json!(false))
    );
    assert_eq!(truth_row(&sb, "Account", &a2).await["Name"], "Coll Two");

    // Retrieve: records in id order, null for an id that is not there.
    let missing = sandbox::ids::make("003", 999_999);
    let (status, got) = call(
        &sb,
        Method::POST,
        "/composite/sobjects/Contact",
        Some(json!({"ids": [c1, missing], "fields": ["Id", "LastName"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got[0]["LastName"], "Coll \"One\", Inc");
    assert_eq!(got[0]["attributes"]["type"], "Contact");
    assert_eq!(got[1], Json::Null);
    let (_, by_get) =
        call(&sb, Method::GET, &format!("/composite/sobjects/Contact?ids={c1}&fields=Id,LastName"), None).await;
    assert_eq!(by_get[0], got[0]);

    // Update: the id travels in the record.
    let body = json!({"records": [
        {"attributes": {"type": "Contact"}, "id": c1, "Title": "CTO", "DoNotCall": false},
        {"attributes": {"type": "Account"}, "Id": a2, "NumberOfEmployees": 42},
    ]});
    let (status, res) = call(&sb, Method::PATCH, "/composite/sobjects", Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res, json!([{"id": c1, "success": true, "errors": []}, {"id": a2, "success": true, "errors": []}]));
    let row = truth_row(&sb, "Contact", &c1).await;
    assert_eq!((&row["Title"], &row["DoNotCall"]), (&json!("CTO"), &json!(false)));
    assert_eq!(truth_row(&sb, "Account", &a2).await["NumberOfEmployees"], 42);

    // Delete: ids of several objects; a second delete reports the recycle bin.
    let path = format!("/composite/sobjects?ids={c1},{a2}");
    let (status, res) = call(&sb, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res, json!([{"id": c1, "success": true, "errors": []}, {"id": a2, "success": true, "errors": []}]));
    assert_eq!(truth_row(&sb, "Contact", &c1).await["IsDeleted"], true);
    assert_eq!(truth_row(&sb, "Account", &a2).await["IsDeleted"], true);
    let (_, res) = call(&sb, Method::DELETE, &path, None).await;
    assert_eq!(res[0]["success"], false);
    assert_eq!(res[0]["errors"][0]["statusCode"], "ENTITY_IS_DELETED");
}

#[tokio::test]
async fn collections_all_or_none_writes_nothing_on_any_failure() {
    let sb = Sandbox::start().await;
    let before = sb.truth("Contact").await.len();
    let body = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Contact"}, "LastName": "Valid"},
        {"attributes": {"type": "Contact"}, "Email": "not an email"},
    ]});
    let (status, res) = call(&sb, Method::POST, "/composite/sobjects", Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res[0]["success"], false);
    assert_eq!(res[0]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    assert_eq!(res[1]["success"], false);
    assert_eq!(sb.truth("Contact").await.len(), before, "nothing was inserted");

    let live: Vec<String> = sb
        .truth("Contact")
        .await
        .into_iter()
        .filter(|r| r["IsDeleted"] == false)
        .take(2)
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect();
    let bogus = sandbox::ids::make("003", 999_999);
    let (_, res) =
        call(&sb, Method::DELETE, &format!("/composite/sobjects?ids={},{bogus}&allOrNone=true", live[0]), None).await;
    assert_eq!(res[0]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    assert_eq!(res[1]["errors"][0]["statusCode"], "MALFORMED_ID");
    assert_eq!(truth_row(&sb, "Contact", &live[0]).await["IsDeleted"], false);

    // More than 200 records is a malformed request.
    let many: Vec<Json> =
        (0..201).map(|i| json!({"attributes": {"type": "Contact"}, "LastName": format!("N{i}")})).collect();
    let (status, res) = call(&sb, Method::POST, "/composite/sobjects", Some(json!({"records": many}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(res[0]["errorCode"], "EXCEEDED_ID_LIMIT");
}

#[tokio::test]
async fn truth_dump_survives_gzip() {
    let sb = Sandbox::start().await;
    let plain = sb.http.get(sb.url("/sandbox/v1/truth/Account")).send().await.unwrap().text().await.unwrap();
    let resp = sb.http.get(sb.url("/sandbox/v1/truth/Account")).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(resp.headers(), "content-encoding"), Some("gzip"));
    let bytes = resp.bytes().await.expect("the gzip body ends cleanly");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut unzipped).unwrap();
    assert_eq!(unzipped, plain);
    assert_eq!(plain.lines().count(), 300);
    // Fields come in describe order (`Id` first), not shuffled by dropping `attributes`.
    assert!(plain.starts_with("{\"Id\":"), "{}", &plain[..80]);
}
