//! `/me/sessions`: a person sees where their account is signed in and
//! ends the sessions they do not want, and nobody else's.

use crate::common;

use chrono::Utc;
use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn account_with_password(app: &TestApp) -> String {
    app.owner_with_password("sessions").await.1
}

/// Signs in with `user_agent`; the session's secret.
async fn sign_in(app: &TestApp, email: &str, user_agent: &str) -> String {
    let response = app
        .post("/api/v1/auth/login")
        .header("user-agent", user_agent)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("a session").to_owned()
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .request(method, app.url(&format!("/api/v1{path}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = call(app, Method::GET, "/me/sessions", token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["next_cursor"], Value::Null, "{body}");
    body["items"].as_array().expect("items").clone()
}

/// The id of the session `token` is, from its own list.
async fn own_id(app: &TestApp, token: &str) -> String {
    sessions(app, token)
        .await
        .into_iter()
        .find(|session| session["current"] == true)
        .and_then(|session| session["id"].as_str().map(str::to_owned))
        .expect("the current session is listed")
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    call(app, Method::GET, "/me", token).await.0
}

#[tokio::test]
async fn my_sessions_are_listed_with_the_current_one_marked() {
    let app = TestApp::spawn().await;
    let email = account_with_password(&app).await;
    let laptop = sign_in(&app, &email, "Firefox/134.0").await;
    let phone = sign_in(&app, &email, "MusterPhone/2.1").await;
    let stranger = account_with_password(&app).await;
    let _elsewhere = sign_in(&app, &stranger, "Stranger/1.0").await;

    let listed = sessions(&app, &phone).await;
    assert_eq!(listed.len(), 2, "only this account's: {listed:#?}");
    // Oldest first.
    assert_eq!(listed[0]["user_agent"], "Firefox/134.0", "{listed:#?}");
    assert_eq!(listed[0]["current"], false, "{listed:#?}");
    assert_eq!(listed[1]["user_agent"], "MusterPhone/2.1", "{listed:#?}");
    assert_eq!(listed[1]["current"], true, "{listed:#?}");
    for session in &listed {
        assert_eq!(session["ip"], "127.0.0.1", "{session:#}");
        for field in ["id", "created_at", "expires_at"] {
            assert!(session[field].is_string(), "{field}: {session:#}");
        }
        let text = session.to_string();
        assert!(
            !text.contains(&laptop[8..]) && !text.contains(&phone[8..]),
            "no secret in the list: {text}"
        );
    }
    // Listing is a use of the phone's session; the laptop's is unused.
    assert!(listed[1]["last_used_at"].is_string(), "{listed:#?}");
    assert!(listed[0].get("last_used_at").is_none(), "{listed:#?}");
    let from_laptop = sessions(&app, &laptop).await;
    assert_eq!(from_laptop[0]["current"], true, "{from_laptop:#?}");
    assert_eq!(from_laptop[1]["current"], false, "{from_laptop:#?}");
}

#[tokio::test]
async fn ending_one_session_signs_out_that_one_only() {
    let app = TestApp::spawn().await;
    let email = account_with_password(&app).await;
    let mine = sign_in(&app, &email, "Mine/1.0").await;
    let lost = sign_in(&app, &email, "Lost/1.0").await;
    let lost_id = own_id(&app, &lost).await;

    let path = format!("/me/sessions/{lost_id}");
    let (status, body) = call(&app, Method::DELETE, &path, &mine).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(me_status(&app, &lost).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &mine).await, StatusCode::OK);
    let listed = sessions(&app, &mine).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    // Gone is gone.
    let (status, body) = call(&app, Method::DELETE, &path, &mine).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Ending the current one is signing out.
    let mine_id = own_id(&app, &mine).await;
    let path = format!("/me/sessions/{mine_id}");
    let (status, body) = call(&app, Method::DELETE, &path, &mine).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(me_status(&app, &mine).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn signing_out_everywhere_else_keeps_the_current_session() {
    let app = TestApp::spawn().await;
    let email = account_with_password(&app).await;
    let kept = sign_in(&app, &email, "Kept/1.0").await;
    let others = [
        sign_in(&app, &email, "Other/1.0").await,
        sign_in(&app, &email, "Other/2.0").await,
    ];
    let stranger = account_with_password(&app).await;
    let strangers = sign_in(&app, &stranger, "Stranger/1.0").await;

    let (status, body) = call(&app, Method::DELETE, "/me/sessions", &kept).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "sessions_ended": 2 }));
    for other in &others {
        assert_eq!(me_status(&app, other).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(me_status(&app, &kept).await, StatusCode::OK);
    assert_eq!(me_status(&app, &strangers).await, StatusCode::OK);
    let listed = sessions(&app, &kept).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["current"], true, "{listed:#?}");

    let (status, body) = call(&app, Method::DELETE, "/me/sessions", &kept).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "sessions_ended": 0 }));
}

#[tokio::test]
async fn another_accounts_session_is_not_found_and_lives_on() {
    let app = TestApp::spawn().await;
    let mine = sign_in(&app, &account_with_password(&app).await, "Mine/1.0").await;
    let theirs = sign_in(&app, &account_with_password(&app).await, "Theirs/1.0").await;
    let their_id = own_id(&app, &theirs).await;

    let (status, body) = call(
        &app,
        Method::DELETE,
        &format!("/me/sessions/{their_id}"),
        &mine,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(me_status(&app, &theirs).await, StatusCode::OK);
    // Neither a made-up nor a malformed id tells anything else.
    for id in [uuid::Uuid::now_v7().to_string(), "not-an-id".to_owned()] {
        let (status, other) =
            call(&app, Method::DELETE, &format!("/me/sessions/{id}"), &mine).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {other}");
        assert_eq!(other, body, "{id}");
    }
    let (status, _) = call(&app, Method::DELETE, "/me/sessions", &mine).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me_status(&app, &theirs).await, StatusCode::OK);
}

#[tokio::test]
async fn a_personal_token_can_neither_list_nor_end_sessions() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let session = crate::api::session_for(&app, &org.owner.account_id).await;
    let session_id = own_id(&app, &session).await;
    for (method, path) in [
        (Method::GET, "/me/sessions".to_owned()),
        (Method::DELETE, "/me/sessions".to_owned()),
        (Method::DELETE, format!("/me/sessions/{session_id}")),
    ] {
        let (status, body) = call(&app, method.clone(), &path, &org.owner.token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("sign in")),
            "{body}"
        );
    }
    assert_eq!(me_status(&app, &session).await, StatusCode::OK);
}

#[tokio::test]
async fn sessions_from_before_addresses_were_kept_still_list() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let session = crate::api::session_for(&app, &org.owner.account_id).await;
    // A session document as written before `ip` and `user_agent` existed.
    let now = Utc::now();
    app.store
        .database()
        .collection::<bson::Document>("sessions")
        .insert_one(bson::doc! {
            "_id": uuid::Uuid::now_v7().to_string(),
            "hash": "0".repeat(64),
            "display_prefix": "mst_ses_0000",
            "name": null,
            "account_id": org.owner.account_id.to_string(),
            "org_id": null,
            "created_at": bson::DateTime::from_chrono(now),
            "expires_at": bson::DateTime::from_chrono(now + chrono::Duration::hours(1)),
            "last_used_at": null,
        })
        .await
        .expect("an old session");
    let listed = sessions(&app, &session).await;
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let old = &listed[1];
    assert_eq!(old["current"], false, "{old:#}");
    for absent in ["ip", "user_agent", "last_used_at"] {
        assert!(old.get(absent).is_none(), "{absent}: {old:#}");
    }
}
