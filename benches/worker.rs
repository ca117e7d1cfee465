//! `dev/bench worker`: how long N invitations take from the API call to the
//! last mail received, and the mails per second. Not a test: it prints
//! figures and asserts nothing.
//!
//! A release `muster serve` (API and worker in one process) mails to an
//! SMTP sink in this process, which counts the messages it accepts; the
//! invitations are made through the bulk API, 1,000 addresses a request.
//!
//! It also reports the CPU that Muster and, given `--db-pid`, the database
//! spent per mail over the run: on two cores, whichever is near a core's
//! worth per second is what bounds the rate.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{arg, cpu_seconds, free_port};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A minimal SMTP server that accepts every message and counts it.
async fn smtp_sink(received: Arc<AtomicUsize>) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                    return;
                }
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] = if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                        received.fetch_add(1, Ordering::Relaxed);
                        b"250 queued\r\n"
                    } else {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        match verb.as_str() {
                            "EHLO" => b"250-sink\r\n250 PIPELINING\r\n",
                            "DATA" => {
                                in_data = true;
                                b"354 go on\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 ok\r\n",
                        }
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = arg("--mongodb-uri").ok_or("--mongodb-uri is required")?;
    let bin = arg("--muster-bin").unwrap_or_else(|| "target/release/muster".into());
    let count: usize = arg("--count").and_then(|c| c.parse().ok()).unwrap_or(2000);
    let db_pid: Option<u32> = arg("--db-pid").and_then(|p| p.parse().ok());
    let database = format!("bench_worker_{}", std::process::id());
    let received = Arc::new(AtomicUsize::new(0));
    let smtp_port = smtp_sink(received.clone()).await?;
    let port = free_port();
    let env = [
        ("MUSTER_MONGODB__URI", uri.clone()),
        ("MUSTER_MONGODB__DATABASE", database.clone()),
        ("MUSTER_HTTP__ADDR", format!("127.0.0.1:{port}")),
        (
            "MUSTER_HTTP__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        ),
        ("MUSTER_SMTP__URL", format!("smtp://127.0.0.1:{smtp_port}")),
        ("MUSTER_RATE_LIMIT__ENABLED", "false".into()),
        ("MUSTER_HTTP__MAX_BODY_BYTES", "4194304".into()),
        ("MUSTER_INVITATIONS__MAX_PER_ORG_PER_HOUR", "1000000".into()),
        ("MUSTER_LOG__LEVEL", "warn".into()),
    ];
    let boot = common::bootstrap(&bin, &env)?;
    let org = boot.org_id;
    let token = boot.owner_token;
    let mut child = common::serve(&bin, &env, port).await?;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    println!("dev/bench worker: {count} invitations, 1,000 addresses per request");
    let cpu = |pid: Option<u32>| pid.and_then(cpu_seconds);
    // `--perf FILE`: a profile of the server from the first call to the
    // last mail.
    let profile = arg("--perf").and_then(|file| common::Profile::start(&file, child.id()));
    let mongo = mongodb::Client::with_uri_str(&uri).await?;
    let ops_before = common::database_operation_counts(&mongo).await;
    let muster_cpu_before = cpu(Some(child.id()));
    let db_cpu_before = cpu(db_pid);
    let start = Instant::now();
    let mut invited = 0;
    for batch in (0..count).collect::<Vec<_>>().chunks(1000) {
        let emails: Vec<String> = batch
            .iter()
            .map(|i| format!("invitee{i}@bench.example"))
            .collect();
        let response = client
            .post(format!("{base}/api/v1/orgs/{org}/invitations"))
            .bearer_auth(&token)
            .json(&json!({ "emails": emails, "role": "viewer" }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            let _ = child.kill();
            return Err(format!("invite: {status} {body}").into());
        }
        invited += body["results"].as_array().map_or(0, |r| {
            r.iter().filter(|r| r["outcome"] == "invited").count()
        });
    }
    let api = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while received.load(Ordering::Relaxed) < invited && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = start.elapsed();
    if let Some(profile) = profile {
        profile.stop();
    }
    let mails = received.load(Ordering::Relaxed);
    let spent = |before: Option<f64>, pid: Option<u32>| Some(cpu(pid)? - before?);
    let muster_cpu = spent(muster_cpu_before, Some(child.id()));
    // Everything the run asked of the database (the API calls, the jobs,
    // the change streams' getMores) by kind, less the counters' own reads
    // (one command each).
    let ops_after = common::database_operation_counts(&mongo).await;
    let db_ops: Vec<(String, f64)> = match (&ops_before, &ops_after) {
        (Some(before), Some(after)) => after
            .iter()
            .map(|(kind, n)| {
                let own = if kind == "command" { 1.0 } else { 0.0 };
                (
                    kind.clone(),
                    n - before.get(kind).copied().unwrap_or(0.0) - own,
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let db_cpu = spent(db_cpu_before, db_pid);
    println!("| what | figure |");
    println!("|---|---:|");
    println!("| invitations made | {invited} |");
    println!("| API calls done after | {:.2} s |", api.as_secs_f64());
    println!(
        "| last mail received after | {:.2} s |",
        total.as_secs_f64()
    );
    println!("| mails received | {mails} |");
    println!(
        "| mails per second, first call to last mail | {:.0} |",
        mails as f64 / total.as_secs_f64()
    );
    println!(
        "| mails per second, after the API calls | {:.0} |",
        mails as f64 / (total - api).as_secs_f64().max(1e-9)
    );
    for (who, seconds) in [("Muster", muster_cpu), ("the database", db_cpu)] {
        if let Some(seconds) = seconds {
            println!(
                "| CPU of {who}: per mail, per second of the run | {:.2} ms, {:.2} s |",
                seconds * 1000.0 / mails.max(1) as f64,
                seconds / total.as_secs_f64()
            );
        }
    }
    let per_mail = |n: f64| n / mails.max(1) as f64;
    println!(
        "| database operations per mail (serverStatus opcounters) | {:.1} |",
        per_mail(db_ops.iter().map(|(_, n)| n).sum())
    );
    for (kind, n) in &db_ops {
        println!("| of which {kind} | {:.2} |", per_mail(*n));
    }
    let _ = child.kill();
    let _ = child.wait();
    common::drop_database(&mongo.database(&database)).await;
    Ok(())
}
