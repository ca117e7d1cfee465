//! `/metrics` after traffic on every surface, a transaction that retries
//! a write conflict, and invitations that go through their whole life
//! (created, mailed by the worker to a real SMTP server, accepted,
//! resent, revoked, expired): each series is there with plausible values,
//! and a scrape without the configured token is refused. Then
//! `metrics.addr`, through the real binary: `muster serve` and `muster
//! worker` serve `/metrics` on a listener of their own, and the main
//! address answers 404 for it.
//!
//! Counters belong to the process, which every test in this binary
//! shares, so they are checked as lower bounds; the queue gauges are read
//! from this test's own database and are exact.

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bson::{Document, doc};
use chrono::Utc;
use common::smtp::{SmtpServer, invitation_token, parse_message};
use common::{MusterProcess, TestApp, eventually, free_port};
use mongodb::error::Error as MongoError;
use reqwest::StatusCode;
use serde_json::json;

const SCRAPE_TOKEN: &str = "scrape-7c1e2f";
const WAIT: Duration = Duration::from_secs(30);

/// The value of the first sample of `name` whose labels include every
/// one of `labels` (`key="value"`).
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let scraped = app
        .get("/metrics")
        .bearer_auth(SCRAPE_TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(scraped.status(), StatusCode::OK);
    scraped.text().await.expect("text")
}

/// The send_invitation queue's jobs in `state`, as scraped.
fn depth(text: &str, state: &str) -> Option<f64> {
    sample(
        text,
        "muster_job_queue_depth",
        &[r#"queue="send_invitation""#, &format!(r#"state="{state}""#)],
    )
}

#[tokio::test]
async fn metrics_count_every_surface_and_want_their_token() {
    let smtp = SmtpServer::start(&[]);
    let smtp_url = smtp.url();
    let app = TestApp::builder()
        .settings(|s| {
            s.metrics.token = Some(SCRAPE_TOKEN.into());
            s.rate_limit.login_per_minute = 1;
            s.rate_limit.login_burst = 1;
            s.smtp.url = Some(smtp_url);
        })
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    let o = org.org_id.to_string();

    let members = app
        .get(&format!("/api/v1/orgs/{o}/members"))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("members");
    assert_eq!(members.status(), StatusCode::OK);
    let users = app
        .get("/scim/v2/Users")
        .bearer_auth(&org.scim_token)
        .send()
        .await
        .expect("users");
    assert_eq!(users.status(), StatusCode::OK);
    let forged = app
        .get("/api/v1/me")
        .bearer_auth(format!("mst_pat_{}", "0".repeat(64)))
        .send()
        .await
        .expect("me");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let mut limited = false;
    for _ in 0..3 {
        let login = app
            .post("/api/v1/auth/login")
            .json(&json!({ "email": "nobody@example.com", "password": "not a password" }))
            .send()
            .await
            .expect("login");
        limited |= login.status() == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "the sign-in quota of one a minute turned one away");

    // Two invitations wait for a worker: the queue says so, exactly.
    let (status, invited) = app
        .call(
            reqwest::Method::POST,
            &format!("/orgs/{o}/invitations"),
            &org.owner.token,
            Some(json!({ "emails": ["grace@example.com", "kay@example.com"], "role": "viewer" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{invited}");
    let kay = invited["results"][1]["invitation_id"]
        .as_str()
        .expect("kay's invitation")
        .to_owned();
    let waiting = scrape(&app).await;
    assert_eq!(depth(&waiting, "due"), Some(2.0), "{waiting}");
    for state in ["scheduled", "running", "dead"] {
        assert_eq!(depth(&waiting, state), Some(0.0), "{state}: {waiting}");
    }
    let oldest = sample(
        &waiting,
        "muster_job_queue_oldest_due_seconds",
        &[r#"queue="send_invitation""#],
    );
    assert!(
        oldest.is_some_and(|seconds| (0.0..60.0).contains(&seconds)),
        "{waiting}"
    );

    // The worker mails them through the SMTP server.
    let (stop_worker, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(muster::jobs::run_with(
        app.state.clone(),
        common::quick_jobs(),
        async {
            let _ = stopped.await;
        },
    ));
    let mails = eventually(WAIT, "both mails arrive", || async {
        let found = smtp.messages();
        (found.len() >= 2).then_some(found)
    })
    .await;
    let grace = mails
        .iter()
        .map(|path| parse_message(path))
        .find(|mail| mail["headers"]["to"] == "grace@example.com")
        .map(|mail| invitation_token(&mail))
        .expect("grace's mail");
    let accepted = app
        .post("/api/v1/invitations/accept")
        .json(&json!({
            "token": grace,
            "given_name": "Grace",
            "family_name": "Hopper",
            "password": common::PASSWORD,
        }))
        .send()
        .await
        .expect("accept");
    assert_eq!(accepted.status(), StatusCode::OK);
    let (status, _) = app
        .call(
            reqwest::Method::POST,
            &format!("/orgs/{o}/invitations/{kay}/resend"),
            &org.owner.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for expected in [StatusCode::NO_CONTENT, StatusCode::CONFLICT] {
        // The second revoke is refused: its transaction aborts.
        let (status, body) = app
            .call(
                reqwest::Method::DELETE,
                &format!("/orgs/{o}/invitations/{kay}"),
                &org.owner.token,
                None,
            )
            .await;
        assert_eq!(status, expected, "{body}");
    }
    let (status, invited) = app
        .call(
            reqwest::Method::POST,
            &format!("/orgs/{o}/invitations"),
            &org.owner.token,
            Some(json!({ "emails": ["lin@example.com"], "role": "viewer" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{invited}");
    // Time is an input: move the expiry instead of waiting for it.
    app.store
        .database()
        .collection::<Document>("invitations")
        .update_one(
            doc! { "_id": invited["results"][0]["invitation_id"].as_str() },
            doc! { "$set": {
                "expires_at": bson::DateTime::from_chrono(Utc::now() - chrono::Duration::minutes(1)),
            } },
        )
        .await
        .expect("move the expiry");
    assert_eq!(
        muster::jobs::expire_due(&app.state).await.expect("sweep"),
        1
    );

    // A transaction whose first attempt meets a write committed after its
    // snapshot: the write conflict is transient, and the body runs again.
    let store = &app.store;
    let counters = store.database().collection::<Document>("conflicts");
    counters
        .insert_one(doc! { "_id": "c", "n": 0_i64 })
        .await
        .expect("seed");
    let attempts = AtomicU32::new(0);
    muster::in_transaction!(store, |session| -> Result<(), MongoError> {
        let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
        counters
            .find_one(doc! { "_id": "c" })
            .session(&mut *session)
            .await?;
        if attempt == 1 {
            counters
                .update_one(doc! { "_id": "c" }, doc! { "$inc": { "n": 10_i64 } })
                .await?;
        }
        counters
            .update_one(doc! { "_id": "c" }, doc! { "$inc": { "n": 1_i64 } })
            .session(&mut *session)
            .await?;
        Ok(())
    })
    .expect("commits on its second attempt");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);

    // Every job settles: the resent mail of the revoked invitation is
    // skipped, which is a success for the queue.
    let text = eventually(WAIT, "every job is settled", || async {
        let text = scrape(&app).await;
        let settled = ["due", "scheduled", "running", "dead"]
            .iter()
            .all(|state| depth(&text, state) == Some(0.0));
        settled.then_some(text)
    })
    .await;
    let _ = stop_worker.send(());
    worker
        .await
        .expect("join")
        .expect("the worker stops cleanly");

    for token in [None, Some("wrong")] {
        let mut refused = app.get("/metrics");
        if let Some(token) = token {
            refused = refused.bearer_auth(token);
        }
        let refused = refused.send().await.expect("scrape");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let scraped = app
        .get("/metrics")
        .bearer_auth(SCRAPE_TOKEN)
        .send()
        .await
        .expect("scrape");
    assert!(
        scraped
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain")),
    );

    let at_least = |name: &str, labels: &[&str], floor: f64| {
        let value = sample(&text, name, labels);
        assert!(
            value.is_some_and(|n| n >= floor),
            "{name}{labels:?} = {value:?}, expected at least {floor}:\n{text}"
        );
    };
    at_least(
        "muster_http_requests_total",
        &[
            r#"route="/api/v1/orgs/{org}/members""#,
            r#"method="GET""#,
            r#"status="200""#,
        ],
        1.0,
    );
    // Routes, never raw paths with ids.
    assert!(!text.contains(o.as_str()), "{text}");
    at_least(
        "muster_http_request_duration_seconds_count",
        &[r#"route="/api/v1/orgs/{org}/members""#],
        1.0,
    );
    assert!(
        text.contains("muster_http_request_duration_seconds_bucket"),
        "{text}"
    );
    at_least(
        "muster_scim_operations_total",
        &[r#"resource="Users""#, r#"method="GET""#],
        1.0,
    );
    at_least("muster_auth_failures_total", &[r#"kind="invalid""#], 1.0);
    at_least("muster_rate_limited_total", &[r#"surface="sign_in""#], 1.0);
    at_least("muster_process_resident_memory_bytes", &[], 1_000_000.0);
    let cpu = sample(&text, "muster_process_cpu_seconds_total", &[]);
    assert!(cpu.is_some_and(|seconds| seconds > 0.0), "{text}");

    // Transactions: the invitations, the acceptance, the sweep committed;
    // the second revoke aborted; the conflict was retried.
    at_least(
        "muster_mongodb_transactions_total",
        &[r#"outcome="committed""#],
        6.0,
    );
    at_least(
        "muster_mongodb_transactions_total",
        &[r#"outcome="aborted""#],
        1.0,
    );
    at_least(
        "muster_mongodb_transactions_total",
        &[r#"outcome="failed""#],
        0.0,
    );
    at_least(
        "muster_mongodb_transaction_retries_total",
        &[r#"reason="transient""#],
        1.0,
    );
    at_least(
        "muster_mongodb_transaction_retries_total",
        &[r#"reason="unknown_commit""#],
        0.0,
    );

    // Invitations, as their events committed.
    for (outcome, floor) in [
        ("created", 3.0),
        ("accepted", 1.0),
        ("resent", 1.0),
        ("revoked", 1.0),
        ("expired", 1.0),
    ] {
        at_least(
            "muster_invitations_total",
            &[&format!(r#"outcome="{outcome}""#)],
            floor,
        );
    }

    // The mails the SMTP server accepted, and the jobs that sent them.
    at_least(
        "muster_mails_total",
        &[r#"transport="smtp""#, r#"outcome="sent""#],
        2.0,
    );
    for outcome in ["failed_transient", "failed_permanent"] {
        at_least(
            "muster_mails_total",
            &[r#"transport="smtp""#, &format!(r#"outcome="{outcome}""#)],
            0.0,
        );
    }
    at_least(
        "muster_jobs_total",
        &[r#"queue="send_invitation""#, r#"outcome="succeeded""#],
        3.0,
    );
    for outcome in ["retried", "lease_expired", "dead"] {
        at_least(
            "muster_jobs_total",
            &[
                r#"queue="send_invitation""#,
                &format!(r#"outcome="{outcome}""#),
            ],
            0.0,
        );
    }
    for job in ["expire_invitations", "seal_audit", "purge_audit"] {
        at_least(
            "muster_scheduled_jobs_total",
            &[&format!(r#"job="{job}""#), r#"outcome="succeeded""#],
            0.0,
        );
    }

    // The queue, read from this test's database, is empty (the wait
    // above): nothing is due any more.
    assert_eq!(
        sample(
            &text,
            "muster_job_queue_oldest_due_seconds",
            &[r#"queue="send_invitation""#],
        ),
        Some(0.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE muster_job_queue_depth gauge"),
        "{text}"
    );
}

/// The status of `GET url` with the scrape token (or none), once the
/// process answers at all.
async fn status_of(url: &str, token: Option<&str>) -> StatusCode {
    let client = reqwest::Client::new();
    eventually(WAIT, &format!("{url} answers"), || async {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.ok().map(|response| response.status())
    })
    .await
}

async fn text_of(url: &str) -> String {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(SCRAPE_TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.text().await.expect("text")
}

#[tokio::test]
async fn metrics_addr_moves_metrics_to_a_listener_of_its_own() {
    // The database (migrated, dropped at the end); the processes below
    // are the servers under test.
    let app = TestApp::spawn().await;
    let (main, metrics, worker_metrics) = (free_port(), free_port(), free_port());
    let mut serve = MusterProcess::start(
        &app,
        "serve",
        &[
            ("MUSTER_METRICS__TOKEN", SCRAPE_TOKEN.into()),
            ("MUSTER_HTTP__ADDR", format!("127.0.0.1:{main}")),
            ("MUSTER_METRICS__ADDR", format!("127.0.0.1:{metrics}")),
        ],
    );
    let mut worker = MusterProcess::start(
        &app,
        "worker",
        &[
            ("MUSTER_METRICS__TOKEN", SCRAPE_TOKEN.into()),
            (
                "MUSTER_METRICS__ADDR",
                format!("127.0.0.1:{worker_metrics}"),
            ),
        ],
    );

    let main_url = format!("http://127.0.0.1:{main}");
    let metrics_url = format!("http://127.0.0.1:{metrics}");
    assert_eq!(
        status_of(&format!("{main_url}/healthz"), None).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&format!("{main_url}/metrics"), Some(SCRAPE_TOKEN)).await,
        StatusCode::NOT_FOUND,
        "the main address no longer serves /metrics"
    );
    assert_eq!(
        status_of(&format!("{metrics_url}/metrics"), None).await,
        StatusCode::UNAUTHORIZED,
        "the token rule holds on the metrics listener"
    );
    assert_eq!(
        status_of(&format!("{metrics_url}/healthz"), None).await,
        StatusCode::NOT_FOUND,
        "the metrics listener serves /metrics alone"
    );
    let served = text_of(&format!("{metrics_url}/metrics")).await;
    // The 404 above was counted, under its route.
    assert!(
        sample(
            &served,
            "muster_http_requests_total",
            &[r#"route="/metrics""#, r#"status="404""#],
        )
        .is_some_and(|n| n >= 1.0),
        "{served}"
    );
    assert_eq!(depth(&served, "due"), Some(0.0), "{served}");

    // A worker process has no other listener: its own counters and the
    // queues are scraped there.
    let worker_url = format!("http://127.0.0.1:{worker_metrics}/metrics");
    assert_eq!(
        status_of(&worker_url, Some(SCRAPE_TOKEN)).await,
        StatusCode::OK
    );
    // The listener may answer a moment before the worker has registered
    // its queue.
    let from_worker = eventually(WAIT, "the worker's job series", || async {
        let text = text_of(&worker_url).await;
        sample(
            &text,
            "muster_jobs_total",
            &[r#"queue="send_invitation""#, r#"outcome="succeeded""#],
        )
        .is_some()
        .then_some(text)
    })
    .await;
    assert_eq!(depth(&from_worker, "due"), Some(0.0), "{from_worker}");

    serve.terminate().await;
    worker.terminate().await;
}
