//! The admin API (`/sandbox/v1/...`) and the replication semantics it drives
//! (reference §6): late commits, many rows sharing one SystemModstamp, undelete,
//! system-only writes, formulas that change with the clock, fields added at run time,
//! on-demand churn, determinism of the generated org, and the admin API's own errors.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::common::{Sandbox, assert_error, config, header, keys, read_json, rest_ms, soql_datetime};
use crate::crud::{create, urlenc};

fn stamp_of(rows: &[serde_json::Map<String, Json>], id: &str) -> i64 {
    rest_ms(rows.iter().find(|r| r["Id"] == id).unwrap()["SystemModstamp"].as_str().unwrap())
}

#[tokio::test]
async fn late_commits_appear_later_with_their_old_stamp() {
    let sb = Sandbox::start().await;
    let now = rest_ms(&sb.freeze().await);
    let account = sb.truth("Account").await[0]["Id"].clone();
    let done = sb
        .mutate(json!([
            {"op": "insert", "object": "Contact", "fields": {"LastName": "Late", "AccountId": account}, "late_secs": 90},
            {"op": "update", "object": "Account", "id": account, "fields": {"Phone": "(212) 555-0199"}, "late_secs": 90},
        ]))
        .await;
    assert_eq!(keys(&done), ["results", "stamp"]);
    let id = done["results"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(done["results"][0]["op"], "insert");
    let stamp = rest_ms(done["stamp"].as_str().unwrap());
    assert_eq!(stamp, now - now.rem_euclid(1000));
    let q = format!("SELECT Id, SystemModstamp FROM Contact WHERE Id = '{id}'");
    sb.advance(60.0).await;
    assert_eq!(sb.query(&q).await["totalSize"], 0, "invisible before its commit");
    assert!(!sb.truth("Contact").await.iter().any(|r| r["Id"] == id.as_str()));
    // While the write is pending, getUpdated holds latestDateCovered at its start.
    let range =
        format!("?start={}&end={}", urlenc(&soql_datetime(now - 600_000)), urlenc(&soql_datetime(now + 600_000)));
    let body = sb.get_json(&format!("/sobjects/Account/updated{range}")).await.2;
    assert!(!body["ids"].as_array().unwrap().contains(&account));
    let covered = rest_ms(body["latestDateCovered"].as_str().unwrap());
    assert!(
        covered <= stamp,
        "latestDateCovered {} must not pass the open transaction at {}",
        body["latestDateCovered"],
        done["stamp"]
    );

    sb.advance(31.0).await;
    let body = sb.query(&q).await;
    assert_eq!(body["totalSize"], 1);
    assert_eq!(rest_ms(body["records"][0]["SystemModstamp"].as_str().unwrap()), stamp, "visible with its old stamp");
    let accounts = sb.truth("Account").await;
    assert_eq!(stamp_of(&accounts, account.as_str().unwrap()), stamp);
    assert!(stamp < rest_ms(sb.clock(json!({})).await["now"].as_str().unwrap()) - 90_000);
    let body = sb.get_json(&format!("/sobjects/Account/updated{range}")).await.2;
    assert!(body["ids"].as_array().unwrap().contains(&account));
}

#[tokio::test]
async fn many_rows_share_one_system_modstamp() {
    let sb = Sandbox::start().await;
    sb.clock(json!({"freeze": true, "advance_secs": 0.731})).await;
    let done = sb.mutate(json!([{"op": "insert", "object": "Lead", "count": 500}])).await;
    let ids: Vec<&str> = done["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 500);
    let stamp = rest_ms(done["stamp"].as_str().unwrap());
    assert_eq!(stamp % 1000, 0);
    let truth = sb.truth("Lead").await;
    for id in &ids {
        assert_eq!(stamp_of(&truth, id), stamp);
    }
    let q = format!("SELECT COUNT() FROM Lead WHERE SystemModstamp = {}", soql_datetime(stamp));
    assert_eq!(sb.query(&q).await["totalSize"], 500);
    // Keyset paging over the tie with an Id tie-break sees every row once.
    let q = format!("SELECT Id FROM Lead WHERE SystemModstamp = {} ORDER BY Id LIMIT 200", soql_datetime(stamp));
    let first = sb.query(&q).await;
    let last = first["records"][199]["Id"].as_str().unwrap().to_string();
    let q2 = format!("SELECT COUNT() FROM Lead WHERE SystemModstamp = {} AND Id > '{last}'", soql_datetime(stamp));
    assert_eq!(sb.query(&q2).await["totalSize"], 300);
}

#[tokio::test]
async fn undelete_system_writes_and_purge() {
    let sb = Sandbox::start().await;
    let t0 = rest_ms(&sb.freeze().await);
    let id = create(&sb, "Case", json!({"Subject": "Printer on fire", "Status": "New"})).await;
    let resp = sb.req(Method::DELETE, &sb.data(&format!("/sobjects/Case/{id}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let t1 = rest_ms(&sb.advance(42.0).await);
    sb.mutate(json!([{"op": "undelete", "object": "Case", "id": id}])).await;
    let q = format!("SELECT Id, IsDeleted, SystemModstamp, LastModifiedDate FROM Case WHERE Id = '{id}'");
    let rec = &sb.query(&q).await["records"][0];
    assert_eq!(rec["IsDeleted"], false);
    assert_eq!(rest_ms(rec["SystemModstamp"].as_str().unwrap()), t1 - t1.rem_euclid(1000));
    assert_eq!(sb.get_json(&format!("/sobjects/Case/{id}")).await.0, StatusCode::OK);

    // A system write bumps SystemModstamp only.
    let t2 = rest_ms(&sb.advance(10.0).await);
    sb.mutate(json!([{"op": "update", "object": "Case", "id": id, "system": true}])).await;
    let rec = &sb.query(&q).await["records"][0];
    assert_eq!(rest_ms(rec["SystemModstamp"].as_str().unwrap()), t2 - t2.rem_euclid(1000));
    assert_eq!(rest_ms(rec["LastModifiedDate"].as_str().unwrap()), t1 - t1.rem_euclid(1000));
    assert!(t0 < t1);

    // Purge: gone from queryAll, the truth and the REST API.
    sb.mutate(json!([{"op": "delete", "object": "Case", "id": id}, {"op": "purge", "object": "Case", "id": id}])).await;
    assert_eq!(sb.soql("queryAll", &q, None).await.2["totalSize"], 0);
    assert!(!sb.truth("Case").await.iter().any(|r| r["Id"] == id.as_str()));
    let (status, headers, body) = sb.get_json(&format!("/sobjects/Case/{id}")).await;
    assert_error(status, &headers, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    // Emptying the whole bin.
    let done = sb.mutate(json!([{"op": "purge", "object": "Account"}])).await;
    assert!(done["results"].as_array().unwrap().iter().all(|r| r["op"] == "purge"));
    assert_eq!(sb.soql("queryAll", "SELECT COUNT() FROM Account WHERE IsDeleted = true", None).await.2["totalSize"], 0);
}

#[tokio::test]
async fn formulas_change_with_the_clock_but_timestamps_do_not() {
    let sb = Sandbox::start().await;
    sb.freeze().await;
    let truth = sb.truth("Invoice__c").await;
    let open = truth
        .iter()
        .find(|r| r["IsDeleted"] == false && r["Is_Paid__c"] == false && r["Due_Date__c"].is_string())
        .expect("an unpaid invoice with a due date");
    let id = open["Id"].as_str().unwrap();
    let q = format!("SELECT Days_Overdue__c, SystemModstamp FROM Invoice__c WHERE Id = '{id}'");
    let before = sb.query(&q).await["records"][0].clone();
    sb.advance(86_400.0).await;
    let after = sb.query(&q).await["records"][0].clone();
    assert_eq!(after["Days_Overdue__c"].as_f64().unwrap(), before["Days_Overdue__c"].as_f64().unwrap() + 1.0);
    assert_eq!(after["SystemModstamp"], before["SystemModstamp"]);
    assert_eq!(
        sb.truth("Invoice__c").await.iter().find(|r| r["Id"] == id).unwrap()["Days_Overdue__c"],
        after["Days_Overdue__c"]
    );
}

#[tokio::test]
async fn fields_added_through_the_admin_api() {
    let sb = Sandbox::start().await;
    let done = sb.mutate(json!([{"op": "add_field", "object": "Account", "field": {"name": "Region__c", "type": "picklist", "values": ["EMEA", "APAC"]}}])).await;
    assert_eq!(done["results"][0], json!({"op": "add_field", "object": "Account", "field": "Region__c"}));
    let d = sb.get_json("/sobjects/Account/describe").await.2;
    let f = d["fields"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(keys(&f), crate::rest::FIELD_KEYS.split(' ').collect::<Vec<_>>());
    assert_eq!(
        (f["name"].as_str(), f["type"].as_str(), f["custom"].as_bool()),
        (Some("Region__c"), Some("picklist"), Some(true))
    );
    assert_eq!(
        f["picklistValues"].as_array().unwrap().iter().map(|v| v["value"].clone()).collect::<Vec<_>>(),
        [json!("EMEA"), json!("APAC")]
    );
    let (_, rows) = sb.query_pages("queryAll", "SELECT Id, Region__c FROM Account", None).await;
    assert!(rows.iter().all(|r| r["Region__c"].is_null()));
    let id = rows[0]["Id"].as_str().unwrap();
    let resp = sb
        .req(Method::PATCH, &sb.data(&format!("/sobjects/Account/{id}")))
        .json(&json!({"Region__c": "EMEA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(sb.query("SELECT COUNT() FROM Account WHERE Region__c = 'EMEA'").await["totalSize"], 1);
    assert!(sb.truth("Account").await.iter().all(|r| r.contains_key("Region__c")));
    // Adding it twice, or a bad type or name, is refused.
    for field in [
        json!({"name": "Region__c", "type": "string"}),
        json!({"name": "X__c", "type": "blob"}),
        json!({"name": "Plain", "type": "string"}),
    ] {
        let body = json!({"mutations": [{"op": "add_field", "object": "Account", "field": field}]});
        let (status, headers, body) =
            read_json(sb.http.post(sb.url("/sandbox/v1/mutations")).json(&body).send().await.unwrap()).await;
        let msg = assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_MUTATION");
        assert!(msg.starts_with("mutations[0]: "), "{msg}");
    }
}

#[tokio::test]
async fn churn_on_demand() {
    let sb = Sandbox::start().await;
    let before = sb.truth("Contact").await;
    let now = rest_ms(&sb.freeze().await);
    let done = sb
        .mutate(json!([{"op": "churn", "object": "Contact", "inserts": 3, "updates": 5, "deletes": 2, "undeletes": 1}]))
        .await;
    let ops: Vec<(&str, &str)> = done["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["op"].as_str().unwrap(), r["id"].as_str().unwrap()))
        .collect();
    let count = |op: &str| ops.iter().filter(|(o, _)| *o == op).count();
    assert_eq!((count("insert"), count("update"), count("delete"), count("undelete")), (3, 5, 2, 1));
    let after = sb.truth("Contact").await;
    assert_eq!(after.len(), before.len() + 3);
    let stamp = now - now.rem_euclid(1000);
    for (op, id) in &ops {
        let row = after.iter().find(|r| r["Id"] == *id).unwrap();
        assert_eq!(stamp_of(&after, id), stamp, "{op} {id}");
        match *op {
            "delete" => assert_eq!(row["IsDeleted"], true),
            "undelete" => assert_eq!(row["IsDeleted"], false),
            "insert" => assert!(!before.iter().any(|r| r["Id"] == *id)),
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_org() {
    let (a, b) = tokio::join!(Sandbox::start(), Sandbox::start());
    let mut other = config();
    other.seed = 8;
    let c = Sandbox::with(other).await;
    let mut differs = 0;
    for object in ["Account", "Case", "Contact", "Invoice__c", "Lead", "Opportunity", "User"] {
        let (ta, tb, tc) = (a.truth(object).await, b.truth(object).await, c.truth(object).await);
        assert!(!ta.is_empty());
        assert_eq!(ta, tb, "{object}");
        if ta != tc {
            differs += 1;
        }
    }
    assert!(differs >= 6, "another seed gives another org ({differs} objects differ)");
}

#[tokio::test]
async fn admin_endpoints_validate_their_input() {
    let sb = Sandbox::start().await;
    let status: Json = sb.http.get(sb.url("/sandbox/v1/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["instance_url"], sb.base.as_str());
    assert_eq!(keys(&status["objects"]["Account"]), ["live", "recycle_bin", "purged", "fields", "bytes"]);
    let truth = sb.truth("Account").await;
    let a = &status["objects"]["Account"];
    assert_eq!(a["live"].as_u64().unwrap() + a["recycle_bin"].as_u64().unwrap(), truth.len() as u64);

    let post = |path: &'static str, body: Json| {
        let sb = &sb;
        async move { read_json(sb.http.post(sb.url(path)).json(&body).send().await.unwrap()).await }
    };
    for (body, needle) in [
        (json!({"mutations": [{"op": "explode", "object": "Account"}]}), "unknown variant"),
        (json!({"mutations": [{"op": "insert", "object": "Nope"}]}), "unknown object `Nope`"),
        (json!({"mutations": [{"op": "insert", "object": "Account"}]}), "insert needs `fields` or `count`"),
        (json!({"mutations": [{"op": "update", "object": "Account", "id": "001000000099999AAA"}]}), "no record"),
        (json!({"mutations": [{"op": "insert", "object": "Contact", "fields": {}}]}), "REQUIRED_FIELD_MISSING"),
    ] {
        let (status, headers, body) = post("/sandbox/v1/mutations", body).await;
        let msg = assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_MUTATION");
        assert!(msg.contains(needle), "{msg}");
    }
    let (status, headers, body) = post("/sandbox/v1/clock", json!({"set": "not a time"})).await;
    assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_CLOCK");
    let resp = sb.http.put(sb.url("/sandbox/v1/knobs")).json(&json!({"error_rate": 2.0})).send().await.unwrap();
    let (status, headers, body) = read_json(resp).await;
    let msg = assert_error(status, &headers, &body, StatusCode::BAD_REQUEST, "INVALID_KNOBS");
    assert!(msg.contains("error_rate"), "{msg}");
    let resp = sb.http.put(sb.url("/sandbox/v1/knobs")).json(&json!({"no_such_knob": 1})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Clock: set, freeze, advance, run again.
    let set = sb.clock(json!({"set": "2031-05-06T07:08:09Z", "freeze": true})).await;
    assert_eq!((set["now"].as_str(), set["frozen"].as_bool()), (Some("2031-05-06T07:08:09.000+0000"), Some(true)));
    let adv = sb.clock(json!({"advance_secs": 1.5})).await;
    assert_eq!(adv["now"], "2031-05-06T07:08:10.500+0000");
    let run = sb.clock(json!({"freeze": false})).await;
    assert_eq!(run["frozen"], false);
    assert!(rest_ms(run["now"].as_str().unwrap()) >= rest_ms("2031-05-06T07:08:10.500+0000"));
}

#[tokio::test]
async fn the_date_header_follows_the_org_clock() {
    // Clients plan replication windows from `Date`, so it must move with the clock.
    let sb = Sandbox::start().await;
    let now = sb.advance(3.0 * 86_400.0).await;
    let (status, headers, _) = sb.get_json("/limits").await;
    assert_eq!(status, StatusCode::OK);
    let date = header(&headers, "date").unwrap();
    let parsed = chrono::DateTime::parse_from_rfc2822(&date.replace("GMT", "+0000")).unwrap();
    let org_now = chrono::DateTime::parse_from_str(&now, "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap();
    let drift = (parsed.timestamp() - org_now.timestamp()).abs();
    assert!(drift <= 2, "Date {date} is not the org clock {now}");
}
