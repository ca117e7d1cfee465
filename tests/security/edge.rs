//! The HTTP edge: input that must not hurt the server, and rate limits keyed on who is proven.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Scim, TestApp};

const PASSWORD: &str = "correct horse battery staple";

async fn account_with_password(app: &TestApp) -> String {
    app.owner_with_password("signer").await.1
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post("/api/v1/auth/login")
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("the server answers")
}

fn made_up_bearer(n: usize) -> String {
    format!("mst_ses_{:064x}", n as u128 * 7919 + 1)
}

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

#[tokio::test]
async fn made_up_bearers_buy_no_fresh_bucket_on_sign_in() {
    let app = TestApp::builder()
        .settings(|s| {
            s.rate_limit.api_per_second = 1;
            s.rate_limit.api_burst = 5;
            s.rate_limit.login_per_minute = 1;
            s.rate_limit.login_burst = 5;
            // Out of the way: this is about the request quota's key.
            s.rate_limit.login_failures_per_ip = 1000;
        })
        .spawn()
        .await;
    let mut limited = None;
    for attempt in 0..150 {
        let response = app
            .post("/api/v1/auth/login")
            .bearer_auth(made_up_bearer(attempt))
            .json(&json!({
                "email": format!("guess-{attempt}@example.com"),
                "password": "not the password",
            }))
            .send()
            .await
            .expect("the server answers");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = limited.expect("150 guesses with made-up bearers met no 429");
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.expect("json");
    assert_eq!(body["type"], "urn:muster:problem:rate-limited");
}

#[tokio::test]
async fn a_proven_token_keeps_its_own_bucket_while_junk_exhausts_the_ip() {
    let app = TestApp::builder()
        .settings(|s| {
            s.rate_limit.api_per_second = 1;
            s.rate_limit.api_burst = 3;
            s.rate_limit.scim_per_second = 1;
            s.rate_limit.scim_burst = 3;
        })
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    let scim = Scim::new(&app, &org.scim_token);
    let newcomer = app.with_member(&org, muster::domain::Role::Viewer).await;
    // Proven once: from now on these tokens count under their own keys.
    app.me(&org.owner.token).await;
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);

    let exhaust_with_junk = async |path: &str, from: usize| {
        for attempt in from..from + 50 {
            let response = app
                .get(path)
                .bearer_auth(made_up_bearer(attempt))
                .send()
                .await
                .expect("the server answers");
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                return;
            }
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        panic!("50 made-up bearers met no 429");
    };
    exhaust_with_junk("/api/v1/me", 0).await;
    // The same client IP, but a token that has authenticated: its own
    // bucket.
    app.me(&org.owner.token).await;
    exhaust_with_junk("/scim/v2/Users", 0).await;
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);

    // A good token that has not authenticated yet is, so far, just a
    // bearer from that IP: a token must prove itself before it counts
    // alone, or any made-up one would.
    exhaust_with_junk("/api/v1/me", 100).await;
    let response = app
        .get("/api/v1/me")
        .bearer_auth(&newcomer.token)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_account_limit_answers_alike_for_known_and_unknown_emails() {
    let app = TestApp::builder()
        .settings(|s| {
            s.rate_limit.login_failures_per_account = 3;
            s.rate_limit.login_burst = 100;
        })
        .spawn()
        .await;
    let known = account_with_password(&app).await;
    let unknown = format!("nobody-{}@example.com", uuid::Uuid::new_v4().simple());

    let mut refusals = Vec::new();
    for email in [&known, &unknown] {
        let mut refused = None;
        for _ in 0..10 {
            let response = sign_in(&app, email, "not the password").await;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                refused = Some(response);
                break;
            }
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let refused = refused.unwrap_or_else(|| panic!("10 failures for {email} met no 429"));
        assert!(refused.headers().contains_key("retry-after"));
        // Locked means locked: the right password is refused too.
        let right = sign_in(&app, email, PASSWORD).await;
        assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
        refusals.push(refused.json::<Value>().await.expect("json"));
    }
    let shape = |body: &Value| {
        let mut keys: Vec<String> = body.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        (keys, body["type"].clone(), body["status"].clone())
    };
    assert_eq!(shape(&refusals[0]), shape(&refusals[1]));
    assert_eq!(refusals[0]["type"], "urn:muster:problem:rate-limited");
}

#[tokio::test]
async fn a_successful_sign_in_forgets_the_accounts_failures() {
    let app = TestApp::builder()
        .settings(|s| {
            s.rate_limit.login_failures_per_account = 3;
            s.rate_limit.login_burst = 100;
        })
        .spawn()
        .await;
    let email = account_with_password(&app).await;
    for round in 0..2 {
        for _ in 0..2 {
            let response = sign_in(&app, &email, "not the password").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "round {round}");
        }
        let response = sign_in(&app, &email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
    }
}

#[tokio::test]
async fn hashing_beyond_the_permits_is_answered_503_in_each_surface_format() {
    let app = TestApp::builder()
        .settings(|s| {
            s.auth.password_hash_permits = 1;
            s.auth.password_hash_wait_ms = 50;
        })
        .spawn()
        .await;
    let email = account_with_password(&app).await;
    let org = app.with_org_owner().await;
    let scim = Scim::new(&app, &org.scim_token);
    let held = app.state.hashing().try_hold().expect("the only permit");

    let response = sign_in(&app, &email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "urn:muster:problem:busy");

    let mut with_password = user("hashed@example.com");
    with_password["password"] = json!("an IdP-chosen password");
    let answer = scim.post("/Users", &with_password).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.body["status"], "503");

    let answer = scim
        .post(
            "/Bulk",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [{ "method": "POST", "path": "/Users", "bulkId": "u",
                                 "data": with_password }],
            }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["Operations"][0]["status"], "503");

    drop(held);
    let response = sign_in(&app, &email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer = scim.post("/Users", &with_password).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
}

#[tokio::test]
async fn concurrent_sign_ins_beyond_one_permit_are_shed_never_failed() {
    let app = TestApp::builder()
        .settings(|s| {
            s.auth.password_hash_permits = 1;
            s.auth.password_hash_wait_ms = 0;
            s.rate_limit.login_burst = 100;
            s.rate_limit.login_failures_per_account = 100;
        })
        .spawn()
        .await;
    let email = account_with_password(&app).await;
    let attempts = (0..16).map(|_| sign_in(&app, &email, "not the password"));
    let responses = futures::future::join_all(attempts).await;
    let mut shed = 0;
    for response in responses {
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(response.headers().contains_key("retry-after"));
                shed += 1;
            }
            other => panic!("a concurrent sign-in answered {other}"),
        }
    }
    // Each check takes milliseconds and the requests arrive together, so
    // with one permit and no wait some of them must be shed.
    assert!(
        shed > 0,
        "16 concurrent sign-ins with one permit: none shed"
    );
}
