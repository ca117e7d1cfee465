//! The `muster` binary as scripts use it: bootstrap's JSON contract and
//! configuration errors that name the key.

use crate::common;

use common::{TestApp, fresh_database_name, mongodb_uri, muster_command};
use reqwest::StatusCode;
use serde_json::Value;

fn bootstrap(database: &str, org_name: &str, email: &str) -> std::process::Output {
    muster_command()
        .args([
            "bootstrap",
            "--org-name",
            org_name,
            "--owner-email",
            email,
            "--json",
        ])
        .env("MUSTER_MONGODB__URI", mongodb_uri())
        .env("MUSTER_MONGODB__DATABASE", database)
        .output()
        .expect("run muster bootstrap")
}

#[tokio::test]
async fn bootstrap_prints_one_json_object_whose_tokens_authenticate() {
    let database = fresh_database_name();
    let output = bootstrap(&database, "Acme Corp", "Ada@Example.com");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "exactly one line: {stdout}"
    );
    let printed: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let fields = printed.as_object().expect("an object");
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["org_id", "owner_account_id", "owner_token", "scim_token"]
    );
    let owner_token = printed["owner_token"].as_str().expect("owner_token");
    let scim_token = printed["scim_token"].as_str().expect("scim_token");
    assert!(owner_token.starts_with("mst_pat_"));
    assert!(scim_token.starts_with("mst_scim_"));

    let app = TestApp::builder()
        .database(&mongodb_uri(), &database)
        .spawn()
        .await;
    let me = app
        .get("/api/v1/me")
        .bearer_auth(owner_token)
        .send()
        .await
        .expect("request");
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["account"]["id"], printed["owner_account_id"]);
    assert_eq!(me["account"]["email"], "ada@example.com");
    assert_eq!(me["memberships"].as_array().map(Vec::len), Some(1));
    assert_eq!(me["memberships"][0]["org_id"], printed["org_id"]);
    assert_eq!(me["memberships"][0]["org_name"], "Acme Corp");
    assert_eq!(me["memberships"][0]["role"], "owner");
    assert_eq!(me["memberships"][0]["status"], "active");

    let scim = app
        .get("/scim/v2/Users")
        .bearer_auth(scim_token)
        .send()
        .await
        .expect("request");
    assert_ne!(scim.status(), StatusCode::UNAUTHORIZED);

    // Again, with the same name in another case: refused, nothing printed.
    let again = bootstrap(&database, "ACME corp", "someone@example.com");
    assert_eq!(again.status.code(), Some(1));
    assert!(again.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");

    let events = muster::store::audit::count_for_org(
        &app.store,
        printed["org_id"].as_str().expect("org_id"),
    )
    .await
    .expect("count audit events");
    assert_eq!(events, 1, "bootstrap writes one audit event");
    app.store
        .database()
        .drop()
        .await
        .expect("drop the test database");
}

#[tokio::test]
async fn bootstrap_owner_name_is_what_an_identity_provider_imports() {
    let database = fresh_database_name();
    let output = muster_command()
        .args([
            "bootstrap",
            "--org-name",
            "Analytical Engines",
            "--owner-email",
            "ada@example.com",
            "--owner-name",
            "Ada Lovelace",
            "--json",
        ])
        .env("MUSTER_MONGODB__URI", mongodb_uri())
        .env("MUSTER_MONGODB__DATABASE", &database)
        .output()
        .expect("run muster bootstrap");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The JSON contract is unchanged: the same four fields.
    let printed: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let mut keys: Vec<&str> = printed
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["org_id", "owner_account_id", "owner_token", "scim_token"]
    );

    let app = TestApp::builder()
        .database(&mongodb_uri(), &database)
        .spawn()
        .await;
    let scim = common::Scim::new(&app, printed["scim_token"].as_str().expect("scim_token"));
    let users = scim
        .filter("Users", "userName eq \"ada@example.com\"")
        .await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);
    let owner = &users.body["Resources"][0];
    assert_eq!(owner["name"]["givenName"], "Ada", "{owner}");
    assert_eq!(owner["name"]["familyName"], "Lovelace", "{owner}");
    assert_eq!(owner["name"]["formatted"], "Ada Lovelace", "{owner}");
    assert_eq!(owner["displayName"], "Ada Lovelace", "{owner}");
    let me = app
        .me(printed["owner_token"].as_str().expect("owner_token"))
        .await;
    assert_eq!(me["account"]["display_name"], "Ada Lovelace");

    // A name an identity provider cannot split is refused, naming the flag.
    let output = muster_command()
        .args([
            "bootstrap",
            "--org-name",
            "Mononyms",
            "--owner-email",
            "cher@example.com",
            "--owner-name",
            "Cher",
        ])
        .env("MUSTER_MONGODB__URI", mongodb_uri())
        .env("MUSTER_MONGODB__DATABASE", &database)
        .output()
        .expect("run muster bootstrap");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--owner-name"), "{stderr}");
    app.store
        .database()
        .drop()
        .await
        .expect("drop the test database");
}

#[tokio::test]
async fn bootstrap_names_the_bad_flag() {
    let database = fresh_database_name();
    let output = bootstrap(&database, "Valid", "not-an-email");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--owner-email"), "{stderr}");

    let output = bootstrap(&database, "   ", "ada@example.com");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--org-name"), "{stderr}");
}

fn run_with_env(args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = muster_command();
    command.args(args);
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().expect("run muster");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn configuration_errors_stop_start_up_and_name_the_key() {
    for (var, value, key) in [
        ("MUSTER_HTTP__ADDR", "not-an-address", "http.addr"),
        ("MUSTER_HTTP__PORT", "8080", "http.port"),
        ("MUSTER_LOG__FORMAT", "yaml", "log.format"),
        ("MUSTER_MONGODB__URI", "http://localhost", "mongodb.uri"),
        ("MUSTER_HTTP__PUBLIC_URL", "example.com", "http.public_url"),
    ] {
        for command in ["serve", "migrate"] {
            let (code, stderr) = run_with_env(&[command], &[(var, value)]);
            assert_eq!(code, Some(1), "{command} with {var}={value}");
            assert!(
                stderr.contains(key),
                "{command} with {var}={value}: {stderr}"
            );
        }
    }
}

#[test]
fn file_and_secret_file_errors_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("muster.toml");
    std::fs::write(&config, "[mongodb]\ndatbase = \"typo\"\n").expect("write");
    let config = config.to_string_lossy().into_owned();
    let (code, stderr) = run_with_env(&["--config", &config, "migrate"], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("mongodb.datbase"), "{stderr}");
    assert!(stderr.contains("muster.toml"), "{stderr}");

    let (code, stderr) = run_with_env(
        &["migrate"],
        &[("MUSTER_MONGODB__URI_FILE", "/nonexistent/uri")],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("MUSTER_MONGODB__URI_FILE"), "{stderr}");
}

/// The container image's health check: `muster health` probes `/healthz`
/// (at `http.addr`, or `--url`) and says so in its exit status.
// The test server runs on this test's runtime: it needs a thread of its
// own while the probe waits for the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_zero_only_when_the_server_answers() {
    let app = TestApp::spawn().await;
    let port = app
        .base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .expect("the test server's port");
    let probe = |args: &[&str], addr: &str| {
        let mut command = muster_command();
        command
            .arg("health")
            .args(args)
            .env("MUSTER_HTTP__ADDR", addr);
        command.output().expect("run muster health")
    };
    // By the configured address, as in the image (0.0.0.0 means loopback).
    let up = probe(&[], &format!("0.0.0.0:{port}"));
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let by_url = probe(&["--url", &app.base_url], "127.0.0.1:1");
    assert!(
        by_url.status.success(),
        "{}",
        String::from_utf8_lossy(&by_url.stderr)
    );
    // Nothing listens on a freshly released port.
    let down = probe(&[], &format!("127.0.0.1:{}", common::free_port()));
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("unhealthy"));
}

/// `muster token scim …`, as automation rotating an IdP's token uses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_tokens_are_created_listed_and_revoked_from_the_command_line() {
    let database = fresh_database_name();
    let boot = bootstrap(&database, "Rotating Corp", "ops@example.com");
    assert!(
        boot.status.success(),
        "{}",
        String::from_utf8_lossy(&boot.stderr)
    );
    let printed: Value = serde_json::from_slice(&boot.stdout).expect("bootstrap JSON");
    let org = printed["org_id"].as_str().expect("org_id").to_owned();
    let token = |args: &[&str]| {
        let mut command = muster_command();
        command
            .arg("token")
            .arg("scim")
            .args(args)
            .env("MUSTER_MONGODB__URI", mongodb_uri())
            .env("MUSTER_MONGODB__DATABASE", &database);
        async move {
            tokio::process::Command::from(command)
                .output()
                .await
                .expect("run muster token")
        }
    };
    let created = token(&[
        "create",
        "--org",
        &org,
        "--name",
        "Okta",
        "--allow-owner-changes",
        "--json",
    ])
    .await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).expect("one JSON object");
    let secret = created["token"].as_str().expect("the secret").to_owned();
    assert!(secret.starts_with("mst_scim_"));
    assert_eq!(created["allow_owner_changes"], true);
    let id = created["id"].as_str().expect("id").to_owned();

    let app = TestApp::builder()
        .database(&mongodb_uri(), &database)
        .with_change_stream()
        .spawn()
        .await;
    let users = || app.get("/scim/v2/Users").bearer_auth(&secret).send();
    assert_eq!(users().await.expect("request").status(), StatusCode::OK);

    let listed = token(&["list", "--org", &org, "--json"]).await;
    assert!(listed.status.success());
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("a JSON array");
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert!(ids.contains(&id.as_str()), "{listed}");
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .all(|t| t.get("token").is_none()),
        "a list never shows secrets: {listed}"
    );

    let revoked = token(&["revoke", "--org", &org, "--id", &id]).await;
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    // Revoked by another process: the server learns it from its change
    // stream, within a second.
    common::eventually(
        std::time::Duration::from_secs(1),
        "the server refuses the revoked token",
        || async {
            let status = users().await.expect("request").status();
            (status == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;

    // Both changes are in the organization's log, as the system's.
    let actions: Vec<String> = {
        use futures::TryStreamExt;
        app.store
            .database()
            .collection::<bson::Document>("audit_events")
            .find(bson::doc! { "org_id": &org, "target.id": &id })
            .sort(bson::doc! { "_id": 1 })
            .await
            .expect("find")
            .try_collect::<Vec<_>>()
            .await
            .expect("events")
            .iter()
            .map(|event| {
                let actor = event
                    .get_document("actor")
                    .ok()
                    .and_then(|a| a.get_str("kind").ok());
                format!(
                    "{} by {}",
                    event.get_str("action").unwrap_or("?"),
                    actor.unwrap_or("?")
                )
            })
            .collect()
    };
    assert_eq!(
        actions,
        [
            "scim_token.created by system",
            "scim_token.deleted by system"
        ]
    );

    // Bad input names what is wrong and exits 1.
    let unknown = token(&["list", "--org", "not-an-id"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--org"));
    let gone = token(&["revoke", "--org", &org, "--id", &id]).await;
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));
}

/// An account with two-factor authentication on cannot sign in without
/// `auth.mfa_key`: the server refuses to start, naming the key; a
/// malformed key is refused like any bad value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_without_the_key_its_accounts_need() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let store = &app.store;
    let now = chrono::Utc::now();
    let key = muster::auth::mfa_key::MfaKey::parse(common::TEST_MFA_KEY).expect("key");
    let sealed = key.seal(
        &org.owner.account_id,
        &muster::auth::totp::TotpSecret::generate(),
    );
    muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
        muster::store::accounts::begin_mfa(store, session, &org.owner.account_id, &sealed, now)
            .await?;
        muster::store::accounts::enable_mfa(
            store,
            session,
            &org.owner.account_id,
            &sealed,
            muster::auth::totp::step_of(now),
            &[],
            now,
        )
        .await?;
        Ok(())
    })
    .expect("turn MFA on");
    let database = app.settings.mongodb.database.clone();
    let uri = mongodb_uri();
    let port = common::free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let env = [
        ("MUSTER_MONGODB__URI", uri.as_str()),
        ("MUSTER_MONGODB__DATABASE", database.as_str()),
        ("MUSTER_HTTP__ADDR", addr.as_str()),
    ];
    // Without the check it would serve on: waited for with a limit, and
    // killed past it.
    let mut command = muster_command();
    command
        .arg("serve")
        .envs(env)
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("start muster serve");
    let pid = child.id();
    let (sender, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = match exited.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(output) => output.expect("muster serve's output"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
            panic!("muster serve started without auth.mfa_key");
        }
    };
    let (code, stderr) = (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("auth.mfa_key"), "{stderr}");

    let (code, stderr) = run_with_env(&["migrate"], &[("MUSTER_AUTH__MFA_KEY", "c2hvcnQ=")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("auth.mfa_key"), "{stderr}");
}

/// `muster token personal`: issue, list and revoke an account's personal
/// tokens from the command line, audited as the system.
#[tokio::test]
async fn personal_tokens_are_created_listed_and_revoked_from_the_command_line() {
    let database = fresh_database_name();
    let boot = bootstrap(&database, "Automation Corp", "ci@example.com");
    assert!(boot.status.success());
    let printed: Value = serde_json::from_slice(&boot.stdout).expect("bootstrap JSON");
    let org = printed["org_id"].as_str().expect("org_id").to_owned();
    let token = |args: &[&str]| {
        let mut command = muster_command();
        command
            .arg("token")
            .arg("personal")
            .args(args)
            .env("MUSTER_MONGODB__URI", mongodb_uri())
            .env("MUSTER_MONGODB__DATABASE", &database);
        async move {
            tokio::process::Command::from(command)
                .output()
                .await
                .expect("run muster token")
        }
    };
    let created = token(&[
        "create",
        "--account",
        "CI@example.com",
        "--org",
        &org,
        "--name",
        "deploys",
        "--json",
    ])
    .await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).expect("one JSON object");
    let secret = created["token"].as_str().expect("the secret").to_owned();
    assert!(secret.starts_with("mst_pat_"), "{created}");
    assert_eq!(created["org_id"], org.as_str());
    let id = created["id"].as_str().expect("id").to_owned();

    let app = TestApp::builder()
        .database(&mongodb_uri(), &database)
        .with_change_stream()
        .spawn()
        .await;
    let me = || app.get("/api/v1/me").bearer_auth(&secret).send();
    let answer = me().await.expect("request");
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["account"]["email"], "ci@example.com");

    let listed = token(&["list", "--account", "ci@example.com", "--json"]).await;
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("a JSON array");
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert!(ids.contains(&id.as_str()), "{listed}");
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .all(|t| t.get("token").is_none()),
        "a list never shows secrets: {listed}"
    );

    let revoked = token(&["revoke", "--account", "ci@example.com", "--id", &id]).await;
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    common::eventually(
        std::time::Duration::from_secs(1),
        "the server refuses the revoked token",
        || async {
            let status = me().await.expect("request").status();
            (status == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
    let events = app
        .store
        .database()
        .collection::<bson::Document>("audit_events");
    for action in ["personal_token.created", "personal_token.deleted"] {
        let event = events
            .find_one(bson::doc! { "org_id": &org, "target.id": &id, "action": action })
            .await
            .expect("find")
            .unwrap_or_else(|| panic!("{action} is recorded"));
        assert_eq!(
            event.get_document("actor").and_then(|a| a.get_str("kind")),
            Ok("system"),
            "{action}"
        );
    }

    // Someone else's token, an unknown account, a malformed org: exit 1.
    let again = token(&["revoke", "--account", "ci@example.com", "--id", &id]).await;
    assert_eq!(again.status.code(), Some(1));
    let nobody = token(&[
        "create",
        "--account",
        "nobody@example.com",
        "--org",
        &org,
        "--name",
        "x",
    ])
    .await;
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("account"));
    let bad_org = token(&["list", "--account", "ci@example.com", "--org", "nope"]).await;
    assert_eq!(bad_org.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_org.stderr).contains("--org"));
    let _ = app.store.database().drop().await;
}
