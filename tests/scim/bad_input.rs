//! Bad input gets the right SCIM error and changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use super::{scim, setup};

#[tokio::test]
async fn malformed_bodies() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let raw = |body: &'static str| {
        let scim = &scim;
        let app = &app;
        async move {
            scim.send(
                app.client
                    .post(app.url("/scim/v2/Users"))
                    .header("content-type", "application/scim+json")
                    .body(body),
            )
            .await
        }
    };
    let answer = raw("{\"userName\": ").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.scim_type(), Some("invalidSyntax"));
    let answer = raw("[1, 2]").await;
    assert_eq!(answer.scim_type(), Some("invalidSyntax"));

    for (body, scim_type) in [
        (json!({ "userName": 42 }), "invalidValue"),
        (
            json!({ "userName": "x@example.com", "active": "maybe" }),
            "invalidValue",
        ),
        (
            json!({ "userName": "x@example.com", "favouriteColour": "blue" }),
            "invalidValue",
        ),
        (
            json!({ "userName": "x@example.com", "name": "not an object" }),
            "invalidValue",
        ),
        (
            json!({ "name": { "givenName": "No userName" } }),
            "invalidValue",
        ),
        (
            json!({ "userName": "x@example.com", "emails": [{ "value": "a@x.example", "primary": true }, { "value": "b@x.example", "primary": true }] }),
            "invalidValue",
        ),
    ] {
        let answer = scim.post("/Users", &body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
        assert_eq!(
            answer.scim_type(),
            Some(scim_type),
            "{body}: {}",
            answer.body
        );
    }
    assert_eq!(
        scim.get("/Users?count=0").await.body["totalResults"],
        1,
        "only the owner"
    );

    let wrong_type = scim
        .send(
            app.client
                .post(app.url("/scim/v2/Users"))
                .header("content-type", "text/plain")
                .body("userName=x"),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn bad_filters() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let too_long = format!("userName eq \"{}\"", "x".repeat(5000));
    let too_deep = format!("{}userName pr{}", "(".repeat(40), ")".repeat(40));
    for filter in [
        "userName eq",
        "userName equals \"x\"",
        "nonsense",
        "(userName pr",
        "userName eq \"unterminated",
        too_long.as_str(),
        too_deep.as_str(),
        "groups.value eq \"x\"",
    ] {
        let answer = scim.filter("Users", filter).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{filter}");
        assert_eq!(
            answer.scim_type(),
            Some("invalidFilter"),
            "{filter}: {}",
            answer.body
        );
    }
    let answer = scim.filter("Users", "favouriteColour eq \"blue\"").await;
    assert_eq!(answer.scim_type(), Some("invalidFilter"));
}

#[tokio::test]
async fn bad_patches_change_nothing() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let id = scim.create_user("p@example.com").await;
    let path = format!("/Users/{id}");
    let cases = [
        (
            json!([{ "op": "replace", "path": "emails[type eq", "value": "x" }]),
            "invalidPath",
        ),
        (
            json!([{ "op": "replace", "path": "nope.nothing", "value": "x" }]),
            "invalidPath",
        ),
        (json!([{ "op": "remove" }]), "noTarget"),
        (
            json!([{ "op": "remove", "path": "emails[type eq \"fax\"]" }]),
            "noTarget",
        ),
        (
            json!([{ "op": "replace", "path": "id", "value": "other" }]),
            "mutability",
        ),
        (
            json!([{ "op": "replace", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z" }]),
            "mutability",
        ),
        (
            json!([{ "op": "frobnicate", "path": "title", "value": "x" }]),
            "invalidSyntax",
        ),
        (
            json!([{ "op": "replace", "path": "title", "value": "ok" }, { "op": "replace", "path": "active", "value": "maybe" }]),
            "invalidValue",
        ),
    ];
    for (operations, scim_type) in cases {
        let answer = scim.patch_ops(&path, operations.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{operations}: {}",
            answer.body
        );
        assert_eq!(
            answer.scim_type(),
            Some(scim_type),
            "{operations}: {}",
            answer.body
        );
    }
    let user = scim.get(&path).await;
    assert_eq!(
        user.body["meta"]["version"], "W/\"1\"",
        "no bad request changed anything"
    );
    assert!(user.body.get("title").is_none());
}

#[tokio::test]
async fn oversized_requests_get_413_in_scim_format() {
    let app = super::common::TestApp::builder()
        .settings(|s| {
            s.http.max_body_bytes = 8192;
            s.scim.bulk_max_payload_bytes = 8192;
        })
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    let scim = scim(&app, &org);
    let answer = scim
        .post(
            "/Users",
            &json!({ "userName": "big@example.com", "title": "x".repeat(10_000) }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.body["status"], "413");
}
