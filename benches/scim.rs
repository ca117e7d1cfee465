//! `dev/bench scim`: SCIM throughput, latency, server CPU per request and
//! peak memory at 100,000 users, for Muster and, in the same run, for the
//! peer `scim2-server`. Not a test: it prints figures, it asserts nothing.
//!
//! Muster is seeded straight into MongoDB (the load is the subject, not
//! the seeding); the peer, which keeps everything in memory, is seeded
//! over its API. Both serve the same workloads with the same concurrency.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{arg, cpu_seconds, free_port};
use muster::bootstrap::{BootstrapInput, bootstrap};
use muster::config::MongoSettings;
use muster::domain::{Member, MemberId, MemberStatus, OrgId, Role};
use muster::protocol::user::UserProfile;
use muster::store::{self, Store};
use serde_json::{Value, json};

struct Args {
    mongodb_uri: String,
    muster_bin: String,
    peer_bin: Option<String>,
    users: usize,
    groups: usize,
    requests: usize,
    concurrency: usize,
    /// `--only lookup,get,post,patch,page`: the workloads to run (a PATCH
    /// adds the users the POST created, so `patch` needs `post`).
    only: Option<Vec<String>>,
    /// `--perf DIR`: record a `perf` profile of the server during each
    /// measured workload, as `DIR/<workload>.data`.
    perf_dir: Option<String>,
}

fn args() -> Args {
    let number =
        |name: &str, default: usize| arg(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    Args {
        mongodb_uri: arg("--mongodb-uri")
            .unwrap_or_else(|| "mongodb://127.0.0.1:27017/?directConnection=true".into()),
        muster_bin: arg("--muster-bin").unwrap_or_else(|| "target/release/muster".into()),
        peer_bin: arg("--peer-bin"),
        users: number("--users", 100_000),
        groups: number("--groups", 1_000),
        requests: number("--requests", 2_000),
        concurrency: number("--concurrency", 4),
        only: arg("--only").map(|v| v.split(',').map(str::to_owned).collect()),
        perf_dir: arg("--perf"),
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    common::status_kib(pid, "VmHWM").map_or(0.0, |kb| kb as f64 / 1024.0)
}

struct Server {
    name: &'static str,
    base: String,
    token: String,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until_up(client: &reqwest::Client, url: &str) {
    for _ in 0..600 {
        if client.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered");
}

#[derive(Clone, Copy)]
enum Workload {
    Lookup,
    GetById,
    Post,
    PatchBigGroup,
    Page,
    /// `GET /healthz`: HTTP, routing and logging, no token, no database.
    Healthz,
    /// `GET /ServiceProviderConfig`: the token check (one database round
    /// trip) and nothing else.
    AuthOnly,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Lookup => "lookup by userName eq",
            Workload::GetById => "GET by id",
            Workload::Post => "POST user (no password)",
            Workload::PatchBigGroup => "PATCH add one member to the big group",
            Workload::Page => "list page of 100",
            Workload::Healthz => "floor: GET /healthz (no token, no database)",
            Workload::AuthOnly => "floor: GET /ServiceProviderConfig (token check only)",
        }
    }

    /// The name `--only` and `--perf` know it by.
    fn short(self) -> &'static str {
        match self {
            Workload::Lookup => "lookup",
            Workload::GetById => "get",
            Workload::Post => "post",
            Workload::PatchBigGroup => "patch",
            Workload::Page => "page",
            Workload::Healthz => "healthz",
            Workload::AuthOnly => "auth",
        }
    }
}

struct Fixture {
    user_ids: Vec<String>,
    user_names: Vec<String>,
    big_group: String,
    /// Users created by the POST workload, added by the PATCH workload.
    new_users: Vec<String>,
}

struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms_per_request: f64,
    /// The measured seconds per request: with the server's idle CPU rate,
    /// what its CPU per request would be without the requests.
    seconds_per_request: f64,
    /// Database operations per request (`serverStatus.opcounters`), when
    /// the server's database is ours to read.
    db_ops_per_request: f64,
    errors: usize,
}

fn request(
    client: &reqwest::Client,
    server: &Server,
    workload: Workload,
    fixture: &Fixture,
    i: usize,
    run: usize,
) -> reqwest::RequestBuilder {
    let pick = |len: usize| (i.wrapping_mul(2_654_435_761) ^ run) % len.max(1);
    let builder = match workload {
        Workload::Lookup => {
            let name = &fixture.user_names[pick(fixture.user_names.len())];
            client
                .get(format!("{}/Users", server.base))
                .query(&[("filter", format!("userName eq \"{name}\""))])
        }
        Workload::GetById => client.get(format!("{}/Users/{}", server.base, fixture.user_ids[pick(fixture.user_ids.len())])),
        Workload::Post => client.post(format!("{}/Users", server.base)).json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("new{run}-{i}@bench.example"),
            "name": { "givenName": "New", "familyName": format!("User{i}") },
            "emails": [{ "value": format!("new{run}-{i}@bench.example"), "type": "work", "primary": true }],
        })),
        Workload::PatchBigGroup => {
            let member = &fixture.new_users[i % fixture.new_users.len().max(1)];
            client
                .patch(format!("{}/Groups/{}", server.base, fixture.big_group))
                .query(&[("excludedAttributes", "members")])
                .json(&json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{ "op": "add", "path": "members", "value": [{ "value": member }] }],
                }))
        }
        Workload::Page => {
            let start = 1 + pick(fixture.user_ids.len().saturating_sub(100).max(1));
            client
                .get(format!("{}/Users", server.base))
                .query(&[("startIndex", start.to_string()), ("count", "100".into())])
        }
        Workload::Healthz => client.get(format!(
            "{}/healthz",
            server.base.trim_end_matches("/scim/v2")
        )),
        Workload::AuthOnly => client.get(format!("{}/ServiceProviderConfig", server.base)),
    };
    builder
        .bearer_auth(&server.token)
        .header("content-type", "application/scim+json")
}

async fn run(
    client: &reqwest::Client,
    database: Option<&mongodb::Client>,
    server: &Server,
    workload: Workload,
    fixture: &mut Fixture,
    requests: usize,
    concurrency: usize,
) -> Figures {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run_number = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = server.child.id();
    // NaN rather than 0 when /proc cannot be read, so a bad figure shows.
    let ops_before = match database {
        Some(database) => common::database_operations(database).await,
        None => f64::NAN,
    };
    let cpu_before = cpu_seconds(pid).unwrap_or(f64::NAN);
    let started = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let fixture_ref = &*fixture;
    let results: Vec<(Vec<f64>, Vec<String>, usize)> =
        futures::future::join_all((0..concurrency).map(|_| {
            let next = &next;
            async move {
                let mut latencies = Vec::new();
                let mut created = Vec::new();
                let mut errors = 0;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let began = Instant::now();
                    match request(client, server, workload, fixture_ref, i, run_number)
                        .send()
                        .await
                    {
                        Ok(response) if response.status().is_success() => {
                            let body = response.bytes().await.unwrap_or_default();
                            if let Workload::Post = workload
                                && let Ok(value) = serde_json::from_slice::<Value>(&body)
                                && let Some(id) = value["id"].as_str()
                            {
                                created.push(id.to_owned());
                            }
                        }
                        _ => errors += 1,
                    }
                    latencies.push(began.elapsed().as_secs_f64() * 1000.0);
                }
                (latencies, created, errors)
            }
        }))
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid).unwrap_or(f64::NAN) - cpu_before;
    // Less the serverStatus that read the counters.
    let db_ops = match database {
        Some(database) => common::database_operations(database).await - ops_before - 1.0,
        None => f64::NAN,
    };
    let mut latencies: Vec<f64> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let errors = results.iter().map(|r| r.2).sum();
    if let Workload::Post = workload {
        fixture.new_users = results.into_iter().flat_map(|r| r.1).collect();
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Figures {
        rps: requests as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        cpu_ms_per_request: cpu * 1000.0 / requests as f64,
        seconds_per_request: elapsed / requests as f64,
        db_ops_per_request: db_ops / requests as f64,
        errors,
    }
}

async fn seed_muster(store: &Store, users: usize) -> (Fixture, OrgId) {
    let out = bootstrap(
        store,
        Utc::now(),
        BootstrapInput {
            org_name: "Bench".into(),
            owner_email: "owner@bench.example".into(),
            owner_password: None,
        },
    )
    .await
    .expect("bootstrap");
    let org = OrgId::parse(&out.org_id).expect("org id");
    (seed_users(store, &org, 0, users).await, org)
}

async fn seed_users(store: &Store, org: &OrgId, from: usize, to: usize) -> Fixture {
    let now = Utc::now();
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut batch = Vec::new();
    for i in from..to {
        let name = format!("user{i}@bench.example");
        let mut profile = UserProfile {
            user_name: name.clone(),
            external_id: Some(format!("ext-{i}")),
            attributes: serde_json::Map::new(),
            active_assigned: true,
        };
        profile
            .attributes
            .insert("displayName".into(), json!(format!("User {i}")));
        profile.attributes.insert(
            "name".into(),
            json!({ "givenName": "User", "familyName": format!("N{i}") }),
        );
        profile.attributes.insert(
            "emails".into(),
            json!([{ "value": name, "type": "work", "primary": true }]),
        );
        let member = Member {
            id: MemberId::new(),
            org_id: org.clone(),
            account_id: None,
            role: Role::Viewer,
            status: MemberStatus::Pending,
            suspended_until: None,
            project_rights: Vec::new(),
            created_at: now,
            updated_at: now,
            last_sign_in_at: None,
        };
        ids.push(member.id.to_string());
        names.push(name);
        batch.push((member, profile));
        if batch.len() == 1000 {
            store::members::insert_many(store, &batch)
                .await
                .expect("seed users");
            batch.clear();
        }
    }
    store::members::insert_many(store, &batch)
        .await
        .expect("seed users");
    Fixture {
        user_ids: ids,
        user_names: names,
        big_group: String::new(),
        new_users: Vec::new(),
    }
}

async fn seed_muster_groups(
    store: &Store,
    org: &OrgId,
    groups: usize,
    members: &[String],
) -> String {
    let now = Utc::now();
    let mut big = String::new();
    for g in 0..groups {
        let group = store::groups::Group {
            id: muster::domain::GroupId::new().into_string(),
            org_id: org.clone(),
            display_name: format!("Group {g}"),
            external_id: None,
            role_mapping: None,
            extension_assigned: false,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let chunks: Vec<&[String]> = if g == 0 {
            members.chunks(5_000).collect()
        } else {
            vec![&members[..members.len().min(10)]]
        };
        let first =
            muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
                let _ = store::groups::insert(store, session, &group).await?;
                Ok(())
            });
        first.expect("seed group");
        for chunk in chunks {
            muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
                store::groups::add_members(store, session, org, &group.id, chunk, now).await?;
                Ok(())
            })
            .expect("seed memberships");
        }
        if g == 0 {
            big = group.id;
        }
    }
    big
}

async fn seed_peer(
    client: &reqwest::Client,
    peer: &Server,
    users: usize,
    groups: usize,
    concurrency: usize,
) -> Fixture {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let created: Vec<Vec<(usize, String)>> = futures::future::join_all((0..concurrency * 2).map(|_| {
        let next = &next;
        async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= users {
                    break;
                }
                let name = format!("user{i}@bench.example");
                let response = client
                    .post(format!("{}/Users", peer.base))
                    .bearer_auth(&peer.token)
                    .json(&json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": name, "externalId": format!("ext-{i}"), "displayName": format!("User {i}"),
                        "name": { "givenName": "User", "familyName": format!("N{i}") },
                        "emails": [{ "value": name, "type": "work", "primary": true }],
                    }))
                    .send()
                    .await;
                if let Ok(response) = response
                    && let Ok(value) = response.json::<Value>().await
                    && let Some(id) = value["id"].as_str()
                {
                    ids.push((i, id.to_owned()));
                }
            }
            ids
        }
    }))
    .await;
    let mut all: Vec<(usize, String)> = created.into_iter().flatten().collect();
    all.sort();
    let user_ids: Vec<String> = all.iter().map(|(_, id)| id.clone()).collect();
    let user_names: Vec<String> = all
        .iter()
        .map(|(i, _)| format!("user{i}@bench.example"))
        .collect();
    let mut big_group = String::new();
    for g in 0..groups {
        let members: Vec<Value> = if g == 0 {
            user_ids.iter().map(|id| json!({ "value": id })).collect()
        } else {
            user_ids
                .iter()
                .take(10)
                .map(|id| json!({ "value": id }))
                .collect()
        };
        let response = client
            .post(format!("{}/Groups", peer.base))
            .bearer_auth(&peer.token)
            .json(&json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("Group {g}"), "members": members }))
            .send()
            .await
            .expect("peer group");
        let value: Value = response.json().await.unwrap_or_default();
        if g == 0 {
            big_group = value["id"].as_str().unwrap_or_default().to_owned();
        }
    }
    Fixture {
        user_ids,
        user_names,
        big_group,
        new_users: Vec::new(),
    }
}

const WORKLOADS: [Workload; 5] = [
    Workload::Lookup,
    Workload::GetById,
    Workload::Post,
    Workload::PatchBigGroup,
    Workload::Page,
];

async fn measure(
    client: &reqwest::Client,
    database: Option<&mongodb::Client>,
    server: &Server,
    fixture: &mut Fixture,
    args: &Args,
) -> Vec<(Workload, Figures)> {
    let mut rows = Vec::new();
    for workload in WORKLOADS {
        if let Some(only) = &args.only
            && !only.iter().any(|name| name == workload.short())
        {
            continue;
        }
        // Each page counts every user for totalResults, which the
        // development database does slowly, and the peer rewrites the whole
        // 100,000-member group on every PATCH: fewer of those keep a run
        // within minutes.
        let requests = match workload {
            Workload::Page | Workload::PatchBigGroup => (args.requests / 20).max(20),
            _ => args.requests,
        };
        // A short warm-up so that caches and connection pools are filled.
        let _ = run(
            client,
            database,
            server,
            workload,
            fixture,
            requests / 10,
            args.concurrency,
        )
        .await;
        let profile = args.perf_dir.as_deref().and_then(|dir| {
            common::Profile::start(
                &format!("{dir}/{}.data", workload.short()),
                server.child.id(),
            )
        });
        let figures = run(
            client,
            database,
            server,
            workload,
            fixture,
            requests,
            args.concurrency,
        )
        .await;
        if let Some(profile) = profile {
            profile.stop();
        }
        rows.push((workload, figures));
    }
    rows
}

/// The server's CPU when no request comes, in ms per second: the MongoDB
/// driver's pool maintenance (twice a second) and server monitoring.
/// Slow workloads (a page takes seconds on the development database)
/// would otherwise be charged it. Measured over 30 s from each thread's
/// `schedstat` (nanoseconds; `/proc/<pid>/stat` counts 10 ms ticks, too
/// coarse for this), over the threads alive at both ends of the window.
async fn idle_cpu_ms_per_s(pid: u32) -> f64 {
    fn per_thread_ns(pid: u32) -> std::collections::HashMap<String, u64> {
        let mut found = std::collections::HashMap::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.filter_map(Result::ok) {
                let ns = std::fs::read_to_string(task.path().join("schedstat"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok());
                if let Some(ns) = ns {
                    found.insert(task.file_name().to_string_lossy().into_owned(), ns);
                }
            }
        }
        found
    }
    let window = Duration::from_secs(30);
    let before = per_thread_ns(pid);
    tokio::time::sleep(window).await;
    let spent: u64 = per_thread_ns(pid)
        .iter()
        .filter_map(|(tid, after)| Some(after.saturating_sub(*before.get(tid)?)))
        .sum();
    spent as f64 / 1e6 / window.as_secs_f64()
}

fn print_rows(
    server: &str,
    rows: &[(Workload, Figures)],
    rss: f64,
    idle_ms_per_s: f64,
    floor_ms: f64,
) {
    println!("\n{server} (peak RSS {rss:.0} MiB, idle CPU {idle_ms_per_s:.3} ms/s)");
    println!(
        "| workload | req/s | p50 ms | p99 ms | server CPU ms/req | of which idle | net, in floors | DB ops/req | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (workload, f) in rows {
        let idle = idle_ms_per_s * f.seconds_per_request;
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.3} | {:.3} | {:.2} | {} | {} |",
            workload.name(),
            f.rps,
            f.p50_ms,
            f.p99_ms,
            f.cpu_ms_per_request,
            idle,
            (f.cpu_ms_per_request - idle) / floor_ms,
            if f.db_ops_per_request.is_nan() {
                "—".to_owned()
            } else {
                format!("{:.1}", f.db_ops_per_request)
            },
            f.errors
        );
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let database = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let settings = MongoSettings {
        uri: args.mongodb_uri.clone(),
        database: database.clone(),
        ..MongoSettings::default()
    };
    let store = Store::connect(&settings).await.expect("connect");
    store.migrate().await.expect("migrate");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");

    eprintln!(
        "seeding Muster: {} users, {} groups",
        args.users, args.groups
    );
    let small = args.users / 10;
    let (mut fixture, org) = seed_muster(&store, small).await;
    let scim_token = {
        let issued =
            muster::auth::token::IssuedToken::generate(muster::auth::token::TokenKind::Scim);
        let record = muster::auth::token::TokenRecord::new(
            &issued,
            Some("bench".into()),
            None,
            Some(org.clone()),
            Utc::now(),
            None,
        );
        let _ = store::tokens::insert(&store, None, &record)
            .await
            .expect("token");
        issued.secret.into_exposed()
    };
    let port = free_port();
    // The SCIM server alone: `dev/bench worker` measures the job worker.
    let child = Command::new(&args.muster_bin)
        .args(["serve", "--no-worker"])
        .env("MUSTER_MONGODB__URI", &args.mongodb_uri)
        .env("MUSTER_MONGODB__DATABASE", &database)
        .env("MUSTER_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env(
            "MUSTER_HTTP__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("MUSTER_LOG__LEVEL", "warn")
        .env("MUSTER_RATE_LIMIT__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start muster");
    let muster = Server {
        name: "Muster",
        base: format!("http://127.0.0.1:{port}/scim/v2"),
        token: scim_token,
        child,
    };
    wait_until_up(&client, &format!("http://127.0.0.1:{port}/healthz")).await;

    // The userName lookup at a tenth of the size, to compare with the full size.
    let database = store.database().client().clone();
    let lookup_small = run(
        &client,
        Some(&database),
        &muster,
        Workload::Lookup,
        &mut fixture,
        args.requests,
        args.concurrency,
    )
    .await;
    let more = seed_users(&store, &org, small, args.users).await;
    fixture.user_ids.extend(more.user_ids);
    fixture.user_names.extend(more.user_names);
    fixture.big_group = seed_muster_groups(&store, &org, args.groups, &fixture.user_ids).await;
    let mut muster_rows = measure(&client, Some(&database), &muster, &mut fixture, &args).await;
    // What any request costs Muster's process on this machine, for reading
    // the figures above: no route can cost less than the first.
    for floor in [Workload::Healthz, Workload::AuthOnly] {
        let figures = run(
            &client,
            Some(&database),
            &muster,
            floor,
            &mut fixture,
            args.requests,
            args.concurrency,
        )
        .await;
        muster_rows.push((floor, figures));
    }
    let muster_rss = peak_rss_mib(muster.child.id());
    let muster_idle = idle_cpu_ms_per_s(muster.child.id()).await;
    // The unit of the figures: one round trip through the driver, measured
    // now in this process while nothing else runs in it.
    let floor = common::driver_floor_ms(&args.mongodb_uri, 20_000, args.concurrency)
        .await
        .unwrap_or(f64::NAN);
    println!(
        "\ndriver floor (find_one by _id, {} at a time): {floor:.3} CPU ms per operation",
        args.concurrency
    );
    print_rows(muster.name, &muster_rows, muster_rss, muster_idle, floor);
    if let Some((_, lookup)) = muster_rows
        .iter()
        .find(|(w, _)| matches!(w, Workload::Lookup))
    {
        println!(
            "\nlookup by userName eq at {} users: {:.3} CPU ms/req, p50 {:.2} ms; at {} users: {:.3} CPU ms/req, p50 {:.2} ms",
            small,
            lookup_small.cpu_ms_per_request,
            lookup_small.p50_ms,
            args.users,
            lookup.cpu_ms_per_request,
            lookup.p50_ms
        );
    }
    drop(muster);
    common::drop_database(store.database()).await;

    let Some(peer_bin) = args.peer_bin.clone() else {
        return;
    };
    let port = free_port();
    let child = Command::new(peer_bin)
        .args([
            "--port",
            &port.to_string(),
            "--bearer-token",
            "bench",
            "--tenant",
            "scim",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scim2-server");
    let peer = Server {
        name: "scim2-server",
        base: format!("http://127.0.0.1:{port}/scim"),
        token: "bench".into(),
        child,
    };
    wait_until_up(&client, &format!("{}/ServiceProviderConfig", peer.base)).await;
    eprintln!("seeding scim2-server over its API");
    let mut peer_fixture =
        seed_peer(&client, &peer, args.users, args.groups, args.concurrency).await;
    let peer_rows = measure(&client, None, &peer, &mut peer_fixture, &args).await;
    let peer_rss = peak_rss_mib(peer.child.id());
    let peer_idle = idle_cpu_ms_per_s(peer.child.id()).await;
    print_rows(peer.name, &peer_rows, peer_rss, peer_idle, floor);
    println!("\nscim2-server / Muster, server CPU per request (higher: Muster uses less)");
    for ((workload, m), (_, p)) in muster_rows.iter().zip(&peer_rows) {
        println!(
            "| {} | {:.1}x |",
            workload.name(),
            p.cpu_ms_per_request / m.cpu_ms_per_request.max(1e-9)
        );
    }
    println!("| peak RSS | {:.1}x |", peer_rss / muster_rss.max(1e-9));
}
