//! The console's groups, projects and settings pages in headless
//! Chromium: their forms work as a browser sends them (CSRF token and
//! Origin included), what they change is what the API then shows, and
//! each page passes axe-core.

use super::{Driver, console_app};

use reqwest::Method;
use serde_json::{Value, json};

async fn api_get(app: &crate::common::TestApp, token: &str, path: &str) -> Value {
    let (status, body) = app.call(Method::GET, path, token, None).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

#[tokio::test]
async fn an_owner_maps_a_group_to_a_role_and_changes_a_setting_in_the_console() {
    let driver = Driver::start().await;
    let app = console_app(|_| {}).await;
    let (output, email) = app.owner_with_password("console").await;
    let token = output.owner_token.clone();
    let org = output.org_id.clone();
    let session = driver.console_session(&app, &email).await;

    // Groups: the empty list, then a new group, mapped to a role.
    let groups = format!("/console/orgs/{org}/groups");
    driver.open(&session, &app.url(&groups)).await;
    driver
        .wait_for(&session, "the groups page", "has no groups yet")
        .await;
    driver.assert_accessible(&session, "empty groups").await;
    driver
        .fill(&session, &[("#display_name", "Engineering")])
        .await;
    // The header's sign-out is a form too: click this form's button.
    driver
        .click(&session, "form[action$=\"/groups\"] button[type=submit]")
        .await;
    driver
        .wait_for(&session, "the new group's page", "The group was created.")
        .await;
    driver.assert_accessible(&session, "group").await;
    driver
        .execute(
            &session,
            "document.querySelector('#role').value = arguments[0]; return true;",
            json!(["contributor"]),
        )
        .await;
    driver
        .click(
            &session,
            "form[action$=\"/role-mapping\"] button[type=submit]",
        )
        .await;
    driver
        .wait_for(
            &session,
            "the mapping saved",
            "The group's role mapping was saved.",
        )
        .await;
    // The owner, the organization's one member, added: the page's
    // members table is checked too.
    driver
        .click(&session, "form[action$=\"/members\"] button[value=\"add\"]")
        .await;
    driver
        .wait_for(
            &session,
            "the member added",
            "The member was added to the group.",
        )
        .await;
    driver
        .wait_for(
            &session,
            "the members table",
            "aria-label=\"Members of the group\"",
        )
        .await;
    driver
        .assert_accessible(&session, "group with members")
        .await;
    let listed = api_get(&app, &token, &format!("/orgs/{org}/groups")).await;
    assert_eq!(listed["items"][0]["display_name"], "Engineering");
    assert_eq!(listed["items"][0]["role_mapping"]["role"], "contributor");
    assert_eq!(listed["items"][0]["member_count"], 1);
    driver.open(&session, &app.url(&groups)).await;
    driver
        .wait_for(&session, "the groups list", "Engineering")
        .await;
    driver.assert_accessible(&session, "groups").await;

    // Projects: one created, so the table's row forms are checked too.
    driver
        .open(&session, &app.url(&format!("/console/orgs/{org}/projects")))
        .await;
    driver
        .wait_for(&session, "the projects page", "Create a project")
        .await;
    driver.fill(&session, &[("#name", "Website")]).await;
    driver
        .click(&session, "form[action$=\"/projects\"] button[type=submit]")
        .await;
    driver
        .wait_for(&session, "the project created", "The project was created.")
        .await;
    driver.assert_accessible(&session, "projects").await;

    // Settings: the allowed domains, saved and seen through the API.
    let settings = format!("/console/orgs/{org}/settings");
    driver.open(&session, &app.url(&settings)).await;
    driver
        .wait_for(&session, "the settings page", "Save the settings")
        .await;
    driver.assert_accessible(&session, "settings").await;
    driver.clear(&session, "#allowed_email_domains").await;
    driver
        .fill(&session, &[("#allowed_email_domains", "acme.example")])
        .await;
    driver
        .click(&session, "form.settings button[type=submit]")
        .await;
    driver
        .wait_for(&session, "the settings saved", "The settings were saved.")
        .await;
    let seen = api_get(&app, &token, &format!("/orgs/{org}")).await;
    assert_eq!(
        seen["settings"]["allowed_email_domains"],
        json!(["acme.example"])
    );

    // A refusal in the page (the wrong name typed) is accessible too.
    driver.fill(&session, &[("#confirm", "not the name")]).await;
    driver
        .click(&session, "form[action$=\"/delete\"] button[type=submit]")
        .await;
    driver
        .wait_for(&session, "the refusal", "id=\"delete-error\"")
        .await;
    driver
        .assert_accessible(&session, "settings with a refusal")
        .await;
    api_get(&app, &token, &format!("/orgs/{org}")).await;
    driver.close(&session).await;
    app.shutdown().await;
}
