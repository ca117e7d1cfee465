//! Security headers (issue 12's "Headers"): a strict policy on the HTML
//! Muster renders, `nosniff` everywhere, no referrer, no caching of API
//! answers, HSTS only behind HTTPS.

use crate::common::TestApp;

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn pages_and_api_answers_carry_the_security_headers() {
    let app = TestApp::spawn().await;
    // An unknown link still renders the page (saying it is not valid).
    let page = app
        .get("/invite/mst_inv_0000000000000000000000000000000000000000000000000000000000000000")
        .send()
        .await
        .expect("the invitation page");
    assert!(
        header(&page, "content-type").is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.headers()
    );
    let policy = header(&page, "content-security-policy").expect("a policy");
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "script-src 'none'",
        "style-src 'sha256-",
    ] {
        assert!(policy.contains(part), "{part} in {policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(header(&page, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&page, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&page, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    assert_eq!(
        header(&page, "strict-transport-security"),
        None,
        "plain HTTP"
    );

    let api = app.get("/api/v1/roles").send().await.expect("GET /roles");
    assert_eq!(header(&api, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&api, "cache-control"), Some("no-store"));
    assert_eq!(
        header(&api, "content-security-policy"),
        None,
        "JSON needs none"
    );
    let scim = app.get("/scim/v2/Users").send().await.expect("GET /Users");
    assert_eq!(header(&scim, "x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn behind_https_browsers_are_told_to_stay_on_it() {
    let app = TestApp::builder()
        .settings(|s| s.http.public_url = "https://muster.example.com".into())
        .spawn()
        .await;
    let answer = app.get("/healthz").send().await.expect("GET /healthz");
    assert_eq!(
        header(&answer, "strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}
