//! The fake over real HTTP: paging and truncation, Bulk CSV pages, the foreign next URL,
//! the recorder, hangs, and the session gate.

use std::time::Duration;

use fake_salesforce::{ACCESS_TOKEN, Endpoint, Field, Script, start, start_recorder};
use serde_json::{Value, json};

const V: &str = "/services/data/v62.0";

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn get(base: &str, path: &str) -> reqwest::Response {
    client().get(format!("{base}{path}")).bearer_auth(ACCESS_TOKEN).send().await.unwrap()
}

async fn get_json(base: &str, path: &str) -> Value {
    let resp = get(base, path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<&str> {
    page["records"].as_array().unwrap().iter().map(|r| r["Id"].as_str().unwrap()).collect()
}

/// Follows a listing to its end; returns every page.
async fn listing(base: &str, soql: &str) -> Vec<Value> {
    let mut pages = vec![get_json(base, &format!("{V}/queryAll?q={}", soql.replace(' ', "+"))).await];
    while let Some(next) = pages.last().unwrap()["nextRecordsUrl"].as_str().map(str::to_owned) {
        pages.push(get_json(base, &next).await);
    }
    pages
}

#[tokio::test]
async fn login_describe_and_gate() {
    let fake = start(Script::default()).await.unwrap();
    let base = fake.base_url.clone();
    assert_eq!(fake.login_url(), base);

    let token: Value = client()
        .post(format!("{base}/services/oauth2/token"))
        .form(&[("grant_type", "password"), ("username", "u")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["access_token"], ACCESS_TOKEN);
    assert_eq!(token["instance_url"], base.as_str());
    assert_eq!(token["token_type"], "Bearer");
    assert!(token["issued_at"].as_str().unwrap().parse::<i64>().is_ok());

    let describe = get_json(&base, &format!("{V}/sobjects/Widget__c/describe")).await;
    assert_eq!(describe["name"], "Widget__c");
    assert_eq!(describe["queryable"], true);
    let fields: Vec<_> = describe["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(fields, ["Id", "Name", "SystemModstamp", "IsDeleted", "Happened__c"]);
    assert_eq!(describe["fields"][2]["type"], "datetime");
    assert_eq!(describe["fields"][2]["filterable"], true);
    assert_eq!(describe["fields"][0]["nillable"], false);

    let other = get(&base, &format!("{V}/sobjects/Account/describe")).await;
    assert_eq!(other.status(), 404);
    assert_eq!(other.json::<Value>().await.unwrap()[0]["errorCode"], "NOT_FOUND");

    // Without a token, or with another one: 401 INVALID_SESSION_ID, still with the headers.
    let url = format!("{base}{V}/sobjects/Widget__c/describe");
    for req in [client().get(&url), client().get(&url).bearer_auth("00Dother!token")] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers().contains_key("sforce-limit-info"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!([{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]));
    }

    // Every /services/data response counts the call and carries the date.
    let resp = get(&base, &format!("{V}/sobjects/Widget__c/describe")).await;
    assert_eq!(resp.headers()["sforce-limit-info"], "api-usage=5/15000");
    let date = resp.headers()["date"].to_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");

    let seen = fake.requests();
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path_and_query, "/services/oauth2/token");
    assert_eq!(seen[0].authorization, None);
    assert_eq!(seen[1].authorization.as_deref(), Some(format!("Bearer {ACCESS_TOKEN}").as_str()));
    assert_eq!(seen[1].host.as_deref(), Some(base.trim_start_matches("http://")));
    fake.shutdown().await;
}

#[tokio::test]
async fn instance_url_is_scripted() {
    let mut script = Script::default();
    script.misbehave.instance_url = Some("http://elsewhere.invalid".into());
    let fake = start(script).await.unwrap();
    let token: Value =
        client().post(format!("{}/services/oauth2/token", fake.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(token["instance_url"], "http://elsewhere.invalid");
    fake.shutdown().await;
}

#[tokio::test]
async fn rest_pages_count_and_limit_one() {
    let fake = start(Script::default()).await.unwrap();
    let base = &fake.base_url;
    let pages = listing(base, "SELECT Id FROM Widget__c WHERE SystemModstamp > 2030-01-01T00:00:00Z").await;
    assert_eq!(pages.iter().map(|p| ids(p).len()).collect::<Vec<_>>(), [2, 2, 1]);
    assert!(pages.iter().all(|p| p["totalSize"] == 5));
    assert_eq!(pages[0]["done"], false);
    assert_eq!(pages[0]["nextRecordsUrl"], format!("{V}/query/01gFAKE-2"));
    assert_eq!(pages[2]["done"], true);
    assert!(pages[2].get("nextRecordsUrl").is_none());
    let first = &pages[0]["records"][0];
    assert_eq!(
        first["attributes"],
        json!({"type": "Widget__c", "url": format!("{V}/sobjects/Widget__c/a00FAKE00000000001")})
    );
    assert_eq!(first.as_object().unwrap().keys().next().unwrap(), "attributes");
    assert_eq!(first["IsDeleted"], false);
    assert_eq!(first["Happened__c"], Value::Null);

    let count = get_json(base, &format!("{V}/query?q=select+count()+from+Widget__c")).await;
    assert_eq!(count, json!({"totalSize": 5, "done": true, "records": []}));

    let oldest =
        get_json(base, &format!("{V}/queryAll?q=SELECT+Id+FROM+Widget__c+ORDER+BY+SystemModstamp+ASC+LIMIT+1")).await;
    assert_eq!(ids(&oldest), ["a00FAKE00000000001"]);
    assert_eq!(oldest["totalSize"], 1);
    let newest =
        get_json(base, &format!("{V}/queryAll?q=SELECT+Id+FROM+Widget__c+ORDER+BY+SystemModstamp+DESC+LIMIT+1")).await;
    assert_eq!(ids(&newest), ["a00FAKE00000000005"]);

    // batchSize lowers the page size, never raises it.
    let resp = client()
        .get(format!("{base}{V}/queryAll?q=SELECT+Id+FROM+Widget__c"))
        .bearer_auth(ACCESS_TOKEN)
        .header("Sforce-Query-Options", "batchSize=1")
        .send()
        .await
        .unwrap();
    let page: Value = resp.json().await.unwrap();
    assert_eq!(ids(&page).len(), 1);
    assert_eq!(page["nextRecordsUrl"], format!("{V}/query/01gFAKE-1"));

    let empty = start(Script::with_records(Vec::new())).await.unwrap();
    let none = get_json(&empty.base_url, &format!("{V}/queryAll?q=SELECT+Id+FROM+Widget__c+ORDER+BY+Id+LIMIT+1")).await;
    assert_eq!(none, json!({"totalSize": 0, "done": true, "records": []}));
    let bad = get(base, &format!("{V}/query/01gNOPE")).await;
    assert_eq!(bad.status(), 400);
    empty.shutdown().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn rest_truncation_says_done_early() {
    let mut script = Script::default();
    script.misbehave.truncate_rest_after = Some(3);
    let fake = start(script).await.unwrap();
    let pages = listing(&fake.base_url, "SELECT Id FROM Widget__c").await;
    assert_eq!(pages.iter().map(|p| ids(p).len()).collect::<Vec<_>>(), [2, 1]);
    assert!(pages.iter().all(|p| p["totalSize"] == 5));
    assert_eq!(pages[1]["done"], true);
    fake.shutdown().await;
}

#[tokio::test]
async fn foreign_next_url_and_recorder() {
    let recorder = start_recorder().await.unwrap();
    let mut script = Script::default();
    script.misbehave.foreign_next_url = Some(recorder.base_url.clone());
    let fake = start(script).await.unwrap();

    let first = get_json(&fake.base_url, &format!("{V}/queryAll?q=SELECT+Id+FROM+Widget__c")).await;
    let next = first["nextRecordsUrl"].as_str().unwrap();
    assert_eq!(next, format!("{}/services/data/v62.0/query/01gFAKE-2", recorder.base_url));
    assert_eq!(first["done"], false);
    assert_eq!(ids(&first).len(), 2);

    // Following it (as a careless client would) lands on the recorder, which logs the token.
    let page: Value = client().get(next).bearer_auth(ACCESS_TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(page, json!({"totalSize": 0, "done": true, "records": []}));
    let seen = recorder.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path_and_query, "/services/data/v62.0/query/01gFAKE-2");
    assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {ACCESS_TOKEN}").as_str()));
    fake.shutdown().await;
    recorder.shutdown().await;
}

/// Reads every results page of a job: (rows per page, CSV bodies, locators).
async fn results(base: &str, job: &str, max: usize) -> (Vec<usize>, Vec<String>, Vec<String>) {
    let (mut counts, mut bodies, mut locators) = (Vec::new(), Vec::new(), Vec::new());
    let mut locator = String::new();
    loop {
        let mut path = format!("{V}/jobs/query/{job}/results?maxRecords={max}");
        if !locator.is_empty() {
            path.push_str(&format!("&locator={locator}"));
        }
        let resp = get(base, &path).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/csv");
        counts.push(resp.headers()["sforce-numberofrecords"].to_str().unwrap().parse().unwrap());
        locator = resp.headers()["sforce-locator"].to_str().unwrap().to_owned();
        locators.push(locator.clone());
        bodies.push(resp.text().await.unwrap());
        if locator == "null" {
            return (counts, bodies, locators);
        }
    }
}

async fn create_job(base: &str) -> Value {
    let body = json!({"operation": "queryAll", "query": "SELECT Id FROM Widget__c", "contentType": "CSV"});
    let resp =
        client().post(format!("{base}{V}/jobs/query")).bearer_auth(ACCESS_TOKEN).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn bulk_csv_pages() {
    let mut script = Script::default();
    script.fields.push(Field::new("Count__c", "double"));
    script.records[0].insert("Name".into(), "Comma, \"quote\"\nand line — ünïcødé".into());
    script.records[0].insert("Count__c".into(), json!(1.5));
    script.records[1].insert("IsDeleted".into(), true.into());
    let fake = start(script).await.unwrap();
    let base = &fake.base_url;

    let job = create_job(base).await;
    assert_eq!(job["id"], "750FAKE000000001");
    assert_eq!(job["state"], "UploadComplete");
    assert_eq!(job["operation"], "queryAll");
    assert_eq!(job["object"], "Widget__c");
    let info = get_json(base, &format!("{V}/jobs/query/750FAKE000000001")).await;
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["numberRecordsProcessed"], 5);

    let (counts, bodies, locators) = results(base, "750FAKE000000001", 100).await;
    assert_eq!(counts, [2, 2, 1]);
    assert_eq!(locators.last().unwrap(), "null");
    assert_eq!(
        bodies[0],
        "Id,Name,SystemModstamp,IsDeleted,Happened__c,Count__c\n\
         a00FAKE00000000001,\"Comma, \"\"quote\"\"\nand line — ünïcødé\",2024-01-01T00:00:00.000Z,false,,1.5\n\
         a00FAKE00000000002,Widget 2,2024-01-02T00:00:00.000Z,true,,\n"
    );
    assert!(bodies.iter().all(|b| b.starts_with("Id,Name,")));
    let (counts, _, _) = results(base, "750FAKE000000001", 1).await;
    assert_eq!(counts, [1, 1, 1, 1, 1]);

    let resp = client().delete(format!("{base}{V}/jobs/query/750FAKE000000001")).bearer_auth(ACCESS_TOKEN);
    assert_eq!(resp.send().await.unwrap().status(), 204);
    assert_eq!(get(base, &format!("{V}/jobs/query/750FAKE000000001")).await.status(), 404);
    fake.shutdown().await;
}

#[tokio::test]
async fn bulk_truncated_results() {
    let mut script = Script::default();
    script.misbehave.truncate_bulk_after = Some(3);
    let fake = start(script).await.unwrap();
    let job = create_job(&fake.base_url).await;
    let id = job["id"].as_str().unwrap();
    let info = get_json(&fake.base_url, &format!("{V}/jobs/query/{id}")).await;
    assert_eq!(info["numberRecordsProcessed"], 5);
    let (counts, bodies, _) = results(&fake.base_url, id, 100).await;
    assert_eq!(counts, [2, 1]);
    assert_eq!(bodies[1].lines().count(), 2);
    fake.shutdown().await;
}

#[tokio::test]
async fn bulk_stuck_and_omitted_count() {
    let mut script = Script::default();
    script.misbehave.bulk_stuck = true;
    script.misbehave.bulk_omit_processed = true;
    let fake = start(script).await.unwrap();
    let base = &fake.base_url;
    let id = create_job(base).await["id"].as_str().unwrap().to_owned();
    let info = get_json(base, &format!("{V}/jobs/query/{id}")).await;
    assert_eq!(info["state"], "InProgress");
    assert!(info.get("numberRecordsProcessed").is_none());
    assert_eq!(get(base, &format!("{V}/jobs/query/{id}/results")).await.status(), 400);

    let abort = client()
        .patch(format!("{base}{V}/jobs/query/{id}"))
        .bearer_auth(ACCESS_TOKEN)
        .json(&json!({"state": "Aborted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(abort.status(), 200);
    assert_eq!(abort.json::<Value>().await.unwrap()["state"], "Aborted");
    assert_eq!(get_json(base, &format!("{V}/jobs/query/{id}")).await["state"], "Aborted");
    fake.shutdown().await;
}

#[tokio::test]
async fn hang_hangs_until_shutdown() {
    let mut script = Script::default();
    script.misbehave.hang = vec![Endpoint::Query, Endpoint::Login];
    let fake = start(script).await.unwrap();
    let base = fake.base_url.clone();
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let err = quick
        .get(format!("{base}{V}/queryAll?q=SELECT+Id+FROM+Widget__c"))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let err = quick.post(format!("{base}/services/oauth2/token")).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // Other endpoints still answer.
    assert_eq!(get(&base, &format!("{V}/sobjects/Widget__c/describe")).await.status(), 200);
    assert_eq!(fake.requests().len(), 3);

    // A request still hanging at shutdown does not hold it up.
    let pending = tokio::spawn(async move {
        client().get(format!("{base}{V}/query/01gFAKE-2")).bearer_auth(ACCESS_TOKEN).send().await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), fake.shutdown()).await.expect("shutdown is prompt");
    let released = pending.await.unwrap().expect("a hung request is answered at shutdown");
    assert_eq!(released.status(), 503);
}
