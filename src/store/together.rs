//! Inserts into several collections in one round trip. A create that
//! writes a member, its activation invitation, its mail job and its audit
//! events made one round trip per collection; MongoDB 8's `bulkWrite`
//! takes them all at once, inside the caller's transaction.

use bson::Document;
use mongodb::ClientSession;
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::options::InsertOneModel;

use super::{Inserted, Store, inserted, is_duplicate_key};

/// How far the server takes `bulkWrite` in a transaction, learned once per
/// process and shared by every clone of the store.
#[derive(Debug, Default)]
pub(super) struct BulkWriteSupport {
    known: tokio::sync::OnceCell<Support>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    /// MongoDB 8 and later.
    Everywhere,
    /// Not as a transaction's first command: the development database
    /// refuses the read concern that command carries.
    NotFirst,
    /// Servers before MongoDB 8 lack the command.
    Never,
}

/// The outcome of [`insert_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum InsertedAll {
    Yes,
    /// The insert at this position was refused by a unique index; those
    /// after it were not made, and the server has aborted the transaction:
    /// return an error from the transaction body.
    AlreadyExists {
        at: usize,
    },
}

/// Makes `inserts` in order inside the caller's transaction: in one round
/// trip on MongoDB 8 and later (two on the development database, whose
/// first is an insert of the first document), and one per run of inserts
/// into the same collection before MongoDB 8.
pub async fn insert_all(
    store: &Store,
    session: &mut ClientSession,
    mut inserts: Vec<InsertOneModel>,
) -> Result<InsertedAll, MongoError> {
    if inserts.is_empty() {
        return Ok(InsertedAll::Yes);
    }
    match support(store).await {
        Support::Everywhere => bulk_write(store, session, inserts, 0).await,
        Support::NotFirst => {
            // Whether or not the transaction has run a command yet, an
            // insert may be its first.
            let rest = inserts.split_off(1);
            match insert_by_collection(store, session, inserts).await? {
                InsertedAll::Yes if rest.is_empty() => Ok(InsertedAll::Yes),
                InsertedAll::Yes => bulk_write(store, session, rest, 1).await,
                refused => Ok(refused),
            }
        }
        Support::Never => insert_by_collection(store, session, inserts).await,
    }
}

/// `inserts` with one `bulkWrite`; positions are answered counting from
/// `first`.
async fn bulk_write(
    store: &Store,
    session: &mut ClientSession,
    inserts: Vec<InsertOneModel>,
    first: usize,
) -> Result<InsertedAll, MongoError> {
    match store
        .client()
        .bulk_write(inserts)
        .ordered(true)
        .session(&mut *session)
        .await
    {
        Ok(_) => Ok(InsertedAll::Yes),
        Err(err) => match err.kind.as_ref() {
            ErrorKind::BulkWrite(bulk) if is_duplicate_key(&err) => {
                let at = bulk.write_errors.keys().min().copied().unwrap_or(0);
                Ok(InsertedAll::AlreadyExists { at: first + at })
            }
            _ => Err(err),
        },
    }
}

/// [`insert_all`] without `bulkWrite`: one `insert_many` per run of
/// inserts into the same collection.
async fn insert_by_collection(
    store: &Store,
    session: &mut ClientSession,
    inserts: Vec<InsertOneModel>,
) -> Result<InsertedAll, MongoError> {
    let mut first = 0;
    for run in inserts.chunk_by(|a, b| a.namespace == b.namespace) {
        let namespace = &run[0].namespace;
        let collection = store
            .client()
            .database(&namespace.db)
            .collection::<Document>(&namespace.coll);
        let result = collection
            .insert_many(run.iter().map(|insert| &insert.document))
            .session(&mut *session)
            .await;
        let failed_at = match &result {
            Err(err) => match err.kind.as_ref() {
                ErrorKind::InsertMany(many) => many
                    .write_errors
                    .as_ref()
                    .and_then(|errors| errors.first())
                    .map(|error| error.index),
                _ => None,
            },
            Ok(_) => None,
        };
        if inserted(result)? == Inserted::AlreadyExists {
            return Ok(InsertedAll::AlreadyExists {
                at: first + failed_at.unwrap_or(0),
            });
        }
        first += run.len();
    }
    Ok(InsertedAll::Yes)
}

/// What the server takes, asked once with inserts in transactions that
/// are aborted; while the server cannot be reached, not settled.
async fn support(store: &Store) -> Support {
    let known = store.bulk_write.known.get_or_try_init(|| async {
        if probe(store, false).await? {
            return Ok::<_, MongoError>(Support::Everywhere);
        }
        let support = if probe(store, true).await? {
            Support::NotFirst
        } else {
            Support::Never
        };
        tracing::info!(?support, "bulkWrite not usable everywhere in transactions");
        Ok(support)
    });
    // Unsettled, the way every server takes.
    known.await.copied().unwrap_or(Support::Never)
}

/// Whether a `bulkWrite` in a transaction is taken, after a read when
/// `after_read`. An error when the server gave no answer.
async fn probe(store: &Store, after_read: bool) -> Result<bool, MongoError> {
    let probes = store.database().collection::<Document>("bulk_write_probe");
    let mut transaction = store.start_transaction().await?;
    transaction.begin_attempt().await?;
    let session = transaction.session();
    let outcome = async {
        if after_read {
            probes
                .find_one(bson::doc! {})
                .session(&mut *session)
                .await?;
        }
        let insert = probes.insert_one_model(bson::doc! {})?;
        store
            .client()
            .bulk_write([insert])
            .session(&mut *session)
            .await
    }
    .await;
    let _ = session.abort_transaction().await;
    match outcome {
        Ok(_) => Ok(true),
        Err(err)
            if matches!(
                err.kind.as_ref(),
                ErrorKind::Command(_)
                    | ErrorKind::BulkWrite(_)
                    | ErrorKind::IncompatibleServer { .. }
            ) =>
        {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

impl Store {
    /// This store as one on a server before MongoDB 8, for testing the way
    /// those are written to.
    #[doc(hidden)]
    pub fn without_bulk_write(self) -> Store {
        Store {
            bulk_write: std::sync::Arc::new(BulkWriteSupport {
                known: tokio::sync::OnceCell::new_with(Some(Support::Never)),
            }),
            ..self
        }
    }
}
