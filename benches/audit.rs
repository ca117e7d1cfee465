//! `dev/bench audit`: how long exporting an organization's audit log as
//! CSV takes, its events per second, and the server's peak memory. Not a
//! test: it prints figures and asserts nothing.
//!
//! The events (1,000,000 by default, `--events N`) go straight into the
//! database with `insert_many`, shaped as Muster stores them; a release
//! `muster serve` then streams them all through
//! `GET /orgs/{org}/audit-events?format=csv`, read here as it arrives.
//! Memory is the server's VmRSS before the export and its VmHWM (peak
//! resident set) after: flat means the peak does not grow with N.

mod common;

use std::time::Instant;

use bson::{DateTime as BsonDateTime, Document, doc};
use common::{arg, cpu_seconds, free_port, status_kib};
use futures::StreamExt;

/// One event as `store::audit` writes it: a member's role changed by the
/// owner, through the API, with every optional field present.
fn event(org: &str, owner: &str, i: usize, at: BsonDateTime) -> Document {
    let (before, after) = if i.is_multiple_of(2) {
        ("viewer", "contributor")
    } else {
        ("contributor", "viewer")
    };
    doc! {
        "_id": uuid::Uuid::now_v7().to_string(),
        "org_id": org,
        "at": at,
        "actor": { "kind": "account", "account_id": owner, "token_id": null },
        "action": "member.updated",
        // A thousand members that no longer exist: each chunk still asks
        // for their names.
        "target": { "kind": "member", "id": format!("0194d3a1-0000-7000-8000-{:012}", i % 1000) },
        "before": { "role": before, "status": "active" },
        "after": { "role": after, "status": "active" },
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
        "request_id": uuid::Uuid::now_v7().to_string(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = arg("--mongodb-uri").ok_or("--mongodb-uri is required")?;
    let bin = arg("--muster-bin").unwrap_or_else(|| "target/release/muster".into());
    let events: usize = arg("--events")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1_000_000);
    let batch: usize = arg("--batch")
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000);
    let database = format!("bench_audit_{}", std::process::id());
    let port = free_port();
    let env = [
        ("MUSTER_MONGODB__URI", uri.clone()),
        ("MUSTER_MONGODB__DATABASE", database.clone()),
        ("MUSTER_HTTP__ADDR", format!("127.0.0.1:{port}")),
        (
            "MUSTER_HTTP__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        ),
        ("MUSTER_RATE_LIMIT__ENABLED", "false".into()),
        ("MUSTER_LOG__LEVEL", "warn".into()),
    ];
    let boot = common::bootstrap(&bin, &env)?;
    let org = boot.org_id;
    let token = boot.owner_token;
    let owner = boot.owner_account_id;

    println!("dev/bench audit: {events} events, inserted {batch} at a time");
    let mongo = mongodb::Client::with_uri_str(&uri).await?;
    let collection = mongo
        .database(&database)
        .collection::<Document>("audit_events");
    let seeding = Instant::now();
    let at = BsonDateTime::now();
    let mut inserted = 0;
    while inserted < events {
        let n = batch.min(events - inserted);
        let docs: Vec<Document> = (inserted..inserted + n)
            .map(|i| event(&org, &owner, i, at))
            .collect();
        collection.insert_many(docs).await?;
        inserted += n;
        if inserted.is_multiple_of(100_000) {
            eprintln!(
                "dev/bench audit: {inserted} inserted, {:.0} s",
                seeding.elapsed().as_secs_f64()
            );
        }
    }
    let seeded = seeding.elapsed();

    let mut child = common::serve(&bin, &env, port).await?;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let pid = child.id();
    let rss_before = status_kib(pid, "VmRSS");
    let hwm_before = status_kib(pid, "VmHWM");
    let cpu_before = cpu_seconds(pid);

    let start = Instant::now();
    let response = client
        .get(format!("{base}/api/v1/orgs/{org}/audit-events"))
        .query(&[("format", "csv")])
        .bearer_auth(&token)
        .send()
        .await?;
    let status = response.status();
    let first_byte = start.elapsed();
    let mut body = response.bytes_stream();
    let (mut bytes, mut lines) = (0usize, 0usize);
    let mut hwm_mid = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bytes += chunk.len();
        // No generated cell holds a line break: each LF ends a row.
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        if hwm_mid.is_none() && lines >= events / 2 {
            hwm_mid = status_kib(pid, "VmHWM");
        }
    }
    let took = start.elapsed();
    let hwm_after = status_kib(pid, "VmHWM");
    let cpu = cpu_seconds(pid).zip(cpu_before).map(|(a, b)| a - b);
    let rows = lines.saturating_sub(1);

    let mib =
        |kib: Option<u64>| kib.map_or("?".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!("| what | figure |");
    println!("|---|---:|");
    println!("| status | {status} |");
    println!(
        "| events inserted (insert_many) | {events} in {:.1} s |",
        seeded.as_secs_f64()
    );
    println!("| rows exported (the bootstrap's too) | {rows} |");
    println!("| CSV size | {:.1} MiB |", bytes as f64 / 1_048_576.0);
    println!("| first byte after | {:.3} s |", first_byte.as_secs_f64());
    println!("| export took | {:.1} s |", took.as_secs_f64());
    println!(
        "| events per second | {:.0} |",
        rows as f64 / took.as_secs_f64()
    );
    if let Some(cpu) = cpu {
        println!("| CPU of Muster during the export | {cpu:.1} s |");
    }
    println!("| server VmRSS before the export | {} |", mib(rss_before));
    println!(
        "| server VmHWM (peak) before the export | {} |",
        mib(hwm_before)
    );
    println!("| server VmHWM halfway through | {} |", mib(hwm_mid));
    println!("| server VmHWM after the export | {} |", mib(hwm_after));

    let _ = child.kill();
    let _ = child.wait();
    common::drop_database(&mongo.database(&database)).await;
    Ok(())
}
