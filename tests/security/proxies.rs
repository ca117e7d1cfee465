//! Client addresses behind a proxy (`http.trusted_proxies`): a forwarding
//! header is believed only from a trusted peer, and then the audit log,
//! the session list and the rate limiter all see the forwarded client.

use muster::config::TrustedProxies;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;

const PASSWORD: &str = "correct horse battery staple";

async fn account_with_password(app: &TestApp) -> String {
    app.owner_with_password("proxied").await.1
}

/// The test server's peers are all 127.0.0.1.
async fn behind_loopback_proxy() -> TestApp {
    TestApp::builder()
        .settings(|s| {
            s.http.trusted_proxies =
                TrustedProxies::parse(["127.0.0.1/32", "10.0.0.0/8"]).expect("ranges");
        })
        .spawn()
        .await
}

/// Signs in with extra headers; the session's secret.
async fn sign_in(app: &TestApp, email: &str, headers: &[(&str, &str)]) -> String {
    let mut request = app
        .post("/api/v1/auth/login")
        .json(&json!({ "email": email, "password": PASSWORD }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("a session").to_owned()
}

/// The `ip` of the newest `account.signed_in` event.
async fn signed_in_ip(app: &TestApp) -> Value {
    let event = app
        .store
        .database()
        .collection::<bson::Document>("audit_events")
        .find_one(bson::doc! { "action": "account.signed_in" })
        .sort(bson::doc! { "_id": -1 })
        .await
        .expect("read the log")
        .expect("a sign-in event");
    serde_json::to_value(&event).expect("json")["ip"].clone()
}

/// The `ip` the session list shows for the current session.
async fn listed_ip(app: &TestApp, session: &str) -> Value {
    let response = app
        .get("/api/v1/me/sessions")
        .bearer_auth(session)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let list: Value = response.json().await.expect("json");
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["current"] == true))
        .map(|item| item["ip"].clone())
        .unwrap_or_else(|| panic!("no current session in {list}"))
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn().await;
    let email = account_with_password(&app).await;
    let session = sign_in(
        &app,
        &email,
        &[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.8"),
        ],
    )
    .await;
    assert_eq!(signed_in_ip(&app).await, "127.0.0.1");
    assert_eq!(listed_ip(&app, &session).await, "127.0.0.1");
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client() {
    let app = behind_loopback_proxy().await;
    let email = account_with_password(&app).await;
    // The client claims 203.0.113.5; the proxies each append who they saw.
    let session = sign_in(
        &app,
        &email,
        &[("x-forwarded-for", "203.0.113.5, 198.51.100.7, 10.1.2.3")],
    )
    .await;
    assert_eq!(signed_in_ip(&app).await, "198.51.100.7");
    assert_eq!(listed_ip(&app, &session).await, "198.51.100.7");

    let session = sign_in(
        &app,
        &email,
        &[("forwarded", "for=\"[2001:db8:cafe::17]:4711\";proto=https")],
    )
    .await;
    assert_eq!(signed_in_ip(&app).await, "2001:db8:cafe::17");
    assert_eq!(listed_ip(&app, &session).await, "2001:db8:cafe::17");

    // A header that names nobody leaves the proxy's own address.
    let session = sign_in(&app, &email, &[("x-forwarded-for", "unknown")]).await;
    assert_eq!(signed_in_ip(&app).await, "127.0.0.1");
    assert_eq!(listed_ip(&app, &session).await, "127.0.0.1");
}

/// Three sign-in attempts, two from `first` and one from `second`, under a
/// sign-in quota of two: whether the third is refused.
async fn third_attempt_refused(app: &TestApp, first: &str, second: &str) -> bool {
    let mut statuses = Vec::new();
    for (n, client) in [first, first, second].into_iter().enumerate() {
        let response = app
            .post("/api/v1/auth/login")
            .header("x-forwarded-for", client)
            .json(&json!({
                "email": format!("nobody-{n}@example.com"),
                "password": "not the password",
            }))
            .send()
            .await
            .expect("the server answers");
        statuses.push(response.status());
    }
    assert_eq!(
        statuses[..2],
        [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED],
        "{statuses:?}"
    );
    statuses[2] == StatusCode::TOO_MANY_REQUESTS
}

#[tokio::test]
async fn the_sign_in_quota_is_the_forwarded_clients_own_only_behind_a_trusted_proxy() {
    let tight = |s: &mut muster::config::Settings| {
        s.rate_limit.login_per_minute = 1;
        s.rate_limit.login_burst = 2;
    };
    let proxied = TestApp::builder()
        .settings(|s| {
            tight(s);
            s.http.trusted_proxies = TrustedProxies::parse(["127.0.0.1/32"]).expect("ranges");
        })
        .spawn()
        .await;
    assert!(
        !third_attempt_refused(&proxied, "198.51.100.7", "198.51.100.8").await,
        "another client behind the proxy has a quota of its own"
    );
    assert!(
        third_attempt_refused(&proxied, "198.51.100.9", "198.51.100.9").await,
        "one client behind the proxy is held to its quota"
    );

    let direct = TestApp::builder().settings(tight).spawn().await;
    assert!(
        third_attempt_refused(&direct, "198.51.100.7", "198.51.100.8").await,
        "an untrusted peer's forwarded addresses share its quota"
    );
}
