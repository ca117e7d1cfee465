//! Organizations: one founding path for the API and `muster bootstrap`,
//! unique names whichever face founds or renames, bad changes refused
//! whole.

use std::collections::BTreeMap;

use chrono::Utc;
use muster::bootstrap::{BootstrapError, BootstrapInput, bootstrap};
use muster::domain::Email;
use muster::store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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

/// The organization's audit events, as stored, keyed by action.
async fn events_by_action(app: &TestApp, org: &str) -> BTreeMap<String, Value> {
    let mut cursor = app
        .store
        .database()
        .collection::<bson::Document>("audit_events")
        .find(bson::doc! { "org_id": org })
        .await
        .expect("find audit events");
    let mut found = BTreeMap::new();
    while cursor.advance().await.expect("advance") {
        let event = cursor.deserialize_current().expect("event");
        let event = serde_json::to_value(&event).expect("event as json");
        let action = event["action"].as_str().expect("action").to_owned();
        assert!(
            found.insert(action.clone(), event).is_none(),
            "{action} recorded twice"
        );
    }
    found
}

#[tokio::test]
async fn organizations_and_personal_tokens_keep_their_audit_actions_and_snapshots() {
    let app = TestApp::spawn().await;
    let bootstrapped = app.with_org_owner().await;
    let account = bootstrapped.owner.account_id.to_string();
    let session = session_for(&app, &bootstrapped.owner.account_id).await;
    let as_account = json!({ "kind": "account", "account_id": account, "token_id": null });

    let events = events_by_action(&app, bootstrapped.org_id.as_str()).await;
    let event = &events["organization.bootstrapped"];
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(event["actor"]["kind"], "system");
    assert_eq!(
        event["target"],
        json!({ "kind": "organization", "id": bootstrapped.org_id.as_str() })
    );
    assert_eq!(event["after"]["owner_account_id"], account.as_str());
    assert_eq!(
        event["after"]["owner_email"],
        bootstrapped.owner.email.as_str()
    );

    let created = call(
        &app,
        Method::POST,
        "/orgs",
        Some(&session),
        Some(&json!({ "name": "Audit Corp" })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let org = created.body["id"].as_str().expect("id").to_owned();
    let patched = call(
        &app,
        Method::PATCH,
        &format!("/orgs/{org}"),
        Some(&session),
        Some(&json!({ "settings": { "invitation_ttl_days": 3 } })),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let token = call(
        &app,
        Method::POST,
        "/me/tokens",
        Some(&session),
        Some(&json!({ "org_id": org, "name": " CI " })),
    )
    .await;
    assert_eq!(token.status, StatusCode::CREATED, "{}", token.body);
    let token_id = token.body["id"].as_str().expect("id").to_owned();
    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/me/tokens/{token_id}"),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("/orgs/{org}"),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);

    let settings = |ttl: u32| {
        json!({
            "name": "Audit Corp",
            "settings": {
                "invitation_ttl_days": ttl,
                "audit_retention_days": 365,
                "allowed_email_domains": [],
                "scim_activation_emails": true,
                "require_mfa": false,
            },
        })
    };
    let token_snapshot = json!({
        "name": "CI",
        "display_prefix": token.body["display_prefix"],
        "account_id": account,
        "expires_at": null,
        "allow_owner_changes": false,
    });
    let events = events_by_action(&app, &org).await;
    let expected: [(&str, (&str, &str), Value, Value); 5] = [
        (
            "organization.created",
            ("organization", &org),
            Value::Null,
            settings(7),
        ),
        (
            "organization.updated",
            ("organization", &org),
            settings(7),
            settings(3),
        ),
        (
            "personal_token.created",
            ("personal_token", &token_id),
            Value::Null,
            token_snapshot.clone(),
        ),
        (
            "personal_token.deleted",
            ("personal_token", &token_id),
            token_snapshot,
            Value::Null,
        ),
        (
            "organization.deleted",
            ("organization", &org),
            settings(3),
            json!({ "revoked_invitations": 0 }),
        ),
    ];
    assert_eq!(events.len(), expected.len(), "{events:?}");
    for (action, (kind, id), before, after) in expected {
        let event = &events[action];
        assert_eq!(event["actor"], as_account, "{action}");
        assert_eq!(
            event["target"],
            json!({ "kind": kind, "id": id }),
            "{action}"
        );
        assert_eq!(event["before"], before, "{action}");
        assert_eq!(event["after"], after, "{action}");
    }
}
