//! sObject create / read / update / delete (reference §2.11, §6.3) with the server
//! clock's second-truncated stamps and Salesforce's validation errors, and the
//! replication resources `updated` / `deleted` (§2.7, §2.8).

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::common::{JSON_CT, Sandbox, V, assert_error, assert_json_ok, header, keys, read_json, rest_ms};

async fn send(
    sb: &Sandbox,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut r = sb.req(method, &sb.data(path));
    if let Some(b) = body {
        r = r.header("Content-Type", "application/json").body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

/// Creates a record; returns its Id.
pub async fn create(sb: &Sandbox, object: &str, body: Json) -> String {
    let (status, headers, text) = send(sb, Method::POST, &format!("/sobjects/{object}"), Some(&body.to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_json_ok(&headers);
    let body: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(keys(&body), ["id", "success", "errors"]);
    assert_eq!((&body["success"], &body["errors"]), (&json!(true), &json!([])));
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 18);
    assert_eq!(header(&headers, "location"), Some(format!("/services/data/{V}/sobjects/{object}/{id}").as_str()));
    id
}

fn truncated(now: &str) -> String {
    let ms = rest_ms(now);
    sandbox::value::format_datetime_rest(ms - ms.rem_euclid(1000))
}

#[tokio::test]
async fn create_read_update_delete_follow_the_server_clock() {
    let sb = Sandbox::start().await;
    let t0 = sb.clock(json!({"freeze": true, "advance_secs": 0.5})).await["now"].as_str().unwrap().to_string();
    let id =
        create(&sb, "Account", json!({"Name": "Conformance Co", "Industry": "Banking", "NumberOfEmployees": 12})).await;
    assert!(id.starts_with("001"));
    let (status, headers, rec) = sb.get_json(&format!("/sobjects/Account/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_json_ok(&headers);
    let (_, _, describe) = sb.get_json("/sobjects/Account/describe").await;
    let names: Vec<&str> = describe["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    let mut want = vec!["attributes"];
    want.extend(&names);
    assert_eq!(keys(&rec), want, "a record GET carries every field in describe order");
    assert_eq!(
        rec["attributes"],
        json!({"type": "Account", "url": format!("/services/data/{V}/sobjects/Account/{id}")})
    );
    assert_eq!((rec["Id"].as_str(), rec["Name"].as_str()), (Some(&*id), Some("Conformance Co")));
    assert_eq!((&rec["NumberOfEmployees"], &rec["IsDeleted"], &rec["Phone"]), (&json!(12), &json!(false), &Json::Null));
    let user = sb.running.state.org.read().user_id.clone();
    assert_eq!((rec["OwnerId"].as_str(), rec["CreatedById"].as_str()), (Some(&*user), Some(&*user)));
    for k in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        assert_eq!(rec[k], truncated(&t0), "{k}");
    }
    assert!(rec["CreatedDate"].as_str().unwrap().ends_with(".000+0000"));

    // 15-character Ids are accepted; responses carry 18.
    let (status, _, by15) = sb.get_json(&format!("/sobjects/Account/{}", &id[..15])).await;
    assert_eq!((status, &by15["Id"]), (StatusCode::OK, &json!(id)));
    let q15 = format!("SELECT Id FROM Account WHERE Id = '{}'", &id[..15]);
    assert_eq!(sb.query(&q15).await["records"][0]["Id"], id.as_str());
    let (status, _, only) = sb.get_json(&format!("/sobjects/Account/{id}?fields=Name,industry")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&only["Name"], &only["Industry"]), (&json!("Conformance Co"), &json!("Banking")));
    assert!(keys(&only).iter().all(|k| ["attributes", "Id", "Name", "Industry"].contains(k)), "{only}");
    let (status, headers, body) = sb.get_json(&format!("/sobjects/Account/{id}?fields=Name,Nope")).await;
    assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_FIELD");

    let t1 = sb.advance(7.25).await;
    let (status, _, text) = send(
        &sb,
        Method::PATCH,
        &format!("/sobjects/Account/{id}"),
        Some(r#"{"Industry":"Energy","Phone":"(415) 555-0100"}"#),
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::NO_CONTENT, ""));
    let (_, _, rec) = sb.get_json(&format!("/sobjects/Account/{id}")).await;
    assert_eq!((&rec["Industry"], &rec["Phone"]), (&json!("Energy"), &json!("(415) 555-0100")));
    assert_eq!(rec["SystemModstamp"], truncated(&t1));
    assert_eq!(rec["LastModifiedDate"], truncated(&t1));
    assert_eq!(rec["CreatedDate"], truncated(&t0));
    // Setting a field to null clears it.
    let (status, _, _) = send(&sb, Method::PATCH, &format!("/sobjects/Account/{id}"), Some(r#"{"Phone":null}"#)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sb.get_json(&format!("/sobjects/Account/{id}")).await.2["Phone"], Json::Null);

    let t2 = sb.advance(3.0).await;
    let (status, _, text) = send(&sb, Method::DELETE, &format!("/sobjects/Account/{id}"), None).await;
    assert_eq!((status, text.as_str()), (StatusCode::NO_CONTENT, ""));
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then_some(r#"{"Name":"x"}"#);
        let (status, headers, text) = send(&sb, method.clone(), &format!("/sobjects/Account/{id}"), body).await;
        let body: Json = serde_json::from_str(&text).unwrap();
        let msg = assert_error(status, &headers, &body, StatusCode::NOT_FOUND, "ENTITY_IS_DELETED");
        assert_eq!(msg, "entity is deleted", "{method}");
    }
    let q = format!("SELECT Id, IsDeleted, SystemModstamp FROM Account WHERE Id = '{id}'");
    let (_, _, page) = sb.soql("queryAll", &q, None).await;
    let rec = &page["records"][0];
    assert_eq!((&rec["IsDeleted"], &rec["SystemModstamp"]), (&json!(true), &json!(truncated(&t2))));
    assert_eq!(sb.query(&q).await["totalSize"], 0);
    // A well-formed Id that names nothing.
    let (status, headers, body) = sb.get_json("/sobjects/Account/001000000099999AAA").await;
    assert_error(status, &headers, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn users_cannot_be_deleted() {
    let sb = Sandbox::start().await;
    let user = sb.running.state.org.read().user_id.clone();
    let (status, headers, text) = send(&sb, Method::DELETE, &format!("/sobjects/User/{user}"), None).await;
    let body: Json = serde_json::from_str(&text).unwrap();
    let msg = assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_TYPE_FOR_OPERATION");
    assert_eq!(msg, "entity type cannot be deleted");
    assert_eq!(sb.get_json(&format!("/sobjects/User/{user}")).await.0, StatusCode::OK);
}

/// Posts a body that must fail; returns the error array.
async fn rejected(sb: &Sandbox, method: Method, path: &str, body: &str) -> Vec<Json> {
    let (status, headers, text) = send(sb, method, path, Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
    assert_eq!(header(&headers, "content-type"), Some(JSON_CT));
    serde_json::from_str::<Json>(&text).unwrap().as_array().unwrap().clone()
}

#[tokio::test]
async fn validation_errors_name_their_fields() {
    let sb = Sandbox::start().await;
    let one = |errors: &[Json], code: &str, message: &str, fields: Json| {
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(keys(&errors[0]), ["message", "errorCode", "fields"]);
        assert_eq!(errors[0], json!({"message": message, "errorCode": code, "fields": fields}));
    };
    let errs = rejected(&sb, Method::POST, "/sobjects/Contact", r#"{"FirstName":"Ada"}"#).await;
    one(&errs, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", json!(["LastName"]));
    let errs =
        rejected(&sb, Method::POST, "/sobjects/Account", r#"{"Name":"x","CreatedDate":"2024-01-01T00:00:00Z"}"#).await;
    assert_eq!(errs[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(errs[0]["fields"], json!(["CreatedDate"]));
    let errs = rejected(&sb, Method::POST, "/sobjects/Contact", r#"{"LastName":"x","AccountId":"not-an-id"}"#).await;
    one(&errs, "MALFORMED_ID", "Account ID: id value of incorrect type: not-an-id", json!(["AccountId"]));
    let long = "n".repeat(256);
    let errs = rejected(&sb, Method::POST, "/sobjects/Account", &json!({"Name": long}).to_string()).await;
    assert_eq!((errs[0]["errorCode"].as_str(), &errs[0]["fields"]), (Some("STRING_TOO_LONG"), &json!(["Name"])));
    assert!(errs[0]["message"].as_str().unwrap().contains("(max length=255)"));
    let errs = rejected(&sb, Method::POST, "/sobjects/Account", r#"{"Name":"x","NumberOfEmployees":"many"}"#).await;
    assert_eq!(
        (errs[0]["errorCode"].as_str(), &errs[0]["fields"]),
        (Some("JSON_PARSER_ERROR"), &json!(["NumberOfEmployees"]))
    );
    let errs = rejected(&sb, Method::POST, "/sobjects/Account", r#"{"Name":"x","Nope__c":1}"#).await;
    assert_eq!((errs[0]["errorCode"].as_str(), &errs[0]["fields"]), (Some("INVALID_FIELD"), &json!(["Nope__c"])));
    for bad in ["{not json", "[1,2]", ""] {
        let errs = rejected(&sb, Method::POST, "/sobjects/Account", bad).await;
        assert_eq!((errs.len(), errs[0]["errorCode"].as_str()), (1, Some("JSON_PARSER_ERROR")), "{bad}");
        assert_eq!(keys(&errs[0]), ["message", "errorCode"]);
    }
    // Every problem of one body at once.
    let errs = rejected(
        &sb,
        Method::POST,
        "/sobjects/Contact",
        &json!({"Title": "t".repeat(200), "Email": "nope"}).to_string(),
    )
    .await;
    let mut codes: Vec<&str> = errs.iter().map(|e| e["errorCode"].as_str().unwrap()).collect();
    codes.sort();
    assert_eq!(codes, ["INVALID_EMAIL_ADDRESS", "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG"]);
    // Updates are validated too, and nothing is written.
    let id = create(&sb, "Account", json!({"Name": "Valid"})).await;
    let errs = rejected(
        &sb,
        Method::PATCH,
        &format!("/sobjects/Account/{id}"),
        r#"{"Name":null,"SystemModstamp":"2024-01-01T00:00:00Z"}"#,
    )
    .await;
    let codes: Vec<&str> = errs.iter().map(|e| e["errorCode"].as_str().unwrap()).collect();
    assert_eq!(codes, ["REQUIRED_FIELD_MISSING", "INVALID_FIELD_FOR_INSERT_UPDATE"]);
    assert_eq!(sb.get_json(&format!("/sobjects/Account/{id}")).await.2["Name"], "Valid");
    let (status, headers, body) =
        read_json(sb.req(Method::POST, &sb.data("/sobjects/Nope__c")).json(&json!({})).send().await.unwrap()).await;
    assert_error(status, &headers, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
}

fn minute(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

#[tokio::test]
async fn updated_and_deleted_cover_a_window() {
    let sb = Sandbox::start().await;
    let now = rest_ms(&sb.freeze().await);
    let created = create(&sb, "Account", json!({"Name": "Fresh"})).await;
    let doomed = create(&sb, "Account", json!({"Name": "Doomed"})).await;
    sb.advance(2.0).await;
    let (status, _, _) = send(&sb, Method::DELETE, &format!("/sobjects/Account/{doomed}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (start, end) = (now - 120_000, now + 120_000);
    let range = |p: &str| format!("/sobjects/Account/{p}?start={}&end={}", urlenc(&iso(start)), urlenc(&iso(end)));

    let (status, headers, body) = sb.get_json(&range("updated")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_json_ok(&headers);
    assert_eq!(keys(&body), ["ids", "latestDateCovered"]);
    let covered = minute(rest_ms(sb.clock(json!({})).await["now"].as_str().unwrap()));
    assert_eq!(body["latestDateCovered"], sandbox::value::format_datetime_rest(covered.min(minute(end))));
    let ids: Vec<&str> = body["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let truth = sb.truth("Account").await;
    let mut want: Vec<&str> = truth
        .iter()
        .filter(|r| r["IsDeleted"] == false)
        .filter(|r| (minute(start)..minute(end)).contains(&rest_ms(r["SystemModstamp"].as_str().unwrap())))
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    let mut got = ids.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(ids.contains(&created.as_str()) && !ids.contains(&doomed.as_str()));

    let (status, _, body) = sb.get_json(&range("deleted")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(keys(&body), ["deletedRecords", "earliestDateAvailable", "latestDateCovered"]);
    let deleted = body["deletedRecords"].as_array().unwrap();
    let mine: Vec<&Json> = deleted.iter().filter(|d| d["id"] == doomed.as_str()).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(keys(mine[0]), ["id", "deletedDate"]);
    let stamp = &truth.iter().find(|r| r["Id"] == doomed.as_str()).unwrap()["SystemModstamp"];
    assert_eq!(&mine[0]["deletedDate"], stamp);
    assert!(rest_ms(body["earliestDateAvailable"].as_str().unwrap()) <= now - 14 * 86_400_000);

    // Seconds are truncated: a start late in the record's minute still covers it.
    let late_start = minute(now) + 59_000;
    let url = format!("/sobjects/Account/updated?start={}&end={}", urlenc(&iso(late_start)), urlenc(&iso(end)));
    let body = sb.get_json(&url).await.2;
    assert!(body["ids"].as_array().unwrap().contains(&json!(created)), "{body}");

    // Bad ranges.
    let day = 86_400_000;
    for (path, s, e) in [
        ("updated", now, now - 60_000),
        ("updated", now, now),
        ("updated", now - 31 * day, now),
        ("deleted", now - 16 * day, now),
        ("deleted", now + 60_000, now),
    ] {
        let url = format!("/sobjects/Account/{path}?start={}&end={}", urlenc(&iso(s)), urlenc(&iso(e)));
        let (status, headers, body) = sb.get_json(&url).await;
        assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE");
    }
    let (status, headers, body) = sb.get_json("/sobjects/Account/updated?start=yesterday&end=today").await;
    assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE");
}

/// Percent-encodes a query parameter value.
pub fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
