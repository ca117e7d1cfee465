//! What a personal token, a deleted organization and an organization's settings reach.

use chrono::Utc;
use muster::auth::token::generate_invitation_secret;
use muster::domain::invitation::InvitationStatus;
use muster::domain::{Email, InvitationId};
use muster::store;
use muster_worker::JobsConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{call, session_for};
use crate::common::TestApp;

const PASSWORD: &str = "correct horse battery staple";

fn assert_session_required(answer: &crate::api::Answer, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        answer.body
    );
    assert_eq!(
        answer.body["type"], "urn:muster:problem:forbidden",
        "{what}"
    );
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("sign in"), "{what}: {detail}");
}

#[tokio::test]
async fn a_personal_token_acts_only_inside_its_organization() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let pat = org.owner.token.as_str();
    let session = session_for(&app, &org.owner.account_id).await;

    let created = call(
        &app,
        Method::POST,
        "/orgs",
        Some(pat),
        Some(&json!({ "name": "Made by a token" })),
    )
    .await;
    assert_session_required(&created, "POST /orgs");
    let renamed = call(
        &app,
        Method::PATCH,
        "/me",
        Some(pat),
        Some(&json!({ "display_name": "Mallory" })),
    )
    .await;
    assert_session_required(&renamed, "PATCH /me");
    let listed = call(&app, Method::GET, "/me/tokens", Some(pat), None).await;
    assert_session_required(&listed, "GET /me/tokens");
    let minted = call(
        &app,
        Method::POST,
        "/me/tokens",
        Some(pat),
        Some(&json!({ "org_id": org.org_id.as_str(), "name": "another" })),
    )
    .await;
    assert_session_required(&minted, "POST /me/tokens");
    // Nothing happened: one organization, no name.
    let me = app.me(&session).await;
    assert_eq!(me["memberships"].as_array().map(Vec::len), Some(1), "{me}");
    assert!(me["account"].get("display_name").is_none(), "{me}");

    // A session still can.
    let created = call(
        &app,
        Method::POST,
        "/orgs",
        Some(&session),
        Some(&json!({ "name": "Made by a session" })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let renamed = call(
        &app,
        Method::PATCH,
        "/me",
        Some(&session),
        Some(&json!({ "display_name": "Grace" })),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let minted = call(
        &app,
        Method::POST,
        "/me/tokens",
        Some(&session),
        Some(&json!({ "org_id": org.org_id.as_str(), "name": "laptop" })),
    )
    .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.body);
    let listed = call(&app, Method::GET, "/me/tokens", Some(&session), None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(2));

    // The token still works in its own organization, and GET /me shows
    // that organization only.
    let own = call(
        &app,
        Method::GET,
        &format!("/orgs/{}", org.org_id),
        Some(pat),
        None,
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    let me = app.me(pat).await;
    let orgs: Vec<&str> = me["memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .filter_map(|m| m["org_id"].as_str())
        .collect();
    assert_eq!(orgs, [org.org_id.as_str()]);
}

/// Gives a pending invitation a link, as its mail job does; the secret.
async fn mailed_link(app: &TestApp, id: &InvitationId) -> String {
    let (secret, hash) = generate_invitation_secret();
    store::invitations::take_send(&app.store, id, 1, Utc::now(), &hash)
        .await
        .expect("take the send")
        .expect("the invitation is mailable");
    secret.into_exposed()
}

async fn accept_everywhere(app: &TestApp, link: &str) -> [(StatusCode, String); 3] {
    let api = app
        .post("/api/v1/invitations/accept")
        .json(&json!({ "token": link, "name": "Eve", "password": PASSWORD }))
        .send()
        .await
        .expect("accept");
    let api = (api.status(), api.text().await.unwrap_or_default());
    let shown = app
        .get(&format!("/invite/{link}"))
        .send()
        .await
        .expect("page");
    let shown = (shown.status(), shown.text().await.unwrap_or_default());
    let submitted = app
        .post(&format!("/invite/{link}"))
        .form(&[("name", "Eve"), ("password", PASSWORD)])
        .send()
        .await
        .expect("submit");
    let submitted = (
        submitted.status(),
        submitted.text().await.unwrap_or_default(),
    );
    [api, shown, submitted]
}

#[tokio::test]
async fn a_deleted_organizations_invitations_die_with_it() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let session = session_for(&app, &org.owner.account_id).await;
    let invited = call(
        &app,
        Method::POST,
        &format!("/orgs/{}/invitations", org.org_id),
        Some(&org.owner.token),
        Some(&json!({ "emails": ["eve@example.com"], "role": "admin" })),
    )
    .await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.body);
    let id = InvitationId::parse(
        invited.body["results"][0]["invitation_id"]
            .as_str()
            .expect("an invitation id"),
    )
    .expect("id");
    let link = mailed_link(&app, &id).await;

    let deleted = call(
        &app,
        Method::DELETE,
        &format!("/orgs/{}", org.org_id),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);

    for (status, body) in accept_everywhere(&app, &link).await {
        assert_eq!(status, StatusCode::GONE, "{body}");
    }
    let eve = Email::parse("eve@example.com").expect("email");
    assert!(
        store::accounts::find_by_email(&app.store, None, &eve)
            .await
            .expect("read")
            .is_none(),
        "no account was made"
    );
    let invitation = store::invitations::get_any(&app.store, &id)
        .await
        .expect("read")
        .expect("the invitation is kept, revoked");
    assert_eq!(invitation.status, InvitationStatus::Revoked);
    let jobs = muster_worker::collection(app.store.database(), &JobsConfig::default())
        .clone_with_type::<bson::Document>();
    let job = jobs
        .find_one(bson::doc! { "idempotency_key": format!("invitation:{id}:send:1") })
        .await
        .expect("read the jobs");
    assert!(
        job.as_ref()
            .is_none_or(|job| job.get_str("status").is_ok_and(|s| s != "pending")),
        "the mail job is gone: {job:?}"
    );
}

#[tokio::test]
async fn an_invitation_left_from_a_deleted_organization_cannot_be_accepted() {
    // Organizations deleted before their invitations were revoked with
    // them left pending invitations behind.
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let invited = call(
        &app,
        Method::POST,
        &format!("/orgs/{}/invitations", org.org_id),
        Some(&org.owner.token),
        Some(&json!({ "emails": ["eve@example.com"], "role": "viewer" })),
    )
    .await;
    let id = InvitationId::parse(
        invited.body["results"][0]["invitation_id"]
            .as_str()
            .expect("an invitation id"),
    )
    .expect("id");
    let link = mailed_link(&app, &id).await;
    app.store
        .database()
        .collection::<bson::Document>("organizations")
        .delete_one(bson::doc! { "_id": org.org_id.as_str() })
        .await
        .expect("delete the organization behind the service's back");

    for (status, body) in accept_everywhere(&app, &link).await {
        assert_eq!(status, StatusCode::GONE, "{body}");
    }
    let eve = Email::parse("eve@example.com").expect("email");
    assert!(
        store::accounts::find_by_email(&app.store, None, &eve)
            .await
            .expect("read")
            .is_none(),
        "no account was made"
    );
}

#[tokio::test]
async fn concurrent_changes_of_different_settings_both_survive() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let path = format!("/orgs/{}", org.org_id);
    let token = org.owner.token.as_str();
    for round in 0..8u32 {
        let ttl = json!({ "settings": { "invitation_ttl_days": 10 + round } });
        let retention = json!({ "settings": { "audit_retention_days": 100 + round } });
        let domains =
            json!({ "settings": { "allowed_email_domains": [format!("r{round}.example.com")] } });
        let (a, b, c) = tokio::join!(
            call(&app, Method::PATCH, &path, Some(token), Some(&ttl)),
            call(&app, Method::PATCH, &path, Some(token), Some(&retention)),
            call(&app, Method::PATCH, &path, Some(token), Some(&domains)),
        );
        for answer in [&a, &b, &c] {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
        let now = call(&app, Method::GET, &path, Some(token), None).await;
        let settings: &Value = &now.body["settings"];
        assert_eq!(
            settings["invitation_ttl_days"],
            10 + round,
            "round {round}: {settings}"
        );
        assert_eq!(
            settings["audit_retention_days"],
            100 + round,
            "round {round}: {settings}"
        );
        assert_eq!(
            settings["allowed_email_domains"],
            json!([format!("r{round}.example.com")]),
            "round {round}: {settings}"
        );
    }
}
