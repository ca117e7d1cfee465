//! The console's members pages in headless Chromium: an owner changes a
//! role and suspends a member until a date through the forms, an admin is
//! refused the owner role with the reason on the page, and the table (with
//! filters) and the member page pass axe-core.

use super::{Driver, console_app};
use crate::common::{MemberFixture, OrgFixture, TestApp};

use muster::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn api_member(app: &TestApp, org: &OrgFixture, member: &MemberFixture) -> Value {
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/members/{}", org.org_id, member.member_id),
            &org.owner.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn an_owner_changes_a_role_and_suspends_a_member_in_the_console() {
    let driver = Driver::start().await;
    let app = console_app(|_| {}).await;
    let (output, email) = app.owner_with_password("console").await;
    let org = app.org_of(&output).await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    let session = driver.console_session(&app, &email).await;
    let member_page = app.url(&format!(
        "/console/orgs/{}/members/{}",
        org.org_id, viewer.member_id
    ));

    driver.open(&session, &member_page).await;
    driver
        .wait_for(&session, "the member page", "id=\"role-form\"")
        .await;
    driver.assert_accessible(&session, "member").await;

    // The role, chosen and sent as a person would.
    driver
        .click(&session, "#new-role option[value=contributor]")
        .await;
    driver
        .click(&session, "#role-form button[type=submit]")
        .await;
    driver
        .wait_for(&session, "the role's notice", "The role was changed.")
        .await;
    assert_eq!(api_member(&app, &org, &viewer).await["role"], "contributor");

    // A suspension until a date: WebDriver's typing into a date field
    // depends on the browser's locale, so the value is set as the picker
    // would set it.
    driver
        .click(&session, "#new-status option[value=suspended]")
        .await;
    driver
        .execute(
            &session,
            "document.getElementById('suspended-until').value = arguments[0]; return true;",
            json!(["2030-01-31T09:30"]),
        )
        .await;
    driver
        .click(&session, "#status-form button[type=submit]")
        .await;
    let page = driver
        .wait_for(&session, "the status's notice", "The status was changed.")
        .await;
    assert!(page.contains("datetime=\"2030-01-31T09:30:00Z\""), "{page}");
    let view = api_member(&app, &org, &viewer).await;
    assert_eq!(view["status"], "suspended");
    let until =
        chrono::DateTime::parse_from_rfc3339(view["suspended_until"].as_str().expect("an end"))
            .expect("an instant");
    assert_eq!(until.to_rfc3339(), "2030-01-31T09:30:00+00:00");
    // console.js shows the time in the viewer's zone and keeps the UTC
    // text as the element's title.
    let shown = driver
        .execute(
            &session,
            "const t = document.querySelector('time[datetime=\"2030-01-31T09:30:00Z\"]');\
             return t ? [t.title, t.textContent] : null;",
            json!([]),
        )
        .await;
    assert_eq!(shown[0], "2030-01-31 09:30 UTC", "{shown}");
    assert_ne!(shown[1], shown[0], "localized: {shown}");
    driver
        .assert_accessible(&session, "member, after a change")
        .await;
    driver.assert_fits_a_phone(&session, "member").await;

    // The table, filtered, with the suspension's end.
    driver
        .open(
            &session,
            &app.url(&format!(
                "/console/orgs/{}/members?status=suspended&role=contributor",
                org.org_id
            )),
        )
        .await;
    let table = driver
        .wait_for(&session, "the filtered table", "<table")
        .await;
    assert!(table.contains(&viewer.email), "{table}");
    assert!(
        table.contains("<option value=\"suspended\" selected"),
        "{table}"
    );
    driver
        .assert_accessible(&session, "members (filtered)")
        .await;
    driver.assert_fits_a_phone(&session, "members").await;
    driver.close(&session).await;
    app.shutdown().await;
}

#[tokio::test]
async fn an_admin_is_refused_the_owner_role_in_the_console_with_the_reason() {
    let driver = Driver::start().await;
    let app = console_app(|_| {}).await;
    let (output, _) = app.owner_with_password("console").await;
    let org = app.org_of(&output).await;
    let admin = app.with_member(&org, Role::Admin).await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    app.give_password(&admin.account_id).await;
    let session = driver.console_session(&app, &admin.email).await;

    driver
        .open(
            &session,
            &app.url(&format!(
                "/console/orgs/{}/members/{}",
                org.org_id, viewer.member_id
            )),
        )
        .await;
    driver
        .wait_for(&session, "the member page", "id=\"role-form\"")
        .await;
    driver
        .click(&session, "#new-role option[value=owner]")
        .await;
    driver
        .click(&session, "#role-form button[type=submit]")
        .await;
    let page = driver
        .wait_for(&session, "the refusal", "id=\"role-error\"")
        .await;
    assert!(
        page.contains("only an owner may grant the owner role"),
        "{page}"
    );
    assert_eq!(api_member(&app, &org, &viewer).await["role"], "viewer");
    driver.assert_accessible(&session, "member, refused").await;
    driver.close(&session).await;
    app.shutdown().await;
}
