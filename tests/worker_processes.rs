//! `muster worker` processes as an operator runs them: several at once
//! share the mail without sending any twice, and one killed in the middle
//! of sending loses none and sends none twice (another worker process
//! takes its jobs over once their leases run out, and each invitee
//! receives one mail whose link works).
//!
//! The killed worker mails to a tarpit, an SMTP server that never answers
//! the end of a message, so the test knows every job is mid-send when it
//! kills the process (SIGKILL: no shutdown code runs). A message the
//! tarpit holds was never accepted, so it does not count as sent.

use crate::common;

use std::time::Duration;

use common::smtp::{SmtpServer, SmtpTarpit, invitation_token, parse_message};
use common::{MusterProcess, OrgFixture, TestApp, eventually};
use mongodb::bson::{Document, doc};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A `muster worker` whose jobs another one takes over `lease_seconds`
/// after it dies.
fn start_worker(app: &TestApp, smtp_url: &str, lease_seconds: u32) -> MusterProcess {
    MusterProcess::start(
        app,
        "worker",
        &[
            ("MUSTER_HTTP__PUBLIC_URL", app.base_url.clone()),
            ("MUSTER_SMTP__URL", smtp_url.to_owned()),
            ("MUSTER_SMTP__TIMEOUT_SECONDS", "600".into()),
            ("MUSTER_JOBS__LEASE_SECONDS", lease_seconds.to_string()),
            ("MUSTER_JOBS__POLL_INTERVAL_SECONDS", "1".into()),
            ("MUSTER_LOG__LEVEL", "info".into()),
        ],
    )
}

async fn jobs(app: &TestApp) -> Vec<Document> {
    use futures::TryStreamExt;
    app.store
        .database()
        .collection::<Document>("jobs")
        .find(doc! {})
        .await
        .expect("find jobs")
        .try_collect()
        .await
        .expect("read jobs")
}

fn job_status(job: &Document) -> &str {
    job.get_str("status").unwrap_or_default()
}

async fn invite(app: &TestApp, org: &OrgFixture, addresses: &[String]) {
    let invited: Value = app
        .post(&format!("/api/v1/orgs/{}/invitations", org.org_id))
        .bearer_auth(&org.owner.token)
        .json(&json!({ "emails": addresses, "role": "contributor" }))
        .send()
        .await
        .expect("invite")
        .json()
        .await
        .expect("json");
    assert!(
        invited["results"]
            .as_array()
            .is_some_and(|results| results.iter().all(|r| r["outcome"] == "invited")),
        "{invited}"
    );
}

/// Waits until every job is done; returns them.
async fn all_done(app: &TestApp) -> Vec<Document> {
    eventually(Duration::from_secs(60), "every job is done", || async {
        let jobs = jobs(app).await;
        jobs.iter()
            .all(|job| job_status(job) == "done")
            .then_some(jobs)
    })
    .await
}

fn sorted_recipients(mails: &[Value]) -> Vec<String> {
    let mut recipients: Vec<String> = mails
        .iter()
        .map(|mail| {
            mail["headers"]["to"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    recipients.sort();
    recipients
}

#[tokio::test]
async fn worker_processes_running_together_send_each_mail_once() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let mut addresses: Vec<String> = (0..20).map(|n| format!("user{n:02}@example.com")).collect();
    addresses.sort();
    let smtp = SmtpServer::start(&[]);
    // Long leases: a busy machine must not make a job change hands.
    let mut first = start_worker(&app, &smtp.url(), 60);
    let mut second = start_worker(&app, &smtp.url(), 60);
    invite(&app, &org, &addresses).await;
    let finished = all_done(&app).await;
    assert_eq!(finished.len(), addresses.len());
    for job in &finished {
        // Claimed once: no worker ran a job another one held.
        assert_eq!(job.get_i64("attempts").ok(), Some(1), "{job:?}");
    }
    first.terminate().await;
    second.terminate().await;
    let mails: Vec<Value> = smtp.messages().iter().map(|p| parse_message(p)).collect();
    assert_eq!(sorted_recipients(&mails), addresses);
    app.shutdown().await;
}

#[tokio::test]
async fn a_worker_killed_mid_send_loses_no_mail_and_sends_none_twice() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let addresses: Vec<String> = ["ada@example.com", "alan@example.com", "grace@example.com"]
        .map(String::from)
        .to_vec();
    invite(&app, &org, &addresses).await;

    // The first worker takes all three jobs and hangs in the middle of
    // each send.
    let tarpit = SmtpTarpit::start();
    let mut first = start_worker(&app, &tarpit.url(), 3);
    let held = eventually(
        Duration::from_secs(60),
        "the first worker is mid-send on every job",
        || async { (tarpit.held().len() == addresses.len()).then(|| tarpit.held()) },
    )
    .await;
    let running = jobs(&app).await;
    assert_eq!(running.len(), addresses.len());
    assert!(
        running.iter().all(|job| job_status(job) == "running"),
        "{running:?}"
    );
    first.kill();

    // A second worker, mailing a real SMTP server, takes the jobs over
    // once their leases have run out.
    let smtp = SmtpServer::start(&[]);
    // Its own leases longer, so that a busy machine cannot make its jobs
    // change hands; it sweeps every 3 s.
    let mut second = start_worker(&app, &smtp.url(), 9);
    let finished = all_done(&app).await;
    for job in &finished {
        // The killed attempt counts: it may have had effects.
        assert_eq!(job.get_i64("attempts").ok(), Some(2), "{job:?}");
    }
    second.terminate().await;

    // One mail per invitee, all jobs done: nothing more can come.
    let mails: Vec<Value> = smtp.messages().iter().map(|p| parse_message(p)).collect();
    assert_eq!(
        sorted_recipients(&mails),
        addresses,
        "{}",
        second.log_text()
    );

    // The held mails' links died when the second worker replaced them
    // (a replaced secret is unknown, like one never issued); the
    // delivered ones work.
    for path in &held {
        let token = invitation_token(&parse_message(path));
        let page = app
            .get(&format!("/invite/{token}"))
            .send()
            .await
            .expect("page");
        assert_eq!(page.status(), StatusCode::NOT_FOUND, "a held mail's link");
    }
    for mail in &mails {
        let token = invitation_token(mail);
        let page = app
            .get(&format!("/invite/{token}"))
            .send()
            .await
            .expect("page");
        assert_eq!(page.status(), StatusCode::OK, "a delivered mail's link");
    }

    // The invitations say so: one send, delivered on its first recorded
    // attempt, no error.
    let listed: Value = app
        .get(&format!("/api/v1/orgs/{}/invitations", org.org_id))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), addresses.len());
    for item in items {
        let delivery = &item["delivery"];
        assert_eq!(delivery["sends"], 1, "{item}");
        assert_eq!(delivery["attempts"], 1, "{item}");
        assert!(delivery["sent_at"].is_string(), "{item}");
        assert!(delivery["last_error"].is_null(), "{item}");
    }
    app.shutdown().await;
}
