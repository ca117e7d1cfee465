use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{scim, setup};

fn bulk(operations: Value) -> Value {
    json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": operations })
}

fn statuses(body: &Value) -> Vec<String> {
    body["Operations"]
        .as_array()
        .expect("Operations")
        .iter()
        .map(|op| op["status"].as_str().expect("status").to_owned())
        .collect()
}

#[tokio::test]
async fn bulk_ids_resolve_in_any_order() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    // The group comes first but needs the user created after it.
    let answer = scim
        .post(
            "/Bulk",
            &bulk(json!([
                { "method": "POST", "path": "/Groups", "bulkId": "g", "data": {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Tour Guides", "members": [{ "type": "User", "value": "bulkId:u" }] } },
                { "method": "POST", "path": "/Users", "bulkId": "u", "data": {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@example.com" } },
            ])),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    let operations = answer.body["Operations"].as_array().expect("Operations");
    assert_eq!(statuses(&answer.body), ["201", "201"]);
    let group = operations
        .iter()
        .find(|op| op["bulkId"] == "g")
        .expect("group result");
    let user = operations
        .iter()
        .find(|op| op["bulkId"] == "u")
        .expect("user result");
    let group_location = group["location"].as_str().expect("location");
    let user_id = user["location"]
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .expect("user id");
    assert!(group["version"].is_string());
    let group_path = group_location.split("/scim/v2").nth(1).expect("path");
    let read = scim.get(group_path).await;
    assert_eq!(
        read.body["members"][0]["value"], user_id,
        "{} {}",
        read.body, answer.body
    );
}

#[tokio::test]
async fn put_patch_delete_and_errors_per_operation() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let id = scim.create_user("bob@example.com").await;
    let answer = scim
        .post(
            "/Bulk",
            &bulk(json!([
                { "method": "PATCH", "path": format!("/Users/{id}"), "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{ "op": "replace", "path": "title", "value": "Boss" }] } },
                { "method": "PUT", "path": format!("/Users/{id}"), "version": "W/\"1\"", "data": { "userName": "bob@example.com" } },
                { "method": "POST", "path": "/Users", "bulkId": "dup", "data": { "userName": "BOB@example.com" } },
                { "method": "DELETE", "path": "/Users/01a00000-0000-7000-8000-000000000000" },
                { "method": "DELETE", "path": format!("/Users/{id}") },
            ])),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    // The PUT names the version the PATCH has just replaced.
    assert_eq!(
        statuses(&answer.body),
        ["200", "412", "409", "404", "204"],
        "{}",
        answer.body
    );
    let conflict = &answer.body["Operations"][2];
    assert_eq!(conflict["response"]["scimType"], "uniqueness");
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn fail_on_errors_stops_early() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let mut request = bulk(json!([
        { "method": "POST", "path": "/Users", "bulkId": "a", "data": { "userName": 1 } },
        { "method": "POST", "path": "/Users", "bulkId": "b", "data": { "userName": 2 } },
        { "method": "POST", "path": "/Users", "bulkId": "c", "data": { "userName": "c@example.com" } },
    ]));
    request["failOnErrors"] = json!(1);
    let answer = scim.post("/Bulk", &request).await;
    assert_eq!(statuses(&answer.body), ["400"]);
    assert_eq!(
        scim.get("/Users?count=0").await.body["totalResults"],
        1,
        "only the owner"
    );
}

#[tokio::test]
async fn circular_and_unknown_references() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let answer = scim
        .post(
            "/Bulk",
            &bulk(json!([
                { "method": "POST", "path": "/Groups", "bulkId": "x", "data": { "displayName": "X", "members": [{ "value": "bulkId:y" }] } },
                { "method": "POST", "path": "/Groups", "bulkId": "y", "data": { "displayName": "Y", "members": [{ "value": "bulkId:x" }] } },
                { "method": "POST", "path": "/Groups", "bulkId": "z", "data": { "displayName": "Z", "members": [{ "value": "bulkId:nowhere" }] } },
            ])),
        )
        .await;
    let results = answer.body["Operations"].as_array().expect("Operations");
    let by_id = |id: &str| {
        results
            .iter()
            .find(|op| op["bulkId"] == id)
            .expect("result")
    };
    assert_eq!(by_id("x")["status"], "409");
    assert_eq!(by_id("y")["status"], "409");
    assert_eq!(by_id("z")["status"], "400");
    assert_eq!(scim.get("/Groups?count=0").await.body["totalResults"], 0);
}

#[tokio::test]
async fn limits_are_enforced_with_413() {
    let app = super::common::TestApp::builder()
        .settings(|s| {
            s.scim.bulk_max_operations = 2;
            s.scim.bulk_max_payload_bytes = 2048;
        })
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    let scim = scim(&app, &org);
    let three = bulk(json!([
        { "method": "DELETE", "path": "/Users/a" },
        { "method": "DELETE", "path": "/Users/b" },
        { "method": "DELETE", "path": "/Users/c" },
    ]));
    let answer = scim.post("/Bulk", &three).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.body["status"], "413");
    let big = bulk(
        json!([{ "method": "POST", "path": "/Users", "bulkId": "a", "data": { "userName": "x".repeat(3000) } }]),
    );
    assert_eq!(
        scim.post("/Bulk", &big).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let bulk_in_bulk =
        bulk(json!([{ "method": "POST", "path": "/Bulk", "bulkId": "a", "data": {} }]));
    let answer = scim.post("/Bulk", &bulk_in_bulk).await;
    assert_eq!(statuses(&answer.body), ["400"]);
}
