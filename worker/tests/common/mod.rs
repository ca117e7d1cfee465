//! The test harness: a fresh database per test on the server named by
//! `TEST_MONGODB_URI` (dropped when the test ends), workers running in the
//! background, and a way to wait for a condition without guessing a sleep.

#![allow(dead_code)] // not every test uses every helper

use std::future::Future;
use std::time::Duration;

use bson::Document;
use mongodb::{Client, Database};
use muster_worker::{JobDocument, JobId, JobsConfig, collection, get_job};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the test database server listens.
pub const MONGODB_URI_VAR: &str = "TEST_MONGODB_URI";

pub fn mongodb_uri() -> String {
    std::env::var(MONGODB_URI_VAR).unwrap_or_else(|_| {
        panic!(
            "{MONGODB_URI_VAR} is not set: start a MongoDB-compatible server (e.g. \
             `secantusd-py --port 28555 --storage-path :memory:`) and export \
             {MONGODB_URI_VAR}='mongodb://127.0.0.1:28555/?directConnection=true'"
        )
    })
}

/// A database of its own for one test, dropped when the value is.
pub struct TestDb {
    pub client: Client,
    pub db: Database,
    uri: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let uri = mongodb_uri();
        let client = Client::with_uri_str(&uri)
            .await
            .expect("connect to the test database server");
        let name = format!("worker_test_{}", uuid::Uuid::new_v4().simple());
        let db = client.database(&name);
        TestDb { client, db, uri }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be shutting down:
        // drop the database from a thread with a runtime of its own.
        let uri = self.uri.clone();
        let name = self.db.name().to_owned();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(client) = Client::with_uri_str(&uri).await {
                    let _ = client.database(&name).drop().await;
                }
            });
        })
        .join();
    }
}

/// Short leases and intervals, so that the suite runs in seconds.
pub fn fast_config() -> JobsConfig {
    JobsConfig {
        collection: "test_jobs".to_owned(),
        lease: Duration::from_secs(2),
        heartbeat_interval: Duration::from_millis(200),
        poll_interval: Duration::from_millis(100),
        backoff_base: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(1),
        default_max_attempts: 5,
        done_retention: Duration::from_secs(3600),
        dead_retention: None,
        change_stream: true,
        // Several at once, so that every test runs the batched claims.
        claim_batch: 4,
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
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn job(db: &Database, config: &JobsConfig, id: &JobId) -> JobDocument {
    get_job(db, config, id)
        .await
        .expect("read the job")
        .unwrap_or_else(|| panic!("job {id} exists"))
}

pub async fn count(db: &Database, config: &JobsConfig, filter: Document) -> u64 {
    collection(db, config)
        .count_documents(filter)
        .await
        .expect("count jobs")
}

/// A worker running in the background until `stop`ped (or dropped, which
/// kills it as a crash would).
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), apalis::prelude::WorkerError>>>,
}

impl Running {
    pub fn new(
        stop: oneshot::Sender<()>,
        handle: JoinHandle<Result<(), apalis::prelude::WorkerError>>,
    ) -> Running {
        Running {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Asks the worker to stop, waits for it, and checks it ended well.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("the worker stops within 10 s")
                .expect("the worker task did not panic")
                .expect("the worker ended without error");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// Runs a built apalis worker in the background: `run_worker!(worker)`.
#[macro_export]
macro_rules! run_worker {
    ($worker:expr) => {{
        let (stop, stopped) = ::tokio::sync::oneshot::channel::<()>();
        let worker = $worker;
        let handle = ::tokio::spawn(async move {
            worker
                .run_until(async move {
                    let _ = stopped.await;
                    Ok::<(), ::std::io::Error>(())
                })
                .await
        });
        $crate::common::Running::new(stop, handle)
    }};
}
