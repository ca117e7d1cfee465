//! What the benchmarks that drive a `muster` process share.

// Each benchmark is its own crate and uses a part of this module.
#![allow(dead_code)]

/// The value after `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A port that was free a moment ago, for the server to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_999)
}

/// utime + stime of a process, in seconds (stat(5) fields 14 and 15, in
/// ticks of 1/100 s: fine over thousands of requests or tens of seconds).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3.
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What `muster bootstrap --json` printed for the benchmark's organization.
pub struct Bootstrapped {
    pub org_id: String,
    pub owner_token: String,
    pub owner_account_id: String,
}

/// Runs `muster bootstrap --json` for an organization named "Bench" with
/// the benchmark's environment.
pub fn bootstrap(
    bin: impl AsRef<std::ffi::OsStr>,
    env: &[(&str, String)],
) -> Result<Bootstrapped, Box<dyn std::error::Error>> {
    let output = std::process::Command::new(bin)
        .args([
            "bootstrap",
            "--org-name",
            "Bench",
            "--owner-email",
            "bench@example.com",
            "--json",
        ])
        .envs(env.iter().cloned())
        .output()?;
    let boot: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "bootstrap: {e}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let field = |name: &str| -> Result<String, String> {
        boot[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("bootstrap printed no {name}"))
    };
    Ok(Bootstrapped {
        org_id: field("org_id")?,
        owner_token: field("owner_token")?,
        owner_account_id: field("owner_account_id")?,
    })
}

/// Starts `muster serve --no-migrate` with the benchmark's environment and
/// waits until it answers `/healthz` on `port` (30 s at most).
pub async fn serve(
    bin: impl AsRef<std::ffi::OsStr>,
    env: &[(&str, String)],
    port: u16,
) -> Result<std::process::Child, Box<dyn std::error::Error>> {
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--no-migrate"])
        .envs(env.iter().cloned())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let client = reqwest::Client::new();
    let up = std::time::Instant::now();
    while client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        if up.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            return Err("muster did not start".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(child)
}

/// The driver floor: what one MongoDB round trip costs the calling process,
/// with nothing of Muster around it. `find_one` by `_id`, `concurrency` at
/// a time, through the same driver, client options and runtime flavour as
/// the server; CPU of this process (which must be doing nothing else) per
/// operation, in ms.
pub async fn driver_floor_ms(
    uri: &str,
    operations: usize,
    concurrency: usize,
) -> Result<f64, mongodb::error::Error> {
    use bson::{Document, doc};
    use mongodb::options::{ClientOptions, WriteConcern};
    let mut options = ClientOptions::parse(uri).await?;
    options.write_concern = Some(WriteConcern::majority());
    let client = mongodb::Client::with_options(options)?;
    let database = client.database(&format!("driver_floor_{}", uuid::Uuid::new_v4().simple()));
    let collection = database.collection::<Document>("docs");
    collection.insert_one(doc! { "_id": "x", "v": 1 }).await?;
    for _ in 0..operations / 20 {
        collection.find_one(doc! { "_id": "x" }).await?;
    }
    let before = cpu_seconds(std::process::id()).unwrap_or(f64::NAN);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let collection = collection.clone();
            tokio::spawn(async move {
                for _ in 0..operations / concurrency {
                    collection.find_one(doc! { "_id": "x" }).await?;
                }
                Ok::<_, mongodb::error::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(mongodb::error::Error::custom)??;
    }
    let cpu = cpu_seconds(std::process::id()).unwrap_or(f64::NAN) - before;
    database.drop().await?;
    Ok(cpu * 1000.0 / operations as f64)
}

/// The database's operation counters (`serverStatus.opcounters`, summed):
/// read before and after a workload, how many operations its requests made.
pub async fn database_operations(client: &mongodb::Client) -> f64 {
    match database_operation_counts(client).await {
        Some(counts) => counts.values().sum(),
        None => f64::NAN,
    }
}

/// `serverStatus.opcounters` by kind (insert, query, update, delete,
/// getmore, command); `None` when the server does not say.
pub async fn database_operation_counts(
    client: &mongodb::Client,
) -> Option<std::collections::BTreeMap<String, f64>> {
    let status = client
        .database("admin")
        .run_command(bson::doc! { "serverStatus": 1 })
        .await
        .ok()?;
    let counters = status.get_document("opcounters").ok()?;
    Some(
        counters
            .iter()
            .filter_map(|(kind, v)| {
                let n = match v {
                    bson::Bson::Int32(n) => f64::from(*n),
                    bson::Bson::Int64(n) => *n as f64,
                    bson::Bson::Double(n) => *n,
                    _ => return None,
                };
                Some((kind.clone(), n))
            })
            .collect(),
    )
}

/// `perf record` attached to a process (with DWARF call graphs: release
/// builds have no frame pointers) until `stop`.
pub struct Profile(std::process::Child);

impl Profile {
    pub fn start(output: &str, pid: u32) -> Option<Profile> {
        let child = std::process::Command::new("perf")
            .args([
                "record",
                "-F",
                "499",
                "--call-graph",
                "dwarf,16384",
                "-o",
                output,
            ])
            .args(["-p", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        // perf needs a moment to attach before the work begins.
        std::thread::sleep(std::time::Duration::from_millis(500));
        Some(Profile(child))
    }

    pub fn stop(mut self) {
        // SIGINT makes perf write its file and exit.
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Drops the benchmark's database, giving up after a while: the
/// development database has been seen spending over half an hour on
/// dropping one a mail run left behind, and `dev/bench` throws the whole
/// server away anyway.
pub async fn drop_database(database: &mongodb::Database) {
    let dropping = database.drop();
    if tokio::time::timeout(std::time::Duration::from_secs(10), dropping)
        .await
        .is_err()
    {
        eprintln!(
            "the database {} was not dropped within 10 s; drop it yourself if the server stays",
            database.name()
        );
    }
}
