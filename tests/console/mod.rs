//! The admin console (`/console`) over HTTP, against the real server and
//! database: sign-in through the form (and its TOTP step), the session
//! cookie, CSRF tokens and the Origin check, sign-out, and the members
//! page's access check. Redirects are not followed, and cookies are sent
//! by hand, so each answer is seen as the browser would get it.
//!
//! A wrong password answers 401 with the form again (not 200): the same
//! status as `POST /auth/login`, and what a test or a log can tell apart.

mod account;
mod integrations;
mod invitations;
mod members;

use crate::common;

mod orgadmin;

use chrono::Utc;
use common::{PASSWORD, TestApp};
use muster::auth::totp::{TotpSecret, step_of};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// The `Set-Cookie` value for `name`, whole (attributes included).
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value a `Set-Cookie` header sets.
fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().expect("a pair");
    pair.split_once('=').expect("name=value").1.to_owned()
}

/// The CSRF token a page's forms carry.
fn form_token(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("a csrf field in {page}"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("the value ends")].to_owned()
}

/// A browser's view of the console: its cookies, sent by hand.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    csrf_cookie: String,
    /// The sign-in form's token.
    csrf: String,
    session: Option<String>,
    mfa: Option<String>,
}

impl<'a> Browser<'a> {
    /// Opens the sign-in page, which sets the pre-session token.
    async fn open(app: &'a TestApp) -> Browser<'a> {
        let client = client();
        let response = client
            .get(app.url("/console/sign-in"))
            .send()
            .await
            .expect("GET /console/sign-in");
        assert_eq!(response.status(), StatusCode::OK);
        let csrf_cookie = set_cookie(response.headers(), "muster_console_csrf")
            .expect("the pre-session token cookie");
        assert!(csrf_cookie.contains("HttpOnly"), "{csrf_cookie}");
        assert!(csrf_cookie.contains("SameSite=Strict"), "{csrf_cookie}");
        assert!(csrf_cookie.contains("Path=/console"), "{csrf_cookie}");
        let page = response.text().await.expect("a page");
        Browser {
            app,
            csrf: form_token(&page),
            csrf_cookie: cookie_value(&csrf_cookie),
            client,
            session: None,
            mfa: None,
        }
    }

    fn cookies(&self) -> String {
        let mut cookies = format!("muster_console_csrf={}", self.csrf_cookie);
        if let Some(session) = &self.session {
            cookies.push_str(&format!("; muster_console={session}"));
        }
        if let Some(mfa) = &self.mfa {
            cookies.push_str(&format!("; muster_console_mfa={mfa}"));
        }
        cookies
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.app.url(path))
            .header("cookie", self.cookies())
            .send()
            .await
            .expect("GET")
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookies())
            .form(form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send().await.expect("POST")
    }

    /// Signs in with the form; the answer.
    async fn sign_in(&mut self, email: &str, password: &str) -> reqwest::Response {
        let csrf = self.csrf.clone();
        let response = self
            .post(
                "/console/sign-in",
                &[("csrf", &csrf), ("email", email), ("password", password)],
                Some(&self.app.settings.http.public_url),
            )
            .await;
        if let Some(session) = set_cookie(response.headers(), "muster_console") {
            self.session = Some(cookie_value(&session));
        }
        if let Some(mfa) = set_cookie(response.headers(), "muster_console_mfa") {
            self.mfa = Some(cookie_value(&mfa)).filter(|v| !v.is_empty());
        }
        response
    }

    /// The signed-in pages' token, from the organizations page.
    async fn session_token(&self) -> String {
        let response = self.get("/console").await;
        assert_eq!(response.status(), StatusCode::OK);
        form_token(&response.text().await.expect("a page"))
    }

    /// A browser signed in as `email` (whose password is `PASSWORD`).
    async fn signed_in(app: &'a TestApp, email: &str) -> Browser<'a> {
        let mut browser = Browser::open(app).await;
        let signed_in = browser.sign_in(email, PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "sign in");
        assert_eq!(signed_in.headers()[LOCATION], "/console");
        browser
    }

    /// Submits a signed-in form as a console page would: with the
    /// session's token and this server's `Origin`.
    async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.session_token().await;
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(path, &form, Some(&self.app.settings.http.public_url))
            .await
    }

    /// A page's body, after checking its status.
    async fn page(&self, path: &str, status: StatusCode) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), status, "GET {path}");
        response.text().await.expect("a page")
    }
}

/// An owner with a password in a new organization, signed in to the
/// console: the browser, the organization (as `with_member` takes it) and
/// the owner's email.
async fn owner_in_console(app: &TestApp) -> (Browser<'_>, common::OrgFixture, String) {
    let (output, email) = app.owner_with_password("console").await;
    let org = app.org_of(&output).await;
    let browser = Browser::signed_in(app, &email).await;
    (browser, org, email)
}

/// A member of `org` with `role`, with a password, signed in to the
/// console.
async fn member_in_console<'a>(
    app: &'a TestApp,
    org: &common::OrgFixture,
    role: muster::domain::Role,
) -> (Browser<'a>, common::MemberFixture) {
    let member = app.member_with_password(org, role).await;
    (Browser::signed_in(app, &member.email).await, member)
}

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app
        .call(reqwest::Method::GET, "/me/sessions", token, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

async fn api_session(app: &TestApp, email: &str) -> String {
    let response = app
        .post("/api/v1/auth/login")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn console_sign_in_refuses_a_wrong_password_and_sets_a_strict_cookie() {
    let app = TestApp::spawn().await;
    let (output, email) = app.owner_with_password("console").await;
    let mut browser = Browser::open(&app).await;

    let wrong = browser.sign_in(&email, "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(wrong.headers(), "muster_console").is_none());
    let page = wrong.text().await.expect("the form again");
    assert!(page.contains("invalid email or password"), "{page}");
    assert!(page.contains(&email), "the email is kept: {page}");
    assert!(page.contains("<label for=\"password\">"), "{page}");

    let right = browser.sign_in(&email, PASSWORD).await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[LOCATION], "/console");
    let cookie = set_cookie(right.headers(), "muster_console").expect("the session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    // The test server's public URL is http://: no Secure.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let secret = browser.session.clone().expect("a session");
    assert!(secret.starts_with("mst_ses_"), "an ordinary session");

    // The organizations page, under the pages' security headers.
    let home = browser.get("/console").await;
    assert_eq!(home.status(), StatusCode::OK);
    let headers = home.headers().clone();
    let policy = headers["content-security-policy"].to_str().expect("ascii");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("style-src 'self'"), "{policy}");
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    // Not no-referrer: under it browsers send `Origin: null`, which the
    // forms' check refuses.
    assert_eq!(headers["referrer-policy"], "same-origin");
    let page = home.text().await.expect("a page");
    assert!(
        page.contains(&format!("/console/orgs/{}/members", output.org_id)),
        "{page}"
    );
    let css = browser.get("/console/static/console.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/css")
    );

    // The same session store as the API: listed in /me/sessions.
    let listed = sessions(&app, &secret).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["current"], true);
    app.shutdown().await;
}

#[tokio::test]
async fn console_posts_without_the_token_or_from_another_origin_are_refused() {
    let app = TestApp::spawn().await;
    let (_, email) = app.owner_with_password("console").await;
    let browser = Browser::open(&app).await;
    let origin = app.settings.http.public_url.clone();
    let credentials = [("email", email.as_str()), ("password", PASSWORD)];

    let no_token = browser
        .post("/console/sign-in", &credentials, Some(&origin))
        .await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let wrong_token = browser
        .post(
            "/console/sign-in",
            &[
                credentials[0],
                credentials[1],
                ("csrf", "0".repeat(64).as_str()),
            ],
            Some(&origin),
        )
        .await;
    assert_eq!(wrong_token.status(), StatusCode::FORBIDDEN);
    let foreign = browser
        .post(
            "/console/sign-in",
            &[credentials[0], credentials[1], ("csrf", &browser.csrf)],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    for refused in [&no_token, &wrong_token, &foreign] {
        assert!(set_cookie(refused.headers(), "muster_console").is_none());
    }
    // Nothing changed: no session was started by the refused forms.
    let api = api_session(&app, &email).await;
    assert_eq!(sessions(&app, &api).await.len(), 1);

    // Signed in, sign-out takes the session's token and our origin too.
    let mut browser = browser;
    assert_eq!(
        browser.sign_in(&email, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let token = browser.session_token().await;
    let pre_session = browser.csrf.clone();
    for (form, origin) in [
        (vec![], Some(origin.as_str())),
        // The sign-in form's token is not the session's.
        (vec![("csrf", pre_session.as_str())], Some(origin.as_str())),
        (vec![("csrf", token.as_str())], Some("https://evil.example")),
        (vec![("csrf", token.as_str())], Some("null")),
    ] {
        let refused = browser.post("/console/sign-out", &form, origin).await;
        assert_eq!(
            refused.status(),
            StatusCode::FORBIDDEN,
            "{form:?} {origin:?}"
        );
    }
    assert_eq!(browser.get("/console").await.status(), StatusCode::OK);
    assert_eq!(sessions(&app, &api).await.len(), 2);
    app.shutdown().await;
}

#[tokio::test]
async fn console_sign_out_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let (browser, _, email) = owner_in_console(&app).await;
    let api = api_session(&app, &email).await;
    assert_eq!(sessions(&app, &api).await.len(), 2);

    let signed_out = browser.submit("/console/sign-out", &[]).await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_out.headers()[LOCATION], "/console/sign-in");
    let cleared = set_cookie(signed_out.headers(), "muster_console").expect("cleared");
    assert!(cleared.starts_with("muster_console=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    let left = sessions(&app, &api).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["current"], true);
    // The old cookie no longer signs anyone in.
    let home = browser.get("/console").await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(home.headers()[LOCATION], "/console/sign-in");
    app.shutdown().await;
}

#[tokio::test]
async fn console_members_page_lists_the_org_and_refuses_another() {
    let app = TestApp::spawn().await;
    let (browser, org, email) = owner_in_console(&app).await;
    let other = app.with_org_owner().await;
    let member = app.with_member(&org, muster::domain::Role::Viewer).await;

    let page = browser
        .page(
            &format!("/console/orgs/{}/members", org.org_id),
            StatusCode::OK,
        )
        .await;
    assert!(page.contains(&email), "{page}");
    assert!(page.contains(&member.email), "{page}");
    assert!(page.contains("viewer") && page.contains("owner"), "{page}");
    assert!(
        page.contains("<th scope=\"col\">Suspended until</th>"),
        "{page}"
    );

    // Like the API: a non-member gets 404, organizations stay hidden.
    let refused = browser
        .get(&format!("/console/orgs/{}/members", other.org_id))
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/members", other.org_id),
            &api_session(&app, &email).await,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        browser.get("/console/orgs/nonsense/members").await.status(),
        StatusCode::NOT_FOUND
    );
    // Signed out, the page asks for a sign-in.
    let anonymous = client()
        .get(app.url(&format!("/console/orgs/{}/members", org.org_id)))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    app.shutdown().await;
}

#[tokio::test]
async fn console_sign_in_asks_for_the_code_of_an_account_with_mfa() {
    let app = TestApp::spawn().await;
    let (output, email) = app.owner_with_password("console").await;
    let api = api_session(&app, &email).await;
    let (status, enrolment) = app
        .call(reqwest::Method::POST, "/me/mfa/totp", &api, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolment}");
    let secret =
        TotpSecret::from_base32(enrolment["secret"].as_str().expect("secret")).expect("base32");
    let step = step_of(Utc::now());
    let (status, confirmed) = app
        .call(
            reqwest::Method::POST,
            "/me/mfa/totp/confirm",
            &api,
            Some(json!({ "code": secret.code_at(step), "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");

    let mut browser = Browser::open(&app).await;
    let password = browser.sign_in(&email, PASSWORD).await;
    assert_eq!(password.status(), StatusCode::SEE_OTHER);
    assert_eq!(password.headers()[LOCATION], "/console/sign-in/mfa");
    assert!(browser.session.is_none(), "no session before the code");
    assert!(browser.mfa.is_some(), "the challenge, in a cookie");
    let form = browser.get("/console/sign-in/mfa").await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(
        form.text()
            .await
            .expect("a page")
            .contains("<label for=\"code\">")
    );

    let origin = app.settings.http.public_url.clone();
    let csrf = browser.csrf.clone();
    let wrong = browser
        .post(
            "/console/sign-in/mfa",
            &[("csrf", &csrf), ("code", "000000")],
            Some(&origin),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // The code of the step after the one the confirmation spent.
    let code = secret.code_at(step.max(step_of(Utc::now()) - 1) + 1);
    let right = browser
        .post(
            "/console/sign-in/mfa",
            &[("csrf", &csrf), ("code", &code)],
            Some(&origin),
        )
        .await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[LOCATION], "/console");
    let session = set_cookie(right.headers(), "muster_console").expect("a session");
    browser.session = Some(cookie_value(&session));
    assert_eq!(browser.get("/console").await.status(), StatusCode::OK);

    // The organization now requires a second factor: the owner (who has
    // one) still sees the members; a member without one gets the API's 403.
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/orgs/{}", output.org_id),
            &api,
            Some(json!({ "settings": { "require_mfa": true } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let members = format!("/console/orgs/{}/members", output.org_id);
    assert_eq!(browser.get(&members).await.status(), StatusCode::OK);
    let member = app
        .with_member(&app.org_of(&output).await, muster::domain::Role::Admin)
        .await;
    app.give_password(&member.account_id).await;
    let mut without_mfa = Browser::open(&app).await;
    assert_eq!(
        without_mfa.sign_in(&member.email, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let refused = without_mfa.get(&members).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await.expect("a page");
    assert!(page.contains("two-factor"), "{page}");
    app.shutdown().await;
}

/// Errors met before a console handler runs (an unknown page, a quota)
/// are pages too, not the API's problem JSON; a quota says when to retry.
#[tokio::test]
async fn console_errors_outside_handlers_are_pages() {
    let app = TestApp::builder()
        .settings(|s| {
            s.rate_limit.enabled = true;
            s.rate_limit.other_per_second = 1;
            s.rate_limit.other_burst = 1;
        })
        .spawn()
        .await;
    let missing = client()
        .get(app.url("/console/no-such-page"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let content_type = missing.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = missing.text().await.expect("a page");
    assert!(page.contains("<h1>Not found</h1>"), "{page}");

    // The burst of one went on the page above; one a second comes back,
    // so a slow machine may get one more page before the refusal.
    let mut limited = None;
    for _ in 0..5 {
        let response = client()
            .get(app.url("/console/sign-in"))
            .send()
            .await
            .expect("GET");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("a 429 within five requests at one a second");
    assert!(limited.headers().contains_key("retry-after"));
    let content_type = limited.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    app.shutdown().await;
}

/// Every console route that takes a POST refuses one without the form's
/// token, from another site, with 403 and before doing anything: the
/// table is walked, so a form added later is checked too. (Routes that
/// take no POST answer 405.)
#[tokio::test]
async fn every_console_form_refuses_a_post_without_its_token() {
    let app = TestApp::spawn().await;
    let (browser, org, email) = owner_in_console(&app).await;
    let before = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/audit-events", org.org_id),
            &api_session(&app, &email).await,
            None,
        )
        .await;
    let mut posts = 0;
    for path in muster::console::route_paths() {
        let path: String = path
            .split('/')
            .map(|part| match part {
                ":org" => org.org_id.to_string(),
                _ if part.starts_with(':') => "x".to_owned(),
                _ => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        let response = browser
            .post(
                &format!("/console{path}"),
                &[("csrf", "forged")],
                Some("https://attacker.example"),
            )
            .await;
        match response.status() {
            StatusCode::METHOD_NOT_ALLOWED => {}
            status => {
                assert_eq!(status, StatusCode::FORBIDDEN, "POST /console{path}");
                posts += 1;
            }
        }
    }
    assert!(posts >= 30, "{posts} forms checked");
    // Nothing was done: the audit log did not move.
    let after = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/audit-events", org.org_id),
            &api_session(&app, &email).await,
            None,
        )
        .await;
    assert_eq!(before.1["items"], after.1["items"]);
    app.shutdown().await;
}
