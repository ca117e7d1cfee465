//! Two-factor authentication against the real server: enrolment and its
//! confirmation, the two-step sign-in, replays, recovery codes, the lock,
//! turning it off, organizations that require it, and accepting an
//! invitation as an account that has it.
//!
//! Codes are computed here from the secret the enrolment shows, as an
//! authenticator app would. The server takes the steps either side of the
//! current one, each once and in order: a test spends at most those three
//! (from the one before now), so it never waits for the clock.

use crate::common;

use std::time::Duration;

use chrono::Utc;
use common::smtp::{SmtpServer, invitation_token, parse_message};
use common::{TestApp, eventually};
use muster::auth::totp::{TotpSecret, step_of};
use muster::domain::{AccountId, Role};
use muster::state::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// A person with a password, signed in.
struct Person {
    email: String,
    account_id: String,
    org_id: String,
    scim_token: String,
    session: String,
}

/// The owner of a new organization, with a password, signed in.
async fn owner(app: &TestApp) -> Person {
    let (output, email) = app.owner_with_password("owner").await;
    let session = session_of(app, &email).await;
    Person {
        email,
        account_id: output.owner_account_id,
        org_id: output.org_id,
        scim_token: output.scim_token,
        session,
    }
}

/// Signs in with the password alone, which must give a session.
async fn session_of(app: &TestApp, email: &str) -> String {
    let (status, body) = login(app, email).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().expect("a session").to_owned()
}

async fn login(app: &TestApp, email: &str) -> (StatusCode, Value) {
    send(
        app.post("/api/v1/auth/login")
            .json(&json!({ "email": email, "password": PASSWORD })),
    )
    .await
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An authenticator app: the secret, and the next step it may use.
struct App {
    secret: TotpSecret,
    next_step: u64,
}

impl App {
    /// The code of the earliest step the server still takes, which the
    /// request is expected to spend.
    fn code(&mut self) -> String {
        let code = self.peek();
        self.next_step = self.step() + 1;
        code
    }

    /// That code, for a request expected to fail before it is spent.
    fn peek(&self) -> String {
        self.secret.code_at(self.step())
    }

    fn step(&self) -> u64 {
        self.next_step.max(step_of(Utc::now()) - 1)
    }
}

/// Enrols and confirms `person`'s second factor: the app, and the
/// recovery codes.
async fn enable_mfa(app: &TestApp, person: &Person) -> (App, Vec<String>) {
    let (status, enrolment) = app
        .call(reqwest::Method::POST, "/me/mfa/totp", &person.session, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolment}");
    let secret =
        TotpSecret::from_base32(enrolment["secret"].as_str().expect("secret")).expect("base32");
    let mut authenticator = App {
        secret,
        next_step: 0,
    };
    let (status, confirmed) = app
        .call(
            reqwest::Method::POST,
            "/me/mfa/totp/confirm",
            &person.session,
            Some(json!({ "code": authenticator.code(), "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let codes = confirmed["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|code| code.as_str().expect("a code").to_owned())
        .collect();
    (authenticator, codes)
}

/// The password step, which must answer a challenge.
async fn challenge(app: &TestApp, email: &str) -> String {
    let (status, body) = login(app, email).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("token").is_none(), "no session yet: {body}");
    body["challenge"].as_str().expect("a challenge").to_owned()
}

async fn complete(app: &TestApp, challenge: &str, proof: Value) -> (StatusCode, Value) {
    let mut body = proof;
    body["challenge"] = json!(challenge);
    send(app.post("/api/v1/auth/login/mfa").json(&body)).await
}

#[tokio::test]
async fn enrolment_takes_effect_once_confirmed_and_then_sign_in_takes_a_code() {
    let app = TestApp::spawn().await;
    let person = owner(&app).await;
    let other_session = session_of(&app, &person.email).await;

    let (status, enrolment) = app
        .call(reqwest::Method::POST, "/me/mfa/totp", &person.session, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolment}");
    let secret = enrolment["secret"].as_str().expect("secret");
    let uri = enrolment["otpauth_uri"].as_str().expect("uri");
    assert!(uri.starts_with("otpauth://totp/Muster%3Aowner-"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let svg = enrolment["qr_svg"].as_str().expect("svg");
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    let mut authenticator = App {
        secret: TotpSecret::from_base32(secret).expect("base32"),
        next_step: 0,
    };

    // Not on until confirmed: the password alone still signs in.
    let _ = session_of(&app, &person.email).await;
    let me = app.me(&person.session).await;
    assert_eq!(me["account"]["mfa_enabled"], false, "{me}");

    // A wrong code, and a right code with a wrong password, confirm
    // nothing.
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/me/mfa/totp/confirm",
            &person.session,
            Some(json!({ "code": "000000", "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["type"], "urn:muster:problem:mfa-code-wrong", "{body}");
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/me/mfa/totp/confirm",
            &person.session,
            Some(json!({ "code": authenticator.peek(), "password": "not the password" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        app.me(&person.session).await["account"]["mfa_enabled"],
        false
    );

    let (status, confirmed) = app
        .call(
            reqwest::Method::POST,
            "/me/mfa/totp/confirm",
            &person.session,
            Some(json!({ "code": authenticator.code(), "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let codes = confirmed["recovery_codes"].as_array().expect("codes");
    assert_eq!(codes.len(), 10, "{confirmed}");
    let me = app.me(&person.session).await;
    assert_eq!(me["account"]["mfa_enabled"], true, "{me}");
    assert_eq!(me["account"]["recovery_codes_left"], 10, "{me}");
    // Turning it on ended the other sessions, not this one.
    let (status, _) = app
        .call(reqwest::Method::GET, "/me", &other_session, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Enrolling again while on is refused.
    let (status, body) = app
        .call(reqwest::Method::POST, "/me/mfa/totp", &person.session, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // The password alone answers a challenge, which is no bearer token.
    let first = challenge(&app, &person.email).await;
    assert!(first.starts_with("mst_mfa_"), "{first}");
    let (status, _) = app.call(reqwest::Method::GET, "/me", &first, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // No code, a wrong code: 401, and the challenge stays usable.
    let (status, body) = complete(&app, &first, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = complete(&app, &first, json!({ "code": "123 456" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let code = authenticator.code();
    let (status, session) = complete(&app, &first, json!({ "code": code })).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().expect("a session");
    assert_eq!(app.me(token).await["account"]["id"], person.account_id);

    // The challenge is spent, and so is the code: replayed on a fresh
    // challenge, it is refused.
    let (status, body) = complete(&app, &first, json!({ "code": authenticator.peek() })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let second = challenge(&app, &person.email).await;
    let (status, body) = complete(&app, &second, json!({ "code": code })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a replayed code: {body}");
    let (status, body) = complete(&app, &second, json!({ "code": authenticator.code() })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn recovery_codes_work_once_each_and_turning_it_off_takes_a_code() {
    let app = TestApp::spawn().await;
    let person = owner(&app).await;
    let (authenticator, codes) = enable_mfa(&app, &person).await;

    let first = challenge(&app, &person.email).await;
    // Typed in capitals with spaces, as people copy them from paper.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let (status, session) = complete(&app, &first, json!({ "recovery_code": typed })).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let second = challenge(&app, &person.email).await;
    let (status, body) = complete(&app, &second, json!({ "recovery_code": codes[0] })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "used once: {body}");
    let (status, body) = complete(
        &app,
        &second,
        json!({ "recovery_code": codes[1], "code": authenticator.peek() }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "one proof: {body}"
    );
    let me = app.me(&person.session).await;
    assert_eq!(me["account"]["recovery_codes_left"], 9, "{me}");

    // Off: a wrong code is refused, a recovery code does it.
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            "/me/mfa/totp",
            &person.session,
            Some(json!({ "code": "000000" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            "/me/mfa/totp",
            &person.session,
            Some(json!({ "recovery_code": codes[1] })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        app.me(&person.session).await["account"]["mfa_enabled"],
        false
    );
    let _ = session_of(&app, &person.email).await;

    // A personal token cannot turn it on or off.
    let org = muster::domain::OrgId::parse(&person.org_id).expect("org id");
    let fixture = common::OrgFixture {
        org_id: org,
        owner: common::MemberFixture {
            account_id: AccountId::parse(&person.account_id).expect("id"),
            member_id: muster::domain::MemberId::new(),
            email: person.email.clone(),
            token: String::new(),
        },
        scim_token: String::new(),
    };
    let member = app.with_member(&fixture, Role::Viewer).await;
    let (status, _) = app
        .call(reqwest::Method::POST, "/me/mfa/totp", &member.token, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn five_wrong_codes_lock_the_second_factor() {
    let app = TestApp::spawn().await;
    let person = owner(&app).await;
    let (authenticator, _) = enable_mfa(&app, &person).await;
    let pending = challenge(&app, &person.email).await;
    for attempt in 1..=5 {
        let (status, body) = complete(&app, &pending, json!({ "code": "999999" })).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {body}"
        );
    }
    let response = app
        .post("/api/v1/auth/login/mfa")
        .json(&json!({ "challenge": pending, "code": authenticator.peek() }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((800..=900).contains(&retry), "{retry}");
    // The failures are the account's own events.
    let failed = app
        .store
        .database()
        .collection::<bson::Document>("audit_events")
        .count_documents(bson::doc! {
            "action": "account.mfa_failed",
            "account_id": &person.account_id,
        })
        .await
        .expect("count");
    assert_eq!(failed, 5);
}

#[tokio::test]
async fn an_organization_requiring_mfa_refuses_members_without_it_but_not_scim() {
    let app = TestApp::spawn().await;
    let person = owner(&app).await;
    let org = &person.org_id;
    let require = |token: String| {
        let app = &app;
        async move {
            app.call(
                reqwest::Method::PATCH,
                &format!("/orgs/{org}"),
                &token,
                Some(json!({ "settings": { "require_mfa": true } })),
            )
            .await
        }
    };
    // An owner without it would lock themselves out: refused.
    let (status, body) = require(person.session.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["type"], "urn:muster:problem:mfa-enable-yours-first",
        "{body}"
    );
    let _ = enable_mfa(&app, &person).await;
    let (status, body) = require(person.session.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["require_mfa"], true, "{body}");

    // A member without a second factor: a session and a personal token
    // are both refused, naming the fix.
    let fixture = common::OrgFixture {
        org_id: muster::domain::OrgId::parse(org).expect("org id"),
        owner: common::MemberFixture {
            account_id: AccountId::parse(&person.account_id).expect("id"),
            member_id: muster::domain::MemberId::new(),
            email: person.email.clone(),
            token: String::new(),
        },
        scim_token: String::new(),
    };
    let member = app.with_member(&fixture, Role::Admin).await;
    app.give_password(&member.account_id).await;
    let member_session = session_of(&app, &member.email).await;
    for token in [&member_session, &member.token] {
        let (status, body) = app
            .call(
                reqwest::Method::GET,
                &format!("/orgs/{org}/members"),
                token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["type"], "urn:muster:problem:mfa-required", "{body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("/api/v1/me/mfa/totp")),
            "{body}"
        );
    }
    // Their own account still works: they can enrol.
    assert_eq!(
        app.me(&member_session).await["account"]["mfa_enabled"],
        false
    );

    // SCIM is the identity provider's, which authenticates people itself.
    let response = app
        .get("/scim/v2/Users")
        .bearer_auth(&person.scim_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);

    // Enrolled, the member is let in again.
    let member_person = Person {
        email: member.email.clone(),
        account_id: member.account_id.to_string(),
        org_id: org.clone(),
        scim_token: String::new(),
        session: member_session.clone(),
    };
    let _ = enable_mfa(&app, &member_person).await;
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{org}/members"),
            &member_session,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn without_an_mfa_key_enrolment_is_not_available() {
    let app = TestApp::builder()
        .settings(|settings| settings.auth.mfa_key = None)
        .spawn()
        .await;
    let person = owner(&app).await;
    let (status, body) = app
        .call(reqwest::Method::POST, "/me/mfa/totp", &person.session, None)
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("auth.mfa_key")),
        "{body}"
    );
}

#[tokio::test]
async fn accepting_an_invitation_as_an_account_with_mfa_takes_its_code() {
    let smtp = SmtpServer::start(&[]);
    let url = smtp.url();
    let app = TestApp::builder()
        .settings(|s| s.smtp.url = Some(url))
        .spawn()
        .await;
    let state = AppState::new(app.store.clone(), app.settings.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(muster::jobs::run(state, async {
        let _ = stopped.await;
    }));
    let inviter = owner(&app).await;
    let invitee = owner(&app).await;
    let (mut authenticator, _) = enable_mfa(&app, &invitee).await;
    let (status, invitation) = app
        .call(
            reqwest::Method::POST,
            &format!("/orgs/{}/invitations", inviter.org_id),
            &inviter.session,
            Some(json!({ "emails": invitee.email, "role": "viewer" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{invitation}");
    let messages = eventually(Duration::from_secs(30), "the mail arrives", || async {
        let found = smtp.messages();
        (!found.is_empty()).then_some(found)
    })
    .await;
    let token = invitation_token(&parse_message(&messages[0]));
    let accept = |extra: Value| {
        let mut body = json!({ "token": token, "password": PASSWORD });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        send(app.post("/api/v1/invitations/accept").json(&body))
    };
    let (status, body) = accept(json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "code", "{body}");
    let (status, body) = accept(json!({ "code": "000000" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = accept(json!({ "code": authenticator.code() })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account_id"], invitee.account_id, "{body}");
    let _ = stop.send(());
    let _ = worker.await;
}

async fn regenerate(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        reqwest::Method::POST,
        "/me/mfa/recovery-codes",
        token,
        Some(body),
    )
    .await
}

async fn count_events(app: &TestApp, action: &str, account_id: &str) -> u64 {
    app.store
        .database()
        .collection::<bson::Document>("audit_events")
        .count_documents(bson::doc! { "action": action, "account_id": account_id })
        .await
        .expect("count")
}

#[tokio::test]
async fn regenerating_recovery_codes_takes_password_and_code_and_retires_the_old_ones() {
    let app = TestApp::spawn().await;
    let person = owner(&app).await;

    // Off: nothing to regenerate.
    let (status, body) = regenerate(
        &app,
        &person.session,
        json!({ "code": "123456", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "urn:muster:problem:mfa-not-enabled", "{body}");

    let (mut authenticator, old) = enable_mfa(&app, &person).await;

    // A wrong code (counted as the account's failure), a recovery code in
    // place of the app's, and a right code with a wrong password: all
    // refused, and the codes are unchanged.
    let (status, body) = regenerate(
        &app,
        &person.session,
        json!({ "code": "000000", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["type"], "urn:muster:problem:mfa-code-wrong", "{body}");
    assert_eq!(
        count_events(&app, "account.mfa_failed", &person.account_id).await,
        1
    );
    let (status, body) = regenerate(
        &app,
        &person.session,
        json!({ "code": old[0], "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a recovery code: {body}");
    let (status, body) = regenerate(
        &app,
        &person.session,
        json!({ "code": authenticator.peek(), "password": "not the password" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = regenerate(
        &app,
        &person.session,
        json!({ "code": "", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        count_events(
            &app,
            "account.mfa_recovery_codes_regenerated",
            &person.account_id
        )
        .await,
        0
    );

    // The password and a code: ten new codes, none of the old ones.
    let code = authenticator.code();
    let (status, body) = regenerate(
        &app,
        &person.session,
        json!({ "code": code, "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new: Vec<String> = body["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|code| code.as_str().expect("a code").to_owned())
        .collect();
    assert_eq!(new.len(), 10, "{body}");
    assert!(new.iter().all(|code| !old.contains(code)), "{body}");
    let me = app.me(&person.session).await;
    assert_eq!(me["account"]["recovery_codes_left"], 10, "{me}");
    assert_eq!(
        count_events(
            &app,
            "account.mfa_recovery_codes_regenerated",
            &person.account_id
        )
        .await,
        1
    );
    // The code is spent: replayed, it is refused.
    let (status, body) = regenerate(
        &app,
        &person.session,
        json!({ "code": code, "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a replayed code: {body}");

    // An old code signs in no more; a new one does.
    let pending = challenge(&app, &person.email).await;
    let (status, body) = complete(&app, &pending, json!({ "recovery_code": old[1] })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an old code: {body}");
    let (status, body) = complete(&app, &pending, json!({ "recovery_code": new[0] })).await;
    assert_eq!(status, StatusCode::OK, "a new code: {body}");

    // A personal token cannot regenerate them.
    let org = muster::domain::OrgId::parse(&person.org_id).expect("org id");
    let fixture = common::OrgFixture {
        org_id: org,
        owner: common::MemberFixture {
            account_id: AccountId::parse(&person.account_id).expect("id"),
            member_id: muster::domain::MemberId::new(),
            email: person.email.clone(),
            token: String::new(),
        },
        scim_token: String::new(),
    };
    let member = app.with_member(&fixture, Role::Viewer).await;
    let (status, body) = regenerate(
        &app,
        &member.token,
        json!({ "code": authenticator.peek(), "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// A stolen session cannot guess the password here either: wrong
/// passwords count as failed sign-ins do, and lock the same way.
#[tokio::test]
async fn wrong_passwords_when_regenerating_lock_like_failed_sign_ins() {
    let app = TestApp::spawn().await;
    let person = owner(&app).await;
    let (authenticator, _) = enable_mfa(&app, &person).await;
    let body = json!({ "code": authenticator.peek(), "password": "not the password" });
    for attempt in 1..=5 {
        let (status, answer) = regenerate(&app, &person.session, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "attempt {attempt}: {answer}");
    }
    let (status, answer) = regenerate(&app, &person.session, body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    // The email is throttled for signing in too: one shared count.
    let (status, answer) = login(&app, &person.email).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
}
