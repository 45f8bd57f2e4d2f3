//! Bulk API 2.0 query jobs (reference §3): job info shapes, the state machine, result
//! paging with `maxRecords` / `Sforce-Locator`, CSV conventions (header on every page,
//! null = empty field, `…000Z` datetimes, delimiters, CRLF, gzip), the 409 on a version
//! mismatch, refused queries, abort / delete / list, and CSV rows equal to the truth.

use std::collections::HashMap;
use std::io::Read as _;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value as Json, json};

use crate::common::{JSON_CT, Sandbox, V, assert_json_ok, header, keys, limit_info, read_json};

/// Job-info keys of the create response, in Salesforce's order.
pub const CREATE_KEYS: [&str; 12] = [
    "id",
    "operation",
    "object",
    "createdById",
    "createdDate",
    "systemModstamp",
    "state",
    "concurrencyMode",
    "contentType",
    "apiVersion",
    "lineEnding",
    "columnDelimiter",
];
/// Job-info keys of `GET /jobs/query/{id}`, in Salesforce's order.
pub const INFO_KEYS: [&str; 17] = [
    "id",
    "operation",
    "object",
    "createdById",
    "createdDate",
    "systemModstamp",
    "state",
    "concurrencyMode",
    "contentType",
    "apiVersion",
    "jobType",
    "lineEnding",
    "columnDelimiter",
    "numberRecordsProcessed",
    "retries",
    "totalProcessingTime",
    "isPkChunkingSupported",
];

/// Creates a job; returns (status, raw body text, parsed body).
pub async fn create_job(sb: &Sandbox, body: Json) -> (StatusCode, HeaderMap, String, Json) {
    let resp = sb.req(Method::POST, &sb.data("/jobs/query")).json(&body).send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Json::Null);
    (status, headers, text, json)
}

/// Creates a job that must be accepted; returns its id.
pub async fn start_job(sb: &Sandbox, body: Json) -> String {
    let (status, headers, text, info) = create_job(sb, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_json_ok(&headers);
    assert_eq!(keys(&info), CREATE_KEYS);
    info["id"].as_str().unwrap().to_string()
}

/// Job info.
pub async fn job(sb: &Sandbox, id: &str) -> Json {
    let (status, headers, body) = sb.get_json(&format!("/jobs/query/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_json_ok(&headers);
    body
}

/// Polls until the job leaves `UploadComplete` / `InProgress`.
pub async fn wait(sb: &Sandbox, id: &str) -> Json {
    for _ in 0..500 {
        let info = job(sb, id).await;
        if !["UploadComplete", "InProgress"].contains(&info["state"].as_str().unwrap()) {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not finish");
}

/// A Bulk error body: `[{"errorCode","message"}]`, in that order. Returns the message.
pub fn bulk_error(status: StatusCode, headers: &HeaderMap, body: &Json, want: StatusCode, code: &str) -> String {
    assert_eq!(status, want, "{body}");
    assert_eq!(header(headers, "content-type"), Some(JSON_CT));
    let errors = body.as_array().unwrap_or_else(|| panic!("not an array: {body}"));
    assert_eq!(errors.len(), 1);
    assert_eq!(keys(&errors[0]), ["errorCode", "message"], "{body}");
    assert_eq!(errors[0]["errorCode"], code, "{body}");
    errors[0]["message"].as_str().unwrap().to_string()
}

/// Parses CSV; an empty unquoted field is `None`, a quoted one `Some`.
pub fn parse_csv(text: &str, delim: char, eol: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (cell, after) = if let Some(q) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let end = loop {
                let (i, c) = chars.next().expect("unterminated quote");
                if c == '"' {
                    if q[i + 1..].starts_with('"') {
                        value.push('"');
                        chars.next();
                    } else {
                        break i + 1;
                    }
                } else {
                    value.push(c);
                }
            };
            (Some(value), &q[end..])
        } else {
            let end = rest.find([delim, '\r', '\n']).unwrap_or(rest.len());
            let raw = &rest[..end];
            assert!(!raw.contains('"'), "stray quote in {raw:?}");
            ((!raw.is_empty()).then(|| raw.to_string()), &rest[end..])
        };
        row.push(cell);
        if let Some(next) = after.strip_prefix(delim) {
            rest = next;
        } else if let Some(next) = after.strip_prefix(eol) {
            rows.push(std::mem::take(&mut row));
            rest = next;
        } else {
            assert!(after.is_empty(), "bad separator at {:?}", &after[..after.len().min(10)]);
            rows.push(std::mem::take(&mut row));
            rest = after;
        }
    }
    rows
}

/// One results page: status, headers, body text.
async fn page(sb: &Sandbox, version: &str, id: &str, params: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
    let url = format!("{}/services/data/{version}/jobs/query/{id}/results", sb.base);
    let resp = sb.req(Method::GET, &url).query(params).header("Accept", "text/csv").send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

/// Every page of a result with `maxRecords`; checks the paging headers.
async fn all_pages(
    sb: &Sandbox,
    id: &str,
    max: usize,
    delim: char,
    eol: &str,
) -> (Vec<Option<String>>, Vec<Vec<Option<String>>>) {
    let mut locator: Option<String> = None;
    let mut header_row = None;
    let mut rows = Vec::new();
    let mut seen = Vec::new();
    loop {
        let max_s = max.to_string();
        let mut params = vec![("maxRecords", max_s.as_str())];
        if let Some(l) = &locator {
            params.push(("locator", l));
        }
        let (status, headers, text) = page(sb, V, id, &params).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(header(&headers, "content-type"), Some("text/csv"));
        limit_info(&headers);
        let n: usize = header(&headers, "sforce-numberofrecords").unwrap().parse().unwrap();
        let mut parsed = parse_csv(&text, delim, eol);
        let head = parsed.remove(0);
        assert_eq!(*header_row.get_or_insert_with(|| head.clone()), head, "every page starts with the header");
        assert_eq!(parsed.len(), n);
        rows.extend(parsed);
        let next = header(&headers, "sforce-locator").expect("Sforce-Locator is always present").to_string();
        if next == "null" {
            assert!(n <= max);
            break;
        }
        assert_eq!(n, max);
        assert!(!next.is_empty() && !next.chars().all(|c| c.is_ascii_digit()), "locator {next} should be opaque");
        assert!(!seen.contains(&next));
        seen.push(next.clone());
        locator = Some(next);
    }
    (header_row.unwrap(), rows)
}

/// The CSV cell Salesforce writes for a REST JSON value of a field of type `ty`.
fn csv_cell(v: &Json, ty: &str) -> Option<String> {
    match v {
        Json::Null => None,
        Json::Bool(b) => Some(b.to_string()),
        Json::String(s) if ty == "datetime" => Some(s.replace("+0000", "Z")),
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
            _ => n.to_string(),
        }),
        other => panic!("no CSV form for {other}"),
    }
}

async fn types(sb: &Sandbox, object: &str) -> HashMap<String, String> {
    let d = sb.get_json(&format!("/sobjects/{object}/describe")).await.2;
    d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().into(), f["type"].as_str().unwrap().into()))
        .collect()
}

#[tokio::test]
async fn a_job_runs_to_completion_and_pages_its_result() {
    let sb = Sandbox::start().await;
    let q = "SELECT Id, Name, Owner.Name, CreatedDate, AnnualRevenue, NumberOfEmployees, Website FROM Account";
    let (status, headers, text, info) = create_job(&sb, json!({"operation": "query", "query": q})).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_json_ok(&headers);
    assert_eq!(keys(&info), CREATE_KEYS);
    assert!(text.contains("\"apiVersion\":62.0"), "apiVersion is a JSON number: {text}");
    let id = info["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("750") && id.len() == 18);
    let user = sb.running.state.org.read().user_id.clone();
    assert_eq!(
        (&info["operation"], &info["object"], &info["createdById"], &info["state"]),
        (&json!("query"), &json!("Account"), &json!(user), &json!("UploadComplete"))
    );
    assert_eq!((&info["concurrencyMode"], &info["contentType"]), (&json!("Parallel"), &json!("CSV")));
    assert_eq!((&info["lineEnding"], &info["columnDelimiter"]), (&json!("LF"), &json!("COMMA")));
    assert!(info["createdDate"].as_str().unwrap().ends_with(".000+0000"));

    let done = wait(&sb, &id).await;
    assert_eq!(keys(&done), INFO_KEYS);
    assert_eq!(
        (&done["state"], &done["jobType"], &done["retries"]),
        (&json!("JobComplete"), &json!("V2Query"), &json!(0))
    );
    assert_eq!(done["apiVersion"].as_f64(), Some(62.0));
    let truth = sb.truth("Account").await;
    let live: Vec<&Map<String, Json>> = truth.iter().filter(|r| r["IsDeleted"] == false).collect();
    assert_eq!(done["numberRecordsProcessed"], live.len());

    let (head, rows) = all_pages(&sb, &id, 70, ',', "\n").await;
    let head: Vec<&str> = head.iter().map(|h| h.as_deref().unwrap()).collect();
    assert_eq!(head, ["Id", "Name", "Owner.Name", "CreatedDate", "AnnualRevenue", "NumberOfEmployees", "Website"]);
    assert_eq!(rows.len(), live.len());
    let users: HashMap<String, Json> =
        sb.truth("User").await.iter().map(|u| (u["Id"].as_str().unwrap().to_string(), u["Name"].clone())).collect();
    let ty = types(&sb, "Account").await;
    let mut empty = 0;
    for (row, t) in rows.iter().zip(&live) {
        let owner = &users[t["OwnerId"].as_str().unwrap()];
        let want = vec![
            csv_cell(&t["Id"], "id"),
            csv_cell(&t["Name"], "string"),
            csv_cell(owner, "string"),
            csv_cell(&t["CreatedDate"], "datetime"),
            csv_cell(&t["AnnualRevenue"], &ty["AnnualRevenue"]),
            csv_cell(&t["NumberOfEmployees"], &ty["NumberOfEmployees"]),
            csv_cell(&t["Website"], "url"),
        ];
        assert_eq!(row, &want);
        assert!(row[3].as_deref().unwrap().ends_with(".000Z"));
        empty += row.iter().filter(|c| c.is_none()).count();
    }
    assert!(empty > 0, "some nulls are empty fields");

    // Pages are stable; the locator may be reused; a bad locator or maxRecords is refused.
    let (_, h1, p1) = page(&sb, V, &id, &[("maxRecords", "70")]).await;
    let loc = header(&h1, "sforce-locator").unwrap().to_string();
    let (_, _, p2a) = page(&sb, V, &id, &[("maxRecords", "70"), ("locator", &loc)]).await;
    let (_, _, p2b) = page(&sb, V, &id, &[("maxRecords", "70"), ("locator", &loc)]).await;
    assert_eq!(p2a, p2b);
    assert_ne!(p1, p2a);
    let (_, headers, whole) = page(&sb, V, &id, &[]).await;
    assert_eq!(header(&headers, "sforce-locator"), Some("null"));
    assert_eq!(header(&headers, "sforce-numberofrecords"), Some(live.len().to_string().as_str()));
    assert_eq!(parse_csv(&whole, ',', "\n").len(), live.len() + 1);
    for params in [[("locator", "%%%")], [("locator", "bm90YW51bWJlcg")], [("maxRecords", "0")], [("maxRecords", "x")]]
    {
        let (status, headers, text) = page(&sb, V, &id, &params).await;
        let body: Json = serde_json::from_str(&text).unwrap();
        bulk_error(status, &headers, &body, StatusCode::BAD_REQUEST, body[0]["errorCode"].as_str().unwrap());
    }
    // Results at another API version: 409.
    let (status, headers, text) = page(&sb, "v61.0", &id, &[]).await;
    bulk_error(status, &headers, &serde_json::from_str(&text).unwrap(), StatusCode::CONFLICT, "API_ERROR");
}

#[tokio::test]
async fn query_all_csv_rows_equal_the_truth_for_every_simple_type() {
    let sb = Sandbox::start().await;
    let ty = types(&sb, "Invoice__c").await;
    let d = sb.get_json("/sobjects/Invoice__c/describe").await.2;
    let fields: Vec<&str> = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !["address", "location", "base64"].contains(&f["type"].as_str().unwrap()))
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let q = format!("SELECT {} FROM Invoice__c", fields.join(", "));
    let truth = sb.truth("Invoice__c").await;
    assert!(truth.iter().any(|r| r["IsDeleted"] == true), "the seed leaves rows in the recycle bin");
    for (operation, rows_of_truth) in [
        ("queryAll", truth.iter().collect::<Vec<_>>()),
        ("query", truth.iter().filter(|r| r["IsDeleted"] == false).collect()),
    ] {
        let id = start_job(&sb, json!({"operation": operation, "query": q, "contentType": "CSV"})).await;
        assert_eq!(wait(&sb, &id).await["state"], "JobComplete");
        let (head, rows) = all_pages(&sb, &id, 128, ',', "\n").await;
        let head: Vec<&str> = head.iter().map(|h| h.as_deref().unwrap()).collect();
        assert_eq!(head, fields);
        assert_eq!(rows.len(), rows_of_truth.len(), "{operation}");
        for (row, t) in rows.iter().zip(rows_of_truth) {
            let want: Vec<Option<String>> = fields.iter().map(|f| csv_cell(&t[*f], &ty[*f])).collect();
            assert_eq!(row, &want, "{operation} {}", t["Id"]);
        }
    }
}

#[tokio::test]
async fn delimiters_line_endings_and_gzip() {
    let sb = Sandbox::start().await;
    let q = "SELECT Id, Name, BillingStreet, Description FROM Account";
    let plain = start_job(&sb, json!({"operation": "query", "query": q})).await;
    wait(&sb, &plain).await;
    let (_, _, base) = page(&sb, V, &plain, &[]).await;
    let want = parse_csv(&base, ',', "\n");
    assert!(base.contains("\nSuite "), "multi-line streets stay quoted");
    for (delim, name, eol, ending) in [
        ('|', "PIPE", "\r\n", "CRLF"),
        ('\t', "TAB", "\n", "LF"),
        (';', "SEMICOLON", "\r\n", "CRLF"),
        ('^', "CARET", "\n", "LF"),
        ('`', "BACKQUOTE", "\n", "LF"),
    ] {
        let id =
            start_job(&sb, json!({"operation": "query", "query": q, "columnDelimiter": name, "lineEnding": ending}))
                .await;
        let info = wait(&sb, &id).await;
        assert_eq!((&info["columnDelimiter"], &info["lineEnding"]), (&json!(name), &json!(ending)));
        let (_, _, text) = page(&sb, V, &id, &[]).await;
        assert!(
            text.starts_with(&format!("\"Id\"{delim}\"Name\"{delim}\"BillingStreet\"{delim}\"Description\"{eol}")),
            "{name}"
        );
        assert!(text.ends_with(eol));
        if eol == "\r\n" {
            assert_eq!(text.matches("\r\n").count(), want.len(), "every record ends with CRLF");
        }
        assert_eq!(parse_csv(&text, delim, eol), want, "{name}/{ending}");
    }
    // gzip when asked for.
    let url = sb.data(&format!("/jobs/query/{plain}/results"));
    let resp = sb.req(Method::GET, &url).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(header(resp.headers(), "content-encoding"), Some("gzip"));
    assert!(resp.headers().get("sforce-locator").is_some());
    let bytes = resp.bytes().await.unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut unzipped).unwrap();
    assert_eq!(unzipped, base);
    let resp = sb.req(Method::GET, &url).send().await.unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn refused_jobs_and_requests() {
    let sb = Sandbox::start().await;
    let cases = [
        (json!({"operation": "query", "query": "SELECT COUNT() FROM Account"}), "API_ERROR"),
        (json!({"operation": "query", "query": "SELECT COUNT(Id) FROM Account"}), "API_ERROR"),
        (json!({"operation": "query", "query": "SELECT Id FROM Account OFFSET 5"}), "API_ERROR"),
        (json!({"operation": "query", "query": "SELECT Id, BillingAddress FROM Account"}), "API_ERROR"),
        (json!({"operation": "query", "query": "SELECT Id, Site_Location__c FROM Invoice__c"}), "API_ERROR"),
        (json!({"operation": "queryAll", "query": "SELECT Id, Scan__c FROM Invoice__c"}), "API_ERROR"),
        (json!({"operation": "query", "query": "SELECT Foo FROM Account"}), "INVALID_FIELD"),
        (json!({"operation": "query", "query": "SELECT Id FROM Nope"}), "INVALID_TYPE"),
        (json!({"operation": "query", "query": "SELECT Id FROM"}), "MALFORMED_QUERY"),
        (json!({"operation": "insert", "query": "SELECT Id FROM Account"}), "INVALIDJOB"),
        (json!({"operation": "query"}), "INVALIDJOB"),
        (json!({"operation": "query", "query": "SELECT Id FROM Account", "contentType": "JSON"}), "INVALIDJOB"),
        (json!({"operation": "query", "query": "SELECT Id FROM Account", "columnDelimiter": "COLON"}), "INVALIDJOB"),
        (json!({"operation": "query", "query": "SELECT Id FROM Account", "lineEnding": "CR"}), "INVALIDJOB"),
    ];
    for (body, code) in cases {
        let (status, headers, text, json) = create_job(&sb, body.clone()).await;
        let msg = bulk_error(status, &headers, &json, StatusCode::BAD_REQUEST, code);
        assert!(!msg.is_empty(), "{body}: {text}");
    }
    let (status, headers, _, json) =
        create_job(&sb, json!({"operation": "query", "query": "SELECT Id, BillingAddress FROM Account"})).await;
    let msg = bulk_error(status, &headers, &json, StatusCode::BAD_REQUEST, "API_ERROR");
    assert_eq!(msg, "Selecting compound data not supported in Bulk Query");
    let resp = sb.req(Method::POST, &sb.data("/jobs/query")).body("{oops").send().await.unwrap();
    let (status, headers, json) = read_json(resp).await;
    bulk_error(status, &headers, &json, StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR");
    for (method, path) in [
        (Method::GET, "/jobs/query/750000000000001AAA"),
        (Method::DELETE, "/jobs/query/nope"),
        (Method::GET, "/jobs/query/nope/results"),
    ] {
        let (status, headers, json) = read_json(sb.req(method, &sb.data(path)).send().await.unwrap()).await;
        bulk_error(status, &headers, &json, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_eq!(sb.running.state.jobs.len(), 0, "no refused job was created");
}

#[tokio::test]
async fn abort_delete_and_list_follow_the_state_machine() {
    let sb = Sandbox::start().await;
    let finished = start_job(&sb, json!({"operation": "query", "query": "SELECT Id FROM Lead"})).await;
    assert_eq!(wait(&sb, &finished).await["state"], "JobComplete");
    sb.set_knobs(|k| k.bulk.in_progress_secs = 30.0).await;
    let running = start_job(&sb, json!({"operation": "query", "query": "SELECT Id FROM Account"})).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let info = job(&sb, &running).await;
    assert_eq!(info["state"], "InProgress");
    let (status, headers, text) = page(&sb, V, &running, &[]).await;
    let msg = bulk_error(status, &headers, &serde_json::from_str(&text).unwrap(), StatusCode::BAD_REQUEST, "API_ERROR");
    assert!(msg.contains("InProgress"), "{msg}");
    // Not deletable while running: the reference's exact body.
    let resp = sb.req(Method::DELETE, &sb.data(&format!("/jobs/query/{running}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"[{"errorCode":"API_ERROR","message":"Error encountered when deleting the job because the job is not terminated"}]"#
    );

    // The list: every job, full info, done with a null nextRecordsUrl.
    let (status, headers, list) = sb.get_json("/jobs/query").await;
    assert_eq!(status, StatusCode::OK);
    assert_json_ok(&headers);
    assert_eq!(keys(&list), ["done", "records", "nextRecordsUrl"]);
    assert_eq!((&list["done"], &list["nextRecordsUrl"]), (&json!(true), &Json::Null));
    let ids: Vec<&str> = list["records"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [finished.as_str(), running.as_str()]);
    for j in list["records"].as_array().unwrap() {
        assert_eq!(keys(j), INFO_KEYS);
    }

    let abort = |id: String| {
        let sb = &sb;
        async move {
            read_json(
                sb.req(Method::PATCH, &sb.data(&format!("/jobs/query/{id}")))
                    .json(&json!({"state": "Aborted"}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, headers, info) = abort(running.clone()).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_json_ok(&headers);
    assert_eq!((keys(&info), &info["state"]), (INFO_KEYS.to_vec(), &json!("Aborted")));
    for id in [running.clone(), finished.clone()] {
        let (status, headers, body) = abort(id).await;
        bulk_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALIDJOBSTATE");
    }
    let resp = sb
        .req(Method::PATCH, &sb.data(&format!("/jobs/query/{finished}")))
        .json(&json!({"state": "JobComplete"}))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read_json(resp).await;
    bulk_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALIDJOBSTATE");
    for id in [&running, &finished] {
        let resp = sb.req(Method::DELETE, &sb.data(&format!("/jobs/query/{id}"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(resp.text().await.unwrap(), "");
        let (status, headers, body) = sb.get_json(&format!("/jobs/query/{id}")).await;
        bulk_error(status, &headers, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_eq!(sb.get_json("/jobs/query").await.2["records"], json!([]));
    let limits = sb.get_json("/limits").await.2;
    assert_eq!(limits["DailyBulkV2QueryJobs"], json!({"Max": 10000, "Remaining": 9998}));
}

#[tokio::test]
async fn an_empty_result_is_a_header_with_a_null_locator() {
    let sb = Sandbox::start().await;
    let id = start_job(
        &sb,
        json!({"operation": "query", "query": "SELECT Id, Name FROM Account WHERE Name = 'No Such Account'"}),
    )
    .await;
    let info = wait(&sb, &id).await;
    assert_eq!((&info["state"], &info["numberRecordsProcessed"]), (&json!("JobComplete"), &json!(0)));
    let (status, headers, text) = page(&sb, V, &id, &[("maxRecords", "10")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (header(&headers, "sforce-numberofrecords"), header(&headers, "sforce-locator")),
        (Some("0"), Some("null"))
    );
    assert_eq!(text, "\"Id\",\"Name\"\n");
}
