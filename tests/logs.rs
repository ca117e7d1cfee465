//! What `muster serve` logs in JSON mode: one object per line, each
//! request's line with its route template, status, duration, request id,
//! and its organization and caller where known; and never a secret. A
//! full run (sign-in, two-factor enrolment and sign-in, an invitation
//! mailed over SMTP and accepted, SCIM with a password, a password change,
//! personal tokens) at debug level, then every secret it used is looked
//! for in the log.

use crate::common;

use std::process::{Child, Stdio};
use std::time::Duration;

use chrono::Utc;
use common::smtp::{SmtpServer, invitation_token, parse_message};
use common::{eventually, free_port, fresh_database_name, mongodb_uri, muster_command};
use muster::auth::totp::{TotpSecret, step_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "first correct horse battery staple";
const NEW_PASSWORD: &str = "second correct horse battery staple";
const INVITEE_PASSWORD: &str = "third correct horse battery staple";
const SCIM_PASSWORD: &str = "fourth Correct horse battery staple 9!";
const MAIL_MESSAGE: &str = "the tangerine handshake is at noon";

struct Server {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
    }

    /// Stops the server the way a container runtime does, and waits.
    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_requests_and_never_a_secret() {
    let smtp = SmtpServer::start(&[]);
    let database = fresh_database_name();
    let boot = muster_command()
        .args([
            "bootstrap",
            "--org-name",
            "Logged Corp",
            "--owner-email",
            "owner@example.com",
            "--owner-password",
            PASSWORD,
            "--json",
        ])
        .env("MUSTER_MONGODB__URI", mongodb_uri())
        .env("MUSTER_MONGODB__DATABASE", &database)
        .output()
        .expect("bootstrap");
    assert!(boot.status.success());
    let boot: Value = serde_json::from_slice(&boot.stdout).expect("bootstrap JSON");
    let org = boot["org_id"].as_str().expect("org").to_owned();
    let owner_token = boot["owner_token"].as_str().expect("token").to_owned();
    let scim_token = boot["scim_token"].as_str().expect("token").to_owned();

    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("muster.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = muster_command()
        .arg("serve")
        .env("MUSTER_MONGODB__URI", mongodb_uri())
        .env("MUSTER_MONGODB__DATABASE", &database)
        .env("MUSTER_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("MUSTER_HTTP__PUBLIC_URL", &base)
        .env("MUSTER_SMTP__URL", smtp.url())
        .env("MUSTER_AUTH__MFA_KEY", common::TEST_MFA_KEY)
        .env("MUSTER_LOG__FORMAT", "json")
        .env("MUSTER_LOG__LEVEL", "debug")
        .env("MUSTER_RATE_LIMIT__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start muster serve");
    let server = Server {
        child,
        base,
        client: reqwest::Client::new(),
    };
    eventually(Duration::from_secs(30), "the server is ready", || async {
        let ready = server
            .client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .ok()?;
        (ready.status() == StatusCode::OK).then_some(())
    })
    .await;
    let mut secrets: Vec<(&str, String)> = vec![
        ("the owner's password", PASSWORD.into()),
        ("the bootstrap's personal token", owner_token.clone()),
        ("the SCIM token", scim_token.clone()),
    ];

    // Sign in, and turn on two-factor authentication.
    let login = |password: &'static str| {
        server
            .client
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({ "email": "owner@example.com", "password": password }))
    };
    let (status, body) = server.send(login(PASSWORD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = body["token"].as_str().expect("session").to_owned();
    secrets.push(("a session", session.clone()));
    let (_, enrolment) = server
        .send(server.api(reqwest::Method::POST, "/me/mfa/totp", &session))
        .await;
    let secret_text = enrolment["secret"].as_str().expect("secret").to_owned();
    secrets.push(("the TOTP secret", secret_text.clone()));
    let totp = TotpSecret::from_base32(&secret_text).expect("base32");
    let step = step_of(Utc::now()) - 1;
    let (status, confirmed) = server
        .send(
            server
                .api(reqwest::Method::POST, "/me/mfa/totp/confirm", &session)
                .json(&json!({ "code": totp.code_at(step), "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    for code in confirmed["recovery_codes"].as_array().expect("codes") {
        secrets.push((
            "a recovery code",
            code.as_str().unwrap_or_default().to_owned(),
        ));
    }
    let (status, challenge) = server.send(login(PASSWORD)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{challenge}");
    let challenge = challenge["challenge"]
        .as_str()
        .expect("challenge")
        .to_owned();
    secrets.push(("a sign-in challenge", challenge.clone()));
    let (status, second) = server
        .send(
            server
                .client
                .post(format!("{}/api/v1/auth/login/mfa", server.base))
                .json(&json!({ "challenge": challenge, "code": totp.code_at(step + 1) })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    secrets.push((
        "a second session",
        second["token"].as_str().unwrap_or_default().to_owned(),
    ));
    // New recovery codes: the last step the window still takes.
    let (status, regenerated) = server
        .send(
            server
                .api(reqwest::Method::POST, "/me/mfa/recovery-codes", &session)
                .json(&json!({ "code": totp.code_at(step + 2), "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{regenerated}");
    for code in regenerated["recovery_codes"].as_array().expect("codes") {
        secrets.push((
            "a regenerated recovery code",
            code.as_str().unwrap_or_default().to_owned(),
        ));
    }

    // A personal token, and a password change.
    let (status, token) = server
        .send(
            server
                .api(reqwest::Method::POST, "/me/tokens", &session)
                .json(&json!({ "org_id": org, "name": "CI" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    secrets.push((
        "a new personal token",
        token["token"].as_str().unwrap_or_default().to_owned(),
    ));
    let (status, body) = server
        .send(
            server
                .api(reqwest::Method::PATCH, "/me", &session)
                .json(&json!({ "password": { "current": PASSWORD, "new": NEW_PASSWORD } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    secrets.push(("the new password", NEW_PASSWORD.into()));

    // An invitation, mailed and accepted with a password.
    let (status, invited) = server
        .send(
            server
                .api(
                    reqwest::Method::POST,
                    &format!("/orgs/{org}/invitations"),
                    &session,
                )
                .json(&json!({
                    "emails": "lee@example.com",
                    "role": "viewer",
                    "message": MAIL_MESSAGE,
                })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{invited}");
    let messages = eventually(Duration::from_secs(30), "the mail arrives", || async {
        let found = smtp.messages();
        (!found.is_empty()).then_some(found)
    })
    .await;
    let link_token = invitation_token(&parse_message(&messages[0]));
    secrets.push(("the invitation link's secret", link_token.clone()));
    secrets.push(("the mail's text", MAIL_MESSAGE.into()));
    let page = server
        .client
        .get(format!("{}/invite/{link_token}", server.base))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let (status, accepted) = server
        .send(
            server
                .client
                .post(format!("{}/api/v1/invitations/accept", server.base))
                .json(&json!({
                    "token": link_token,
                    "given_name": "Lee",
                    "family_name": "Park",
                    "password": INVITEE_PASSWORD,
                })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    secrets.push(("the invitee's password", INVITEE_PASSWORD.into()));

    // SCIM, with a password for the user.
    let (status, created) = server
        .send(
            server
                .client
                .post(format!("{}/scim/v2/Users", server.base))
                .bearer_auth(&scim_token)
                .header("content-type", "application/scim+json")
                .json(&json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "sam@example.com",
                    "name": { "givenName": "Sam", "familyName": "Doe" },
                    "emails": [{ "value": "sam@example.com", "primary": true }],
                    "password": SCIM_PASSWORD,
                })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    secrets.push(("a password an identity provider set", SCIM_PASSWORD.into()));
    let user = created["id"].as_str().expect("id").to_owned();
    let (status, _) = server
        .send(
            server
                .client
                .get(format!("{}/scim/v2/Users/{user}", server.base))
                .bearer_auth(&scim_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .send(server.api(
            reqwest::Method::GET,
            &format!("/orgs/{org}/members"),
            &owner_token,
        ))
        .await;
    assert_eq!(status, StatusCode::OK);

    server.stop();
    let text = std::fs::read_to_string(&log_path).expect("the log");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect();
    assert!(lines.len() > 20, "{} lines", lines.len());
    for (what, secret) in &secrets {
        assert!(!secret.is_empty(), "{what} is known");
        assert!(!text.contains(secret.as_str()), "{what} is in the log");
    }

    // The request lines carry what an operator searches by.
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "request")
        .collect();
    assert!(requests.len() >= 13, "{}", requests.len());
    for line in &requests {
        let span = &line["span"];
        assert!(span["request_id"].is_string(), "{line}");
        assert!(span["route"].is_string(), "{line}");
        assert!(line["status"].is_u64() && line["micros"].is_u64(), "{line}");
    }
    let members = requests
        .iter()
        .find(|line| line["span"]["route"] == "/api/v1/orgs/{org}/members")
        .expect("the members request");
    assert_eq!(members["span"]["org_id"], org.as_str(), "{members}");
    assert!(
        members["span"]["actor"]
            .as_str()
            .is_some_and(|actor| actor.starts_with("api_token:")),
        "{members}"
    );
    let scim = requests
        .iter()
        .find(|line| line["span"]["route"] == "/scim/v2/Users/{id}")
        .expect("the SCIM read");
    assert_eq!(scim["span"]["org_id"], org.as_str(), "{scim}");
    assert!(
        requests
            .iter()
            .any(|line| line["span"]["route"] == "/invite/{token}"),
        "the invitation page's route, without its secret"
    );
    drop(smtp);
}
