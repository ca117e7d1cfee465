//! The console's members pages in headless Chromium: an owner changes a
//! role and suspends a member until a date through the forms, an admin is
//! refused the owner role with the reason on the page, and the table (with
//! filters) and the member page pass axe-core.

use super::{Driver, PASSWORD, console_app};
use crate::common::{MemberFixture, OrgFixture, TestApp};

use chrono::Utc;
use muster::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The organization `owner_with_password` made, as `with_member` takes it.
async fn fixture_of(app: &TestApp, output: &muster::bootstrap::BootstrapOutput) -> OrgFixture {
    let org_id = muster::domain::OrgId::parse(&output.org_id).expect("org id");
    let account_id = muster::domain::AccountId::parse(&output.owner_account_id).expect("id");
    let member = muster::store::members::find_by_account(&app.store, None, &org_id, &account_id)
        .await
        .expect("read member")
        .expect("owner membership");
    OrgFixture {
        org_id,
        owner: MemberFixture {
            account_id,
            member_id: member.id,
            email: String::new(),
            token: output.owner_token.clone(),
        },
        scim_token: output.scim_token.clone(),
    }
}

/// Gives `member` the password [`PASSWORD`].
async fn with_password(app: &TestApp, member: &MemberFixture) {
    let hash = muster::auth::password::hash_password(PASSWORD).expect("hash");
    let store = &app.store;
    let set = muster::in_transaction!(store, |session| -> Result<bool, mongodb::error::Error> {
        muster::store::accounts::set_password_hash(
            store,
            session,
            &member.account_id,
            &hash,
            Utc::now(),
        )
        .await
    })
    .expect("set a password");
    assert!(set);
}

/// A new browser session signed in to the console as `email`.
async fn signed_in(driver: &Driver, app: &TestApp, email: &str) -> String {
    let session = driver.session().await;
    driver.open(&session, &app.url("/console/sign-in")).await;
    driver
        .wait_for(&session, "the sign-in form", "id=\"password\"")
        .await;
    driver
        .fill_and_submit(&session, &[("#email", email), ("#password", PASSWORD)])
        .await;
    driver
        .wait_for(&session, "the organizations page", "<h1>Organizations</h1>")
        .await;
    session
}

/// On a phone-sized window the page does not scroll sideways (the
/// members table scrolls inside its own box).
async fn assert_fits_a_phone(driver: &Driver, session: &str, page: &str) {
    driver
        .command(
            reqwest::Method::POST,
            &format!("/session/{session}/window/rect"),
            json!({ "width": 375, "height": 800 }),
        )
        .await;
    // The widths, and what sticks out (to say what to fix).
    let widths = driver
        .execute(
            session,
            "const width = document.documentElement.clientWidth;\
             const wide = [...document.body.querySelectorAll('*')]\
               .filter(e => (e.getBoundingClientRect().right > width || e.scrollWidth > e.clientWidth + 1) && !e.closest('.table'))\
               .map(e => e.tagName + '.' + e.className + ':' + e.scrollWidth + '/' + e.clientWidth + ' ' + e.textContent.slice(0, 40));\
             return [document.documentElement.scrollWidth, width, wide.slice(0, 10)];",
            json!([]),
        )
        .await;
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "the {page} page is wider than a phone: {widths}"
    );
}

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
    let org = fixture_of(&app, &output).await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    let session = signed_in(&driver, &app, &email).await;
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
    assert_fits_a_phone(&driver, &session, "member").await;

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
    assert_fits_a_phone(&driver, &session, "members").await;
    driver.close(&session).await;
    app.shutdown().await;
}

#[tokio::test]
async fn an_admin_is_refused_the_owner_role_in_the_console_with_the_reason() {
    let driver = Driver::start().await;
    let app = console_app(|_| {}).await;
    let (output, _) = app.owner_with_password("console").await;
    let org = fixture_of(&app, &output).await;
    let admin = app.with_member(&org, Role::Admin).await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    with_password(&app, &admin).await;
    let session = signed_in(&driver, &app, &admin.email).await;

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
