//! Authentication: sessions, personal tokens, and members whose status
//! stops their tokens.

use crate::common;

use chrono::{Duration, Utc};
use common::TestApp;
use muster::auth::token::{IssuedToken, TokenKind, TokenRecord};
use muster::bootstrap::{BootstrapInput, bootstrap};
use muster::domain::{MemberStatus, Role};
use muster::store;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn account_with_password(app: &TestApp, email: &str, org_name: &str) -> Value {
    let output = bootstrap(
        &app.store,
        Utc::now(),
        BootstrapInput {
            org_name: org_name.into(),
            owner_email: email.into(),
            owner_password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("bootstrap");
    serde_json::to_value(&output).expect("json")
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post("/api/v1/auth/login")
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("request")
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/me")
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test]
async fn login_me_and_logout() {
    let app = TestApp::spawn().await;
    let first = account_with_password(&app, "grace@example.com", "First").await;
    // The same person owns a second organization with the same login.
    bootstrap(
        &app.store,
        Utc::now(),
        BootstrapInput {
            org_name: "Second".into(),
            owner_email: "GRACE@example.com".into(),
            owner_password: None,
        },
    )
    .await
    .expect("second organization");

    let response = login(&app, "Grace@Example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session: Value = response.json().await.expect("json");
    let token = session["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("mst_ses_"));
    assert!(session["expires_at"].is_string());

    let me = app.me(&token).await;
    let mut orgs: Vec<&str> = me["memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .filter_map(|m| m["org_name"].as_str())
        .collect();
    orgs.sort_unstable();
    assert_eq!(orgs, ["First", "Second"]);

    // A personal token sees only its own organization.
    let pat = first["owner_token"].as_str().expect("owner token");
    let me = app.me(pat).await;
    assert_eq!(me["memberships"].as_array().map(Vec::len), Some(1));
    assert_eq!(me["memberships"][0]["org_name"], "First");

    let logout = app
        .post("/api/v1/auth/logout")
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    account_with_password(&app, "hopper@example.com", "Navy").await;
    let wrong = login(&app, "hopper@example.com", "not the password").await;
    let unknown = login(&app, "nobody@example.com", PASSWORD).await;
    let invalid = login(&app, "not an email", PASSWORD).await;
    let mut bodies = Vec::new();
    for response in [wrong, unknown, invalid] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        bodies.push(response.json::<Value>().await.expect("json"));
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
}

#[tokio::test]
async fn an_inactive_or_suspended_members_tokens_stop_at_once_and_return() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let member = app.with_member(&org, Role::Contributor).await;
    assert_eq!(me_status(&app, &member.token).await, StatusCode::OK);
    let now = Utc::now();

    for status in [MemberStatus::Inactive, MemberStatus::Suspended] {
        app.set_member_status(&org, &member, status, None).await;
        assert_eq!(
            me_status(&app, &member.token).await,
            StatusCode::UNAUTHORIZED,
            "{status}"
        );
        app.set_member_status(&org, &member, MemberStatus::Active, None)
            .await;
        assert_eq!(
            me_status(&app, &member.token).await,
            StatusCode::OK,
            "after {status}"
        );
    }

    // A suspension that has ended no longer blocks, without any write.
    app.set_member_status(
        &org,
        &member,
        MemberStatus::Suspended,
        Some(now - Duration::minutes(1)),
    )
    .await;
    assert_eq!(me_status(&app, &member.token).await, StatusCode::OK);
}

#[tokio::test]
async fn expired_and_unknown_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let issued = IssuedToken::generate(TokenKind::Personal);
    let now = Utc::now();
    let record = TokenRecord::new(
        &issued,
        Some("expired".into()),
        Some(org.owner.account_id.clone()),
        Some(org.org_id.clone()),
        now - Duration::days(2),
        Some(now - Duration::days(1)),
    );
    let _ = store::tokens::insert(&app.store, None, &record)
        .await
        .expect("insert");
    let response = app
        .get("/api/v1/me")
        .bearer_auth(issued.secret.expose())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired")),
        "{body}"
    );

    let unknown = IssuedToken::generate(TokenKind::Personal);
    assert_eq!(
        me_status(&app, unknown.secret.expose()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_status(&app, &org.owner.token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_membership_an_idp_created_for_a_login_waits_for_its_person() {
    let app = TestApp::spawn().await;
    account_with_password(&app, "lee@example.com", "Lee's own").await;
    let other = app.with_org_owner().await;
    let scim = common::Scim::new(&app, &other.scim_token);
    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "lee@example.com",
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let membership = |me: &Value| {
        me["memberships"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["org_id"] == other.org_id.to_string()))
            .map(|m| m["status"].clone())
    };
    let response = login(&app, "lee@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = response.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("session")
        .to_owned();
    // Signing in links nothing: the person joins by accepting the
    // activation invitation, signed in as this account.
    let me = app.me(&token).await;
    assert_eq!(membership(&me), None, "{me}");
}

#[tokio::test]
async fn sign_in_sign_out_and_profile_changes_are_the_accounts_own_audit_events() {
    let app = TestApp::spawn().await;
    let output = account_with_password(&app, "kim@example.com", "Kim's").await;
    let account_id = output["owner_account_id"].as_str().expect("id").to_owned();
    let events = app
        .store
        .database()
        .collection::<bson::Document>("audit_events");
    let actions = || async {
        let mut found = Vec::new();
        let mut cursor = events
            .find(bson::doc! { "org_id": null, "account_id": &account_id })
            .sort(bson::doc! { "_id": 1 })
            .await
            .expect("find");
        while cursor.advance().await.expect("advance") {
            let event = cursor.deserialize_current().expect("event");
            found.push(event.get_str("action").unwrap_or_default().to_owned());
        }
        found
    };
    let response = login(&app, "kim@example.com", PASSWORD).await;
    let token = response.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("session")
        .to_owned();
    let patched = app
        .client
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .json(&json!({ "display_name": "Kim" }))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), StatusCode::OK);
    let out = app
        .post("/api/v1/auth/logout")
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        actions().await,
        ["account.signed_in", "account.updated", "account.signed_out"]
    );
    // A failed sign-in changes nothing, but the account's owner is told
    // (written off the request: awaited, not assumed).
    let refused = login(&app, "kim@example.com", "wrong password!").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let found = common::eventually(
        std::time::Duration::from_secs(10),
        "the failure",
        || async {
            let found = actions().await;
            (found.len() > 3).then_some(found)
        },
    )
    .await;
    assert_eq!(found[3..], ["account.sign_in_failed"]);
}
