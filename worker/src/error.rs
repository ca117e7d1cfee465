//! The crate's one error type, and what the driver's errors mean to it.

use mongodb::error::{Error as MongoError, ErrorKind, TRANSIENT_TRANSACTION_ERROR, WriteFailure};

/// MongoDB's code for a unique-index violation.
pub const DUPLICATE_KEY: i32 = 11000;

/// What can go wrong when pushing, claiming or settling jobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The database refused or could not be reached. Inside a
    /// transaction, check [`JobError::is_transient`] (the driver's
    /// `TransientTransactionError` label) to decide whether to retry.
    #[error("job store: {0}")]
    Database(#[from] MongoError),

    /// The job could not be turned into BSON.
    #[error("cannot encode the job as BSON: {0}")]
    Encode(#[from] bson::ser::Error),

    /// A stored job could not be read back.
    #[error("cannot decode a stored job: {0}")]
    Decode(#[from] bson::de::Error),

    /// `push_in` found no job with this idempotency key in the caller's
    /// transaction, but a concurrent transaction inserted one before the
    /// insert reached the unique index. The server has aborted the
    /// caller's transaction: abort it and run the whole transaction again;
    /// the retry sees the committed job and gets [`Pushed::Duplicate`].
    /// [`JobError::is_transient`] is true for this error.
    ///
    /// [`Pushed::Duplicate`]: crate::Pushed::Duplicate
    #[error(
        "a concurrent transaction pushed a job with idempotency key {key:?} on queue {queue:?}; \
         this transaction was aborted and should be retried"
    )]
    IdempotencyRace {
        /// The queue pushed to.
        queue: String,
        /// The contested idempotency key.
        key: String,
    },

    /// A [`JobsConfig`](crate::JobsConfig) that would make the backend
    /// misbehave.
    #[error("invalid jobs configuration: {0}")]
    InvalidConfig(String),
}

impl JobError {
    /// True when running the caller's transaction again may succeed: the
    /// driver labelled the error `TransientTransactionError` (a write
    /// conflict, an election), or a concurrent push won an idempotency key
    /// ([`JobError::IdempotencyRace`]).
    pub fn is_transient(&self) -> bool {
        match self {
            JobError::Database(err) => err.contains_label(TRANSIENT_TRANSACTION_ERROR),
            JobError::IdempotencyRace { .. } => true,
            _ => false,
        }
    }

    /// The driver error inside, if that is what this is.
    pub fn as_mongo(&self) -> Option<&MongoError> {
        match self {
            JobError::Database(err) => Some(err),
            _ => None,
        }
    }
}

/// The server error code carried by a write, command, insert-many or bulk
/// error. The driver keeps its own `code()` private. Public because every
/// user of the driver needs it; Muster's store uses this one.
pub fn error_code(err: &MongoError) -> Option<i32> {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => Some(e.code),
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .and_then(|errors| errors.first())
            .map(|e| e.code)
            .or_else(|| e.write_concern_error.as_ref().map(|e| e.code)),
        ErrorKind::BulkWrite(e) => e
            .write_errors
            .iter()
            .min_by_key(|(index, _)| **index)
            .map(|(_, e)| e.code)
            .or_else(|| e.write_concern_errors.first().map(|e| e.code)),
        _ => None,
    }
}

/// Whether the error is a unique-index violation.
pub fn is_duplicate_key(err: &MongoError) -> bool {
    error_code(err) == Some(DUPLICATE_KEY)
}
