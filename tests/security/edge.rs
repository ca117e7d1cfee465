//! The HTTP edge: input that must not hurt the server, and rate limits keyed on who is proven.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Scim, TestApp};

fn user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
    })
}

#[tokio::test]
async fn a_bulk_path_that_is_no_uri_fails_only_its_own_operation() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let scim = Scim::new(&app, &org.scim_token);
    let answer = scim
        .post(
            "/Bulk",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    { "method": "POST", "path": "/Users", "bulkId": "before",
                      "data": user("before@example.com") },
                    { "method": "PUT", "path": "/Users/a b", "data": user("space@example.com") },
                    { "method": "POST", "path": "/Users", "bulkId": "after",
                      "data": user("after@example.com") },
                ],
            }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    let operations = answer.body["Operations"].as_array().expect("Operations");
    assert_eq!(operations.len(), 3, "{}", answer.body);
    assert_eq!(operations[0]["status"], "201", "{}", answer.body);
    assert_eq!(operations[1]["status"], "400", "{}", answer.body);
    assert_eq!(operations[1]["response"]["scimType"], "invalidPath");
    // Without failOnErrors the operations after a failure still run.
    assert_eq!(operations[2]["status"], "201", "{}", answer.body);
}

#[tokio::test]
async fn an_h2c_body_without_a_length_is_cut_off_at_the_limit() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("an h2c client");
    const TOTAL: usize = 8 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    // Counts what the client handed to the connection: HTTP/2 flow control
    // lets it run only a window ahead of what the server reads.
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let chunks = futures::stream::iter((0..TOTAL / CHUNK).map(move |_| {
        counter.fetch_add(CHUNK, Ordering::SeqCst);
        Ok::<_, std::io::Error>(vec![b' '; CHUNK])
    }));
    let response = client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The server stopped reading past the limit (1 MiB) and answered: the
    // client never got to send the whole body.
    let sent = produced.load(Ordering::SeqCst);
    assert!(sent < TOTAL, "the client sent all {sent} bytes");
}
