//! MongoDB: the connection, indexes, one module per collection, and
//! transactions. The only place that builds BSON.

pub mod accounts;
pub mod audit;
pub mod audit_seals;
mod docs;
pub mod groups;
pub mod invitations;
pub mod members;
pub mod mfa_challenges;
pub mod orgs;
pub mod projects;
pub mod scim_query;
mod together;
pub mod token_cache;
pub mod tokens;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bson::Document;
use bson::doc;
use mongodb::error::{
    Error as MongoError, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT,
};
use mongodb::options::{ClientOptions, ReadConcern, TransactionOptions, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database};

use crate::config::MongoSettings;
use crate::measure::{self, TransactionOutcome, TransactionRetry};

/// The one helper that reads a server error code from the driver's errors
/// (write, command, insert-many, bulk), shared with the job backend.
pub use muster_worker::{DUPLICATE_KEY, error_code, is_duplicate_key};

pub use together::{InsertedAll, insert_all};

/// An error type that transactions can run with: it can hold a driver error
/// and say whether it is one, so the helper can retry transient failures
/// while domain errors abort at once.
pub trait TxError: From<MongoError> {
    fn as_mongo(&self) -> Option<&MongoError>;
}

impl TxError for MongoError {
    fn as_mongo(&self) -> Option<&MongoError> {
        Some(self)
    }
}

/// How long a transaction keeps retrying transient failures (write
/// conflicts under contention, elections) before its error is returned.
const TRANSACTION_RETRY_BUDGET: Duration = Duration::from_secs(10);
const MAX_COMMIT_ATTEMPTS: u32 = 4;

fn backoff(attempt: u32) -> Duration {
    // 2, 4, 8 ... 128 ms, with jitter so that conflicting writers do not
    // collide again in lockstep.
    let base = 1u64 << attempt.min(7);
    let jitter = rand::random::<u64>() % (base / 2 + 1);
    Duration::from_millis(base + jitter)
}

#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    db: Database,
    /// Shared by every clone, so that a write through any of them forgets
    /// what it changes.
    token_cache: std::sync::Arc<token_cache::TokenCache>,
    bulk_write: Arc<together::BulkWriteSupport>,
}

impl Store {
    /// Builds a client; connects lazily, so an unreachable server is
    /// reported by the first operation (and by `/readyz`), not here.
    pub async fn connect(settings: &MongoSettings) -> Result<Store, MongoError> {
        let mut options = ClientOptions::parse(&settings.uri).await?;
        options.app_name.get_or_insert_with(|| "muster".to_owned());
        options.server_selection_timeout =
            Some(Duration::from_millis(settings.server_selection_timeout_ms));
        // The driver's default (10 s) let /readyz stay 503 for about 12 s
        // after the database came back.
        options.heartbeat_freq = Some(Duration::from_millis(settings.heartbeat_ms));
        options.write_concern = Some(WriteConcern::majority());
        let client = Client::with_options(options)?;
        let db = client.database(&settings.database);
        Ok(Store {
            client,
            db,
            token_cache: Default::default(),
            bulk_write: Default::default(),
        })
    }

    /// Bearer tokens' callers, cached (off until configured).
    pub fn token_cache(&self) -> &token_cache::TokenCache {
        &self.token_cache
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn ping(&self) -> Result<(), MongoError> {
        self.db.run_command(doc! { "ping": 1 }).await.map(|_| ())
    }

    /// Creates every collection's indexes. Idempotent: creating an index
    /// that exists with the same definition is a no-op.
    pub async fn migrate(&self) -> Result<(), MongoError> {
        orgs::create_indexes(self).await?;
        accounts::create_indexes(self).await?;
        members::create_indexes(self).await?;
        groups::create_indexes(self).await?;
        tokens::create_indexes(self).await?;
        mfa_challenges::create_indexes(self).await?;
        projects::create_indexes(self).await?;
        invitations::create_indexes(self).await?;
        muster_worker::create_indexes(&self.db, &muster_worker::JobsConfig::default())
            .await
            .map_err(|err| match err {
                muster_worker::JobError::Database(err) => err,
                other => MongoError::custom(other),
            })?;
        audit::create_indexes(self).await?;
        audit_seals::create_indexes(self).await?;
        Ok(())
    }

    /// Starts a session for `in_transaction!`, which is how transactions
    /// are written.
    pub async fn start_transaction(&self) -> Result<Transaction, MongoError> {
        let session = self
            .client
            .start_session()
            .await
            .inspect_err(|_| measure::transaction(TransactionOutcome::Failed))?;
        Ok(Transaction {
            session,
            attempt: 0,
            started: std::time::Instant::now(),
            written: CommitLog::default(),
        })
    }
}

/// Whether the error says no server could be selected: the database is
/// unreachable.
pub fn is_unreachable(err: &MongoError) -> bool {
    matches!(
        err.kind.as_ref(),
        mongodb::error::ErrorKind::ServerSelection { .. }
    )
}

/// A session running one logical transaction, attempt after attempt.
/// Driven by `in_transaction!`; its methods hold the retry policy.
pub struct Transaction {
    session: ClientSession,
    attempt: u32,
    started: std::time::Instant,
    /// What the current attempt wrote that is counted once it commits.
    written: CommitLog,
}

tokio::task_local! {
    /// The log of the transaction attempt running in this task:
    /// `in_transaction!` scopes its body in it, so that the store functions
    /// the body calls can note what they wrote without a parameter.
    static WRITTEN: CommitLog;
}

/// The audit actions a transaction attempt wrote: counted
/// (`measure::audit_committed`) when it commits, forgotten when it is
/// retried or aborted, so a use case's outcome is counted once, where it
/// concludes, whichever face called it.
#[derive(Clone, Default)]
pub struct CommitLog(Arc<Mutex<Vec<&'static str>>>);

impl CommitLog {
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Runs a transaction attempt's body with its log (for `in_transaction!`).
#[doc(hidden)]
pub async fn with_commit_log<F: std::future::Future>(log: CommitLog, body: F) -> F::Output {
    WRITTEN.scope(log, body).await
}

/// Notes audit actions the running transaction attempt wrote; outside a
/// transaction there is no commit to wait for, and nothing is noted.
pub(crate) fn note_written(actions: impl IntoIterator<Item = &'static str>) {
    let _ = WRITTEN.try_with(|log| {
        log.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(actions)
    });
}

/// What `Transaction::finish` decided.
pub enum Step<T, E> {
    Done(Result<T, E>),
    /// A transient failure: run the body again.
    Retry,
}

impl Transaction {
    /// Starts the next attempt with majority write concern and snapshot
    /// reads.
    pub async fn begin_attempt(&mut self) -> Result<(), MongoError> {
        self.attempt += 1;
        self.written.take();
        let options = TransactionOptions::builder()
            .write_concern(WriteConcern::majority())
            .read_concern(ReadConcern::snapshot())
            .build();
        self.session
            .start_transaction()
            .with_options(options)
            .await
            .inspect_err(|_| measure::transaction(TransactionOutcome::Failed))
    }

    /// The current attempt's log, for `in_transaction!` to scope the body
    /// in.
    #[doc(hidden)]
    pub fn commit_log(&self) -> CommitLog {
        self.written.clone()
    }

    pub fn session(&mut self) -> &mut ClientSession {
        &mut self.session
    }

    /// Commits after a successful body, aborts after a failed one.
    /// Transient failures (write conflicts, elections) ask for another
    /// attempt after a short backoff; an unknown commit result retries the
    /// commit. Both are bounded, after which the error is returned. Any
    /// other error is returned as is.
    pub async fn finish<T, E: TxError>(&mut self, result: Result<T, E>) -> Step<T, E> {
        // No server to be found is an outage, not contention: another
        // attempt would wait out the selection timeout again, and the
        // client is better told at once (503) to come back.
        let unreachable = match &result {
            Err(err) => err.as_mongo().is_some_and(is_unreachable),
            Ok(_) => false,
        };
        let retry_allowed = self.started.elapsed() < TRANSACTION_RETRY_BUDGET && !unreachable;
        match result {
            Ok(value) => match commit_with_retry(&mut self.session).await {
                Ok(()) => {
                    measure::transaction(TransactionOutcome::Committed);
                    for action in self.written.take() {
                        measure::audit_committed(action);
                    }
                    Step::Done(Ok(value))
                }
                Err(err) if err.contains_label(TRANSIENT_TRANSACTION_ERROR) && retry_allowed => {
                    measure::transaction_retry(TransactionRetry::Transient);
                    tokio::time::sleep(backoff(self.attempt)).await;
                    Step::Retry
                }
                Err(err) => {
                    measure::transaction(TransactionOutcome::Failed);
                    Step::Done(Err(err.into()))
                }
            },
            Err(err) => {
                // Aborting can fail when the server is gone; the
                // transaction then dies with the session anyway.
                let _ = self.session.abort_transaction().await;
                let transient = err
                    .as_mongo()
                    .is_some_and(|e| e.contains_label(TRANSIENT_TRANSACTION_ERROR));
                if transient && retry_allowed {
                    measure::transaction_retry(TransactionRetry::Transient);
                    tokio::time::sleep(backoff(self.attempt)).await;
                    Step::Retry
                } else {
                    measure::transaction(if err.as_mongo().is_some() {
                        TransactionOutcome::Failed
                    } else {
                        TransactionOutcome::Aborted
                    });
                    Step::Done(Err(err))
                }
            }
        }
    }
}

/// Runs a block in a MongoDB transaction and commits it, retrying
/// transient failures (see `Transaction::finish`):
///
/// ```ignore
/// let id = in_transaction!(store, |session| -> Result<OrgId, AppError> {
///     store::orgs::insert(store, session, &org).await?;
///     Ok(org.id.clone())
/// })?;
/// ```
///
/// A macro rather than a function taking a closure: the body is an async
/// block at the call site, so its future is `Send` whenever what it touches
/// is, which closures borrowing the session cannot yet promise.
#[macro_export]
macro_rules! in_transaction {
    ($store:expr, |$session:ident| -> $ret:ty $body:block) => {{
        let result: $ret = match $store.start_transaction().await {
            Err(err) => Err(err.into()),
            Ok(mut transaction) => loop {
                if let Err(err) = transaction.begin_attempt().await {
                    break Err(err.into());
                }
                let attempt: $ret = {
                    let written = transaction.commit_log();
                    let $session = transaction.session();
                    $crate::store::with_commit_log(written, async { $body }).await
                };
                match transaction.finish(attempt).await {
                    $crate::store::Step::Done(result) => break result,
                    $crate::store::Step::Retry => continue,
                }
            },
        };
        result
    }};
}

async fn commit_with_retry(session: &mut ClientSession) -> Result<(), MongoError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match session.commit_transaction().await {
            Err(err)
                if err.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                    && attempt < MAX_COMMIT_ATTEMPTS =>
            {
                measure::transaction_retry(TransactionRetry::UnknownCommit);
                tokio::time::sleep(backoff(attempt)).await;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) >= Duration::from_millis(2));
        assert!(backoff(1) <= Duration::from_millis(3));
        assert!(backoff(30) >= Duration::from_millis(128));
        assert!(backoff(30) <= Duration::from_millis(192));
    }
}

/// The result of inserting into a collection with a unique index. Inside a
/// transaction, `AlreadyExists` means the server has aborted it: return an
/// error from the transaction body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Inserted {
    Yes,
    AlreadyExists,
}

fn inserted<T>(result: Result<T, MongoError>) -> Result<Inserted, MongoError> {
    match result {
        Ok(_) => Ok(Inserted::Yes),
        Err(err) if is_duplicate_key(&err) => Ok(Inserted::AlreadyExists),
        Err(err) => Err(err),
    }
}

/// The outcome of a write command sent with `run_command`, which, unlike
/// the driver's own writes, answers `ok` with the statements' errors in
/// the reply: the first of them becomes the error.
pub(crate) fn write_command_outcome(reply: &Document) -> Result<(), MongoError> {
    let first_error = |key: &str| match reply.get(key) {
        Some(bson::Bson::Array(errors)) => errors.first().cloned(),
        Some(bson::Bson::Document(error)) => Some(bson::Bson::Document(error.clone())),
        _ => None,
    };
    match first_error("writeErrors").or_else(|| first_error("writeConcernError")) {
        Some(error) => Err(MongoError::custom(format!(
            "a write command failed: {error}"
        ))),
        None => Ok(()),
    }
}

/// One page of `collection` in `_id` order after the id `after`, at most
/// `limit` documents, and whether more follow (one more is read to know).
/// Ids are UUIDv7, so id order is creation order: the cursor pages of the
/// management API.
pub(crate) async fn cursor_page<T>(
    collection: &Collection<T>,
    mut filter: Document,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<T>, bool), MongoError>
where
    T: serde::de::DeserializeOwned + Send + Sync,
{
    use futures::TryStreamExt;
    if let Some(after) = after {
        filter.insert("_id", bson::doc! { "$gt": after });
    }
    let mut docs: Vec<T> = collection
        .find(filter)
        .sort(bson::doc! { "_id": 1 })
        .limit(i64::from(limit) + 1)
        .await?
        .try_collect()
        .await?;
    let more = docs.len() > limit as usize;
    docs.truncate(limit as usize);
    Ok((docs, more))
}

/// Runs a driver action with the session when there is one, so that the
/// same read serves inside and outside transactions.
macro_rules! with_session {
    ($action:expr, $session:expr) => {
        match $session {
            Some(session) => $action.session(session).await,
            None => $action.await,
        }
    };
}
pub(crate) use with_session;

/// One page of an organization's documents matching `filter`, with the
/// total count.
async fn page<T>(
    collection: &mongodb::Collection<T>,
    org_id: &crate::domain::OrgId,
    mut filter: bson::Document,
    sort: bson::Document,
    skip: u64,
    limit: i64,
) -> Result<(Vec<T>, u64), MongoError>
where
    T: serde::de::DeserializeOwned + Send + Sync,
{
    use futures::TryStreamExt;
    filter.insert("org_id", org_id.as_str());
    if limit == 0 {
        return Ok((Vec::new(), collection.count_documents(filter).await?));
    }
    let docs: Vec<T> = collection
        .find(filter.clone())
        .sort(sort)
        .skip(skip)
        .limit(limit)
        .await?
        .try_collect()
        .await?;
    let total = total_of(collection, filter, skip, limit, docs.len()).await?;
    Ok((docs, total))
}

/// How many documents match `filter`, given that a page of `limit` from
/// `skip` found `found` of them. A first page that is not full is the
/// whole answer: no count needed. That is every lookup an identity
/// provider makes before a create.
async fn total_of<T: Send + Sync>(
    collection: &mongodb::Collection<T>,
    filter: bson::Document,
    skip: u64,
    limit: i64,
    found: usize,
) -> Result<u64, MongoError> {
    if skip == 0 && (found as u64) < limit.unsigned_abs() {
        Ok(found as u64)
    } else {
        collection.count_documents(filter).await
    }
}

/// The first of `candidates` (each a tag and a filter) that matches a
/// document other than `except`: uniqueness checks that name the taken
/// attribute. Point lookups one by one, never one `$or`, which a planner
/// may run as a scan.
async fn first_taken<T>(
    store: &Store,
    mut session: Option<&mut ClientSession>,
    collection: &str,
    candidates: Vec<(T, bson::Document)>,
    except: Option<&str>,
) -> Result<Option<T>, MongoError> {
    let documents = store.database().collection::<bson::Document>(collection);
    for (taken, mut filter) in candidates {
        if let Some(except) = except {
            filter.insert("_id", doc! { "$ne": except });
        }
        let other = with_session!(
            documents.find_one(filter).projection(doc! { "_id": 1 }),
            session.as_deref_mut()
        )?;
        if other.is_some() {
            return Ok(Some(taken));
        }
    }
    Ok(None)
}

fn index(keys: bson::Document, unique: bool) -> mongodb::IndexModel {
    mongodb::IndexModel::builder()
        .keys(keys)
        .options(
            mongodb::options::IndexOptions::builder()
                .unique(unique.then_some(true))
                .build(),
        )
        .build()
}
