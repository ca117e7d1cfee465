//! The server's life around its database and its process: readiness that
//! follows MongoDB, and graceful shutdown on SIGTERM.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::{
    SECANTUSD_VAR, TestApp, eventually, free_port, fresh_database_name, mongodb_uri, muster_command,
};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

/// A database server of the test's own, killed when dropped.
struct OwnDatabase {
    child: Option<std::process::Child>,
    port: u16,
    storage: tempfile::TempDir,
}

impl OwnDatabase {
    async fn start() -> OwnDatabase {
        let storage = tempfile::tempdir().expect("tempdir");
        let mut db = OwnDatabase {
            child: None,
            port: free_port(),
            storage,
        };
        db.restart().await;
        db
    }

    fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    async fn restart(&mut self) {
        let binary = std::env::var(SECANTUSD_VAR).unwrap_or_else(|_| {
            panic!("{SECANTUSD_VAR} is not set: run the tests through dev/test")
        });
        let child = std::process::Command::new(binary)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--storage-path")
            .arg(self.storage.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start secantusd");
        self.child = Some(child);
        let port = self.port;
        eventually(
            Duration::from_secs(60),
            "the database to accept connections",
            || async move { TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()) },
        )
        .await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn status_of(app: &TestApp, path: &str) -> StatusCode {
    app.get(path)
        .send()
        .await
        .expect("the server answers")
        .status()
}

#[tokio::test]
async fn readiness_follows_the_database_while_health_stays_up() {
    let mut db = OwnDatabase::start().await;
    let app = TestApp::builder()
        .database(&db.uri(), "readiness")
        .settings(|s| s.mongodb.server_selection_timeout_ms = 500)
        .spawn()
        .await;
    assert_eq!(status_of(&app, "/readyz").await, StatusCode::OK);

    db.kill();
    let body: Value = eventually(
        Duration::from_secs(30),
        "/readyz to report the outage",
        || async {
            assert_eq!(status_of(&app, "/healthz").await, StatusCode::OK);
            let response = app.get("/readyz").send().await.expect("the server answers");
            (response.status() == StatusCode::SERVICE_UNAVAILABLE)
                .then_some(response)?
                .json()
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(body["status"], 503);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("MongoDB")),
        "{body}"
    );

    db.restart().await;
    eventually(Duration::from_secs(30), "/readyz to recover", || async {
        assert_eq!(status_of(&app, "/healthz").await, StatusCode::OK);
        (status_of(&app, "/readyz").await == StatusCode::OK).then_some(())
    })
    .await;
}

/// With the default `mongodb.*` settings: during an outage a request is
/// answered 503 with `Retry-After` after the server-selection timeout
/// (2 s; it was 5 s, and this test then fails), and once the database is
/// back `/readyz` says so within 3 s. With one server, as here, a failed
/// selection makes the driver check at once, so the recovery half passes
/// even with the driver's 10 s heartbeat; `heartbeat_ms` (1 s) bounds the
/// case where no request comes to ask.
#[tokio::test]
async fn an_outage_is_answered_503_at_once_and_its_end_noticed_within_3_s() {
    let mut db = OwnDatabase::start().await;
    let defaults = muster::config::MongoSettings::default();
    let app = TestApp::builder()
        .database(&db.uri(), "outage")
        .settings(|s| {
            s.mongodb.server_selection_timeout_ms = defaults.server_selection_timeout_ms;
            s.mongodb.heartbeat_ms = defaults.heartbeat_ms;
        })
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    assert_eq!(status_of(&app, "/readyz").await, StatusCode::OK);

    db.kill();
    eventually(
        Duration::from_secs(30),
        "/readyz to report the outage",
        || async {
            (status_of(&app, "/readyz").await == StatusCode::SERVICE_UNAVAILABLE).then_some(())
        },
    )
    .await;
    let started = std::time::Instant::now();
    let write = app
        .client
        .patch(app.url(&format!("/api/v1/orgs/{}", org.org_id)))
        .bearer_auth(&org.owner.token)
        .json(&serde_json::json!({ "name": "During the outage" }))
        .send()
        .await
        .expect("the server answers");
    let waited = started.elapsed();
    assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        write
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // Two selection timeouts at most (authentication, then the write),
    // where retrying the transaction used to hold a request 10 s or more.
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");

    db.restart().await;
    eventually(
        Duration::from_secs(3),
        "/readyz to see the database back",
        || async { (status_of(&app, "/readyz").await == StatusCode::OK).then_some(()) },
    )
    .await;
}

/// Reads the server's JSON log lines until one matches.
async fn wait_for_log(
    lines: &mut Lines<BufReader<ChildStderr>>,
    what: &str,
    matches: impl Fn(&Value) -> bool,
) -> Value {
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && matches(&entry)
            {
                return Some(entry);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(entry)) => entry,
        _ => panic!("the server never logged {what}"),
    }
}

fn spawn_server(port: u16, database: &str) -> Child {
    let mut command = Command::from(muster_command());
    command
        .arg("serve")
        .env("MUSTER_MONGODB__URI", mongodb_uri())
        .env("MUSTER_MONGODB__DATABASE", database)
        .env("MUSTER_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("MUSTER_LOG__FORMAT", "json")
        .env("MUSTER_LOG__LEVEL", "muster=debug,info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.spawn().expect("start muster serve")
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish() {
    let port = free_port();
    let database = fresh_database_name();
    let mut server = spawn_server(port, &database);
    let mut log = BufReader::new(server.stderr.take().expect("stderr")).lines();
    wait_for_log(&mut log, "that it listens", |e| e["message"] == "listening").await;

    // A login whose body is only half sent: the handler is waiting for it.
    let body = br#"{"email":"nobody@example.com","password":"not the password"}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("send head");
    stream.write_all(&body[..10]).expect("send half the body");
    wait_for_log(&mut log, "the login request starting", |e| {
        e["message"] == "started" && e["span"]["path"] == "/api/v1/auth/login"
    })
    .await;

    let pid = server.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for_log(&mut log, "that it is shutting down", |e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("shutting down"))
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "new connections to be refused",
        || async {
            TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        },
    )
    .await;

    stream.write_all(&body[10..]).expect("send the rest");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.contains("invalid email or password"), "{response}");

    let exit = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server exits")
        .expect("exit status");
    assert!(exit.success(), "{exit:?}");

    let store =
        muster::store::Store::connect(&common::test_settings(&mongodb_uri(), &database).mongodb)
            .await
            .expect("connect");
    store
        .database()
        .drop()
        .await
        .expect("drop the test database");
}
