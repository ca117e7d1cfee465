//! The token cache keeps revocation immediate: a revoked token, an ended
//! session and a deactivated or suspended member are refused by the same
//! server at once, by another `muster serve` on the same database within a
//! second (its change stream), and, with no change stream, once the cache's
//! time to live has passed.
//!
//! The servers here cache for a minute where the point is that something
//! other than expiry forgot the entry.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use chrono::Utc;
use common::{TestApp, eventually, free_port, muster_command};
use muster::bootstrap::{BootstrapInput, bootstrap};
use muster::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const A_MINUTE: u64 = 60_000;

async fn status(app: &TestApp, path: &str, token: &str) -> StatusCode {
    app.get(path)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

async fn cached_app() -> TestApp {
    TestApp::builder()
        .settings(|s| s.auth.cache_ttl_ms = A_MINUTE)
        .spawn()
        .await
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> StatusCode {
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test]
async fn this_server_refuses_what_was_revoked_at_once() {
    let app = cached_app().await;
    let org = app.with_org_owner().await;
    let o = org.org_id.to_string();

    // A SCIM token, deleted by an owner.
    assert_eq!(
        status(&app, "/scim/v2/Users", &org.scim_token).await,
        StatusCode::OK
    );
    assert!(!app.store.token_cache().is_empty(), "the token is cached");
    let tokens: Value = app
        .get(&format!("/api/v1/orgs/{o}/scim-tokens"))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let id = tokens["items"][0]["id"].as_str().expect("a token id");
    let deleted = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/orgs/{o}/scim-tokens/{id}"),
        &org.owner.token,
        Value::Null,
    )
    .await;
    assert_eq!(deleted, StatusCode::NO_CONTENT);
    assert_eq!(
        status(&app, "/scim/v2/Users", &org.scim_token).await,
        StatusCode::UNAUTHORIZED
    );

    // A member's personal token, deactivated and then suspended members'.
    for change in [
        json!({ "status": "inactive" }),
        json!({ "status": "suspended", "suspended_until": Utc::now() + chrono::Duration::days(1) }),
    ] {
        let member = app.with_member(&org, Role::Viewer).await;
        let members = format!("/api/v1/orgs/{o}/members");
        assert_eq!(status(&app, &members, &member.token).await, StatusCode::OK);
        let changed = send(
            &app,
            reqwest::Method::PATCH,
            &format!("{members}/{}", member.member_id),
            &org.owner.token,
            change.clone(),
        )
        .await;
        assert_eq!(changed, StatusCode::OK, "{change}");
        assert_ne!(
            status(&app, &members, &member.token).await,
            StatusCode::OK,
            "{change}: refused at once"
        );
    }

    // A session, ended.
    let email = format!("kim-{}@example.com", uuid::Uuid::new_v4().simple());
    bootstrap(
        &app.store,
        Utc::now(),
        BootstrapInput {
            org_name: format!("Kim's {}", uuid::Uuid::new_v4().simple()),
            owner_email: email.clone(),
            owner_password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("bootstrap");
    let login: Value = app
        .post("/api/v1/auth/login")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let session = login["token"].as_str().expect("a session");
    assert_eq!(status(&app, "/api/v1/me", session).await, StatusCode::OK);
    let ended = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        session,
        Value::Null,
    )
    .await;
    assert_eq!(ended, StatusCode::NO_CONTENT);
    assert_eq!(
        status(&app, "/api/v1/me", session).await,
        StatusCode::UNAUTHORIZED
    );
}

/// A `muster serve` process, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `muster serve` on `app`'s database with a minute-long cache, and
/// waits until its change stream is open (it says so in its log).
async fn second_server(app: &TestApp) -> Server {
    let port = free_port();
    let mut child = muster_command()
        .arg("serve")
        .arg("--no-worker")
        .env("MUSTER_MONGODB__URI", &app.settings.mongodb.uri)
        .env("MUSTER_MONGODB__DATABASE", &app.settings.mongodb.database)
        .env("MUSTER_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("MUSTER_AUTH__CACHE_TTL_MS", A_MINUTE.to_string())
        .env("MUSTER_AUTH__MFA_KEY", common::TEST_MFA_KEY)
        .env("MUSTER_LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start muster serve");
    let stderr = child.stderr.take().expect("stderr");
    let (following, followed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("the token cache follows the database's changes") {
                let _ = following.send(());
            }
        }
    });
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    eventually(Duration::from_secs(30), "the change stream is open", || {
        let opened = followed.try_recv().is_ok();
        async move { opened.then_some(()) }
    })
    .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_server_refuses_it_within_a_second_through_the_change_stream() {
    let app = cached_app().await;
    let org = app.with_org_owner().await;
    let member = app.with_member(&org, Role::Viewer).await;
    let other = second_server(&app).await;
    let client = reqwest::Client::new();
    let me = format!("{}/api/v1/me", other.base);
    let ask = |token: String| {
        let client = client.clone();
        let me = me.clone();
        async move {
            client
                .get(&me)
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
                .status()
        }
    };
    assert_eq!(ask(member.token.clone()).await, StatusCode::OK);

    // Deactivated through this server; the other one cached it for a
    // minute, so only its change stream can tell it in time.
    let changed = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/orgs/{}/members/{}", org.org_id, member.member_id),
        &org.owner.token,
        json!({ "status": "inactive" }),
    )
    .await;
    assert_eq!(changed, StatusCode::OK);
    eventually(
        Duration::from_secs(1),
        "the other server refuses the deactivated member's token",
        || {
            let asked = ask(member.token.clone());
            async move { (asked.await != StatusCode::OK).then_some(()) }
        },
    )
    .await;

    // A personal token deleted along with its membership.
    let removed_member = app.with_member(&org, Role::Viewer).await;
    assert_eq!(ask(removed_member.token.clone()).await, StatusCode::OK);
    let removed = send(
        &app,
        reqwest::Method::DELETE,
        &format!(
            "/api/v1/orgs/{}/members/{}",
            org.org_id, removed_member.member_id
        ),
        &org.owner.token,
        Value::Null,
    )
    .await;
    assert_eq!(removed, StatusCode::NO_CONTENT);
    eventually(
        Duration::from_secs(1),
        "the other server refuses the removed member's token",
        || {
            let asked = ask(removed_member.token.clone());
            async move { (asked.await == StatusCode::UNAUTHORIZED).then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
async fn without_a_change_stream_an_entry_lives_no_longer_than_its_ttl() {
    let first = cached_app().await;
    let org = first.with_org_owner().await;
    let member = first.with_member(&org, Role::Viewer).await;
    // A second server in this process on the same database, without the
    // watcher `muster serve` starts: only expiry can tell it.
    const TTL_MS: u64 = 500;
    let second = TestApp::builder()
        .database(
            &first.settings.mongodb.uri,
            &first.settings.mongodb.database,
        )
        .settings(|s| s.auth.cache_ttl_ms = TTL_MS)
        .spawn()
        .await;
    assert_eq!(
        status(&second, "/api/v1/me", &member.token).await,
        StatusCode::OK
    );
    let changed = send(
        &first,
        reqwest::Method::PATCH,
        &format!("/api/v1/orgs/{}/members/{}", org.org_id, member.member_id),
        &org.owner.token,
        json!({ "status": "inactive" }),
    )
    .await;
    assert_eq!(changed, StatusCode::OK);
    eventually(
        Duration::from_millis(TTL_MS * 3),
        "the second server refuses the token once its entry expired",
        || {
            let asked = status(&second, "/api/v1/me", &member.token);
            async move { (asked.await != StatusCode::OK).then_some(()) }
        },
    )
    .await;
}
