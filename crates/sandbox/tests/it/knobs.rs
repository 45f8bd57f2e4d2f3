//! Knobs (reference §1.2, §2.10, §2.11, §6, §7 items 2, 4, 9): session lifetime and
//! forced expiry, the daily API limit, injected 5xx errors, throttling (429), bodies cut
//! short, latency, slow and failing Bulk jobs, background churn with late commits, fields
//! added on a schedule, and the recycle-bin retention.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sandbox::knobs::{AddedField, Knobs};
use serde_json::{Value as Json, json};

use crate::bulk::{INFO_KEYS, start_job, wait};
use crate::common::{Sandbox, assert_error, assert_json_ok, header, keys, limit_info, read_json, rest_ms};
use crate::crud::create;

#[tokio::test]
async fn sessions_expire_after_their_lifetime_and_on_demand() {
    let sb = Sandbox::with_knobs(Knobs { token_lifetime_secs: Some(60), ..Knobs::default() }).await;
    sb.freeze().await;
    let token = sb.login().await;
    sb.set_token(&token);
    sb.advance(59.0).await;
    assert_eq!(sb.get("/limits").await.status(), StatusCode::OK);
    sb.advance(1.5).await;
    let (status, headers, body) = sb.get_json("/limits").await;
    let msg = assert_error(status, &headers, &body, StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID");
    assert_eq!(msg, "Session expired or invalid");
    // The identity URL refuses it too, and a new login works.
    let resp = sb.req(Method::GET, &sb.url("/services/oauth2/userinfo")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    sb.set_token(&sb.login().await);
    assert_eq!(sb.get("/limits").await.status(), StatusCode::OK);

    // Expiring every session keeps refresh tokens valid.
    let refresh =
        sb.http.post(sb.url("/sandbox/v1/refresh-tokens")).send().await.unwrap().json::<Json>().await.unwrap();
    let resp = sb.http.post(sb.url("/sandbox/v1/sessions/expire")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, headers, body) = sb.get_json("/sobjects").await;
    assert_error(status, &headers, &body, StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID");
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", sandbox::server::DEFAULT_CLIENT_ID),
        ("refresh_token", refresh["refresh_token"].as_str().unwrap()),
    ];
    let resp = sb.http.post(sb.url("/services/oauth2/token")).form(&form).send().await.unwrap();
    let body: Json = resp.json().await.unwrap();
    sb.set_token(body["access_token"].as_str().unwrap());
    assert_eq!(sb.get("/sobjects").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_daily_api_limit_answers_403() {
    let sb = Sandbox::with_knobs(Knobs { daily_api_limit: 5, ..Knobs::default() }).await;
    for n in 1..=5 {
        let resp = sb.get("/limits").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(limit_info(resp.headers()), (n, 5));
    }
    for _ in 0..2 {
        let (status, headers, body) = sb.get_json("/sobjects").await;
        let msg = assert_error(status, &headers, &body, StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED");
        assert_eq!(msg, "TotalRequests Limit exceeded.");
        assert_eq!(limit_info(&headers), (5, 5));
    }
    // Versions and OAuth are not counted.
    assert_eq!(sb.http.get(sb.url("/services/data/")).send().await.unwrap().status(), StatusCode::OK);
    sb.login().await;
    // A new window (admin reset), or a higher limit, lets calls through again.
    let resp = sb.http.post(sb.url("/sandbox/v1/api-usage/reset")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = sb.get("/limits").await;
    assert_eq!(limit_info(resp.headers()), (1, 5));
    sb.set_knobs(|k| k.daily_api_limit = 7).await;
    let (_, headers, body) = sb.get_json("/limits").await;
    assert_eq!(limit_info(&headers), (2, 7));
    assert_eq!(body["DailyApiRequests"], json!({"Max": 7, "Remaining": 5}));
    // The window is a rolling day.
    for _ in 0..5 {
        sb.get("/limits").await;
    }
    assert_eq!(sb.get("/limits").await.status(), StatusCode::FORBIDDEN);
    sb.advance(86_401.0).await;
    assert_eq!(limit_info(sb.get("/limits").await.headers()), (1, 7));
}

#[tokio::test]
async fn injected_server_errors_and_latency() {
    let sb = Sandbox::with_knobs(Knobs { error_rate: 1.0, ..Knobs::default() }).await;
    let (mut json_errors, mut html_errors) = (0, 0);
    for _ in 0..40 {
        let resp = sb.get("/sobjects").await;
        let status = resp.status();
        assert!(status.is_server_error(), "{status}");
        let ct = header(resp.headers(), "content-type").unwrap().to_string();
        let text = resp.text().await.unwrap();
        if ct == "text/html" {
            html_errors += 1;
            assert_eq!(status, StatusCode::BAD_GATEWAY);
            assert!(text.starts_with("<html>"));
        } else {
            json_errors += 1;
            let body: Json = serde_json::from_str(&text).unwrap();
            assert_eq!(keys(&body[0]), ["message", "errorCode"]);
            let code = body[0]["errorCode"].as_str().unwrap();
            match status {
                StatusCode::INTERNAL_SERVER_ERROR => assert_eq!(code, "UNKNOWN_EXCEPTION"),
                StatusCode::SERVICE_UNAVAILABLE => assert_eq!(code, "SERVER_UNAVAILABLE"),
                other => panic!("unexpected {other}"),
            }
        }
    }
    assert!(json_errors > 0 && html_errors > 0, "{json_errors} JSON, {html_errors} HTML");
    // OAuth and the admin API are not subject to injected errors.
    sb.login().await;
    sb.set_knobs(|k| {
        k.error_rate = 0.0;
        k.latency_ms = 250;
    })
    .await;
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(sb.get("/limits").await.status(), StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
    sb.set_knobs(|k| k.latency_ms = 0).await;
    for _ in 0..40 {
        let resp = sb.get("/limits").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_json_ok(resp.headers());
    }
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let sb = Sandbox::with_knobs(Knobs { rate_limit_rate: 1.0, ..Knobs::default() }).await;
    for path in ["/limits", "/sobjects", "/query?q=SELECT+Id+FROM+Account"] {
        let (status, headers, body) = sb.get_json(path).await;
        let msg = assert_error(status, &headers, &body, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS");
        assert!(msg.contains("retry"), "{msg}");
        assert_eq!(header(&headers, "retry-after"), Some("1"), "{path}");
        let (used, max) = limit_info(&headers);
        assert!(used >= 1 && max == 1_000_000, "a throttled call still counts");
    }
    // OAuth and the admin API are not throttled; a share of 0 lets every call through.
    sb.login().await;
    sb.set_knobs(|k| k.rate_limit_rate = 0.0).await;
    for _ in 0..20 {
        assert_eq!(sb.get("/limits").await.status(), StatusCode::OK);
    }
    // About the share asked for.
    sb.set_knobs(|k| k.rate_limit_rate = 0.5).await;
    let mut throttled = 0;
    for _ in 0..200 {
        if sb.get("/limits").await.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
        }
    }
    assert!((60..=140).contains(&throttled), "{throttled} of 200");
    let resp = sb.http.put(sb.url("/sandbox/v1/knobs")).json(&json!({"rate_limit_rate": 1.5})).send().await.unwrap();
    let (status, headers, body) = read_json(resp).await;
    let msg = assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_KNOBS");
    assert!(msg.contains("rate_limit_rate = 1.5 must be between 0 and 1"), "{msg}");
}

/// Reads a response to its end: (bytes that arrived, whether the body ended in an error).
async fn drain(mut resp: reqwest::Response) -> (usize, bool) {
    let mut got = 0;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => got += chunk.len(),
            Ok(None) => return (got, false),
            Err(_) => return (got, true),
        }
    }
}

#[tokio::test]
async fn truncated_bodies_announce_more_than_arrives() {
    let sb = Sandbox::start().await;
    // A Bulk job finished while bodies are whole, so its results can be read cut short.
    let id = start_job(&sb, json!({"operation": "query", "query": "SELECT Id, Name FROM Account"})).await;
    assert_eq!(wait(&sb, &id).await["state"], "JobComplete");
    sb.set_knobs(|k| k.truncate_rate = 1.0).await;
    let query = sb.data("/query?q=SELECT+Id,+Name,+Industry+FROM+Account");
    let results = sb.data(&format!("/jobs/query/{id}/results?maxRecords=100"));
    let mut announced_results = 0;
    for url in [&query, &results, &sb.data("/sobjects/Account/describe")] {
        let resp = sb.req(Method::GET, url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let announced: usize = header(resp.headers(), "content-length").unwrap().parse().unwrap();
        let (got, failed) = drain(resp).await;
        assert!(failed, "{url}: reading the body fails");
        assert!(got < announced && got >= announced / 2 - 1, "{url}: {got} of {announced} bytes arrived");
        if url == &results {
            announced_results = announced;
        }
        // A client reading the whole body sees an error, not a short body.
        let resp = sb.req(Method::GET, url).send().await.unwrap();
        assert!(resp.bytes().await.is_err(), "{url}");
    }
    // Errors are not cut; neither are bodies once the share is 0.
    let (status, headers, body) = sb.get_json("/sobjects/Nope/describe").await;
    assert_error(status, &headers, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    sb.set_knobs(|k| k.truncate_rate = 0.0).await;
    let resp = sb.req(Method::GET, &results).send().await.unwrap();
    assert_eq!(drain(resp).await, (announced_results, false), "the announced length is the whole body's");
    let live = sb.truth("Account").await.iter().filter(|r| r["IsDeleted"] == false).count();
    assert_eq!(sb.query("SELECT COUNT() FROM Account").await["totalSize"], live);
}

#[tokio::test]
async fn bulk_jobs_can_be_slow_or_fail() {
    let sb = Sandbox::with_knobs(Knobs {
        bulk: sandbox::knobs::BulkKnobs { in_progress_secs: 0.6, ..Default::default() },
        ..Knobs::default()
    })
    .await;
    let started = Instant::now();
    let id = start_job(&sb, json!({"operation": "query", "query": "SELECT Id FROM Case"})).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(crate::bulk::job(&sb, &id).await["state"], "InProgress");
    let done = wait(&sb, &id).await;
    assert_eq!(done["state"], "JobComplete");
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert!(done["totalProcessingTime"].as_u64().unwrap() >= 600);

    sb.set_knobs(|k| {
        k.bulk.in_progress_secs = 0.0;
        k.bulk.fail_rate = 1.0;
    })
    .await;
    let id = start_job(&sb, json!({"operation": "query", "query": "SELECT Id FROM Case"})).await;
    let failed = wait(&sb, &id).await;
    let mut with_error = INFO_KEYS.to_vec();
    with_error.push("errorMessage");
    assert_eq!(keys(&failed), with_error);
    assert_eq!(failed["state"], "Failed");
    assert!(!failed["errorMessage"].as_str().unwrap().is_empty());
    let resp = sb.req(Method::GET, &sb.data(&format!("/jobs/query/{id}/results"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A failed job can be deleted.
    let resp = sb.req(Method::DELETE, &sb.data(&format!("/jobs/query/{id}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    sb.set_knobs(|k| {
        k.bulk.fail_rate = 0.0;
        k.bulk.fail_above_rows = Some(100);
    })
    .await;
    let big = start_job(&sb, json!({"operation": "query", "query": "SELECT Id FROM Case"})).await;
    let small = start_job(&sb, json!({"operation": "query", "query": "SELECT Id FROM Case LIMIT 100"})).await;
    let big = wait(&sb, &big).await;
    assert_eq!((&big["state"], &big["errorMessage"]), (&json!("Failed"), &json!("Retried more than 15 times")));
    assert_eq!(wait(&sb, &small).await["state"], "JobComplete");
}

#[tokio::test]
async fn churn_writes_in_the_background_and_can_commit_late() {
    let sb = Sandbox::start().await;
    let before = sb.truth("Lead").await;
    let accounts = sb.truth("Account").await;
    sb.set_knobs(|k| {
        k.churn.inserts_per_sec = 40.0;
        k.churn.updates_per_sec = 40.0;
        k.churn.deletes_per_sec = 8.0;
        k.churn.objects = vec!["Lead".into()];
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    sb.set_knobs(|k| k.churn = Default::default()).await;
    let after = sb.truth("Lead").await;
    assert!(after.len() > before.len(), "inserts: {} → {}", before.len(), after.len());
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(changed > 0, "updates or deletes changed existing rows");
    assert!(
        after
            .iter()
            .any(|r| r["IsDeleted"] == true && !before.iter().any(|b| b["Id"] == r["Id"] && b["IsDeleted"] == true))
    );
    assert_eq!(sb.truth("Account").await, accounts, "only the objects named churn");
    let frozen = sb.truth("Lead").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sb.truth("Lead").await, frozen, "churn stopped");

    // Every churn write late by a minute: nothing shows until the clock passes it.
    let stamp = rest_ms(&sb.freeze().await);
    sb.set_knobs(|k| {
        k.churn.inserts_per_sec = 40.0;
        k.churn.objects = vec!["Lead".into()];
        k.late_commits.fraction = 1.0;
        k.late_commits.delay_secs = 60.0;
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    sb.set_knobs(|k| k.churn = Default::default()).await;
    assert_eq!(sb.truth("Lead").await, frozen);
    let status: Json = sb.http.get(sb.url("/sandbox/v1/status")).send().await.unwrap().json().await.unwrap();
    let pending = status["pending_late_writes"].as_u64().unwrap();
    assert!(pending > 0);
    sb.advance(61.0).await;
    let late = sb.truth("Lead").await;
    assert_eq!(late.len(), frozen.len() + pending as usize);
    for row in &late[frozen.len()..] {
        assert_eq!(rest_ms(row["SystemModstamp"].as_str().unwrap()), stamp - stamp.rem_euclid(1000), "the old stamp");
    }
}

#[tokio::test]
async fn fields_added_on_a_schedule_appear_in_describe_and_queries() {
    let field = |name: &str, ty: &str, after: f64| AddedField {
        object: "Contact".into(),
        name: name.into(),
        ty: ty.into(),
        after_secs: after,
    };
    let sb =
        Sandbox::with_knobs(Knobs { fields_added: vec![field("Tier__c", "picklist", 0.0)], ..Knobs::default() }).await;
    sb.freeze().await;
    sb.set_knobs(|k| k.fields_added.push(field("Score__c", "double", 120.0))).await;
    let names = |d: &Json| {
        d["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let d = sb.get_json("/sobjects/Contact/describe").await.2;
    assert!(names(&d).contains(&"Tier__c".to_string()) && !names(&d).contains(&"Score__c".to_string()));
    let (status, headers, body) = sb.soql("query", "SELECT Id, Score__c FROM Contact", None).await;
    assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_FIELD");
    sb.advance(121.0).await;
    let d = sb.get_json("/sobjects/Contact/describe").await.2;
    let score = d["fields"].as_array().unwrap().iter().find(|f| f["name"] == "Score__c").unwrap();
    assert_eq!(
        (score["type"].as_str(), score["custom"].as_bool(), score["nillable"].as_bool()),
        (Some("double"), Some(true), Some(true))
    );
    let (_, rows) = sb.query_pages("query", "SELECT Id, Tier__c, Score__c FROM Contact", None).await;
    assert!(rows.iter().all(|r| r["Tier__c"].is_null() && r["Score__c"].is_null() && keys(r).len() == 4));
    let id = create(&sb, "Contact", json!({"LastName": "Scored", "Score__c": 4.5})).await;
    let body = sb.query(&format!("SELECT Score__c FROM Contact WHERE Score__c > 4 AND Id = '{id}'")).await;
    assert_eq!(body["records"][0]["Score__c"], 4.5);
    // An invalid knob is refused as a whole.
    let bad = json!({"fields_added": [{"object": "Contact", "name": "NoSuffix", "type": "string"}]});
    let resp = sb.http.put(sb.url("/sandbox/v1/knobs")).json(&bad).send().await.unwrap();
    let (status, headers, body) = read_json(resp).await;
    assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_KNOBS");
}

#[tokio::test]
async fn the_recycle_bin_keeps_rows_for_its_retention() {
    let sb = Sandbox::with_knobs(Knobs { recycle_bin_days: 2.0, ..Knobs::default() }).await;
    sb.freeze().await;
    let id =
        create(&sb, "Opportunity", json!({"Name": "Big Deal", "StageName": "Prospecting", "CloseDate": "2030-01-31"}))
            .await;
    let resp = sb.req(Method::DELETE, &sb.data(&format!("/sobjects/Opportunity/{id}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let q = format!("SELECT Id, IsDeleted FROM Opportunity WHERE Id = '{id}'");
    sb.advance(2.0 * 86_400.0 - 1.0).await;
    assert_eq!(sb.soql("queryAll", &q, None).await.2["totalSize"], 1);
    sb.advance(1.0).await;
    assert_eq!(sb.soql("queryAll", &q, None).await.2["totalSize"], 0);
    assert!(!sb.truth("Opportunity").await.iter().any(|r| r["Id"] == id.as_str()));
    let (status, headers, body) = sb.get_json(&format!("/sobjects/Opportunity/{id}")).await;
    assert_error(status, &headers, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    // Generated rows in the bin are purged on the same schedule.
    let binned = sb.soql("queryAll", "SELECT COUNT() FROM Opportunity WHERE IsDeleted = true", None).await.2;
    assert_eq!(binned["totalSize"], 0);
}

#[tokio::test]
async fn timestamp_ties_make_many_updates_share_a_second() {
    let sb = Sandbox::start().await;
    sb.set_knobs(|k| {
        k.churn.timestamp_ties = 400;
        k.churn.objects = vec!["Contact".into()];
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    sb.set_knobs(|k| k.churn = Default::default()).await;
    let mut per_stamp: std::collections::HashMap<String, usize> = Default::default();
    for row in sb.truth("Contact").await {
        *per_stamp.entry(row["SystemModstamp"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let most = per_stamp.values().max().copied().unwrap();
    assert!(most >= 50, "the busiest second has {most} rows");
}
