//! The job backend against a real MongoDB-compatible server
//! (`TEST_MONGODB_URI`): pushing in transactions, idempotency, running,
//! exclusive claims, retries, delays, crash recovery, wake-ups.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use apalis::prelude::{
    AbortError, BoxDynError, Data, TaskId, TaskSink, WorkerBuilder, WorkerBuilderExt,
};
use apalis_core::backend::persistence::Persistence;
use apalis_core::worker::context::WorkerContext;
use bson::{Document, doc};
use chrono::Utc;
use common::{TestDb, count, eventually, fast_config, job};
use futures::TryStreamExt;
use muster_worker::{
    DEFAULT_JOBS_COLLECTION, JobError, JobId, JobStatus, JobsConfig, MongoBackend,
    MongoPersistence, PushOptions, Pushed, QueueStats, Settled, create_indexes, push, push_in,
    push_many_in, push_many_new_in, queue_stats, recover_expired_leases,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Email {
    to: String,
    n: u32,
}

fn email(n: u32) -> Email {
    Email {
        to: format!("user{n}@example.com"),
        n,
    }
}

fn queued(pushed: Pushed) -> muster_worker::JobId {
    match pushed {
        Pushed::Queued(id) => id,
        Pushed::Duplicate => panic!("expected a new job, got a duplicate"),
    }
}

/// What the handler saw, and how it behaves: shared with the worker as
/// apalis `Data`.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    /// The first `fail_runs` runs of each job fail.
    fail_runs: usize,
    /// When set, runs wait for it to turn true.
    gate: Option<watch::Receiver<bool>>,
    /// How long each run takes.
    pause: Duration,
}

#[derive(Default)]
struct Seen {
    /// Per job id, the instants it started at.
    runs: HashMap<String, Vec<Instant>>,
    /// Per job id, the wall-clock time of its last start.
    started: HashMap<String, chrono::DateTime<Utc>>,
    /// Every job received, with its id.
    jobs: Vec<(String, Email)>,
    /// Runs per worker name.
    per_worker: HashMap<String, u32>,
}

impl Recorder {
    fn failing(fail_runs: usize) -> Recorder {
        Recorder {
            fail_runs,
            ..Recorder::default()
        }
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().expect("recorder lock")
    }

    fn runs_of(&self, id: &str) -> Vec<Instant> {
        self.seen().runs.get(id).cloned().unwrap_or_default()
    }
}

/// The handler every test runs: records, then waits, pauses or fails as
/// its recorder says.
async fn handle(
    job: Email,
    id: TaskId,
    worker: WorkerContext,
    recorder: Data<Recorder>,
) -> Result<(), BoxDynError> {
    let run = {
        let mut seen = recorder.seen();
        let id = id.to_string();
        seen.started.insert(id.clone(), Utc::now());
        seen.jobs.push((id.clone(), job));
        *seen.per_worker.entry(worker.name().to_owned()).or_default() += 1;
        let runs = seen.runs.entry(id).or_default();
        runs.push(Instant::now());
        runs.len()
    };
    if let Some(gate) = &recorder.gate {
        let mut gate = gate.clone();
        let _ = gate.wait_for(|open| *open).await;
    }
    if !recorder.pause.is_zero() {
        tokio::time::sleep(recorder.pause).await;
    }
    if run <= recorder.fail_runs {
        return Err(format!("failure {run}").into());
    }
    Ok(())
}

async fn succeed(_job: Email) -> Result<(), BoxDynError> {
    Ok(())
}

#[tokio::test]
async fn push_in_a_transaction_commits_or_rolls_back_with_it() {
    let t = TestDb::new().await;
    // The default collection, to show it is the one used.
    let config = JobsConfig::default();
    assert_eq!(config.collection, DEFAULT_JOBS_COLLECTION);
    create_indexes(&t.db, &config).await.expect("indexes");
    let orders = t.db.collection::<Document>("orders");
    let mut session = t.client.start_session().await.expect("session");

    // Aborted: neither the business write nor the job remain.
    session.start_transaction().await.expect("start");
    orders
        .insert_one(doc! { "_id": "o1" })
        .session(&mut session)
        .await
        .expect("order");
    let pushed = push_in(
        &t.db,
        &mut session,
        &config,
        "email",
        &email(1),
        PushOptions::default(),
    )
    .await
    .expect("push in the transaction");
    assert!(matches!(pushed, Pushed::Queued(_)));
    session.abort_transaction().await.expect("abort");
    assert_eq!(count(&t.db, &config, doc! {}).await, 0);
    assert_eq!(orders.count_documents(doc! {}).await.expect("count"), 0);

    // Committed: both remain.
    session.start_transaction().await.expect("start");
    orders
        .insert_one(doc! { "_id": "o2" })
        .session(&mut session)
        .await
        .expect("order");
    let id = queued(
        push_in(
            &t.db,
            &mut session,
            &config,
            "email",
            &email(2),
            PushOptions::idempotency_key("order-o2"),
        )
        .await
        .expect("push in the transaction"),
    );
    // The same key again in the same transaction sees the first push.
    let again = push_in(
        &t.db,
        &mut session,
        &config,
        "email",
        &email(2),
        PushOptions::idempotency_key("order-o2"),
    )
    .await
    .expect("second push in the transaction");
    assert_eq!(again, Pushed::Duplicate);
    session.commit_transaction().await.expect("commit");
    assert_eq!(count(&t.db, &config, doc! {}).await, 1);
    assert_eq!(orders.count_documents(doc! {}).await.expect("count"), 1);

    let stored = job(&t.db, &config, &id).await;
    assert_eq!(stored.queue, "email");
    assert_eq!(stored.status, JobStatus::Pending);
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.max_attempts, config.default_max_attempts);
    assert_eq!(stored.idempotency_key.as_deref(), Some("order-o2"));
    assert_eq!(
        bson::from_bson::<Email>(stored.payload).expect("payload"),
        email(2)
    );
    assert!(stored.lease_until.is_none() && stored.worker_id.is_none());
    assert!(stored.done_at.is_none() && stored.expire_at.is_none());
    assert!(uuid::Uuid::parse_str(stored.id.as_str()).is_ok_and(|u| u.get_version_num() == 7));

    // A later transaction pushing the same key gets a duplicate, and its
    // own writes still commit: the duplicate never reached the index.
    session.start_transaction().await.expect("start");
    orders
        .insert_one(doc! { "_id": "o3" })
        .session(&mut session)
        .await
        .expect("order");
    let duplicate = push_in(
        &t.db,
        &mut session,
        &config,
        "email",
        &email(3),
        PushOptions::idempotency_key("order-o2"),
    )
    .await
    .expect("push a duplicate in the transaction");
    assert_eq!(duplicate, Pushed::Duplicate);
    session.commit_transaction().await.expect("commit");
    assert_eq!(count(&t.db, &config, doc! {}).await, 1);
    assert_eq!(orders.count_documents(doc! {}).await.expect("count"), 2);
}

#[tokio::test]
async fn many_jobs_pushed_at_once_keep_order_keys_and_the_transaction() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let _ = push(
        &t.db,
        &config,
        "email",
        &email(0),
        PushOptions::idempotency_key("k0"),
    )
    .await
    .expect("an earlier job");
    let jobs = [
        (email(1), PushOptions::idempotency_key("k1")),
        (email(2), PushOptions::idempotency_key("k0")),
        (email(3), PushOptions::default()),
        (email(4), PushOptions::idempotency_key("k1")),
    ];
    let mut session = t.client.start_session().await.expect("session");

    // Rolled back with the transaction, like one push.
    session.start_transaction().await.expect("start");
    let pushed = push_many_in(&t.db, &mut session, &config, "email", jobs.clone())
        .await
        .expect("push many");
    assert_eq!(pushed.len(), 4);
    assert_eq!(count_in(&t.db, &config, &mut session).await, 3);
    session.abort_transaction().await.expect("abort");
    assert_eq!(count(&t.db, &config, doc! {}).await, 1);

    // Committed: one answer per job, in order. A key stored before, or
    // given earlier in the same call, is a duplicate.
    session.start_transaction().await.expect("start");
    let pushed = push_many_in(&t.db, &mut session, &config, "email", jobs.clone())
        .await
        .expect("push many");
    session.commit_transaction().await.expect("commit");
    let first = queued(pushed[0].clone());
    assert_eq!(pushed[1], Pushed::Duplicate);
    let third = queued(pushed[2].clone());
    assert_eq!(pushed[3], Pushed::Duplicate);
    assert_eq!(count(&t.db, &config, doc! {}).await, 3);
    let stored = job(&t.db, &config, &first).await;
    assert_eq!(stored.idempotency_key.as_deref(), Some("k1"));
    assert_eq!(
        bson::from_bson::<Email>(stored.payload).expect("payload"),
        email(1)
    );
    let stored = job(&t.db, &config, &third).await;
    assert_eq!(stored.idempotency_key, None);
    assert_eq!(
        bson::from_bson::<Email>(stored.payload).expect("payload"),
        email(3)
    );
}

#[tokio::test]
async fn jobs_with_new_keys_are_pushed_without_a_look_up_and_the_index_still_refuses_a_taken_key() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let jobs = [
        (email(1), PushOptions::idempotency_key("new-1")),
        (email(2), PushOptions::idempotency_key("new-1")),
        (email(3), PushOptions::idempotency_key("new-3")),
    ];
    let mut session = t.client.start_session().await.expect("session");
    session.start_transaction().await.expect("start");
    let pushed = push_many_new_in(&t.db, &mut session, &config, "email", jobs.clone())
        .await
        .expect("push new");
    session.commit_transaction().await.expect("commit");
    // A key given twice in one call still counts once.
    let first = queued(pushed[0].clone());
    assert_eq!(pushed[1], Pushed::Duplicate);
    let _ = queued(pushed[2].clone());
    assert_eq!(count(&t.db, &config, doc! {}).await, 2);
    let stored = job(&t.db, &config, &first).await;
    assert_eq!(stored.idempotency_key.as_deref(), Some("new-1"));

    // A caller that was wrong about its keys being new gets the race's
    // error, and its transaction writes nothing.
    session.start_transaction().await.expect("start");
    let refused = push_many_new_in(
        &t.db,
        &mut session,
        &config,
        "email",
        [(email(4), PushOptions::idempotency_key("new-3"))],
    )
    .await;
    assert!(
        matches!(refused, Err(JobError::IdempotencyRace { .. })),
        "{refused:?}"
    );
    let _ = session.abort_transaction().await;
    assert_eq!(count(&t.db, &config, doc! {}).await, 2);
}

#[tokio::test]
async fn announced_jobs_are_claimed_by_id_after_the_oldest_due_one() {
    let t = TestDb::new().await;
    // Polling out of the picture: the query runs only when its turn comes
    // (first, then once a minute) or when nothing announced is left.
    let config = JobsConfig {
        poll_interval: Duration::from_secs(3600),
        ..fast_config()
    };
    create_indexes(&t.db, &config).await.expect("indexes");
    let before = queued(
        push(&t.db, &config, "email", &email(0), PushOptions::default())
            .await
            .expect("push before the worker listens"),
    );
    let mut persistence =
        MongoPersistence::new(&t.db, "email", config.clone()).expect("persistence");
    let worker = WorkerContext::new("announced");
    persistence.register(&worker).await.expect("register");
    let mut announced = Vec::new();
    for n in 1..=2 {
        announced.push(queued(
            push(&t.db, &config, "email", &email(n), PushOptions::default())
                .await
                .expect("push"),
        ));
    }
    eventually(WAIT, "both jobs announced", || async {
        (persistence.announced() == 2).then_some(())
    })
    .await;
    let worker_id = persistence.worker_id(&worker);
    let claim = || async {
        persistence
            .claim(&worker_id)
            .await
            .expect("claim")
            .expect("a due job")
            .id
    };
    // The job no one announced is the oldest due one, and goes first: a
    // stream of announcements cannot starve it.
    assert_eq!(claim().await, before);
    assert_eq!(persistence.announced(), 2);
    // Then the announced ones, in order, each by id.
    assert_eq!(claim().await, announced[0]);
    assert_eq!(persistence.announced(), 1);
    assert_eq!(claim().await, announced[1]);
    assert_eq!(persistence.announced(), 0);
    assert!(
        persistence
            .claim(&worker_id)
            .await
            .expect("claim")
            .is_none()
    );
    for id in [&before, &announced[0], &announced[1]] {
        let stored = job(&t.db, &config, id).await;
        assert_eq!(stored.status, JobStatus::Running);
        assert_eq!(stored.attempts, 1);
        assert_eq!(stored.worker_id.as_deref(), Some(worker_id.as_str()));
    }
}

#[tokio::test]
async fn announced_jobs_are_claimed_together_and_only_those_still_pending() {
    let t = TestDb::new().await;
    let config = JobsConfig {
        poll_interval: Duration::from_secs(3600),
        ..fast_config()
    };
    create_indexes(&t.db, &config).await.expect("indexes");
    let mut persistence =
        MongoPersistence::new(&t.db, "email", config.clone()).expect("persistence");
    let worker = WorkerContext::new("batch");
    persistence.register(&worker).await.expect("register");
    let worker_id = persistence.worker_id(&worker);
    let push_announced = |from: u32, to: u32| {
        let (db, config, persistence) = (&t.db, &config, &persistence);
        async move {
            let mut ids = Vec::new();
            for n in from..to {
                ids.push(queued(
                    push(db, config, "email", &email(n), PushOptions::default())
                        .await
                        .expect("push"),
                ));
            }
            eventually(WAIT, "the jobs announced", || async {
                (persistence.announced() == ids.len()).then_some(())
            })
            .await;
            ids
        }
    };
    let claim = |max: usize| {
        let (persistence, worker_id) = (&persistence, &worker_id);
        async move {
            let claimed = persistence.claim_many(worker_id, max).await.expect("claim");
            claimed.into_iter().map(|job| job.id).collect::<Vec<_>>()
        }
    };

    let a = push_announced(0, 4).await;
    // The query's turn comes first: it takes the oldest, a[0], alone.
    assert_eq!(claim(4).await, vec![a[0].clone()]);
    // Another worker takes a[2] meanwhile.
    t.db.collection::<Document>(&config.collection)
        .update_one(
            doc! { "_id": a[2].as_str() },
            doc! {
                "$set": { "status": "running", "worker_id": "other#1" },
                "$inc": { "attempts": 1 },
            },
        )
        .await
        .expect("the other worker's claim");
    // One update for the four announced: a[0] is this worker's already and
    // a[2] the other's, so it gets a[1] and a[3], each once.
    assert_eq!(claim(4).await, vec![a[1].clone(), a[3].clone()]);
    for (id, worker) in [
        (&a[0], &worker_id[..]),
        (&a[1], &worker_id),
        (&a[2], "other#1"),
        (&a[3], &worker_id),
    ] {
        let stored = job(&t.db, &config, id).await;
        assert_eq!(stored.status, JobStatus::Running);
        assert_eq!(stored.attempts, 1, "{id} claimed once");
        assert_eq!(stored.worker_id.as_deref(), Some(worker));
    }
    assert_eq!(persistence.in_flight(), 3);
    assert_eq!(claim(4).await, Vec::<JobId>::new());

    // All still pending: all claimed by the one update, up to the batch.
    let b = push_announced(4, 7).await;
    assert_eq!(claim(2).await, b[..2].to_vec());
    assert_eq!(claim(2).await, b[2..].to_vec());
    assert_eq!(persistence.in_flight(), 6);
}

#[tokio::test]
async fn claimed_jobs_never_started_return_to_the_queue_uncounted() {
    let t = TestDb::new().await;
    let config = JobsConfig {
        poll_interval: Duration::from_secs(3600),
        ..fast_config()
    };
    create_indexes(&t.db, &config).await.expect("indexes");
    let mut persistence =
        MongoPersistence::new(&t.db, "email", config.clone()).expect("persistence");
    let worker = WorkerContext::new("stopping");
    persistence.register(&worker).await.expect("register");
    for n in 0..3 {
        queued(
            push(&t.db, &config, "email", &email(n), PushOptions::default())
                .await
                .expect("push"),
        );
    }
    eventually(WAIT, "the jobs announced", || async {
        (persistence.announced() == 3).then_some(())
    })
    .await;
    // The query's turn takes one; the next fetch, the other two at once.
    let started = persistence.fetch_next(&worker).await.expect("fetch");
    assert_eq!(started.len(), 1);
    let held = persistence.fetch_next(&worker).await.expect("fetch");
    assert_eq!(held.len(), 2);
    let held_ids: Vec<String> = held
        .iter()
        .filter_map(|task| task.task_id().map(|id| id.to_string()))
        .collect();

    // The worker stops before it starts them.
    let released = persistence
        .reenqueue_abandoned(held, &worker)
        .await
        .expect("release");
    assert_eq!(released, 2);
    assert_eq!(persistence.in_flight(), 1);
    for id in &held_ids {
        let stored = job(&t.db, &config, &JobId::from_stored(id.as_str())).await;
        assert_eq!(stored.status, JobStatus::Pending);
        assert_eq!(
            stored.attempts, 0,
            "an attempt never started is not counted"
        );
        assert_eq!(stored.lease_until, None);
    }
}

#[tokio::test]
async fn an_idempotency_key_admits_one_job_per_queue() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    create_indexes(&t.db, &config)
        .await
        .expect("creating the indexes again is a no-op");

    let first = push(
        &t.db,
        &config,
        "email",
        &email(1),
        PushOptions::idempotency_key("k"),
    )
    .await
    .expect("push");
    let second = push(
        &t.db,
        &config,
        "email",
        &email(2),
        PushOptions::idempotency_key("k"),
    )
    .await
    .expect("push the same key");
    assert!(matches!(first, Pushed::Queued(_)));
    assert_eq!(second, Pushed::Duplicate);
    assert_eq!(count(&t.db, &config, doc! { "queue": "email" }).await, 1);

    // Another queue, another key, or no key at all: new jobs.
    let other_queue = push(
        &t.db,
        &config,
        "sms",
        &email(3),
        PushOptions::idempotency_key("k"),
    )
    .await
    .expect("push");
    let other_key = push(
        &t.db,
        &config,
        "email",
        &email(4),
        PushOptions::idempotency_key("k2"),
    )
    .await
    .expect("push");
    let no_key_1 = push(&t.db, &config, "email", &email(5), PushOptions::default())
        .await
        .expect("push");
    let no_key_2 = push(&t.db, &config, "email", &email(5), PushOptions::default())
        .await
        .expect("push");
    for pushed in [other_queue, other_key, no_key_1, no_key_2] {
        assert!(matches!(pushed, Pushed::Queued(_)));
    }
    assert_eq!(count(&t.db, &config, doc! {}).await, 5);

    // A racing duplicate inside a transaction is an error the caller's
    // retry loop recognises.
    let race = JobError::IdempotencyRace {
        queue: "email".to_owned(),
        key: "k".to_owned(),
    };
    assert!(race.is_transient());
}

#[tokio::test]
async fn a_job_runs_and_becomes_done() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let id = queued(
        push(&t.db, &config, "email", &email(7), PushOptions::default())
            .await
            .expect("push"),
    );

    let recorder = Recorder::default();
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let worker = run_worker!(
        WorkerBuilder::new("done-worker")
            .backend(backend)
            .data(recorder.clone())
            .build(handle)
    );

    let done = eventually(WAIT, "the job to be done", || async {
        let stored = job(&t.db, &config, &id).await;
        (stored.status == JobStatus::Done).then_some(stored)
    })
    .await;
    worker.stop().await;

    assert_eq!(
        recorder.seen().jobs,
        vec![(id.to_string(), email(7))],
        "the handler got the typed job, once"
    );
    assert_eq!(done.attempts, 1);
    assert!(done.lease_until.is_none());
    assert!(done.last_error.is_none());
    assert!(
        done.worker_id
            .as_deref()
            .is_some_and(|w| w.starts_with("done-worker#"))
    );
    let done_at = done.done_at.expect("done_at");
    let expire_at = done.expire_at.expect("expire_at");
    let retention = chrono::Duration::from_std(config.done_retention).expect("retention");
    assert!((expire_at - done_at - retention).num_seconds().abs() <= 1);

    // The TTL index removes done jobs at `expire_at`.
    let indexes: Vec<_> = muster_worker::collection(&t.db, &config)
        .list_indexes()
        .await
        .expect("list indexes")
        .try_collect()
        .await
        .expect("indexes");
    let ttl = indexes
        .iter()
        .find(|index| index.keys == doc! { "expire_at": 1 })
        .expect("a TTL index on expire_at");
    assert_eq!(
        ttl.options.as_ref().and_then(|o| o.expire_after),
        Some(Duration::ZERO)
    );
}

#[tokio::test]
async fn jobs_pushed_through_the_apalis_sink_run_too() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let mut backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    backend.push(email(1)).await.expect("push through TaskSink");
    assert_eq!(count(&t.db, &config, doc! { "status": "pending" }).await, 1);

    let recorder = Recorder::default();
    let worker = run_worker!(
        WorkerBuilder::new("sink")
            .backend(backend)
            .data(recorder.clone())
            .build(handle)
    );
    eventually(WAIT, "the job to be done", || async {
        (count(&t.db, &config, doc! { "status": "done" }).await == 1).then_some(())
    })
    .await;
    worker.stop().await;
    assert_eq!(recorder.seen().jobs.len(), 1);
    assert_eq!(recorder.seen().jobs[0].1, email(1));
}

#[tokio::test]
async fn two_workers_never_run_the_same_job() {
    const JOBS: u32 = 200;
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    for n in 0..JOBS {
        let _ = queued(
            push(&t.db, &config, "email", &email(n), PushOptions::default())
                .await
                .expect("push"),
        );
    }

    let recorder = Recorder {
        pause: Duration::from_millis(2),
        ..Recorder::default()
    };
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let first = run_worker!(
        WorkerBuilder::new("first")
            .backend(backend.clone())
            .concurrency(8)
            .data(recorder.clone())
            .build(handle)
    );
    let second = run_worker!(
        WorkerBuilder::new("second")
            .backend(backend)
            .concurrency(8)
            .data(recorder.clone())
            .build(handle)
    );

    eventually(Duration::from_secs(40), "every job to be done", || async {
        (count(&t.db, &config, doc! { "status": "done" }).await == u64::from(JOBS)).then_some(())
    })
    .await;
    first.stop().await;
    second.stop().await;

    {
        let seen = recorder.seen();
        assert_eq!(seen.runs.len(), JOBS as usize, "every job ran");
        let twice: Vec<_> = seen.runs.iter().filter(|(_, at)| at.len() != 1).collect();
        assert!(twice.is_empty(), "jobs run more than once: {twice:?}");
        assert_eq!(seen.per_worker.values().sum::<u32>(), JOBS);
        eprintln!("jobs per worker: {:?}", seen.per_worker);
    }
    assert_eq!(
        count(&t.db, &config, doc! { "attempts": 1, "status": "done" }).await,
        u64::from(JOBS)
    );
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_until_it_succeeds() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let id = queued(
        push(&t.db, &config, "email", &email(1), PushOptions::default())
            .await
            .expect("push"),
    );

    let recorder = Recorder::failing(2);
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let worker = run_worker!(
        WorkerBuilder::new("retry")
            .backend(backend)
            .data(recorder.clone())
            .build(handle)
    );

    let done = eventually(WAIT, "the job to succeed", || async {
        let stored = job(&t.db, &config, &id).await;
        (stored.status == JobStatus::Done).then_some(stored)
    })
    .await;
    worker.stop().await;

    assert_eq!(done.attempts, 3);
    assert_eq!(done.last_error.as_deref(), Some("failure 2"));
    let at = recorder.runs_of(id.as_str());
    assert_eq!(at.len(), 3);
    // Backoff: the base after the first failure, twice that after the
    // second (less a little for BSON's millisecond precision).
    let slack = Duration::from_millis(2);
    assert!(
        at[1] - at[0] + slack >= config.backoff(1),
        "second attempt after {:?}",
        at[1] - at[0]
    );
    assert!(
        at[2] - at[1] + slack >= config.backoff(2),
        "third attempt after {:?}",
        at[2] - at[1]
    );
}

#[tokio::test]
async fn a_job_failing_every_attempt_ends_dead_with_its_error() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let id = queued(
        push(
            &t.db,
            &config,
            "email",
            &email(1),
            PushOptions {
                max_attempts: Some(3),
                ..PushOptions::default()
            },
        )
        .await
        .expect("push"),
    );

    let recorder = Recorder::failing(usize::MAX);
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let worker = run_worker!(
        WorkerBuilder::new("dead")
            .backend(backend)
            .data(recorder.clone())
            .build(handle)
    );

    let dead = eventually(WAIT, "the job to be dead", || async {
        let stored = job(&t.db, &config, &id).await;
        (stored.status == JobStatus::Dead).then_some(stored)
    })
    .await;
    worker.stop().await;

    assert_eq!(dead.attempts, 3);
    assert_eq!(recorder.runs_of(id.as_str()).len(), 3);
    assert_eq!(dead.last_error.as_deref(), Some("failure 3"));
    assert!(dead.done_at.is_some());
    assert!(dead.expire_at.is_none(), "dead jobs stay until deleted");
    assert!(dead.lease_until.is_none());
}

/// What monitoring sees: the observer hears each recorded outcome once,
/// and `queue_stats` counts the queue by state before and after.
#[tokio::test]
async fn outcomes_reach_the_observer_and_queue_stats_count_by_state() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let with_attempts = |max_attempts| PushOptions {
        max_attempts: Some(max_attempts),
        ..PushOptions::default()
    };
    // Fails once, then succeeds; fails its only attempt; not due for an
    // hour.
    let retried = queued(
        push(&t.db, &config, "email", &email(1), with_attempts(5))
            .await
            .expect("push"),
    );
    let dead = queued(
        push(&t.db, &config, "email", &email(2), with_attempts(1))
            .await
            .expect("push"),
    );
    let later = PushOptions {
        run_at: Some(Utc::now() + chrono::Duration::hours(1)),
        ..PushOptions::default()
    };
    queued(
        push(&t.db, &config, "email", &email(3), later)
            .await
            .expect("push"),
    );
    // Another queue's job counts for that queue only.
    queued(
        push(&t.db, &config, "other", &email(4), PushOptions::default())
            .await
            .expect("push"),
    );

    let before = queue_stats(&t.db, &config, "email", Utc::now())
        .await
        .expect("stats");
    assert_eq!(
        (before.due, before.scheduled, before.running, before.dead),
        (2, 1, 0, 0),
        "{before:?}"
    );
    assert!(before.oldest_due.is_some_and(|at| at <= Utc::now()));

    let heard = Arc::new(Mutex::new(Vec::new()));
    let persistence = MongoPersistence::new(&t.db, "email", config.clone())
        .expect("persistence")
        .on_settled({
            let heard = heard.clone();
            move |queue, settled| {
                heard
                    .lock()
                    .expect("lock")
                    .push((queue.to_owned(), settled));
            }
        });
    let worker = run_worker!(
        WorkerBuilder::new("observed")
            .backend(MongoBackend::<Email>::from_persistence(persistence))
            .data(Recorder::failing(1))
            .build(handle)
    );
    eventually(WAIT, "both due jobs to settle", || async {
        let retried = job(&t.db, &config, &retried).await;
        let dead = job(&t.db, &config, &dead).await;
        (retried.status == JobStatus::Done && dead.status == JobStatus::Dead).then_some(())
    })
    .await;
    worker.stop().await;

    let mut heard = heard.lock().expect("lock").clone();
    heard.sort_by_key(|(_, settled)| settled.as_str());
    let email = |settled| ("email".to_owned(), settled);
    assert_eq!(
        heard,
        [
            email(Settled::Dead),
            email(Settled::Retried),
            email(Settled::Succeeded)
        ]
    );
    let after = queue_stats(&t.db, &config, "email", Utc::now())
        .await
        .expect("stats");
    assert_eq!(
        after,
        QueueStats {
            due: 0,
            scheduled: 1,
            running: 0,
            dead: 1,
            oldest_due: None,
        }
    );
}

#[tokio::test]
async fn a_delayed_job_is_not_claimed_before_its_run_at() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let run_at = Utc::now() + chrono::Duration::milliseconds(1500);
    let delayed = queued(
        push(
            &t.db,
            &config,
            "email",
            &email(1),
            PushOptions {
                run_at: Some(run_at),
                ..PushOptions::default()
            },
        )
        .await
        .expect("push"),
    );
    let immediate = queued(
        push(&t.db, &config, "email", &email(2), PushOptions::default())
            .await
            .expect("push"),
    );

    let recorder = Recorder::default();
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let worker = run_worker!(
        WorkerBuilder::new("delay")
            .backend(backend)
            .data(recorder.clone())
            .build(handle)
    );

    // The worker is busy: the job pushed after the delayed one is done...
    eventually(WAIT, "the immediate job to be done", || async {
        (job(&t.db, &config, &immediate).await.status == JobStatus::Done).then_some(())
    })
    .await;
    // ...while the delayed one still waits, untouched.
    let waiting = job(&t.db, &config, &delayed).await;
    if Utc::now() < run_at {
        assert_eq!(waiting.status, JobStatus::Pending);
        assert_eq!(waiting.attempts, 0);
    }

    eventually(WAIT, "the delayed job to be done", || async {
        (job(&t.db, &config, &delayed).await.status == JobStatus::Done).then_some(())
    })
    .await;
    worker.stop().await;
    let started = recorder.seen().started[delayed.as_str()];
    // BSON keeps milliseconds: `run_at` as stored may be up to 1 ms earlier.
    assert!(
        started + chrono::Duration::milliseconds(1) >= run_at,
        "the delayed job ran at {started}, before {run_at}"
    );
}

#[tokio::test]
async fn a_job_whose_worker_died_runs_again_elsewhere() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let id = queued(
        push(&t.db, &config, "email", &email(1), PushOptions::default())
            .await
            .expect("push"),
    );

    // A worker claims the job through the persistence API, with a short
    // lease, and dies without finishing it or heartbeating.
    let crashed_config = JobsConfig {
        lease: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(100),
        ..config.clone()
    };
    let mut crashed = MongoPersistence::new(&t.db, "email", crashed_config).expect("persistence");
    let crashed_worker = WorkerContext::new("crashed");
    let claimed = crashed
        .fetch_next(&crashed_worker)
        .await
        .expect("claim through the persistence API");
    assert_eq!(claimed.len(), 1);
    let running = job(&t.db, &config, &id).await;
    assert_eq!(running.status, JobStatus::Running);
    assert_eq!(running.attempts, 1);
    let crashed_id = crashed.worker_id(&crashed_worker);
    assert_eq!(running.worker_id.as_deref(), Some(crashed_id.as_str()));
    drop(crashed);

    let recorder = Recorder::default();
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let worker = run_worker!(
        WorkerBuilder::new("survivor")
            .backend(backend)
            .data(recorder.clone())
            .build(handle)
    );

    let done = eventually(WAIT, "the abandoned job to run again", || async {
        let stored = job(&t.db, &config, &id).await;
        (stored.status == JobStatus::Done).then_some(stored)
    })
    .await;
    worker.stop().await;

    assert_eq!(done.attempts, 2);
    assert_eq!(recorder.runs_of(id.as_str()).len(), 1);
    assert!(
        done.worker_id
            .as_deref()
            .is_some_and(|w| w.starts_with("survivor#"))
    );
    assert!(
        done.last_error
            .as_deref()
            .is_some_and(|e| e.contains("lease expired")),
        "last_error: {:?}",
        done.last_error
    );
}

#[tokio::test]
async fn an_expired_lease_on_the_last_attempt_makes_the_job_dead() {
    let t = TestDb::new().await;
    let config = JobsConfig {
        lease: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(100),
        ..fast_config()
    };
    create_indexes(&t.db, &config).await.expect("indexes");
    let id = queued(
        push(
            &t.db,
            &config,
            "email",
            &email(1),
            PushOptions {
                max_attempts: Some(1),
                ..PushOptions::default()
            },
        )
        .await
        .expect("push"),
    );
    let crashed = MongoPersistence::new(&t.db, "email", config.clone()).expect("persistence");
    let claimed = crashed.claim("crashed#1").await.expect("claim");
    assert!(claimed.is_some());

    let recovered = eventually(WAIT, "the lease to expire", || async {
        let recovered = recover_expired_leases(&t.db, &config, None)
            .await
            .expect("sweep");
        (recovered.dead == 1).then_some(recovered)
    })
    .await;
    assert_eq!(recovered.requeued, 0);
    let dead = job(&t.db, &config, &id).await;
    assert_eq!(dead.status, JobStatus::Dead);
    assert!(dead.last_error.is_some_and(|e| e.contains("lease expired")));
}

#[tokio::test]
async fn a_heartbeat_keeps_a_long_job_to_its_worker() {
    let t = TestDb::new().await;
    let config = JobsConfig {
        lease: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(150),
        ..fast_config()
    };
    create_indexes(&t.db, &config).await.expect("indexes");
    let id = queued(
        push(&t.db, &config, "email", &email(1), PushOptions::default())
            .await
            .expect("push"),
    );
    let (release, gate) = watch::channel(false);
    let recorder = Recorder {
        gate: Some(gate),
        ..Recorder::default()
    };
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let first = run_worker!(
        WorkerBuilder::new("long-1")
            .backend(backend.clone())
            .data(recorder.clone())
            .build(handle)
    );
    let second = run_worker!(
        WorkerBuilder::new("long-2")
            .backend(backend)
            .data(recorder.clone())
            .build(handle)
    );

    // The job runs for several lease lengths; heartbeats renew its lease,
    // so the other worker never takes it.
    let created = job(&t.db, &config, &id).await.created_at;
    eventually(
        WAIT,
        "the lease to be renewed past three leases",
        || async {
            let stored = job(&t.db, &config, &id).await;
            let renewed = stored
                .lease_until
                .is_some_and(|until| until - created > chrono::Duration::milliseconds(1800));
            renewed.then_some(())
        },
    )
    .await;
    let _ = release.send(true);
    eventually(WAIT, "the job to be done", || async {
        (job(&t.db, &config, &id).await.status == JobStatus::Done).then_some(())
    })
    .await;
    first.stop().await;
    second.stop().await;
    assert_eq!(recorder.runs_of(id.as_str()).len(), 1, "the job ran once");
    assert_eq!(job(&t.db, &config, &id).await.attempts, 1);
}

#[tokio::test]
async fn a_payload_of_the_wrong_shape_is_buried_and_the_worker_goes_on() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let bad = queued(
        push(
            &t.db,
            &config,
            "email",
            "not an email",
            PushOptions::default(),
        )
        .await
        .expect("push"),
    );
    let good = queued(
        push(&t.db, &config, "email", &email(1), PushOptions::default())
            .await
            .expect("push"),
    );
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let worker = run_worker!(WorkerBuilder::new("strict").backend(backend).build(succeed));
    eventually(WAIT, "the good job to be done", || async {
        (job(&t.db, &config, &good).await.status == JobStatus::Done).then_some(())
    })
    .await;
    let buried = eventually(WAIT, "the bad job to be dead", || async {
        let stored = job(&t.db, &config, &bad).await;
        (stored.status == JobStatus::Dead).then_some(stored)
    })
    .await;
    worker.stop().await;
    assert!(
        buried
            .last_error
            .is_some_and(|e| e.contains("does not decode"))
    );
}

#[tokio::test]
async fn the_change_stream_wakes_an_idle_worker() {
    let t = TestDb::new().await;
    // Nothing but the change stream would wake the worker within the
    // test's deadline: polling and heartbeats are far apart.
    let config = JobsConfig {
        lease: Duration::from_secs(120),
        heartbeat_interval: Duration::from_secs(60),
        poll_interval: Duration::from_secs(60),
        ..fast_config()
    };
    create_indexes(&t.db, &config).await.expect("indexes");
    let first = queued(
        push(&t.db, &config, "email", &email(1), PushOptions::default())
            .await
            .expect("push"),
    );
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let worker = run_worker!(
        WorkerBuilder::new("watcher")
            .backend(backend)
            .build(succeed)
    );
    // The first job is claimed by the first fetch, after registration
    // opened the change stream.
    eventually(WAIT, "the first job to be done", || async {
        (job(&t.db, &config, &first).await.status == JobStatus::Done).then_some(())
    })
    .await;

    let second = queued(
        push(&t.db, &config, "email", &email(2), PushOptions::default())
            .await
            .expect("push"),
    );
    eventually(
        Duration::from_secs(10),
        "the idle worker to take the new job",
        || async { (job(&t.db, &config, &second).await.status == JobStatus::Done).then_some(()) },
    )
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn a_configuration_that_would_misbehave_is_refused() {
    let t = TestDb::new().await;
    let config = JobsConfig {
        lease: Duration::from_secs(1),
        heartbeat_interval: Duration::from_secs(2),
        ..JobsConfig::default()
    };
    assert!(matches!(
        MongoBackend::<Email>::new(&t.db, "email", config),
        Err(JobError::InvalidConfig(_))
    ));
    assert!(matches!(
        MongoBackend::<Email>::new(&t.db, "", JobsConfig::default()),
        Err(JobError::InvalidConfig(_))
    ));
    let claims_nothing = JobsConfig {
        claim_batch: 0,
        ..JobsConfig::default()
    };
    assert!(matches!(
        MongoBackend::<Email>::new(&t.db, "email", claims_nothing),
        Err(JobError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn a_racing_push_in_a_transaction_is_a_transient_error() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let key = PushOptions::idempotency_key("race");

    // Two transactions push the same key; the second insert meets the
    // first's uncommitted one.
    let mut one = t.client.start_session().await.expect("session");
    let mut two = t.client.start_session().await.expect("session");
    one.start_transaction().await.expect("start");
    two.start_transaction().await.expect("start");
    let first = push_in(&t.db, &mut one, &config, "email", &email(1), key.clone())
        .await
        .expect("first push");
    assert!(matches!(first, Pushed::Queued(_)));
    let second = push_in(&t.db, &mut two, &config, "email", &email(2), key.clone()).await;
    let err = second.expect_err("the second push conflicts");
    assert!(err.is_transient(), "a retry loop retries it: {err}");
    let _ = two.abort_transaction().await;
    one.commit_transaction().await.expect("commit");

    // A transaction whose snapshot predates the other's commit.
    let mut three = t.client.start_session().await.expect("session");
    three.start_transaction().await.expect("start");
    let _ = count_in(&t.db, &config, &mut three).await;
    let mut four = t.client.start_session().await.expect("session");
    four.start_transaction().await.expect("start");
    let fourth = push_in(
        &t.db,
        &mut four,
        &config,
        "email",
        &email(4),
        PushOptions::idempotency_key("late"),
    )
    .await
    .expect("push");
    assert!(matches!(fourth, Pushed::Queued(_)));
    four.commit_transaction().await.expect("commit");
    let third = push_in(
        &t.db,
        &mut three,
        &config,
        "email",
        &email(3),
        PushOptions::idempotency_key("late"),
    )
    .await;
    match third {
        Ok(pushed) => {
            // The server read the committed job: a duplicate.
            assert_eq!(pushed, Pushed::Duplicate);
            three.commit_transaction().await.expect("commit");
        }
        Err(err) => {
            assert!(err.is_transient(), "a retry loop retries it: {err}");
            let _ = three.abort_transaction().await;
        }
    }

    // The retry, in a new transaction, finds the committed job.
    two.start_transaction().await.expect("start");
    let retried = push_in(&t.db, &mut two, &config, "email", &email(2), key)
        .await
        .expect("retried push");
    assert_eq!(retried, Pushed::Duplicate);
    two.commit_transaction().await.expect("commit");
    assert_eq!(count(&t.db, &config, doc! {}).await, 2);
}

async fn count_in(
    db: &mongodb::Database,
    config: &JobsConfig,
    session: &mut mongodb::ClientSession,
) -> u64 {
    muster_worker::collection(db, config)
        .count_documents(doc! {})
        .session(session)
        .await
        .expect("count in the transaction")
}

async fn abort(_job: Email) -> Result<(), BoxDynError> {
    Err(AbortError::new("no such mailbox").into())
}

#[tokio::test]
async fn an_aborted_job_is_dead_at_once() {
    let t = TestDb::new().await;
    let config = fast_config();
    create_indexes(&t.db, &config).await.expect("indexes");
    let id = queued(
        push(&t.db, &config, "email", &email(1), PushOptions::default())
            .await
            .expect("push"),
    );
    let backend = MongoBackend::<Email>::new(&t.db, "email", config.clone()).expect("backend");
    let worker = run_worker!(WorkerBuilder::new("abort").backend(backend).build(abort));
    let dead = eventually(WAIT, "the job to be dead", || async {
        let stored = job(&t.db, &config, &id).await;
        (stored.status == JobStatus::Dead).then_some(stored)
    })
    .await;
    worker.stop().await;
    assert_eq!(dead.attempts, 1, "no retry after an abort");
    assert!(
        dead.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no such mailbox")),
        "last_error: {:?}",
        dead.last_error
    );
}
