//! `DELETE /me`: refused while the account is the last owner of an
//! organization; otherwise complete in one go, with the audit trail kept
//! under the account's id alone.

use crate::common;

use chrono::Utc;
use common::{MemberFixture, OrgFixture, TestApp};
use muster::auth::totp::{TotpSecret, step_of};
use muster::domain::{AccountId, MemberId, OrgId, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn login(app: &TestApp, email: &str) -> (StatusCode, Value) {
    send(
        app.post("/api/v1/auth/login")
            .json(&json!({ "email": email, "password": PASSWORD })),
    )
    .await
}

/// A new organization whose owner has a password: the fixture (its
/// `owner.token` a personal token) and a session of the owner.
async fn org_with_owner(app: &TestApp, name: &str) -> (OrgFixture, String) {
    let (output, email) = app.owner_with_password(&name.to_lowercase()).await;
    let (status, session) = login(app, &email).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let fixture = OrgFixture {
        org_id: OrgId::parse(&output.org_id).expect("org id"),
        owner: MemberFixture {
            account_id: AccountId::parse(&output.owner_account_id).expect("id"),
            member_id: MemberId::new(),
            email,
            token: output.owner_token,
        },
        scim_token: output.scim_token,
    };
    (
        fixture,
        session["token"].as_str().expect("session").to_owned(),
    )
}

#[tokio::test]
async fn the_last_owner_of_an_organization_cannot_delete_their_account() {
    let app = TestApp::spawn().await;
    let (org, session) = org_with_owner(&app, "Solo").await;
    let (status, body) = app
        .call(
            Method::DELETE,
            "/me",
            &session,
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "urn:muster:problem:last-owner", "{body}");
    let (_, view) = app
        .call(
            Method::GET,
            &format!("/orgs/{}", org.org_id),
            &session,
            None,
        )
        .await;
    let name = view["name"].as_str().expect("name");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains(name)),
        "names the organization: {body}"
    );
    // Nothing changed.
    assert_eq!(
        app.me(&session).await["memberships"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        app.me(&org.owner.token).await["account"]["email"],
        org.owner.email
    );

    // A wrong password is refused before anything is weighed.
    let (status, _) = app
        .call(
            Method::DELETE,
            "/me",
            &session,
            Some(json!({ "password": "not the password" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A personal token cannot delete its account.
    let (status, _) = app
        .call(
            Method::DELETE,
            "/me",
            &org.owner.token,
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn deleting_an_account_takes_everything_of_it_and_pseudonymises_its_trail() {
    let app = TestApp::spawn().await;
    // Ada owns Acme with Bo, and is a viewer in Globex.
    let (acme, ada) = org_with_owner(&app, "Acme").await;
    let bo = app.with_member(&acme, Role::Owner).await;
    let (globex, globex_owner) = org_with_owner(&app, "Globex").await;
    {
        let now = Utc::now();
        let member = muster::domain::Member {
            id: MemberId::new(),
            org_id: globex.org_id.clone(),
            account_id: Some(acme.owner.account_id.clone()),
            role: Role::Viewer,
            status: muster::domain::MemberStatus::Active,
            suspended_until: None,
            project_rights: Vec::new(),
            created_at: now,
            updated_at: now,
            last_sign_in_at: None,
        };
        let email = muster::domain::Email::parse(&acme.owner.email).expect("email");
        let store = &app.store;
        muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
            let _ = muster::store::members::insert(
                store,
                session,
                &member,
                &muster::protocol::user::UserProfile::for_email(&email),
            )
            .await?;
            Ok(())
        })
        .expect("a membership");
    }
    assert_eq!(
        app.me(&ada).await["memberships"].as_array().map(Vec::len),
        Some(2)
    );
    // Something in Acme's log by Ada, to see how it reads afterwards.
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/orgs/{}/projects", acme.org_id),
            &ada,
            Some(json!({ "name": "Apollo" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // With two-factor authentication on, the code is needed too.
    let (_, enrolment) = app.call(Method::POST, "/me/mfa/totp", &ada, None).await;
    let secret =
        TotpSecret::from_base32(enrolment["secret"].as_str().expect("secret")).expect("base32");
    let step = step_of(Utc::now()) - 1;
    let (status, body) = app
        .call(
            Method::POST,
            "/me/mfa/totp/confirm",
            &ada,
            Some(json!({ "code": secret.code_at(step), "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .call(
            Method::DELETE,
            "/me",
            &ada,
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "code", "{body}");

    let (status, body) = app
        .call(
            Method::DELETE,
            "/me",
            &ada,
            Some(json!({ "password": PASSWORD, "code": secret.code_at(step + 1) })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Her session, her personal token and her password are all dead.
    for token in [&ada, &acme.owner.token] {
        let (status, _) = app.call(Method::GET, "/me", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(&app, &acme.owner.email).await.0,
        StatusCode::UNAUTHORIZED
    );
    let database = app.store.database();
    let count = |collection: &'static str, filter: bson::Document| {
        let database = database.clone();
        async move {
            database
                .collection::<bson::Document>(collection)
                .count_documents(filter)
                .await
                .expect("count")
        }
    };
    let ada_id = acme.owner.account_id.to_string();
    assert_eq!(count("accounts", bson::doc! { "_id": &ada_id }).await, 0);
    assert_eq!(
        count("members", bson::doc! { "account_id": &ada_id }).await,
        0
    );
    assert_eq!(
        count("sessions", bson::doc! { "account_id": &ada_id }).await,
        0
    );
    assert_eq!(
        count("api_tokens", bson::doc! { "account_id": &ada_id }).await,
        0
    );

    // The trail stays, under her id, without her email.
    let acme_log = app
        .call(
            Method::GET,
            &format!("/orgs/{}/audit-events?actor={ada_id}", acme.org_id),
            &bo.token,
            None,
        )
        .await
        .1;
    let items = acme_log["items"].as_array().expect("items");
    let actions: Vec<&str> = items.iter().filter_map(|i| i["action"].as_str()).collect();
    assert!(actions.contains(&"member.left"), "{actions:?}");
    assert!(actions.contains(&"project.created"), "{actions:?}");
    for item in items {
        assert_eq!(item["actor"]["id"], ada_id.as_str(), "{item}");
        assert_eq!(item["actor"]["label"], "deleted account", "{item}");
    }
    let (_, globex_log) = app
        .call(
            Method::GET,
            &format!("/orgs/{}/audit-events?action=member.left", globex.org_id),
            &globex_owner,
            None,
        )
        .await;
    assert_eq!(
        globex_log["items"].as_array().map(Vec::len),
        Some(1),
        "{globex_log}"
    );
    let labelled = count(
        "audit_events",
        bson::doc! { "actor.account_id": &ada_id, "actor.label": &acme.owner.email },
    )
    .await;
    assert_eq!(labelled, 0, "no event names her by email");
    let deleted = count(
        "audit_events",
        bson::doc! { "action": "account.deleted", "account_id": &ada_id },
    )
    .await;
    assert_eq!(deleted, 1);
}

/// A stolen session cannot guess the password through the routes that ask
/// for it again (`DELETE /me`, `PATCH /me`'s current password): wrong
/// passwords count as failed sign-ins do, and lock the same way.
#[tokio::test]
async fn wrong_passwords_while_signed_in_lock_like_failed_sign_ins() {
    let app = TestApp::spawn().await;
    let wrong = "not the password";
    for (method, body) in [
        (Method::DELETE, json!({ "password": wrong })),
        (
            Method::PATCH,
            json!({ "password": { "current": wrong, "new": "a new horse battery staple" } }),
        ),
    ] {
        let (_, session) = org_with_owner(&app, "Guarded").await;
        for _ in 0..5 {
            let (status, _) = app
                .call(method.clone(), "/me", &session, Some(body.clone()))
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
        }
        let (status, answer) = app.call(method.clone(), "/me", &session, Some(body)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{method}: {answer}");
    }
}
