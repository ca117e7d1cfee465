//! `/metrics` after traffic on every surface: each series this slice
//! records is there with plausible values, and a scrape without the
//! configured token is refused.

use crate::common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::json;

const SCRAPE_TOKEN: &str = "scrape-7c1e2f";

/// The value of the first sample of `name` whose labels include every
/// one of `labels` (`key="value"`).
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_count_every_surface_and_want_their_token() {
    let app = TestApp::builder()
        .settings(|s| {
            s.metrics.token = Some(SCRAPE_TOKEN.into());
            s.rate_limit.login_per_minute = 1;
            s.rate_limit.login_burst = 1;
        })
        .spawn()
        .await;
    let org = app.with_org_owner().await;

    let members = app
        .get(&format!("/api/v1/orgs/{}/members", org.org_id))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("members");
    assert_eq!(members.status(), StatusCode::OK);
    let users = app
        .get("/scim/v2/Users")
        .bearer_auth(&org.scim_token)
        .send()
        .await
        .expect("users");
    assert_eq!(users.status(), StatusCode::OK);
    let forged = app
        .get("/api/v1/me")
        .bearer_auth(format!("mst_pat_{}", "0".repeat(64)))
        .send()
        .await
        .expect("me");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let mut limited = false;
    for _ in 0..3 {
        let login = app
            .post("/api/v1/auth/login")
            .json(&json!({ "email": "nobody@example.com", "password": "not a password" }))
            .send()
            .await
            .expect("login");
        limited |= login.status() == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "the sign-in quota of one a minute turned one away");

    for token in [None, Some("wrong")] {
        let mut scrape = app.get("/metrics");
        if let Some(token) = token {
            scrape = scrape.bearer_auth(token);
        }
        let refused = scrape.send().await.expect("scrape");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let scrape = app
        .get("/metrics")
        .bearer_auth(SCRAPE_TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(scrape.status(), StatusCode::OK);
    assert!(
        scrape
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain")),
    );
    let text = scrape.text().await.expect("text");

    let requests = sample(
        &text,
        "muster_http_requests_total",
        &[
            r#"route="/api/v1/orgs/{org}/members""#,
            r#"method="GET""#,
            r#"status="200""#,
        ],
    );
    assert!(requests.is_some_and(|n| n >= 1.0), "{text}");
    // Routes, never raw paths with ids.
    assert!(!text.contains(org.org_id.as_str()), "{text}");
    let latency = sample(
        &text,
        "muster_http_request_duration_seconds_count",
        &[r#"route="/api/v1/orgs/{org}/members""#],
    );
    assert!(latency.is_some_and(|n| n >= 1.0), "{text}");
    assert!(
        text.contains("muster_http_request_duration_seconds_bucket"),
        "{text}"
    );
    let scim = sample(
        &text,
        "muster_scim_operations_total",
        &[r#"resource="Users""#, r#"method="GET""#],
    );
    assert!(scim.is_some_and(|n| n >= 1.0), "{text}");
    let failures = sample(&text, "muster_auth_failures_total", &[r#"kind="invalid""#]);
    assert!(failures.is_some_and(|n| n >= 1.0), "{text}");
    let rejected = sample(
        &text,
        "muster_rate_limited_total",
        &[r#"surface="sign_in""#],
    );
    assert!(rejected.is_some_and(|n| n >= 1.0), "{text}");
    let rss = sample(&text, "muster_process_resident_memory_bytes", &[]);
    assert!(rss.is_some_and(|bytes| bytes > 1_000_000.0), "{text}");
    let cpu = sample(&text, "muster_process_cpu_seconds_total", &[]);
    assert!(cpu.is_some_and(|seconds| seconds > 0.0), "{text}");
}
