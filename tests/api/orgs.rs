//! Organizations: one founding path for the API and `muster bootstrap`,
//! unique names whichever face founds or renames, bad changes refused
//! whole.

use chrono::Utc;
use muster::bootstrap::{BootstrapError, BootstrapInput, bootstrap};
use muster::domain::Email;
use muster::store;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::common::TestApp;
use super::{call, session_for};

const NAME_TAKEN: &str = "urn:muster:problem:organization-name-taken";

async fn audit_count(app: &TestApp, org: &str) -> u64 {
    store::audit::count_for_org(&app.store, org)
        .await
        .expect("count audit events")
}

#[tokio::test]
async fn names_are_unique_whichever_face_founds_or_renames() {
    let app = TestApp::spawn().await;
    let bootstrapped = app.with_org_owner().await;
    let org = bootstrapped.org_id.to_string();
    let session = session_for(&app, &bootstrapped.owner.account_id).await;

    let created = call(
        &app,
        Method::POST,
        "/orgs",
        Some(&session),
        Some(&json!({ "name": "  Acme Corp " })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], "Acme Corp");
    assert_eq!(created.body["slug"], "acme-corp");
    assert_eq!(created.body["your_role"], "owner");
    let acme = created.body["id"].as_str().expect("id").to_owned();
    let memberships = app.me(&session).await["memberships"].clone();
    let acme_membership = memberships
        .as_array()
        .expect("memberships")
        .iter()
        .find(|membership| membership["org_id"] == acme.as_str())
        .expect("the founder is a member of the new organization");
    assert_eq!(acme_membership["role"], "owner");
    assert_eq!(acme_membership["status"], "active");
    assert_eq!(audit_count(&app, &acme).await, 1, "organization.created");

    // The same slug, through the API again.
    let again = call(
        &app,
        Method::POST,
        "/orgs",
        Some(&session),
        Some(&json!({ "name": "ACME corp." })),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.body["type"], NAME_TAKEN);

    // Renaming another organization onto it.
    let before = audit_count(&app, &org).await;
    let renamed = call(
        &app,
        Method::PATCH,
        &format!("/orgs/{org}"),
        Some(&bootstrapped.owner.token),
        Some(&json!({ "name": "acme-corp", "settings": { "invitation_ttl_days": 3 } })),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::CONFLICT, "{}", renamed.body);
    assert_eq!(renamed.body["type"], NAME_TAKEN);
    let unchanged = call(
        &app,
        Method::GET,
        &format!("/orgs/{org}"),
        Some(&bootstrapped.owner.token),
        None,
    )
    .await;
    assert_ne!(unchanged.body["slug"], "acme-corp", "{}", unchanged.body);
    assert_eq!(unchanged.body["settings"]["invitation_ttl_days"], 7);
    assert_eq!(audit_count(&app, &org).await, before);

    // And `muster bootstrap`, which founds through the same path: nothing
    // of it stays, not even the new owner's account.
    let newcomer = "newcomer@example.com";
    let refused = bootstrap(
        &app.store,
        Utc::now(),
        BootstrapInput {
            org_name: "Acme: Corp".into(),
            owner_email: newcomer.into(),
            owner_password: None,
        },
    )
    .await;
    assert!(
        matches!(&refused, Err(BootstrapError::OrgExists { name }) if name == "Acme: Corp"),
        "{:?}",
        refused.map(|output| output.org_id)
    );
    let email = Email::parse(newcomer).expect("email");
    let account = store::accounts::find_by_email(&app.store, None, &email)
        .await
        .expect("read accounts");
    assert!(account.is_none(), "the refused bootstrap left an account");
    assert_eq!(audit_count(&app, &acme).await, 1);
}

#[tokio::test]
async fn bad_organization_changes_name_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owned = app.with_org_owner().await;
    let org = owned.org_id.to_string();
    let path = format!("/orgs/{org}");
    let token = &owned.owner.token;
    let before = call(&app, Method::GET, &path, Some(token), None).await.body;
    let events = audit_count(&app, &org).await;
    for (body, field) in [
        (json!({ "name": "!!!" }), "name"),
        (
            json!({ "settings": { "invitation_ttl_days": 3, "allowed_email_domains": ["example.com", "not a domain"] } }),
            "settings.allowed_email_domains",
        ),
        (
            json!({ "name": "Renamed", "settings": { "allowed_email_domains": ["-bad.example"] } }),
            "settings.allowed_email_domains",
        ),
    ] {
        let answer = call(&app, Method::PATCH, &path, Some(token), Some(&body)).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.body
        );
        assert_eq!(answer.body["field"], field, "{body}: {}", answer.body);
    }
    let after = call(&app, Method::GET, &path, Some(token), None).await.body;
    assert_eq!(after, before);
    assert_eq!(audit_count(&app, &org).await, events);

    // Domains are kept lower-cased and once each.
    let answer = call(
        &app,
        Method::PATCH,
        &path,
        Some(token),
        Some(&json!({ "settings": { "allowed_email_domains": ["Example.COM", "example.com "] } })),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body["settings"]["allowed_email_domains"],
        json!(["example.com"])
    );
    assert_eq!(audit_count(&app, &org).await, events + 1);
}
