//! The HTTP shell: request ids, error formats per surface, rate limits,
//! body limits, health, Swagger UI and the spec.

use crate::common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let first = app.get("/healthz").send().await.expect("request");
    let second = app.get("/api/v1/nope").send().await.expect("request");
    let id = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .expect("x-request-id header")
    };
    assert_ne!(id(&first), id(&second));

    let echoed = app
        .get("/healthz")
        .header("x-request-id", "from-the-proxy-42")
        .send()
        .await
        .expect("request");
    assert_eq!(id(&echoed), "from-the-proxy-42");

    let unsafe_id = app
        .get("/healthz")
        .header("x-request-id", "has spaces and \"quotes\"")
        .send()
        .await
        .expect("request");
    assert_ne!(id(&unsafe_id), "has spaces and \"quotes\"");
}

#[tokio::test]
async fn management_errors_are_problem_json() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/me").send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("application/problem+json")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], 401);
    assert_eq!(body["type"], "urn:muster:problem:unauthorized");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Bearer"))
    );

    let response = app
        .get("/api/v1/does-not-exist")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], 404);

    let response = app
        .post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "urn:muster:problem:bad-request");
}

#[tokio::test]
async fn scim_errors_use_the_scim_error_schema() {
    let app = TestApp::spawn().await;
    for token in [None, Some("mst_scim_nope"), Some("garbage")] {
        let mut request = app.get("/scim/v2/Users");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            response.headers()["content-type"].to_str().ok(),
            Some("application/scim+json")
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        // RFC 7644 §3.12: the status is a string.
        assert_eq!(body["status"], "401");
    }
}

#[tokio::test]
async fn scim_tokens_authenticate_on_scim_routes_and_nowhere_else() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let response = app
        .get("/scim/v2/Users")
        .bearer_auth(&org.scim_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);

    let response = app
        .get("/api/v1/me")
        .bearer_auth(&org.scim_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = app
        .get("/scim/v2/Users")
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn over_quota_requests_get_429_with_retry_after_in_the_surface_format() {
    let app = TestApp::builder()
        .settings(|s| {
            s.rate_limit.api_per_second = 1;
            s.rate_limit.api_burst = 2;
            s.rate_limit.scim_per_second = 1;
            s.rate_limit.scim_burst = 2;
        })
        .spawn()
        .await;

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.get("/api/v1/me").send().await.expect("request"));
    }
    let limited = statuses.pop().expect("third response");
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!(retry_after >= 1);
    let body: Value = limited.json().await.expect("json");
    assert_eq!(body["type"], "urn:muster:problem:rate-limited");

    for _ in 0..2 {
        app.get("/scim/v2/Users").send().await.expect("request");
    }
    let limited = app.get("/scim/v2/Users").send().await.expect("request");
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.expect("json");
    assert_eq!(body["status"], "429");

    // A bearer that has not authenticated buys no quota of its own: it
    // shares the client IP's.
    let other = app
        .get("/api/v1/me")
        .bearer_auth("mst_pat_someone-else")
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = TestApp::builder()
        .settings(|s| s.http.max_body_bytes = 4096)
        .spawn()
        .await;
    let body = format!("{{\"email\":\"{}\",\"password\":\"x\"}}", "a".repeat(5000));
    let response = app
        .post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Chunked, so without a Content-Length to go by.
    let stream = futures::stream::iter(
        body.into_bytes()
            .chunks(1000)
            .map(|chunk| Ok::<_, std::io::Error>(chunk.to_vec()))
            .collect::<Vec<_>>(),
    );
    let response = app
        .post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn swagger_ui_and_the_spec_are_served() {
    let app = TestApp::spawn().await;
    let docs = app.get("/docs").send().await.expect("request");
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.expect("html");
    assert!(html.contains("swagger"), "Swagger UI page");

    let spec: Value = app
        .get("/openapi.json")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(spec["openapi"], "3.0.0");
    assert!(spec["paths"]["/me"].is_object());
    assert_eq!(spec["servers"][0]["url"], "/api/v1");
    let committed: Value = serde_json::from_str(include_str!("../openapi/management.json"))
        .expect("openapi/management.json is JSON");
    assert_eq!(
        spec, committed,
        "openapi/management.json is stale: run `cargo run -- openapi > openapi/management.json`"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let health: Value = app
        .get("/healthz")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    let ready = app.get("/readyz").send().await.expect("request");
    assert_eq!(ready.status(), StatusCode::OK);
}
