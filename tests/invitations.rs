//! Invitations end to end, against the real server, database, job worker
//! and a real SMTP server (aiosmtpd): mails arrive, their links lead
//! through the accept page to active members, resend and revoke kill old
//! links, expiry, an existing account joining a second organization, SMTP
//! outages, and a repeated job that mails once.

use crate::common;

use std::time::Duration;

use chrono::Utc;
use common::smtp::{SmtpServer, invitation_token, parse_message};
use common::{OrgFixture, TestApp, eventually};
use muster::bootstrap::{BootstrapInput, bootstrap};
use muster::state::AppState;
use muster_worker::{JobsConfig, PushOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// A server, a worker with short waits, and the SMTP server it mails to
/// (`None` while that server is down).
struct World {
    app: TestApp,
    org: OrgFixture,
    smtp: Option<SmtpServer>,
    stop_worker: Option<tokio::sync::oneshot::Sender<()>>,
    worker: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl World {
    async fn start() -> World {
        let smtp = SmtpServer::start(&[]);
        Self::start_mailing(smtp.url(), Some(smtp)).await
    }

    async fn start_mailing(url: String, smtp: Option<SmtpServer>) -> World {
        let app = TestApp::builder()
            .settings(|s| s.smtp.url = Some(url))
            .spawn()
            .await;
        let org = app.with_org_owner().await;
        let state = AppState::new(app.store.clone(), app.settings.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(muster::jobs::run_with(state, common::quick_jobs(), async {
            let _ = stopped.await;
        }));
        World {
            app,
            org,
            smtp,
            stop_worker: Some(stop),
            worker: Some(worker),
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop_worker.take() {
            let _ = stop.send(());
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.await;
        }
    }

    fn org(&self) -> String {
        self.org.org_id.to_string()
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(&format!("/api/v1{path}")))
            .bearer_auth(&self.org.owner.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn invite(&self, emails: Value, role: &str) -> Value {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                &format!("/orgs/{}/invitations", self.org()),
                Some(json!({ "emails": emails, "role": role })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Invites one address as a viewer; returns the invitation's id.
    async fn invite_one(&self, email: &str) -> String {
        let answer = self.invite(json!([email]), "viewer").await;
        answer["results"][0]["invitation_id"]
            .as_str()
            .expect("an invitation id")
            .to_owned()
    }

    /// Waits until `count` mails arrived; returns them parsed (in the
    /// Maildir's order, which is not the order of arrival).
    async fn mails(&self, count: usize) -> Vec<Value> {
        let smtp = self.smtp.as_ref().expect("an SMTP server");
        eventually(Duration::from_secs(30), "the mails arrive", || async move {
            let found = smtp.messages();
            (found.len() >= count).then_some(found)
        })
        .await
        .iter()
        .map(|path| parse_message(path))
        .collect()
    }

    async fn page(&self, token: &str) -> (StatusCode, String) {
        let response = self
            .app
            .get(&format!("/invite/{token}"))
            .send()
            .await
            .expect("page");
        (response.status(), response.text().await.expect("html"))
    }

    async fn submit(&self, token: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let response = self
            .app
            .post(&format!("/invite/{token}"))
            .form(form)
            .send()
            .await
            .expect("submit");
        (response.status(), response.text().await.expect("html"))
    }

    /// How many organizations the account signing in with `PASSWORD`
    /// belongs to.
    async fn memberships(&self, email: &str) -> usize {
        let login: Value = self
            .app
            .post("/api/v1/auth/login")
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let me = self
            .app
            .me(login["token"].as_str().expect("a session"))
            .await;
        me["memberships"].as_array().map_or(0, Vec::len)
    }

    async fn login(&self, email: &str, password: &str) -> StatusCode {
        self.app
            .post("/api/v1/auth/login")
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("login")
            .status()
    }
}

fn recipient(mail: &Value) -> String {
    mail["headers"]["to"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn three_invitations_three_mails_and_a_link_that_makes_a_member() {
    let world = World::start().await;
    let answer = world
        .invite(
            json!("ada@example.com, alan@example.com;\ngrace@example.com, not-an-email"),
            "contributor",
        )
        .await;
    let outcomes: Vec<&str> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["invited", "invited", "invited", "invalid_email"]);

    let mails = world.mails(3).await;
    assert_eq!(mails.len(), 3);
    let mut recipients: Vec<String> = mails.iter().map(recipient).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["ada@example.com", "alan@example.com", "grace@example.com"]
    );
    for mail in &mails {
        assert_eq!(mail["content_type"], "multipart/alternative");
        assert_eq!(mail["defects"], json!([]));
        let subject = mail["headers"]["subject"].as_str().unwrap_or_default();
        assert!(subject.contains("Org "), "{subject}");
    }

    let ada = mails
        .iter()
        .find(|m| recipient(m) == "ada@example.com")
        .expect("ada's mail");
    let token = invitation_token(ada);
    // Opening the link changes nothing (mail scanners open links).
    let (status, html) = world.page(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("contributor") && html.contains("ada@example.com"));
    let (status, html) = world.page(&token).await;
    assert_eq!(status, StatusCode::OK, "{html}");

    // A short password is refused on the page, and nothing is used up.
    let (status, html) = world
        .submit(
            &token,
            &[
                ("given_name", "Ada"),
                ("family_name", "Lovelace"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("password"), "{html}");
    let (status, html) = world
        .submit(
            &token,
            &[
                ("given_name", "Ada"),
                ("family_name", "Lovelace"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Welcome"));
    assert_eq!(
        world.login("ada@example.com", PASSWORD).await,
        StatusCode::OK
    );

    let (_, members) = world
        .api(
            reqwest::Method::GET,
            &format!("/orgs/{}/members?q=ada@example.com", world.org()),
            None,
        )
        .await;
    let ada_member = &members["items"][0];
    assert_eq!(ada_member["status"], "active");
    assert_eq!(ada_member["role"], "contributor");

    // Used: the link now shows a clear 410, and accepting again changes
    // nothing.
    let (status, html) = world.page(&token).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("already been used"), "{html}");
    let (status, _) = world
        .submit(
            &token,
            &[("name", "Eve"), ("password", "another password!")],
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
    let (_, pending) = world
        .api(
            reqwest::Method::GET,
            &format!("/orgs/{}/invitations", world.org()),
            None,
        )
        .await;
    assert_eq!(pending["items"].as_array().map(Vec::len), Some(2));
    let (_, accepted) = world
        .api(
            reqwest::Method::GET,
            &format!("/orgs/{}/invitations?status=accepted", world.org()),
            None,
        )
        .await;
    assert_eq!(accepted["items"][0]["email"], "ada@example.com");
    assert_eq!(accepted["items"][0]["delivery"]["sends"], 1);
    assert!(accepted["items"][0]["delivery"]["sent_at"].is_string());

    // The second time round the outcomes say why.
    let again = world
        .invite(json!(["ada@example.com", "alan@example.com"]), "viewer")
        .await;
    assert_eq!(again["results"][0]["outcome"], "already_member");
    assert_eq!(again["results"][1]["outcome"], "already_pending");
    world.stop().await;
}

#[tokio::test]
async fn resend_and_revoke_kill_the_old_link() {
    let world = World::start().await;
    let id = world.invite_one("kay@example.com").await;
    let first = invitation_token(&world.mails(1).await[0]);
    assert_eq!(world.page(&first).await.0, StatusCode::OK);

    let (status, resent) = world
        .api(
            reqwest::Method::POST,
            &format!("/orgs/{}/invitations/{id}/resend", world.org()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resent}");
    assert_eq!(resent["delivery"]["sends"], 2);
    // The old link dies with the resend, before the new mail is out.
    assert_eq!(world.page(&first).await.0, StatusCode::NOT_FOUND);
    let tokens: Vec<String> = world.mails(2).await.iter().map(invitation_token).collect();
    let second = tokens
        .into_iter()
        .find(|token| *token != first)
        .expect("the resent mail has a new link");
    assert_eq!(world.page(&second).await.0, StatusCode::OK);

    let (status, _) = world
        .api(
            reqwest::Method::DELETE,
            &format!("/orgs/{}/invitations/{id}", world.org()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, html) = world.page(&second).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("revoked"), "{html}");
    let (status, body) = world
        .api(
            reqwest::Method::POST,
            "/invitations/accept",
            Some(json!({ "token": second, "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["type"], "urn:muster:problem:invitation-revoked");
    world.stop().await;
}

#[tokio::test]
async fn an_invitation_past_its_expiry_is_gone_and_the_sweep_marks_it() {
    let world = World::start().await;
    let id = world.invite_one("lin@example.com").await;
    let token = invitation_token(&world.mails(1).await[0]);
    // Time is an input: move the expiry instead of waiting for it.
    world
        .app
        .store
        .database()
        .collection::<bson::Document>("invitations")
        .update_one(
            bson::doc! { "_id": &id },
            bson::doc! { "$set": { "expires_at": bson::DateTime::from_chrono(Utc::now() - chrono::Duration::minutes(1)) } },
        )
        .await
        .expect("move the expiry");
    let (status, html) = world.page(&token).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("expired"), "{html}");
    let state = AppState::new(world.app.store.clone(), world.app.settings.clone());
    assert_eq!(muster::jobs::expire_due(&state).await.expect("sweep"), 1);
    assert_eq!(muster::jobs::expire_due(&state).await.expect("sweep"), 0);
    let (_, expired) = world
        .api(
            reqwest::Method::GET,
            &format!("/orgs/{}/invitations?status=expired", world.org()),
            None,
        )
        .await;
    assert_eq!(expired["items"][0]["id"], id.as_str());
    world.stop().await;
}

#[tokio::test]
async fn an_existing_account_joins_a_second_organization_with_its_own_password() {
    let world = World::start().await;
    bootstrap(
        &world.app.store,
        Utc::now(),
        BootstrapInput {
            org_name: format!("Other {}", uuid::Uuid::new_v4().simple()),
            owner_email: "mia@example.com".into(),
            owner_password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("another organization");
    world.invite(json!("MIA@example.com"), "admin").await;
    let token = invitation_token(&world.mails(1).await[0]);
    let (status, html) = world.page(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("already has an account"), "{html}");
    let (status, html) = world
        .submit(&token, &[("password", "not the password")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("already has an account"), "{html}");
    let (status, html) = world.submit(&token, &[("password", PASSWORD)]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // One login, two organizations.
    assert_eq!(world.memberships("mia@example.com").await, 2);
    world.stop().await;
}

#[tokio::test]
async fn password_guesses_on_the_page_meet_the_sign_in_limits() {
    let world = World::start().await;
    bootstrap(
        &world.app.store,
        Utc::now(),
        BootstrapInput {
            org_name: format!("Other {}", uuid::Uuid::new_v4().simple()),
            owner_email: "noor@example.com".into(),
            owner_password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("another organization");
    world.invite(json!("noor@example.com"), "viewer").await;
    let token = invitation_token(&world.mails(1).await[0]);
    let limit = world.app.settings.rate_limit.login_failures_per_account;
    for _ in 0..limit {
        let (status, _) = world.submit(&token, &[("password", "a guess")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = world.submit(&token, &[("password", PASSWORD)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The page and the API are two doors to one account's limit.
    let response = world
        .app
        .post("/api/v1/auth/login")
        .json(&json!({ "email": "noor@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    world.stop().await;
}

/// The page's session cookie, from a response that set it.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("muster_session="))
        .map(str::to_owned)
}

#[tokio::test]
async fn the_page_knows_who_is_signed_in_on_the_browser() {
    let world = World::start().await;
    world
        .invite(json!(["ada@example.com", "grace@example.com"]), "viewer")
        .await;
    let mails = world.mails(2).await;
    let token_for = |mails: &[Value], to: &str| {
        mails
            .iter()
            .find(|mail| recipient(mail) == to)
            .map(invitation_token)
            .expect("a mail to that address")
    };
    let ada = token_for(&mails, "ada@example.com");
    let grace = token_for(&mails, "grace@example.com");
    let page = |token: &str, cookie: Option<&str>| {
        let mut request = world.app.get(&format!("/invite/{token}"));
        if let Some(cookie) = cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        async move {
            let response = request.send().await.expect("page");
            (response.status(), response.text().await.expect("html"))
        }
    };

    // Accepting signs Ada in on this browser, with a cookie only
    // invitation pages get, that scripts cannot read.
    let accepted = world
        .app
        .post(&format!("/invite/{ada}"))
        .form(&[
            ("given_name", "Ada"),
            ("family_name", "Lovelace"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("accept");
    assert_eq!(accepted.status(), StatusCode::OK);
    let set_cookie = session_cookie(&accepted).expect("a session cookie");
    for attribute in [
        "; Path=/invite",
        "; HttpOnly",
        "; SameSite=Strict",
        "; Max-Age=",
    ] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    assert!(cookie.starts_with("muster_session=mst_ses_"), "{cookie}");

    // Another organization invites Ada: signed in as herself, she joins
    // with one click, no password.
    let other = bootstrap(
        &world.app.store,
        Utc::now(),
        BootstrapInput {
            org_name: format!("Other {}", uuid::Uuid::new_v4().simple()),
            owner_email: "lin@example.com".into(),
            owner_password: None,
        },
    )
    .await
    .expect("another organization");
    let invited = world
        .app
        .post(&format!("/api/v1/orgs/{}/invitations", other.org_id))
        .bearer_auth(&other.owner_token)
        .json(&json!({ "emails": "ada@example.com", "role": "contributor" }))
        .send()
        .await
        .expect("invite");
    assert_eq!(invited.status(), StatusCode::OK);
    let mails = world.mails(3).await;
    let second = mails
        .iter()
        .filter(|mail| recipient(mail) == "ada@example.com")
        .map(invitation_token)
        .find(|token| *token != ada)
        .expect("the second invitation's mail");
    let (status, html) = page(&second, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("You are signed in as <strong>ada@example.com</strong>."),
        "{html}"
    );
    assert!(!html.contains("type=\"password\""), "{html}");
    // Without the cookie the same form needs her password.
    let (status, _) = world.submit(&second, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let joined = world
        .app
        .post(&format!("/invite/{second}"))
        .header(reqwest::header::COOKIE, &cookie)
        .form(&[("name", "")])
        .send()
        .await
        .expect("join");
    assert_eq!(joined.status(), StatusCode::OK);
    assert_eq!(session_cookie(&joined), None, "still the same session");

    // Grace's invitation, opened on Ada's browser, says who is signed in.
    let (status, html) = page(&grace, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(
            "You are signed in as <strong>ada@example.com</strong>, but this invitation \
             is for <strong>grace@example.com</strong>."
        ),
        "{html}"
    );
    assert!(
        html.contains("type=\"password\""),
        "Grace still sets her own"
    );
    let (_, html) = page(&grace, None).await;
    assert!(!html.contains("You are signed in"), "{html}");

    // Signing out ends the session and the cookie.
    let signed_out = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(world.app.url(&format!("/invite/{grace}/sign-out")))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("sign out");
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        signed_out.headers()[reqwest::header::LOCATION],
        format!("/invite/{grace}").as_str()
    );
    let cleared = session_cookie(&signed_out).expect("the cookie is cleared");
    assert!(cleared.starts_with("muster_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (_, html) = page(&grace, Some(&cookie)).await;
    assert!(
        !html.contains("You are signed in"),
        "the session is over: {html}"
    );
    let me = world
        .app
        .get("/api/v1/me")
        .bearer_auth(cookie.trim_start_matches("muster_session="))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // Ada is a member of both organizations.
    assert_eq!(world.memberships("ada@example.com").await, 2);
    world.stop().await;
}

#[tokio::test]
async fn with_smtp_down_the_mail_goes_out_once_it_returns() {
    // Nothing listens on the port yet.
    let port = common::free_port();
    let mut world = World::start_mailing(format!("smtp://127.0.0.1:{port}"), None).await;
    let id = world.invite_one("nia@example.com").await;
    // The failure is recorded on the invitation while the server is down.
    let store = world.app.store.clone();
    let invitation_id = muster::domain::InvitationId::parse(&id).expect("id");
    eventually(
        Duration::from_secs(20),
        "a failed attempt is recorded",
        || {
            let store = store.clone();
            let invitation_id = invitation_id.clone();
            async move {
                let invitation = muster::store::invitations::get_any(&store, &invitation_id)
                    .await
                    .ok()
                    .flatten()?;
                invitation.delivery.last_error.map(|_| ())
            }
        },
    )
    .await;
    world.smtp = Some(SmtpServer::start_on(Some(port), &[]));
    let mails = world.mails(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(recipient(&mails[0]), "nia@example.com");
    world.stop().await;
}

#[tokio::test]
async fn a_job_run_again_after_its_mail_went_out_sends_nothing() {
    let world = World::start().await;
    let id = world.invite_one("oz@example.com").await;
    let token = invitation_token(&world.mails(1).await[0]);
    // As if a worker crashed after sending but before the job was marked
    // done: the same send is queued and run again.
    let job = muster::jobs::SendInvitation {
        invitation_id: id.clone(),
        send: 1,
    };
    let _ = muster_worker::push(
        world.app.store.database(),
        &JobsConfig::default(),
        muster::jobs::SEND_INVITATION_QUEUE,
        &job,
        PushOptions::idempotency_key(format!("replay:{id}")),
    )
    .await
    .expect("push again");
    let jobs = world
        .app
        .store
        .database()
        .collection::<bson::Document>("jobs");
    eventually(Duration::from_secs(20), "the replayed job finishes", || {
        let jobs = jobs.clone();
        let key = format!("replay:{id}");
        async move {
            let job = jobs
                .find_one(bson::doc! { "idempotency_key": key })
                .await
                .ok()
                .flatten()?;
            (job.get_str("status").ok() == Some("done")).then_some(())
        }
    })
    .await;
    let smtp = world.smtp.as_ref().expect("an SMTP server");
    assert_eq!(smtp.messages().len(), 1, "no second mail");
    // And the link of the one mail still works.
    assert_eq!(world.page(&token).await.0, StatusCode::OK);
    world.stop().await;
}

#[tokio::test]
async fn a_member_an_identity_provider_creates_is_activated_through_the_same_mail_and_page() {
    let world = World::start().await;
    let scim = common::Scim::new(&world.app, &world.org.scim_token);
    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "pat@example.com",
                "emails": [{ "value": "pat@example.com", "type": "work", "primary": true }],
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let member_id = created.id();
    let token = invitation_token(&world.mails(1).await[0]);
    let (status, html) = world.page(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("pat@example.com"), "{html}");
    let (status, html) = world
        .submit(&token, &[("name", "Pat"), ("password", PASSWORD)])
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let (_, member) = world
        .api(
            reqwest::Method::GET,
            &format!("/orgs/{}/members/{member_id}", world.org()),
            None,
        )
        .await;
    assert_eq!(member["status"], "active", "{member}");
    assert!(member["account_id"].is_string(), "{member}");
    assert_eq!(
        world.login("pat@example.com", PASSWORD).await,
        StatusCode::OK
    );

    // Deactivated before accepting: the link dies.
    let second = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "quinn@example.com",
                "emails": [{ "value": "quinn@example.com", "primary": true }],
            }),
        )
        .await;
    let quinn = second.id();
    let mails = world.mails(2).await;
    let quinn_token = mails
        .iter()
        .find(|m| recipient(m) == "quinn@example.com")
        .map(invitation_token)
        .expect("quinn's mail");
    let deactivated = scim
        .patch_ops(
            &format!("/Users/{quinn}"),
            json!([{ "op": "replace", "value": { "active": false } }]),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
    let (status, _) = world.page(&quinn_token).await;
    assert_eq!(status, StatusCode::GONE);

    // With activation mails switched off, an IdP's user gets none.
    let (status, _) = world
        .api(
            reqwest::Method::PATCH,
            &format!("/orgs/{}", world.org()),
            Some(json!({ "settings": { "scim_activation_emails": false } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let quiet = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "rey@example.com",
            }),
        )
        .await;
    assert_eq!(quiet.status, StatusCode::CREATED);
    let (_, pending) = world
        .api(
            reqwest::Method::GET,
            &format!("/orgs/{}/invitations", world.org()),
            None,
        )
        .await;
    let emails: Vec<&str> = pending["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["email"].as_str())
        .collect();
    assert!(!emails.contains(&"rey@example.com"), "{emails:?}");
    world.stop().await;
}

#[tokio::test]
async fn an_organization_cannot_invite_more_than_its_hourly_cap() {
    let smtp = SmtpServer::start(&[]);
    let url = smtp.url();
    let app = TestApp::builder()
        .settings(|s| {
            s.smtp.url = Some(url);
            s.invitations.max_per_org_per_hour = 3;
        })
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    let invite = |emails: Value| {
        app.post(&format!("/api/v1/orgs/{}/invitations", org.org_id))
            .bearer_auth(&org.owner.token)
            .json(&json!({ "emails": emails, "role": "viewer" }))
            .send()
    };
    let first = invite(json!(["a1@example.com", "a2@example.com"]))
        .await
        .expect("invite");
    assert_eq!(first.status(), StatusCode::OK);
    let over = invite(json!(["a3@example.com", "a4@example.com"]))
        .await
        .expect("invite");
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(over.headers().contains_key("retry-after"));
    // Refused whole: neither address was invited, and one more still fits.
    let last = invite(json!(["a3@example.com"])).await.expect("invite");
    assert_eq!(last.status(), StatusCode::OK);
    let body: Value = last.json().await.expect("json");
    assert_eq!(body["results"][0]["outcome"], "invited");
}

#[tokio::test]
async fn audit_events_past_their_organizations_retention_are_purged() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let old = muster::domain::AuditEvent {
        org_id: Some(org.org_id.clone()),
        at: Utc::now() - chrono::Duration::days(400),
        actor: muster::domain::Actor::System,
        actor_label: None,
        action: "test.old",
        target: muster::domain::Target {
            kind: "organization",
            id: org.org_id.to_string(),
        },
        before: None,
        after: None,
        origin: muster::domain::RequestOrigin::default(),
    };
    let store = &app.store;
    muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
        muster::store::audit::record(store, session, &old).await
    })
    .expect("an old event");
    let count = || muster::store::audit::count_for_org(store, org.org_id.as_str());
    let before = count().await.expect("count");
    let state = AppState::new(app.store.clone(), app.settings.clone());
    // Retention is 365 days by default: the 400-day-old event goes, the
    // bootstrap's event stays.
    assert_eq!(muster::jobs::purge_audit(&state).await.expect("purge"), 1);
    // Less the purged one, plus the `audit.purged` event saying so.
    assert_eq!(count().await.expect("count"), before);
    assert!(before >= 2);
}

/// The SCIM body of a user with a work email.
fn scim_user(email: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "emails": [{ "value": email, "type": "work", "primary": true }],
    })
}

/// Pending invitations of an organization, by email.
async fn pending_invitations(app: &TestApp, org: &OrgFixture) -> Vec<Value> {
    let list: Value = app
        .get(&format!("/api/v1/orgs/{}/invitations", org.org_id))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The mail job of an invitation's first send.
async fn first_mail_job(app: &TestApp, invitation_id: &str) -> muster_worker::JobDocument {
    muster_worker::collection(app.store.database(), &JobsConfig::default())
        .find_one(bson::doc! { "idempotency_key": format!("invitation:{invitation_id}:send:1") })
        .await
        .expect("read the jobs")
        .expect("the invitation has a mail job")
}

#[tokio::test]
async fn an_identity_providers_user_outside_the_allowed_domains_gets_no_activation_mail() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let patched = app
        .client
        .patch(app.url(&format!("/api/v1/orgs/{}", org.org_id)))
        .bearer_auth(&org.owner.token)
        .json(&json!({ "settings": { "allowed_email_domains": ["example.com"] } }))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), StatusCode::OK);
    let scim = common::Scim::new(&app, &org.scim_token);
    let outsider = scim.post("/Users", &scim_user("zed@elsewhere.io")).await;
    assert_eq!(outsider.status, StatusCode::CREATED, "{}", outsider.body);
    let insider = scim.post("/Users", &scim_user("amy@eu.example.com")).await;
    assert_eq!(insider.status, StatusCode::CREATED, "{}", insider.body);

    let emails: Vec<String> = pending_invitations(&app, &org)
        .await
        .iter()
        .filter_map(|i| i["email"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(emails, ["amy@eu.example.com"]);
    // The log says why the outsider got none.
    let withheld = app
        .store
        .database()
        .collection::<bson::Document>("audit_events")
        .find_one(bson::doc! {
            "org_id": org.org_id.as_str(),
            "action": "member.activation_withheld",
        })
        .await
        .expect("read the log")
        .expect("an event says the activation was withheld");
    let after = withheld.get_document("after").expect("after");
    assert_eq!(after.get_str("reason").ok(), Some("domain_not_allowed"));
    assert_eq!(after.get_str("email").ok(), Some("zed@elsewhere.io"));
}

#[tokio::test]
async fn over_the_hourly_cap_an_activation_mail_waits_for_the_next_window() {
    let app = TestApp::builder()
        .settings(|s| s.invitations.max_per_org_per_hour = 2)
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    let scim = common::Scim::new(&app, &org.scim_token);
    let mut ids = Vec::new();
    let mut created_at = Vec::new();
    for email in ["u1@example.com", "u2@example.com", "u3@example.com"] {
        // Provisioning never fails because of the cap.
        let created = scim.post("/Users", &scim_user(email)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let invitation = pending_invitations(&app, &org)
            .await
            .into_iter()
            .find(|i| i["email"] == email)
            .unwrap_or_else(|| panic!("{email} has an activation invitation"));
        ids.push(invitation["id"].as_str().expect("id").to_owned());
        let at: chrono::DateTime<Utc> =
            serde_json::from_value(invitation["created_at"].clone()).expect("a time");
        created_at.push(at);
    }
    let jobs = [
        first_mail_job(&app, &ids[0]).await,
        first_mail_job(&app, &ids[1]).await,
        first_mail_job(&app, &ids[2]).await,
    ];
    let hour = chrono::Duration::hours(1);
    assert!(jobs[1].run_at < jobs[0].created_at + hour, "within the cap");
    // The third mail waits until the first one's hour has passed.
    assert!(
        jobs[2].run_at >= created_at[0] + hour,
        "{} is not an hour after {}",
        jobs[2].run_at,
        created_at[0]
    );
    assert!(jobs[2].run_at > Utc::now() + chrono::Duration::minutes(50));
    // Its link stays valid for the full TTL after it is mailed.
    let third = pending_invitations(&app, &org)
        .await
        .into_iter()
        .find(|i| i["id"] == ids[2].as_str())
        .expect("the third invitation");
    let expires_at: chrono::DateTime<Utc> =
        serde_json::from_value(third["expires_at"].clone()).expect("a time");
    assert!(
        expires_at >= jobs[2].run_at + chrono::Duration::days(7) - chrono::Duration::seconds(1)
    );
}

/// The SCIM User of `email` in the world's organization.
async fn scim_user_of(world: &World, email: &str) -> Value {
    let scim = common::Scim::new(&world.app, &world.org.scim_token);
    let found = scim
        .filter("Users", &format!("userName eq \"{email}\""))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    found.body["Resources"][0].clone()
}

#[tokio::test]
async fn a_new_persons_given_and_family_names_reach_the_identity_provider() {
    let world = World::start().await;
    world.invite_one("ada@example.com").await;
    let token = invitation_token(&world.mails(1).await[0]);
    let (status, html) = world.page(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("name=\"given_name\"") && html.contains("name=\"family_name\""),
        "{html}"
    );
    // A new person must give both.
    let (status, html) = world
        .submit(&token, &[("given_name", "Ada"), ("password", PASSWORD)])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("family name"), "{html}");
    let (status, html) = world
        .submit(
            &token,
            &[
                ("given_name", " Ada "),
                ("family_name", "Lovelace"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let ada = scim_user_of(&world, "ada@example.com").await;
    assert_eq!(ada["name"]["givenName"], "Ada", "{ada}");
    assert_eq!(ada["name"]["familyName"], "Lovelace", "{ada}");
    assert_eq!(ada["name"]["formatted"], "Ada Lovelace", "{ada}");
    assert_eq!(ada["displayName"], "Ada Lovelace", "{ada}");

    // The API's accept route takes them too.
    world.invite_one("alan@example.com").await;
    let mails = world.mails(2).await;
    let alan = mails
        .iter()
        .find(|m| recipient(m) == "alan@example.com")
        .map(invitation_token)
        .expect("alan's mail");
    let accepted = world
        .app
        .post("/api/v1/invitations/accept")
        .json(&json!({
            "token": alan,
            "given_name": "Alan",
            "family_name": "Turing",
            "password": PASSWORD,
        }))
        .send()
        .await
        .expect("accept");
    assert_eq!(accepted.status(), StatusCode::OK);
    let alan = scim_user_of(&world, "alan@example.com").await;
    assert_eq!(alan["name"]["givenName"], "Alan", "{alan}");
    assert_eq!(alan["name"]["familyName"], "Turing", "{alan}");
    assert_eq!(alan["displayName"], "Alan Turing", "{alan}");
    world.stop().await;
}

/// Resending mails again: without the cap, an admin could mail one
/// address without end.
#[tokio::test]
async fn resends_count_against_the_hourly_cap() {
    let smtp = SmtpServer::start(&[]);
    let url = smtp.url();
    let app = TestApp::builder()
        .settings(|s| {
            s.smtp.url = Some(url);
            s.invitations.max_per_org_per_hour = 3;
        })
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    let invited = app
        .post(&format!("/api/v1/orgs/{}/invitations", org.org_id))
        .bearer_auth(&org.owner.token)
        .json(&json!({ "emails": ["target@example.com"], "role": "viewer" }))
        .send()
        .await
        .expect("invite");
    assert_eq!(invited.status(), StatusCode::OK);
    let body: Value = invited.json().await.expect("json");
    let id = body["results"][0]["invitation_id"]
        .as_str()
        .expect("an invitation id")
        .to_owned();
    let resend = || {
        app.post(&format!(
            "/api/v1/orgs/{}/invitations/{id}/resend",
            org.org_id
        ))
        .bearer_auth(&org.owner.token)
        .send()
    };
    for _ in 0..2 {
        assert_eq!(resend().await.expect("resend").status(), StatusCode::OK);
    }
    let over = resend().await.expect("resend");
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(over.headers().contains_key("retry-after"));
    // Refused whole: the third resend wrote nothing.
    let listed: Value = app
        .get(&format!("/api/v1/orgs/{}/invitations", org.org_id))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"][0]["delivery"]["sends"], 3, "{listed}");
}

/// The mails that run together take their sends in one write and record
/// their deliveries in one transaction; each send is still taken once,
/// and only the sends no resend superseded are recorded, each with its
/// own event.
#[tokio::test]
async fn sends_taken_and_recorded_together_are_each_taken_and_recorded_once() {
    use futures::TryStreamExt;
    use muster::app::invitations::{Mailed, record_mailed};
    use muster::auth::token::generate_invitation_secret;
    use muster::domain::InvitationId;
    use muster::store::invitations::{SendToTake, get_any, take_sends};

    // No worker: the test makes the worker's writes itself.
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let invited: Value = app
        .post(&format!("/api/v1/orgs/{}/invitations", org.org_id))
        .bearer_auth(&org.owner.token)
        .json(&json!({ "emails": ["ann@example.com", "bo@example.com", "cy@example.com"], "role": "viewer" }))
        .send()
        .await
        .expect("invite")
        .json()
        .await
        .expect("json");
    let ids: Vec<InvitationId> = invited["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| {
            InvitationId::parse(result["invitation_id"].as_str().expect("an id")).expect("id")
        })
        .collect();
    let [ann, bo, cy] = <[InvitationId; 3]>::try_from(ids).expect("three invitations");
    let resent = app
        .post(&format!(
            "/api/v1/orgs/{}/invitations/{cy}/resend",
            org.org_id
        ))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("resend");
    assert_eq!(resent.status(), StatusCode::OK);

    let take = |id: &InvitationId, send: u32| SendToTake {
        id: id.clone(),
        send,
        token_hash: generate_invitation_secret().1,
    };
    // Ann's send twice, as when a job is run again while it still runs.
    let takes = [
        take(&ann, 1),
        take(&bo, 1),
        take(&cy, 1),
        take(&cy, 2),
        take(&ann, 1),
    ];
    let taken = take_sends(&app.store, Utc::now(), &takes)
        .await
        .expect("take");
    let taken: Vec<bool> = taken.iter().map(Option::is_some).collect();
    assert_eq!(taken[1..4], [true, false, true], "{taken:?}");
    assert!(taken[0] != taken[4], "one of Ann's two takes: {taken:?}");
    // The link of each taken send is the one its mail will carry.
    for (take, taken) in takes.iter().zip(&taken) {
        if *taken {
            let found =
                muster::store::invitations::find_by_token(&app.store, None, &take.token_hash)
                    .await
                    .expect("find")
                    .expect("the taken send's link");
            assert_eq!(found.id, take.id);
        }
    }

    let mailed = |id: &InvitationId, send: u32| Mailed {
        org_id: org.org_id.clone(),
        id: id.clone(),
        send,
    };
    let recorded = record_mailed(
        &app.store,
        Utc::now(),
        &[
            mailed(&ann, 1),
            mailed(&bo, 1),
            mailed(&cy, 1),
            mailed(&cy, 2),
        ],
    )
    .await
    .expect("record");
    assert_eq!(recorded, [true, true, false, true]);
    for (id, send) in [(&ann, 1), (&bo, 1), (&cy, 2)] {
        let delivery = get_any(&app.store, id)
            .await
            .expect("read")
            .expect("the invitation")
            .delivery;
        assert_eq!((delivery.sent_send, delivery.attempts), (send, 1), "{id}");
        assert!(delivery.sent_at.is_some());
    }
    let events: Vec<bson::Document> = app
        .store
        .database()
        .collection::<bson::Document>("audit_events")
        .find(bson::doc! { "action": "invitation.mailed" })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("events");
    let mut mailed_events: Vec<(String, i64)> = events
        .iter()
        .map(|event| {
            let target = event.get_document("target").expect("target");
            let after = event.get_document("after").expect("after");
            (
                target.get_str("id").expect("target id").to_owned(),
                after
                    .get("send")
                    .and_then(|send| send.as_i64().or(send.as_i32().map(i64::from)))
                    .expect("send"),
            )
        })
        .collect();
    mailed_events.sort();
    let mut expected = vec![
        (ann.to_string(), 1),
        (bo.to_string(), 1),
        (cy.to_string(), 2),
    ];
    expected.sort();
    assert_eq!(mailed_events, expected);

    // A send recorded as mailed is not taken again.
    let again = take_sends(&app.store, Utc::now(), &[take(&ann, 1), take(&cy, 2)])
        .await
        .expect("take again");
    assert!(again.iter().all(Option::is_none));
    app.shutdown().await;
}
