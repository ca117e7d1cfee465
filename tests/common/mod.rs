//! The test harness: a real Muster server on a random port, against a
//! fresh database on the test MongoDB server (started by `dev/test`), dropped
//! when the test ends.

pub mod smtp;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use muster::auth::token::{IssuedToken, TokenKind, TokenRecord};
use muster::bootstrap::{BootstrapInput, bootstrap};
use muster::config::Settings;
use muster::domain::{Account, AccountId, Email, Member, MemberId, MemberStatus, OrgId, Role};
use muster::protocol::user::UserProfile;
use muster::state::AppState;
use muster::store::{self, Store};
use poem::listener::{Acceptor, Listener, TcpListener};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the test database server listens; `dev/test` exports it.
pub const MONGODB_URI_VAR: &str = "TEST_MONGODB_URI";
/// The `secantusd-py` binary, for tests that start and stop their own server.
pub const SECANTUSD_VAR: &str = "TEST_SECANTUSD_BIN";

/// The password of the accounts `TestApp::owner_with_password` makes.
pub const PASSWORD: &str = "correct horse battery staple";

/// The `auth.mfa_key` test servers seal TOTP secrets with.
pub const TEST_MFA_KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";

pub fn mongodb_uri() -> String {
    std::env::var(MONGODB_URI_VAR).unwrap_or_else(|_| {
        panic!(
            "{MONGODB_URI_VAR} is not set: run the tests through dev/test, which starts a database"
        )
    })
}

/// A database name no other test uses.
pub fn fresh_database_name() -> String {
    format!("test_{}", uuid::Uuid::new_v4().simple())
}

pub fn test_settings(uri: &str, database: &str) -> Settings {
    let mut settings = Settings::default();
    settings.mongodb.uri = uri.to_owned();
    settings.mongodb.database = database.to_owned();
    settings.mongodb.server_selection_timeout_ms = 2_000;
    settings.http.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.http.shutdown_grace_seconds = 5;
    settings.auth.mfa_key = Some(TEST_MFA_KEY.to_owned());
    settings
}

pub struct TestAppBuilder {
    settings: Settings,
    keep_database: bool,
    change_stream: bool,
}

impl TestAppBuilder {
    pub fn settings(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(&mut self.settings);
        self
    }

    /// Follow the database's changes as `muster serve` does, so that the
    /// token cache learns of other processes' revocations (tests that
    /// change tokens from another process). Off by default: most tests
    /// change nothing behind the server's back, and each stream costs the
    /// test database work.
    pub fn with_change_stream(mut self) -> Self {
        self.change_stream = true;
        self
    }

    /// Use a database the test manages itself (and drops itself).
    pub fn database(mut self, uri: &str, database: &str) -> Self {
        self.settings.mongodb.uri = uri.to_owned();
        self.settings.mongodb.database = database.to_owned();
        self.keep_database = true;
        self
    }

    pub async fn spawn(self) -> TestApp {
        let store = Store::connect(&self.settings.mongodb)
            .await
            .expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        let acceptor = TcpListener::bind(self.settings.http.addr)
            .into_acceptor()
            .await
            .expect("bind a test port");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let state = AppState::new(store.clone(), self.settings.clone());
        let watcher = self.change_stream.then(|| {
            tokio::spawn(muster::store::token_cache::watch(
                store.clone(),
                std::future::pending(),
            ))
        });
        let served = state.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            muster::http::serve(acceptor, served, async {
                let _ = stopped.await;
            })
            .await
        });
        TestApp {
            base_url: format!("http://{addr}"),
            client: reqwest::Client::new(),
            store,
            state,
            settings: self.settings,
            keep_database: self.keep_database,
            stop: Some(stop),
            server: Some(server),
            watcher,
        }
    }
}

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub store: Store,
    /// The server's own state, for what only the process can see (the
    /// argon2 permits).
    pub state: AppState,
    pub settings: Settings,
    keep_database: bool,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    watcher: Option<JoinHandle<()>>,
}

/// An organization with its owner and a SCIM token.
#[derive(Debug, Clone)]
pub struct OrgFixture {
    pub org_id: OrgId,
    pub owner: MemberFixture,
    pub scim_token: String,
}

/// A member with a personal API token for the organization.
#[derive(Debug, Clone)]
pub struct MemberFixture {
    pub account_id: AccountId,
    pub member_id: MemberId,
    pub email: String,
    pub token: String,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            settings: test_settings(&mongodb_uri(), &fresh_database_name()),
            keep_database: false,
            change_stream: false,
        }
    }

    pub async fn spawn() -> TestApp {
        Self::builder().spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    /// `GET /api/v1/me` with `token`, which must succeed.
    pub async fn me(&self, token: &str) -> serde_json::Value {
        let response = self
            .get("/api/v1/me")
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /me");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "GET /me");
        response.json().await.expect("GET /me: json")
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    /// A management API call (`path` under `/api/v1`) with `token`: the
    /// status and the JSON body (`Null` when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self
            .client
            .request(method, self.url(&format!("/api/v1{path}")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or_default())
    }

    /// A new organization whose owner, `{prefix}-…@example.com`, has the
    /// password [`PASSWORD`]: what `muster bootstrap` printed, and the
    /// email.
    pub async fn owner_with_password(
        &self,
        prefix: &str,
    ) -> (muster::bootstrap::BootstrapOutput, String) {
        let email = format!("{prefix}-{}@example.com", uuid::Uuid::new_v4().simple());
        let output = bootstrap(
            &self.store,
            Utc::now(),
            BootstrapInput {
                org_name: format!("Org {}", uuid::Uuid::new_v4().simple()),
                owner_email: email.clone(),
                owner_password: Some(PASSWORD.into()),
            },
        )
        .await
        .expect("bootstrap an organization");
        (output, email)
    }

    /// Gives the account the password [`PASSWORD`], so it can sign in.
    pub async fn give_password(&self, account_id: &muster::domain::AccountId) {
        let hash = muster::auth::password::hash_password(PASSWORD).expect("hash");
        let store = &self.store;
        let set =
            muster::in_transaction!(store, |session| -> Result<bool, mongodb::error::Error> {
                muster::store::accounts::set_password_hash(
                    store,
                    session,
                    account_id,
                    &hash,
                    Utc::now(),
                )
                .await
            })
            .expect("set a password");
        assert!(set, "the account exists");
    }

    /// A member of `org` with `role` who has the password [`PASSWORD`].
    pub async fn member_with_password(&self, org: &OrgFixture, role: Role) -> MemberFixture {
        let member = self.with_member(org, role).await;
        self.give_password(&member.account_id).await;
        member
    }

    /// The organization `owner_with_password` made, as `with_member`
    /// takes it.
    pub async fn org_of(&self, output: &muster::bootstrap::BootstrapOutput) -> OrgFixture {
        let org_id = muster::domain::OrgId::parse(&output.org_id).expect("org id");
        let account_id = muster::domain::AccountId::parse(&output.owner_account_id).expect("id");
        let member =
            muster::store::members::find_by_account(&self.store, None, &org_id, &account_id)
                .await
                .expect("read member")
                .expect("owner membership");
        OrgFixture {
            org_id,
            owner: MemberFixture {
                account_id,
                member_id: member.id,
                email: String::new(),
                token: output.owner_token.clone(),
            },
            scim_token: output.scim_token.clone(),
        }
    }

    /// A new organization, its owner (with a personal token) and a SCIM
    /// token, created the way `muster bootstrap` does it.
    pub async fn with_org_owner(&self) -> OrgFixture {
        let email = format!("owner-{}@example.com", uuid::Uuid::new_v4().simple());
        let output = bootstrap(
            &self.store,
            Utc::now(),
            BootstrapInput {
                org_name: format!("Org {}", uuid::Uuid::new_v4().simple()),
                owner_email: email.clone(),
                owner_password: None,
            },
        )
        .await
        .expect("bootstrap an organization");
        let org_id = OrgId::parse(&output.org_id).expect("org id");
        let account_id = AccountId::parse(&output.owner_account_id).expect("account id");
        let member = store::members::find_by_account(&self.store, None, &org_id, &account_id)
            .await
            .expect("read member")
            .expect("owner membership");
        OrgFixture {
            org_id,
            owner: MemberFixture {
                account_id,
                member_id: member.id,
                email,
                token: output.owner_token,
            },
            scim_token: output.scim_token,
        }
    }

    /// A new account joined to `org` with `role`, active, with a personal
    /// API token.
    pub async fn with_member(&self, org: &OrgFixture, role: Role) -> MemberFixture {
        let now = Utc::now();
        let email = format!(
            "{}-{}@example.com",
            role.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        let account = Account {
            id: AccountId::new(),
            email: Email::parse(&email).expect("email"),
            display_name: None,
            created_at: now,
            updated_at: now,
        };
        let member = Member {
            id: MemberId::new(),
            org_id: org.org_id.clone(),
            account_id: Some(account.id.clone()),
            role,
            status: MemberStatus::Active,
            suspended_until: None,
            project_rights: Vec::new(),
            created_at: now,
            updated_at: now,
            last_sign_in_at: None,
        };
        let issued = IssuedToken::generate(TokenKind::Personal);
        let record = TokenRecord::new(
            &issued,
            Some("test".into()),
            Some(account.id.clone()),
            Some(org.org_id.clone()),
            now,
            None,
        );
        let store = &self.store;
        muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
            let _ = store::accounts::insert(store, session, &account, None).await?;
            let _ = store::members::insert(
                store,
                session,
                &member,
                &UserProfile::for_email(&account.email),
            )
            .await?;
            let _ = store::tokens::insert(store, Some(session), &record).await?;
            Ok(())
        })
        .expect("create a member");
        MemberFixture {
            account_id: account.id,
            member_id: member.id,
            email,
            token: issued.secret.into_exposed(),
        }
    }

    /// Sets a member's status straight in the store; `until` ends a
    /// suspension.
    pub async fn set_member_status(
        &self,
        org: &OrgFixture,
        member: &MemberFixture,
        status: MemberStatus,
        until: Option<chrono::DateTime<Utc>>,
    ) {
        store::members::set_status(
            &self.store,
            None,
            &org.org_id,
            &member.member_id,
            status,
            until,
            Utc::now(),
        )
        .await
        .expect("set a member's status");
    }

    /// Stops the server the way SIGTERM does and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.keep_database {
            return;
        }
        // Drop cannot await, and the test's runtime may be shutting down:
        // drop the database from a thread with a runtime of its own.
        let mongodb = self.settings.mongodb.clone();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(store) = Store::connect(&mongodb).await {
                    let _ = store.database().drop().await;
                }
            });
        })
        .join();
    }
}

/// Polls `check` until it returns `Some`, for at most `limit`; the way to
/// wait for a condition without guessing a sleep.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A job worker with short waits, so that mails go out in a moment.
pub fn quick_jobs() -> muster_worker::JobsConfig {
    muster_worker::JobsConfig {
        poll_interval: Duration::from_millis(200),
        backoff_base: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(1),
        heartbeat_interval: Duration::from_secs(1),
        lease: Duration::from_secs(10),
        ..muster_worker::JobsConfig::default()
    }
}

/// The `muster` binary with a clean `MUSTER_*` environment.
pub fn muster_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_muster"));
    for (name, _) in std::env::vars() {
        if name.starts_with("MUSTER_") {
            command.env_remove(name);
        }
    }
    command
}

/// A `muster` process against a test's database, as an operator runs it:
/// killed when dropped, its output kept in a log for failure messages.
pub struct MusterProcess {
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl MusterProcess {
    /// Runs `muster <command>` on `app`'s database with `env` on top.
    pub fn start(app: &TestApp, command: &str, env: &[(&str, String)]) -> MusterProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("muster.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut muster = muster_command();
        muster
            .arg(command)
            .env("MUSTER_MONGODB__URI", &app.settings.mongodb.uri)
            .env("MUSTER_MONGODB__DATABASE", &app.settings.mongodb.database)
            .stdin(std::process::Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file);
        for (name, value) in env {
            muster.env(name, value);
        }
        MusterProcess {
            child: muster.spawn().expect("start muster"),
            log,
            _dir: dir,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the process gets no chance to release or finish anything.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill muster");
        self.child.wait().expect("reap muster");
    }

    /// SIGTERM, then waits (30 s at most) for a clean exit.
    pub async fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let child = &mut self.child;
        let status = eventually(Duration::from_secs(30), "muster exits", || {
            let exited = child.try_wait().expect("try_wait");
            async move { exited }
        })
        .await;
        assert!(status.success(), "{status}; log:\n{}", self.log_text());
    }
}

impl Drop for MusterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on loopback (bound and released; good enough for a
/// child process that binds it right away).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// A SCIM client for one organization's token.
pub struct Scim<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

/// A SCIM answer: status, headers and the JSON body (Null when empty).
pub struct ScimAnswer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl ScimAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn scim_type(&self) -> Option<&str> {
        self.body["scimType"].as_str()
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().expect("a resource id").to_owned()
    }
}

impl<'a> Scim<'a> {
    pub fn new(app: &'a TestApp, token: &str) -> Scim<'a> {
        Scim {
            app,
            token: token.to_owned(),
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> ScimAnswer {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        ScimAnswer {
            status,
            headers,
            body,
        }
    }

    fn url(&self, path: &str) -> String {
        self.app.url(&format!("/scim/v2{path}"))
    }

    pub async fn get(&self, path: &str) -> ScimAnswer {
        self.send(self.app.client.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> ScimAnswer {
        self.send(self.app.client.delete(self.url(path))).await
    }

    fn with_body(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.url(path))
            .header("content-type", "application/scim+json")
            .body(body.to_string())
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> ScimAnswer {
        self.send(self.with_body(reqwest::Method::POST, path, body))
            .await
    }

    pub async fn put(&self, path: &str, body: &serde_json::Value) -> ScimAnswer {
        self.send(self.with_body(reqwest::Method::PUT, path, body))
            .await
    }

    pub async fn patch(&self, path: &str, body: &serde_json::Value) -> ScimAnswer {
        self.send(self.with_body(reqwest::Method::PATCH, path, body))
            .await
    }

    /// A PatchOp with these operations.
    pub async fn patch_ops(&self, path: &str, operations: serde_json::Value) -> ScimAnswer {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        });
        self.patch(path, &body).await
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let answer = self
            .post(
                "/Users",
                &serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "name": { "givenName": "Test", "familyName": user_name },
                    "emails": [{ "value": user_name, "type": "work", "primary": true }],
                }),
            )
            .await;
        assert_eq!(
            answer.status,
            reqwest::StatusCode::CREATED,
            "{}",
            answer.body
        );
        answer.id()
    }

    /// Finds users with a filter; returns the list response body.
    pub async fn filter(&self, resource: &str, filter: &str) -> ScimAnswer {
        let query: String = form_urlencoded_query(&[("filter", filter)]);
        self.get(&format!("/{resource}?{query}")).await
    }
}

pub fn form_urlencoded_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(raw: &str) -> String {
    let mut out = String::new();
    for byte in raw.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}
