//! The store's own guarantees against the real database: idempotent
//! migrations, the error-code helper, and transactions that retry
//! conflicts and roll back on errors.

use crate::common;

use bson::{Document, doc};
use common::{fresh_database_name, mongodb_uri, test_settings};
use futures::TryStreamExt;
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
