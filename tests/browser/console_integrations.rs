//! The console's integrations and audit pages in headless Chromium: a
//! SCIM token created through the form, read from the page and used
//! against `/scim/v2`; the audit CSV downloaded; each page checked with
//! axe-core.
//!
//! The download: rather than configuring Chromium's download directory
//! (a preference that differs between headless modes and needs a poll of
//! the file system), the test reads the download link's `href` from the
//! page and fetches it with the browser's own session cookie, read over
//! WebDriver (`GET /session/{id}/cookie/muster_console`). That is the
//! request the browser would send (the cookie is `HttpOnly`, so a page
//! script could not read it, but WebDriver can), and the answer's headers
//! and body are checked directly.

use super::{Driver, console_app};

use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_owner_creates_a_scim_token_in_the_console_and_downloads_the_audit_log() {
    let driver = Driver::start().await;
    let app = console_app(|_| {}).await;
    let (output, email) = app.owner_with_password("console").await;
    let session = driver.console_session(&app, &email).await;

    let integrations = app.url(&format!("/console/orgs/{}/integrations", output.org_id));
    driver.open(&session, &integrations).await;
    driver
        .wait_for(&session, "the integrations page", "id=\"token-name\"")
        .await;
    driver.assert_accessible(&session, "integrations").await;
    driver
        .fill(&session, &[("#token-name", "Okta in a browser")])
        .await;
    // The header's sign-out button is a submit button too: click the
    // create form's own.
    driver
        .click(&session, "form[action$='/scim-tokens'] button[type=submit]")
        .await;
    driver
        .wait_for(&session, "the created token", "id=\"scim-token\"")
        .await;
    driver.assert_accessible(&session, "token-created").await;
    let shown = driver
        .execute(
            &session,
            "return [document.getElementById('scim-token').value, \
                     document.querySelector('button[data-copy=scim-token]').hidden];",
            json!([]),
        )
        .await;
    let token = shown[0].as_str().expect("the token").to_owned();
    assert!(token.starts_with("mst_scim_"), "{token}");
    assert_eq!(shown[1], false, "console.js shows the copy button");
    let users = app
        .get("/scim/v2/Users")
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET /scim/v2/Users");
    assert_eq!(users.status(), StatusCode::OK);

    let audit = app.url(&format!(
        "/console/orgs/{}/audit?action=scim_token.",
        output.org_id
    ));
    driver.open(&session, &audit).await;
    driver
        .wait_for(&session, "the audit table", "Okta in a browser")
        .await;
    driver.assert_accessible(&session, "audit").await;
    let href = driver
        .execute(
            &session,
            "return document.querySelector('a[href*=\"/audit/export.csv\"]').href;",
            json!([]),
        )
        .await;
    let href = href.as_str().expect("the CSV link").to_owned();
    assert!(href.contains("action=scim_token."), "the filters: {href}");
    let cookie = driver.cookie(&session, "muster_console").await;
    let csv = reqwest::Client::new()
        .get(&href)
        .header("cookie", format!("muster_console={cookie}"))
        .send()
        .await
        .expect("the CSV");
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment; filename=\"audit-")
    );
    let body = csv.text().await.expect("a body");
    assert!(body.starts_with("id,at,actor_kind,"), "{body}");
    assert!(
        body.lines()
            .any(|line| line.contains("scim_token.created") && line.contains("Okta in a browser")),
        "{body}"
    );

    driver
        .open(&session, &app.url("/console/me/activity"))
        .await;
    driver
        .wait_for(
            &session,
            "my activity",
            "<code>account.signed_in</code></td>",
        )
        .await;
    driver.assert_accessible(&session, "my-activity").await;
    driver.close(&session).await;
    app.shutdown().await;
}
