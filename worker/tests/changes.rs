//! `next_change`: a change stream that does not ask the server again at
//! once when it answers an empty batch early (the development database
//! does on every write anywhere), and still delivers every change.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bson::{Document, doc};
use common::{TestDb, mongodb_uri};
use mongodb::Client;
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::ClientOptions;
use muster_worker::{EMPTY_BATCH_PAUSE, next_change};

#[tokio::test]
async fn a_change_stream_asks_at_most_once_per_pause_and_misses_nothing() {
    let test = TestDb::new().await;
    // The stream's own client, counting the getMores it sends: the
    // server's counters would include every other test's.
    let get_mores = Arc::new(AtomicUsize::new(0));
    let mut options = ClientOptions::parse(mongodb_uri()).await.unwrap();
    let counted = get_mores.clone();
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event
            && started.command_name == "getMore"
        {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    }));
    let watcher = Client::with_options(options).unwrap();
    let watched = watcher
        .database(test.db.name())
        .collection::<Document>("watched");
    let mut stream = watched
        .watch()
        .pipeline([doc! { "$match": { "operationType": "insert" } }])
        .await
        .unwrap();
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let change = next_change(&mut stream).await.unwrap().unwrap();
            seen.push(change.full_document.unwrap().get_i32("n").unwrap());
        }
        seen
    });

    // Writes elsewhere, each of which the development database answers
    // a waiting getMore for; then the changes the stream is for.
    let elsewhere = test.db.collection::<Document>("elsewhere");
    elsewhere
        .insert_one(doc! { "_id": 1, "n": 0 })
        .await
        .unwrap();
    for _ in 0..200 {
        elsewhere
            .update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } })
            .await
            .unwrap();
    }
    let others = test.db.collection::<Document>("watched");
    for n in 1..=3 {
        others.insert_one(doc! { "n": n }).await.unwrap();
    }
    let seen = reader.await.unwrap();
    let elapsed = started.elapsed();

    assert_eq!(seen, vec![1, 2, 3]);
    // Empty answers are a pause apart, so one per pause (and the one
    // under way); and at most one more per change the stream brings.
    let allowed = (elapsed.as_millis() / EMPTY_BATCH_PAUSE.as_millis()) as usize + 1 + 3;
    let asked = get_mores.load(Ordering::Relaxed);
    assert!(
        asked <= allowed,
        "{asked} getMores in {elapsed:?} for 201 writes elsewhere: at most {allowed} expected"
    );
}
