//! My account in a real browser: an owner turns on two-factor
//! authentication from the console (reading the secret off the page, as a
//! person types it into an app), signs out, and signs in again with the
//! password and then a code: the "sign in with TOTP" check. Each
//! account page, and the code step, passes axe-core.

use super::{Driver, PASSWORD, console_app};

use chrono::Utc;
use muster::auth::totp::{TotpSecret, step_of};
use serde_json::{Value, json};

#[tokio::test]
async fn an_owner_turns_on_two_factor_in_the_console_and_signs_in_with_a_code() {
    let driver = Driver::start().await;
    let app = console_app(|_| {}).await;
    let (output, email) = app.owner_with_password("console").await;
    let members_link = format!("/console/orgs/{}/members", output.org_id);

    let session = driver.console_session(&app, &email).await;

    // The header's link leads to the account page.
    driver.click(&session, "header a.me-link").await;
    driver
        .wait_for(&session, "my account", "id=\"delete-account\"")
        .await;
    driver.assert_accessible(&session, "my account").await;

    driver.click(&session, "a[href=\"/console/me/mfa\"]").await;
    driver
        .wait_for(&session, "the MFA page", "id=\"start-mfa\"")
        .await;
    driver
        .click(&session, "#start-mfa button[type=submit]")
        .await;
    driver
        .wait_for(&session, "the enrolment", "id=\"totp-secret\"")
        .await;
    driver.assert_accessible(&session, "MFA enrolment").await;
    // The QR code loaded under the page's policy: a real image.
    let qr_width = driver
        .execute(
            &session,
            "const img = document.querySelector('img.qr');\
             return img && img.complete ? img.naturalWidth : 0;",
            json!([]),
        )
        .await;
    assert!(qr_width.as_u64().unwrap_or(0) > 0, "the QR code renders");
    let shown = driver
        .execute(
            &session,
            "return document.getElementById('totp-secret').textContent;",
            json!([]),
        )
        .await;
    let secret = TotpSecret::from_base32(shown.as_str().unwrap_or_default().trim())
        .expect("a base32 secret on the page");
    let step = step_of(Utc::now());
    let code = secret.code_at(step);
    driver
        .fill(
            &session,
            &[("#code", code.as_str()), ("#password", PASSWORD)],
        )
        .await;
    driver
        .click(&session, "#confirm-mfa button[type=submit]")
        .await;
    let codes = driver
        .wait_for(&session, "the recovery codes", "id=\"recovery-codes\"")
        .await;
    assert_eq!(codes.matches("<li><code>").count(), 10);
    driver.assert_accessible(&session, "recovery codes").await;
    driver.open(&session, &app.url("/console/me/mfa")).await;
    driver
        .wait_for(&session, "the MFA page, on", "id=\"disable-mfa\"")
        .await;
    driver.assert_accessible(&session, "MFA on").await;

    driver
        .open(&session, &app.url("/console/me/sessions"))
        .await;
    driver
        .wait_for(&session, "the sessions page", "id=\"end-others\"")
        .await;
    driver.assert_accessible(&session, "sessions").await;
    driver.assert_no_sideways_scroll(&session, "sessions").await;

    driver.open(&session, &app.url("/console/me/tokens")).await;
    driver
        .wait_for(&session, "the tokens page", "id=\"new-token-form\"")
        .await;
    driver.assert_accessible(&session, "tokens").await;
    driver.fill(&session, &[("#name", "browser script")]).await;
    driver
        .click(&session, "#new-token-form button[type=submit]")
        .await;
    driver
        .wait_for(&session, "the new token", "id=\"new-token\"")
        .await;
    driver.assert_accessible(&session, "new token").await;
    driver.assert_no_sideways_scroll(&session, "tokens").await;

    // Signed out, the password alone no longer signs in: the code step.
    driver.click(&session, "form.sign-out button").await;
    driver
        .wait_for(&session, "the sign-in form", "id=\"email\"")
        .await;
    driver
        .fill_and_submit(
            &session,
            &[("#email", email.as_str()), ("#password", PASSWORD)],
        )
        .await;
    driver
        .wait_for(&session, "the code step", "id=\"recovery_code\"")
        .await;
    driver.assert_accessible(&session, "MFA sign-in").await;
    // A step after the one the confirmation spent, still in the window.
    let code = secret.code_at(step.max(step_of(Utc::now()) - 1) + 1);
    driver
        .fill_and_submit(&session, &[("#code", code.as_str())])
        .await;
    let home = driver
        .wait_for(&session, "the organizations page", &members_link)
        .await;
    assert!(home.contains("My account"), "signed in again");
    driver.close(&session).await;

    let me: Value = app
        .get("/api/v1/me")
        .bearer_auth(&output.owner_token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["account"]["mfa_enabled"], true, "{me}");
    app.shutdown().await;
}
