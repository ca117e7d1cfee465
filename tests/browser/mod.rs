//! The accept page in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`, which `dev/test` installs) driven over
//! WebDriver, following the link of a mail a real SMTP server received.

mod console_account;
mod console_integrations;
mod console_invitations;
mod console_members;

use crate::common;

mod console_orgadmin;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::smtp::{SmtpServer, parse_message};
use common::{TestApp, eventually, free_port};
use muster::state::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// A chromedriver process, killed when dropped.
struct Driver {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Driver {
    /// chromedriver runs in a process group of its own, so the browser it
    /// started goes with it, even when a failed assertion skipped closing
    /// the session.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> String {
    let path = std::env::var("TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let found = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "{path} not found: install Debian's chromium and chromium-driver \
         (dev/test does), or point TEST_CHROMEDRIVER at a chromedriver"
    );
    path
}

impl Driver {
    async fn start() -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let status_url = format!("{}/status", driver.base);
        let client = driver.client.clone();
        eventually(Duration::from_secs(30), "chromedriver is ready", || {
            let client = client.clone();
            let url = status_url.clone();
            async move {
                let status: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
                (status["value"]["ready"] == true).then_some(())
            }
        })
        .await;
        driver
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("webdriver request");
        let status = response.status();
        let value: Value = response.json().await.expect("webdriver json");
        assert!(status.is_success(), "webdriver {path}: {status} {value}");
        value["value"].clone()
    }

    async fn session(&self) -> String {
        let browser = std::env::var("TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let created = self
            .command(
                reqwest::Method::POST,
                "/session",
                json!({ "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": browser,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                    },
                } } }),
            )
            .await;
        created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned()
    }

    async fn element(&self, session: &str, css: &str) -> String {
        let found = self
            .command(
                reqwest::Method::POST,
                &format!("/session/{session}/element"),
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("an element reference")
            .to_owned()
    }

    /// Loads `url` in the session's window.
    async fn open(&self, session: &str, url: &str) {
        self.command(
            reqwest::Method::POST,
            &format!("/session/{session}/url"),
            json!({ "url": url }),
        )
        .await;
    }

    /// Types each value into the field `css` selects, then clicks the
    /// page's first submit button.
    async fn fill_and_submit(&self, session: &str, fields: &[(&str, &str)]) {
        self.fill(session, fields).await;
        self.click(session, "button[type=submit]").await;
    }

    /// Types each value into the field `css` selects, without submitting
    /// (signed-in pages have the header's sign-out button first, so the
    /// caller clicks the form's own button).
    async fn fill(&self, session: &str, fields: &[(&str, &str)]) {
        for (css, value) in fields {
            let input = self.element(session, css).await;
            self.command(
                reqwest::Method::POST,
                &format!("/session/{session}/element/{input}/value"),
                json!({ "text": value }),
            )
            .await;
        }
    }

    /// Empties the field `css` selects.
    async fn clear(&self, session: &str, css: &str) {
        let field = self.element(session, css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/session/{session}/element/{field}/clear"),
            json!({}),
        )
        .await;
    }

    /// The value of the browser's cookie `name`.
    async fn cookie(&self, session: &str, name: &str) -> String {
        let cookie = self
            .command(
                reqwest::Method::GET,
                &format!("/session/{session}/cookie/{name}"),
                Value::Null,
            )
            .await;
        cookie["value"].as_str().expect("a cookie value").to_owned()
    }

    /// A new browser session signed in to the console as `email` (whose
    /// password is `PASSWORD`), on the organizations page.
    async fn console_session(&self, app: &TestApp, email: &str) -> String {
        let session = self.session().await;
        self.open(&session, &app.url("/console/sign-in")).await;
        self.wait_for(&session, "the sign-in form", "id=\"password\"")
            .await;
        self.fill_and_submit(&session, &[("#email", email), ("#password", PASSWORD)])
            .await;
        self.wait_for(&session, "the organizations page", "<h1>Organizations</h1>")
            .await;
        session
    }

    /// The page itself does not scroll sideways (a wide table scrolls in
    /// its own box); what sticks out is named, to say what to fix.
    async fn assert_no_sideways_scroll(&self, session: &str, page: &str) {
        let widths = self
            .execute(
                session,
                "const width = document.documentElement.clientWidth;\
                 const wide = [...document.body.querySelectorAll('*')]\
                   .filter(e => (e.getBoundingClientRect().right > width || e.scrollWidth > e.clientWidth + 1) && !e.closest('.table'))\
                   .map(e => e.tagName + '.' + e.className + ':' + e.scrollWidth + '/' + e.clientWidth + ' ' + e.textContent.slice(0, 40));\
                 return [document.documentElement.scrollWidth, width, wide.slice(0, 10)];",
                json!([]),
            )
            .await;
        assert!(
            widths[0].as_u64() <= widths[1].as_u64(),
            "the {page} page scrolls sideways: {widths}"
        );
    }

    /// On a phone-sized window the page does not scroll sideways.
    async fn assert_fits_a_phone(&self, session: &str, page: &str) {
        self.command(
            reqwest::Method::POST,
            &format!("/session/{session}/window/rect"),
            json!({ "width": 375, "height": 800 }),
        )
        .await;
        self.assert_no_sideways_scroll(session, page).await;
    }

    /// The page's source once it contains `needle` (the source can be
    /// read before a page has loaded).
    async fn wait_for(&self, session: &str, what: &str, needle: &str) -> String {
        eventually(Duration::from_secs(15), what, || async {
            let page = self.source(session).await;
            page.contains(needle).then_some(page)
        })
        .await
    }

    async fn click(&self, session: &str, css: &str) {
        let element = self.element(session, css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/session/{session}/element/{element}/click"),
            json!({}),
        )
        .await;
    }

    /// Runs `script` in the page (as a function body, with `args` as its
    /// `arguments`); what it returns. WebDriver's scripts are not subject
    /// to the page's Content-Security-Policy.
    async fn execute(&self, session: &str, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            &format!("/session/{session}/execute/sync"),
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// axe-core's serious and critical violations on the page as it is
    /// now (WCAG 2.x A and AA rules and axe's best practices).
    async fn accessibility_violations(&self, session: &str) -> Vec<Value> {
        let axe = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dev/browser/node_modules/axe-core/axe.min.js"
        ))
        .expect("axe-core: run `npm ci --prefix dev/browser` (dev/test does)");
        self.execute(session, &format!("{axe}\nreturn true;"), json!([]))
            .await;
        let found = self
            .command(
                reqwest::Method::POST,
                &format!("/session/{session}/execute/async"),
                json!({
                    "script": "const done = arguments[arguments.length - 1];\
                        axe.run(document, { resultTypes: ['violations'] })\
                          .then(r => done(r.violations\
                            .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                            .map(v => ({ id: v.id, impact: v.impact, help: v.help,\
                              nodes: v.nodes.map(n => n.html) }))))\
                          .catch(e => done([{ id: 'axe-failed', help: String(e) }]));",
                    "args": [],
                }),
            )
            .await;
        found.as_array().cloned().unwrap_or_default()
    }

    /// The page has no serious or critical accessibility violation.
    async fn assert_accessible(&self, session: &str, page: &str) {
        let violations = self.accessibility_violations(session).await;
        assert!(
            violations.is_empty(),
            "the {page} page: {}",
            serde_json::to_string_pretty(&violations).unwrap_or_default()
        );
    }

    async fn close(&self, session: &str) {
        let _ = self
            .client
            .delete(format!("{}/session/{session}", self.base))
            .send()
            .await;
    }

    async fn source(&self, session: &str) -> String {
        self.command(
            reqwest::Method::GET,
            &format!("/session/{session}/source"),
            Value::Null,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }
}

#[tokio::test]
async fn an_invitee_follows_the_mailed_link_in_a_browser_and_becomes_a_member() {
    let driver = Driver::start().await;
    let smtp = SmtpServer::start(&[]);
    let url = smtp.url();
    let app = console_app(|s| s.smtp.url = Some(url)).await;
    let org = app.with_org_owner().await;
    let state = AppState::new(app.store.clone(), app.settings.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(muster::jobs::run(state, async {
        let _ = stopped.await;
    }));
    let invited = app
        .post(&format!("/api/v1/orgs/{}/invitations", org.org_id))
        .bearer_auth(&org.owner.token)
        .json(&json!({ "emails": "sam@example.com", "role": "contributor" }))
        .send()
        .await
        .expect("invite");
    assert_eq!(invited.status(), StatusCode::OK);
    let link = mailed_link(&smtp).await;
    assert!(link.contains("/invite/mst_inv_"), "{link}");

    let session = driver.session().await;
    driver.open(&session, &link).await;
    // The source can be read before the page has loaded: wait for it.
    let page = eventually(Duration::from_secs(15), "the invitation page", || async {
        let page = driver.source(&session).await;
        page.contains("sam@example.com").then_some(page)
    })
    .await;
    assert!(page.contains("contributor"), "{page}");
    driver
        .fill_and_submit(
            &session,
            &[
                ("#given_name", "Sam"),
                ("#family_name", "Doe"),
                ("#password", PASSWORD),
            ],
        )
        .await;
    let welcomed = eventually(Duration::from_secs(15), "the welcome page", || async {
        let page = driver.source(&session).await;
        page.contains("Welcome").then_some(page)
    })
    .await;
    assert!(welcomed.contains("You are now a member"), "{welcomed}");
    let _ = driver
        .client
        .delete(format!("{}/session/{session}", driver.base))
        .send()
        .await;

    let login = app
        .post("/api/v1/auth/login")
        .json(&json!({ "email": "sam@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::OK);
    let _ = stop.send(());
    let _ = worker.await;
}

/// A server for browser tests: its public URL is the address it listens
/// on, as the console's Origin check and the mails' links need.
async fn console_app(configure: impl FnOnce(&mut muster::config::Settings)) -> TestApp {
    let port = free_port();
    TestApp::builder()
        .settings(|s| {
            s.http.addr = ([127, 0, 0, 1], port).into();
            s.http.public_url = format!("http://127.0.0.1:{port}");
            configure(s);
        })
        .spawn()
        .await
}

/// The link of the first invitation mail the SMTP server received.
async fn mailed_link(smtp: &SmtpServer) -> String {
    let messages = eventually(Duration::from_secs(30), "the mail arrives", || async {
        let found = smtp.messages();
        (!found.is_empty()).then_some(found)
    })
    .await;
    let mail = parse_message(&messages[0]);
    let text = mail["parts"]
        .as_array()
        .and_then(|parts| parts.iter().find(|p| p["content_type"] == "text/plain"))
        .and_then(|p| p["content"].as_str())
        .expect("a text part")
        .to_owned();
    let start = text.find("http://").expect("a link");
    text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect()
}

#[tokio::test]
async fn an_account_with_two_factor_authentication_accepts_with_its_code_in_a_browser() {
    use muster::auth::totp::{TotpSecret, step_of};
    use muster::bootstrap::{BootstrapInput, bootstrap};

    let driver = Driver::start().await;
    let smtp = SmtpServer::start(&[]);
    let url = smtp.url();
    let app = console_app(|s| s.smtp.url = Some(url)).await;
    let org = app.with_org_owner().await;
    // Kai has an account (owning an organization of their own) with a
    // second factor.
    bootstrap(
        &app.store,
        chrono::Utc::now(),
        BootstrapInput {
            org_name: "Kai's".into(),
            owner_email: "kai@example.com".into(),
            owner_password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("bootstrap");
    let login: Value = app
        .post("/api/v1/auth/login")
        .json(&json!({ "email": "kai@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let session = login["token"].as_str().expect("a session");
    let enrolment: Value = app
        .post("/api/v1/me/mfa/totp")
        .bearer_auth(session)
        .send()
        .await
        .expect("enrol")
        .json()
        .await
        .expect("json");
    let secret =
        TotpSecret::from_base32(enrolment["secret"].as_str().expect("secret")).expect("base32");
    let step = step_of(chrono::Utc::now()) - 1;
    let confirmed = app
        .post("/api/v1/me/mfa/totp/confirm")
        .bearer_auth(session)
        .json(&json!({ "code": secret.code_at(step), "password": PASSWORD }))
        .send()
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), StatusCode::OK);

    let state = AppState::new(app.store.clone(), app.settings.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(muster::jobs::run(state, async {
        let _ = stopped.await;
    }));
    let invited = app
        .post(&format!("/api/v1/orgs/{}/invitations", org.org_id))
        .bearer_auth(&org.owner.token)
        .json(&json!({ "emails": "kai@example.com", "role": "viewer" }))
        .send()
        .await
        .expect("invite");
    assert_eq!(invited.status(), StatusCode::OK);
    let link = mailed_link(&smtp).await;

    let browser = driver.session().await;
    driver.open(&browser, &link).await;
    eventually(Duration::from_secs(15), "the invitation page", || async {
        let page = driver.source(&browser).await;
        page.contains("kai@example.com").then_some(())
    })
    .await;
    // The page asks for the password and the code; the app computes it.
    let code = secret.code_at(step + 1);
    driver
        .fill_and_submit(
            &browser,
            &[("#password", PASSWORD), ("#code", code.as_str())],
        )
        .await;
    let welcomed = eventually(Duration::from_secs(15), "the welcome page", || async {
        let page = driver.source(&browser).await;
        page.contains("Welcome").then_some(page)
    })
    .await;
    assert!(welcomed.contains("You are now a member"), "{welcomed}");
    let _ = driver
        .client
        .delete(format!("{}/session/{browser}", driver.base))
        .send()
        .await;
    let me: Value = app
        .get("/api/v1/me")
        .bearer_auth(session)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    let orgs: Vec<&str> = me["memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .filter_map(|m| m["org_id"].as_str())
        .collect();
    assert!(orgs.contains(&org.org_id.as_str()), "{me}");
    let _ = stop.send(());
    let _ = worker.await;
}

/// The Swagger UI still works under its strict Content-Security-Policy
/// (no `unsafe-inline`: its inline code is allowed by hash): its script
/// runs, fetches `/openapi.json` and renders the operations. Chromium
/// prints the DOM after the page's scripts ran; with a wrong hash in the
/// policy no operation is rendered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swagger_ui_renders_under_its_content_security_policy() {
    let app = TestApp::spawn().await;
    let docs = app.get("/docs/").send().await.expect("GET /docs/");
    let policy = docs
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a policy")
        .to_owned();
    assert!(
        policy.contains("script-src 'sha256-") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    let browser = std::env::var("TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut command = Command::new(browser);
    command
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(app.url("/docs/"))
        .process_group(0)
        .stderr(Stdio::null());
    let dumped = tokio::process::Command::from(command)
        .output()
        .await
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&dumped.stdout);
    // An attribute only the running script writes (its source spells it
    // `className`), once per operation.
    let rendered = dom
        .matches(r#"class="opblock-summary-description""#)
        .count();
    assert!(rendered > 20, "{rendered} operations rendered");
}

/// The console in a real browser: the sign-in form (its CSRF token and
/// the Origin check pass as a browser sends them), then the organization's
/// members table, styled by the console's stylesheet under a policy
/// without inline styles; each page passes axe-core.
#[tokio::test]
async fn an_owner_signs_in_to_the_console_and_sees_the_members_table() {
    let driver = Driver::start().await;
    let app = console_app(|_| {}).await;
    let (output, email) = app.owner_with_password("console").await;
    let session = driver.session().await;
    driver.open(&session, &app.url("/console")).await;
    driver
        .wait_for(&session, "the sign-in form", "id=\"password\"")
        .await;
    driver.assert_accessible(&session, "sign-in").await;
    driver
        .fill_and_submit(
            &session,
            &[("#email", email.as_str()), ("#password", PASSWORD)],
        )
        .await;
    let members_link = format!("/console/orgs/{}/members", output.org_id);
    driver
        .wait_for(&session, "the organizations page", &members_link)
        .await;
    driver.assert_accessible(&session, "organizations").await;
    driver.open(&session, &app.url(&members_link)).await;
    let page = driver
        .wait_for(&session, "the members table", "<table")
        .await;
    assert!(page.contains(&email), "{page}");
    driver.assert_accessible(&session, "members").await;
    // The stylesheet applied: the CSP let the file in.
    let body = driver.element(&session, "body").await;
    let width = driver
        .command(
            reqwest::Method::GET,
            &format!("/session/{session}/element/{body}/css/max-width"),
            Value::Null,
        )
        .await;
    assert_eq!(width, "1152px", "console.css is applied");
    // The pages that are neither forms nor lists: a refusal's message,
    // and a confirmation (revoking the SCIM token bootstrap made).
    driver
        .open(&session, &app.url("/console/orgs/nonsense/members"))
        .await;
    driver
        .wait_for(&session, "the not-found page", "<h1>Not found</h1>")
        .await;
    driver.assert_accessible(&session, "not found").await;
    let integrations = format!("/console/orgs/{}/integrations", output.org_id);
    driver.open(&session, &app.url(&integrations)).await;
    driver
        .wait_for(&session, "the integrations page", "Revoke…")
        .await;
    driver.click(&session, "a[href$='/revoke']").await;
    driver
        .wait_for(
            &session,
            "the revoke confirmation",
            "<h1>Revoke the SCIM token",
        )
        .await;
    driver
        .assert_accessible(&session, "revoke confirmation")
        .await;
    driver.close(&session).await;
    app.shutdown().await;
}
