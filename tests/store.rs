//! The store's own guarantees against the real database: idempotent
//! migrations, the error-code helper, and transactions that retry
//! conflicts and roll back on errors.

use crate::common;

use bson::{Document, doc};
use common::{fresh_database_name, mongodb_uri, test_settings};
use futures::TryStreamExt;
use mongodb::Collection;
use mongodb::error::Error as MongoError;
use muster::store::{DUPLICATE_KEY, Store, error_code, is_duplicate_key};

async fn store() -> Store {
    let settings = test_settings(&mongodb_uri(), &fresh_database_name());
    Store::connect(&settings.mongodb).await.expect("connect")
}

#[tokio::test]
async fn migrations_are_idempotent_and_create_the_unique_indexes() {
    let store = store().await;
    store.migrate().await.expect("first migration");
    store.migrate().await.expect("second migration");
    let indexes: Vec<_> = store
        .database()
        .collection::<Document>("accounts")
        .list_indexes()
        .await
        .expect("list")
        .try_collect()
        .await
        .expect("collect");
    assert!(indexes.iter().any(|index| {
        index.keys == doc! { "email": 1 }
            && index.options.as_ref().and_then(|o| o.unique) == Some(true)
    }));
    store.database().drop().await.expect("drop");
}

#[tokio::test]
async fn error_code_reads_write_insert_many_and_command_errors() {
    let store = store().await;
    store.migrate().await.expect("migrate");
    let things = store.database().collection::<Document>("things");
    things.insert_one(doc! { "_id": 1 }).await.expect("insert");

    let write = things
        .insert_one(doc! { "_id": 1 })
        .await
        .expect_err("duplicate");
    assert_eq!(error_code(&write), Some(DUPLICATE_KEY));
    assert!(is_duplicate_key(&write));

    let many = things
        .insert_many([doc! { "_id": 2 }, doc! { "_id": 1 }])
        .await
        .expect_err("duplicate in a batch");
    assert_eq!(error_code(&many), Some(DUPLICATE_KEY));

    let command = store
        .database()
        .run_command(doc! { "noSuchCommand": 1 })
        .await
        .expect_err("unknown command");
    assert!(error_code(&command).is_some_and(|code| code != DUPLICATE_KEY));
    assert!(!is_duplicate_key(&command));
    store.database().drop().await.expect("drop");
}

#[tokio::test]
async fn a_failed_transaction_body_writes_nothing() {
    let store = store().await;
    let things = store.database().collection::<Document>("things");
    things
        .insert_one(doc! { "_id": "seed" })
        .await
        .expect("create the collection");
    let result = muster::in_transaction!(store, |session| -> Result<(), MongoError> {
        things
            .insert_one(doc! { "_id": "inside" })
            .session(&mut *session)
            .await?;
        Err(MongoError::custom("a rule said no"))
    });
    assert!(result.is_err());
    let count = things
        .count_documents(doc! { "_id": "inside" })
        .await
        .expect("count");
    assert_eq!(count, 0);
    store.database().drop().await.expect("drop");
}

#[tokio::test]
async fn concurrent_read_modify_write_transactions_lose_no_update() {
    let store = store().await;
    let counters = store.database().collection::<Document>("counters");
    counters
        .insert_one(doc! { "_id": "c", "n": 0_i64 })
        .await
        .expect("seed");
    let workers = 8;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let counters = store.database().collection::<Document>("counters");
                muster::in_transaction!(store, |session| -> Result<(), MongoError> {
                    let current = counters
                        .find_one(doc! { "_id": "c" })
                        .session(&mut *session)
                        .await?
                        .and_then(|d| d.get_i64("n").ok())
                        .unwrap_or_default();
                    counters
                        .update_one(doc! { "_id": "c" }, doc! { "$set": { "n": current + 1 } })
                        .session(&mut *session)
                        .await?;
                    Ok(())
                })
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("join")
            .expect("transaction commits after retries");
    }
    let n = counters
        .find_one(doc! { "_id": "c" })
        .await
        .expect("read")
        .and_then(|d| d.get_i64("n").ok());
    assert_eq!(n, Some(workers));
    store.database().drop().await.expect("drop");
}

/// Inserts into several collections in one transaction, in order: with
/// `bulkWrite` (one round trip) and the way servers before MongoDB 8 are
/// written to (one per collection); a unique index's refusal names the
/// insert it refused and leaves nothing written.
#[tokio::test]
async fn inserts_into_several_collections_commit_together_or_not_at_all() {
    use muster::store::{InsertedAll, insert_all};

    for store in [store().await, store().await.without_bulk_write()] {
        let things = store.database().collection::<Document>("things");
        let others = store.database().collection::<Document>("others");
        things
            .insert_one(doc! { "_id": "taken" })
            .await
            .expect("seed");
        let inserts = |ids: &[(&Collection<Document>, &str)]| {
            ids.iter()
                .map(|(collection, id)| {
                    collection
                        .insert_one_model(doc! { "_id": *id })
                        .expect("model")
                })
                .collect::<Vec<_>>()
        };

        let mut outcome = None;
        let refused = muster::in_transaction!(store, |session| -> Result<(), MongoError> {
            let inserted = insert_all(
                &store,
                session,
                inserts(&[
                    (&things, "a"),
                    (&things, "b"),
                    (&others, "c"),
                    (&things, "taken"),
                ]),
            )
            .await?;
            outcome = Some(inserted);
            // As a use case does: the refusal ended the transaction.
            Err(MongoError::custom("refused"))
        });
        assert!(refused.is_err());
        assert_eq!(outcome, Some(InsertedAll::AlreadyExists { at: 3 }));
        assert_eq!(things.count_documents(doc! {}).await.expect("count"), 1);
        assert_eq!(others.count_documents(doc! {}).await.expect("count"), 0);

        let made = muster::in_transaction!(store, |session| -> Result<InsertedAll, MongoError> {
            insert_all(
                &store,
                session,
                inserts(&[
                    (&things, "a"),
                    (&others, "c"),
                    (&others, "d"),
                    (&things, "b"),
                ]),
            )
            .await
        });
        assert_eq!(made.expect("inserted"), InsertedAll::Yes);
        assert_eq!(things.count_documents(doc! {}).await.expect("count"), 3);
        assert_eq!(others.count_documents(doc! {}).await.expect("count"), 2);
        store.database().drop().await.expect("drop");
    }
}
