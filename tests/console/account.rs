//! My account (`/console/me…`) over HTTP: each form changes what the
//! API's `/me` routes read, is refused where the API refuses (with the
//! API's status), and takes the session's CSRF token and our Origin.

use super::{Browser, api_session, client, owner_in_console, sessions, set_cookie};
use crate::common::{PASSWORD, TestApp};

use chrono::Utc;
use muster::auth::totp::{TotpSecret, step_of};
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The text of the first `<code id="{id}">` on a page.
fn code_text(page: &str, id: &str) -> String {
    let open = format!("<code id=\"{id}\">");
    let at = page
        .find(&open)
        .unwrap_or_else(|| panic!("{open} in {page}"));
    let rest = &page[at + open.len()..];
    rest[..rest.find("</code>").expect("the code ends")].to_owned()
}

async fn me(app: &TestApp, token: &str) -> Value {
    let (status, body) = app.call(Method::GET, "/me", token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn console_me_changes_the_name_the_api_reads() {
    let app = TestApp::spawn().await;
    let (browser, _, email) = owner_in_console(&app).await;
    let page = browser.page("/console/me", StatusCode::OK).await;
    assert!(page.contains(&email), "{page}");
    assert!(page.contains("href=\"/console/me\""), "the header's link");

    let saved = browser
        .submit("/console/me/name", &[("display_name", "  Ada Console ")])
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(saved.headers()[LOCATION], "/console/me?done=name");
    let page = browser.page("/console/me?done=name", StatusCode::OK).await;
    assert!(
        page.contains("<p class=\"notice\" role=\"status\">"),
        "{page}"
    );
    let api = api_session(&app, &email).await;
    assert_eq!(
        me(&app, &api).await["account"]["display_name"],
        "Ada Console"
    );

    // The API's rule on names, with its status.
    let long = "x".repeat(101);
    let refused = browser
        .submit("/console/me/name", &[("display_name", &long)])
        .await;
    let (api_status, body) = app
        .call(
            Method::PATCH,
            "/me",
            &api,
            Some(json!({ "display_name": long })),
        )
        .await;
    assert!(api_status.is_client_error(), "{body}");
    assert_eq!(refused.status(), api_status);
    let page = refused.text().await.expect("a page");
    assert!(page.contains("role=\"alert\""), "{page}");
    assert_eq!(
        me(&app, &api).await["account"]["display_name"],
        "Ada Console"
    );

    // Blank clears it, as null does.
    let cleared = browser
        .submit("/console/me/name", &[("display_name", "")])
        .await;
    assert_eq!(cleared.status(), StatusCode::SEE_OTHER);
    assert!(me(&app, &api).await["account"]["display_name"].is_null());
    app.shutdown().await;
}

#[tokio::test]
async fn console_password_change_checks_the_current_password_as_the_api_does() {
    let app = TestApp::spawn().await;
    let (browser, _, email) = owner_in_console(&app).await;
    let api = api_session(&app, &email).await;
    let new = "a much newer console passphrase";

    let wrong = browser
        .submit(
            "/console/me/password",
            &[
                ("current", "not the password"),
                ("new", new),
                ("repeat", new),
            ],
        )
        .await;
    let (api_status, body) = app
        .call(
            Method::PATCH,
            "/me",
            &api,
            Some(json!({ "password": { "current": "not the password", "new": new } })),
        )
        .await;
    assert_eq!(api_status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(wrong.status(), api_status, "the API's status");
    let page = wrong.text().await.expect("a page");
    assert!(
        page.contains("<p class=\"error\" role=\"alert\">"),
        "{page}"
    );
    // Nothing changed: the old password still signs in, and the API
    // session (which a change would end) still works.
    assert_eq!(
        Browser::open(&app)
            .await
            .sign_in(&email, PASSWORD)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    me(&app, &api).await;

    let changed = browser
        .submit(
            "/console/me/password",
            &[("current", PASSWORD), ("new", new), ("repeat", new)],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(changed.headers()[LOCATION], "/console/me?done=password");
    // The console's session is kept; the others ended.
    assert_eq!(browser.get("/console/me").await.status(), StatusCode::OK);
    let (status, _) = app.call(Method::GET, "/me", &api, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut again = Browser::open(&app).await;
    assert_eq!(
        again.sign_in(&email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        again.sign_in(&email, new).await.status(),
        StatusCode::SEE_OTHER
    );
    app.shutdown().await;
}

#[tokio::test]
async fn console_mfa_enrolment_turns_on_the_code_step_at_sign_in() {
    let app = TestApp::spawn().await;
    let (browser, _, email) = owner_in_console(&app).await;
    let page = browser.page("/console/me/mfa", StatusCode::OK).await;
    assert!(page.contains("id=\"start-mfa\""), "{page}");

    let started = browser.submit("/console/me/mfa", &[]).await;
    assert_eq!(started.status(), StatusCode::OK, "answered, not redirected");
    let page = started.text().await.expect("a page");
    // The QR code as an image (no inline SVG the CSP could object to).
    assert!(
        page.contains("<img class=\"qr\" src=\"data:image/svg+xml;base64,"),
        "{page}"
    );
    assert!(page.contains("autocomplete=\"one-time-code\""), "{page}");
    let secret = TotpSecret::from_base32(&code_text(&page, "totp-secret")).expect("base32");

    // A wrong code is refused with the API's status; still off.
    let wrong = browser
        .submit(
            "/console/me/mfa/confirm",
            &[("code", "000000"), ("password", PASSWORD)],
        )
        .await;
    assert!(wrong.status().is_client_error(), "{}", wrong.status());
    assert!(
        wrong
            .text()
            .await
            .expect("a page")
            .contains("role=\"alert\"")
    );
    let api = api_session(&app, &email).await;
    assert_eq!(me(&app, &api).await["account"]["mfa_enabled"], false);

    let step = step_of(Utc::now());
    let code = secret.code_at(step);
    let confirmed = browser
        .submit(
            "/console/me/mfa/confirm",
            &[("code", code.as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let page = confirmed.text().await.expect("a page");
    assert_eq!(
        page.matches("<li><code>").count(),
        10,
        "ten recovery codes: {page}"
    );
    // The console's session stays; the API one ended with the others.
    let status = browser.page("/console/me/mfa", StatusCode::OK).await;
    assert!(status.contains("id=\"disable-mfa\""), "{status}");
    assert!(!status.contains("<li><code>"), "the codes are shown once");
    let api = api_session_with_code(&app, &email, &secret, step).await;
    assert_eq!(me(&app, &api).await["account"]["mfa_enabled"], true);

    let mut again = Browser::open(&app).await;
    let password = again.sign_in(&email, PASSWORD).await;
    assert_eq!(password.status(), StatusCode::SEE_OTHER);
    assert_eq!(password.headers()[LOCATION], "/console/sign-in/mfa");
    assert!(again.session.is_none());

    // Off again with a recovery code; a wrong one is refused as by the API.
    let wrong = [("recovery_code", "zzzz-zzzz-zzzz")];
    let refused = browser.submit("/console/me/mfa/disable", &wrong).await;
    let (api_status, body) = app
        .call(
            Method::DELETE,
            "/me/mfa/totp",
            &api,
            Some(json!({ "recovery_code": "zzzz-zzzz-zzzz" })),
        )
        .await;
    assert!(api_status.is_client_error(), "{body}");
    assert_eq!(refused.status(), api_status);
    assert_eq!(me(&app, &api).await["account"]["mfa_enabled"], true);
    let recovery = code_text(
        &page.replacen("<li><code>", "<code id=\"first\">", 1),
        "first",
    );
    let off = browser
        .submit(
            "/console/me/mfa/disable",
            &[("recovery_code", recovery.as_str())],
        )
        .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    assert_eq!(off.headers()[LOCATION], "/console/me/mfa?done=mfa-off");
    let api = api_session(&app, &email).await;
    assert_eq!(me(&app, &api).await["account"]["mfa_enabled"], false);
    app.shutdown().await;
}

/// The recovery codes a page shows, in order.
fn recovery_codes(page: &str) -> Vec<String> {
    page.split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find("</code>").expect("the code ends")].to_owned())
        .collect()
}

/// Completes the API's sign-in of an account with a second factor with a
/// recovery code: the status it answers.
async fn sign_in_with_recovery_code(app: &TestApp, email: &str, code: &str) -> StatusCode {
    let response = app
        .post("/api/v1/auth/login")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    let body: Value = response.json().await.expect("json");
    let challenge = body["challenge"]
        .as_str()
        .unwrap_or_else(|| panic!("a challenge in {body}"))
        .to_owned();
    app.post("/api/v1/auth/login/mfa")
        .json(&json!({ "challenge": challenge, "recovery_code": code }))
        .send()
        .await
        .expect("login mfa")
        .status()
}

#[tokio::test]
async fn console_mfa_regenerates_recovery_codes_and_retires_the_old_ones() {
    let app = TestApp::spawn().await;
    let (browser, _, email) = owner_in_console(&app).await;
    let started = browser.submit("/console/me/mfa", &[]).await;
    let page = started.text().await.expect("a page");
    let secret = TotpSecret::from_base32(&code_text(&page, "totp-secret")).expect("base32");
    // The step before now for turning it on, now for the new codes: both
    // in the window, each spent once.
    let step = step_of(Utc::now());
    let confirmed = browser
        .submit(
            "/console/me/mfa/confirm",
            &[
                ("code", secret.code_at(step - 1).as_str()),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let old = recovery_codes(&confirmed.text().await.expect("a page"));
    assert_eq!(old.len(), 10);

    let status = browser.page("/console/me/mfa", StatusCode::OK).await;
    assert!(
        status.contains("id=\"regenerate-recovery-codes\""),
        "{status}"
    );
    assert!(!status.contains("turn it off and on again"), "{status}");

    // A wrong password is refused as the API refuses it; nothing changes.
    let wrong = browser
        .submit(
            "/console/me/mfa/recovery-codes",
            &[
                ("code", secret.code_at(step).as_str()),
                ("password", "not it"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let wrong = wrong.text().await.expect("a page");
    assert!(wrong.contains("role=\"alert\""), "{wrong}");
    assert!(!wrong.contains("<li><code>"), "{wrong}");

    let regenerated = browser
        .submit(
            "/console/me/mfa/recovery-codes",
            &[
                ("code", secret.code_at(step).as_str()),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        regenerated.status(),
        StatusCode::OK,
        "answered, not redirected"
    );
    let page = regenerated.text().await.expect("a page");
    let new = recovery_codes(&page);
    assert_eq!(new.len(), 10, "ten new recovery codes: {page}");
    assert!(new.iter().all(|code| !old.contains(code)), "{page}");
    let status = browser.page("/console/me/mfa", StatusCode::OK).await;
    assert!(!status.contains("<li><code>"), "the codes are shown once");

    assert_eq!(
        sign_in_with_recovery_code(&app, &email, &old[0]).await,
        StatusCode::UNAUTHORIZED,
        "an old code"
    );
    assert_eq!(
        sign_in_with_recovery_code(&app, &email, &new[0]).await,
        StatusCode::OK,
        "a new code"
    );
    app.shutdown().await;
}

/// An API session for an account with a second factor: the password,
/// then the code of a step after `used`, which is spent.
async fn api_session_with_code(
    app: &TestApp,
    email: &str,
    secret: &TotpSecret,
    used: u64,
) -> String {
    let response = app
        .post("/api/v1/auth/login")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    let body: Value = response.json().await.expect("json");
    let challenge = body["challenge"]
        .as_str()
        .unwrap_or_else(|| panic!("a challenge in {body}"))
        .to_owned();
    // A step after the one the confirmation spent, still in the window.
    let code = secret.code_at(used.max(step_of(Utc::now()) - 1) + 1);
    let response = app
        .post("/api/v1/auth/login/mfa")
        .json(&json!({ "challenge": challenge, "code": code }))
        .send()
        .await
        .expect("login mfa");
    let body: Value = response.json().await.expect("json");
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token in {body}"))
        .to_owned()
}

#[tokio::test]
async fn console_sessions_are_listed_and_revoked() {
    let app = TestApp::spawn().await;
    let (browser, _, email) = owner_in_console(&app).await;
    let api = api_session(&app, &email).await;
    let listed = sessions(&app, &api).await;
    assert_eq!(listed.len(), 2);
    let api_id = listed
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["id"].as_str())
        .expect("the API session")
        .to_owned();

    let page = browser.page("/console/me/sessions", StatusCode::OK).await;
    assert_eq!(page.matches("/end\" class=\"inline\"").count(), 2, "{page}");
    assert_eq!(page.matches("(this browser)").count(), 1, "{page}");
    assert!(page.contains(&api_id), "{page}");

    let ended = browser
        .submit(&format!("/console/me/sessions/{api_id}/end"), &[])
        .await;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        ended.headers()[LOCATION],
        "/console/me/sessions?done=session-ended"
    );
    let (status, _) = app.call(Method::GET, "/me", &api, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the revoked session");
    // Gone: the API's 404, on the page.
    let again = browser
        .submit(&format!("/console/me/sessions/{api_id}/end"), &[])
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // Everywhere else: two more API sessions end, the console's stays.
    let first = api_session(&app, &email).await;
    let second = api_session(&app, &email).await;
    let others = browser.submit("/console/me/sessions/end-others", &[]).await;
    assert_eq!(others.status(), StatusCode::SEE_OTHER);
    for token in [&first, &second] {
        let (status, _) = app.call(Method::GET, "/me", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let page = browser
        .page("/console/me/sessions?done=others-ended", StatusCode::OK)
        .await;
    assert_eq!(page.matches("/end\" class=\"inline\"").count(), 1, "{page}");
    assert!(page.contains("role=\"status\""), "{page}");
    app.shutdown().await;
}

#[tokio::test]
async fn console_personal_token_is_shown_once_works_and_is_revoked() {
    let app = TestApp::spawn().await;
    let (browser, org, email) = owner_in_console(&app).await;
    let org_id = org.org_id.to_string();

    let created = browser
        .submit(
            "/console/me/tokens",
            &[
                ("org_id", org_id.as_str()),
                ("name", "console script"),
                ("expires_on", ""),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK, "answered, not redirected");
    let page = created.text().await.expect("a page");
    let token = code_text(&page, "new-token");
    assert!(token.starts_with("mst_pat_"), "{token}");
    assert_eq!(app.me(&token).await["account"]["email"], email.as_str());

    let listed = browser.page("/console/me/tokens", StatusCode::OK).await;
    assert!(listed.contains("console script"), "{listed}");
    assert!(!listed.contains(&token), "the secret is shown once");

    let api = api_session(&app, &email).await;
    let (status, tokens) = app.call(Method::GET, "/me/tokens", &api, None).await;
    assert_eq!(status, StatusCode::OK);
    let count = tokens["items"].as_array().map(Vec::len);
    let id = tokens["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == "console script")
        .and_then(|t| t["id"].as_str())
        .expect("the new token's id")
        .to_owned();
    let revoked = browser
        .submit(&format!("/console/me/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        revoked.headers()[LOCATION],
        "/console/me/tokens?done=token-revoked"
    );
    let (status, _) = app.call(Method::GET, "/me", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The API's refusals, with its statuses: a past expiry, another org.
    let past = browser
        .submit(
            "/console/me/tokens",
            &[
                ("org_id", org_id.as_str()),
                ("name", "late"),
                ("expires_on", "2001-01-01"),
            ],
        )
        .await;
    let (api_status, body) = app
        .call(
            Method::POST,
            "/me/tokens",
            &api,
            Some(json!({ "org_id": org_id, "name": "late", "expires_at": "2001-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(api_status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(past.status(), api_status);
    let other = app.with_org_owner().await;
    let elsewhere = browser
        .submit(
            "/console/me/tokens",
            &[
                ("org_id", other.org_id.to_string().as_str()),
                ("name", "nope"),
            ],
        )
        .await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    let (_, tokens) = app.call(Method::GET, "/me/tokens", &api, None).await;
    assert_eq!(
        tokens["items"].as_array().map(Vec::len),
        count.map(|n| n - 1),
        "only the revoked one went, none was added"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn console_leaving_as_the_last_owner_is_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let (browser, org, email) = owner_in_console(&app).await;
    let path = format!("/orgs/{}/leave", org.org_id);
    let refused = browser.submit(&format!("/console/me{path}"), &[]).await;
    let api = api_session(&app, &email).await;
    let (api_status, body) = app.call(Method::POST, &path, &api, None).await;
    assert_eq!(api_status, StatusCode::CONFLICT, "{body}");
    assert_eq!(refused.status(), api_status);
    let page = refused.text().await.expect("a page");
    assert!(
        page.contains("<p class=\"error\" role=\"alert\">"),
        "{page}"
    );
    assert!(page.contains("owner"), "the reason: {page}");
    assert_eq!(
        me(&app, &api).await["memberships"].as_array().map(Vec::len),
        Some(1)
    );

    // An admin may leave.
    let admin = app
        .member_with_password(&org, muster::domain::Role::Admin)
        .await;
    let admin_browser = Browser::signed_in(&app, &admin.email).await;
    let left = admin_browser
        .submit(&format!("/console/me{path}"), &[])
        .await;
    assert_eq!(left.status(), StatusCode::SEE_OTHER);
    assert_eq!(left.headers()[LOCATION], "/console/me?done=left");
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/orgs/{}/members", org.org_id),
            &api_session(&app, &admin.email).await,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no longer a member");
    app.shutdown().await;
}

#[tokio::test]
async fn console_account_deletion_needs_the_password_and_signs_out() {
    let app = TestApp::spawn().await;
    let (owner, org, _) = owner_in_console(&app).await;
    let member = app
        .member_with_password(&org, muster::domain::Role::Contributor)
        .await;
    let browser = Browser::signed_in(&app, &member.email).await;

    let mistyped = browser
        .submit(
            "/console/me/delete",
            &[("confirm", "someone@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(mistyped.status(), StatusCode::BAD_REQUEST);
    let wrong = browser
        .submit(
            "/console/me/delete",
            &[("confirm", member.email.as_str()), ("password", "not it")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN, "the API's status");
    assert_eq!(browser.get("/console/me").await.status(), StatusCode::OK);

    let deleted = browser
        .submit(
            "/console/me/delete",
            &[("confirm", member.email.as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        deleted.headers()[LOCATION],
        "/console/sign-in?done=account-deleted"
    );
    let cleared = set_cookie(deleted.headers(), "muster_console").expect("cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let landing = client()
        .get(app.url("/console/sign-in?done=account-deleted"))
        .send()
        .await
        .expect("GET");
    let landing = landing.text().await.expect("a page");
    assert!(
        landing.contains("<p class=\"notice\" role=\"status\">"),
        "{landing}"
    );
    // The old cookie signs nobody in; the password no longer does.
    let home = browser.get("/console/me").await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        Browser::open(&app)
            .await
            .sign_in(&member.email, PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // The last owner is refused, as by the API.
    let owner_email = owner_email(&owner).await;
    let refused = owner
        .submit(
            "/console/me/delete",
            &[("confirm", owner_email.as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(owner.get("/console/me").await.status(), StatusCode::OK);
    app.shutdown().await;
}

/// The email the account page shows ("Signed in as …").
async fn owner_email(browser: &Browser<'_>) -> String {
    let page = browser.page("/console/me", StatusCode::OK).await;
    let open = "Signed in as <strong>";
    let at = page.find(open).expect("the email") + open.len();
    page[at..at + page[at..].find('<').expect("ends")].to_owned()
}

#[tokio::test]
async fn console_account_forms_without_the_token_or_from_another_origin_change_nothing() {
    let app = TestApp::spawn().await;
    let (browser, org, email) = owner_in_console(&app).await;
    let api = api_session(&app, &email).await;
    let (_, tokens) = app.call(Method::GET, "/me/tokens", &api, None).await;
    let tokens_before = tokens["items"].as_array().map(Vec::len);
    let token = browser.session_token().await;
    let origin = app.settings.http.public_url.clone();
    let org_id = org.org_id.to_string();
    let listed = sessions(&app, &api).await;
    let api_session_id = listed
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["id"].as_str())
        .expect("the API session")
        .to_owned();
    let (_, tokens) = app.call(Method::GET, "/me/tokens", &api, None).await;
    let token_id = tokens["items"][0]["id"]
        .as_str()
        .expect("the owner's token")
        .to_owned();
    let leave = format!("/console/me/orgs/{org_id}/leave");
    let end = format!("/console/me/sessions/{api_session_id}/end");
    let revoke = format!("/console/me/tokens/{token_id}/revoke");
    let forms: [(&str, Vec<(&str, &str)>); 10] = [
        (leave.as_str(), vec![]),
        (end.as_str(), vec![]),
        (revoke.as_str(), vec![]),
        ("/console/me/name", vec![("display_name", "Mallory")]),
        (
            "/console/me/password",
            vec![
                ("current", PASSWORD),
                ("new", "a forged new password"),
                ("repeat", "a forged new password"),
            ],
        ),
        ("/console/me/mfa", vec![]),
        (
            "/console/me/mfa/recovery-codes",
            vec![("code", "123456"), ("password", PASSWORD)],
        ),
        ("/console/me/sessions/end-others", vec![]),
        (
            "/console/me/tokens",
            vec![("org_id", org_id.as_str()), ("name", "forged")],
        ),
        (
            "/console/me/delete",
            vec![("confirm", email.as_str()), ("password", PASSWORD)],
        ),
    ];
    for (path, fields) in &forms {
        let mut with_token = fields.clone();
        with_token.push(("csrf", token.as_str()));
        for (form, from) in [
            (fields.clone(), origin.as_str()),
            (with_token.clone(), "https://evil.example"),
        ] {
            let refused = browser.post(path, &form, Some(from)).await;
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path} {from}");
        }
    }
    let after = me(&app, &api).await;
    assert!(after["account"]["display_name"].is_null(), "{after}");
    assert_eq!(
        after["memberships"].as_array().map(Vec::len),
        Some(1),
        "{after}"
    );
    assert_eq!(sessions(&app, &api).await.len(), 2, "no session ended");
    let (_, tokens) = app.call(Method::GET, "/me/tokens", &api, None).await;
    assert_eq!(tokens["items"].as_array().map(Vec::len), tokens_before);
    assert_eq!(browser.get("/console/me").await.status(), StatusCode::OK);
    assert_eq!(after["account"]["mfa_enabled"], false);
    app.shutdown().await;
}
