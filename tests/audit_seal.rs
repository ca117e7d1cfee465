//! Tamper evidence of the audit log against the real server: the sealer is
//! called directly with the time it should believe, and the database is
//! tampered with directly, as an intruder with write access would.

use crate::common::{OrgFixture, TestApp};

use bson::{Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use muster::app::audit_seals::{self, SETTLE_MARGIN};
use muster::domain::{Actor, AuditEvent, RequestOrigin, Role, Target};
use reqwest::StatusCode;
use serde_json::Value;

/// A time at which every event written so far is settled.
fn settled() -> DateTime<Utc> {
    Utc::now() + SETTLE_MARGIN + chrono::Duration::seconds(1)
}

async fn record(app: &TestApp, org: &OrgFixture, action: &'static str) {
    let event = AuditEvent {
        org_id: Some(org.org_id.clone()),
        at: Utc::now(),
        actor: Actor::System,
        actor_label: None,
        action,
        target: Target {
            kind: "organization",
            id: org.org_id.to_string(),
        },
        before: None,
        after: Some(serde_json::json!({ "note": action, "n": 1 })),
        origin: RequestOrigin {
            ip: Some("192.0.2.1".to_owned()),
            user_agent: Some("test".to_owned()),
            request_id: None,
        },
    };
    let store = &app.store;
    muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
        muster::store::audit::record(store, session, &event).await
    })
    .expect("an event");
}

async fn seal(app: &TestApp, org: &OrgFixture, now: DateTime<Utc>) -> audit_seals::Sealed {
    audit_seals::seal_org(&app.store, &org.org_id, now)
        .await
        .expect("seal")
}

async fn verify_as(app: &TestApp, org: &OrgFixture, token: &str) -> (StatusCode, Value) {
    let response = app
        .get(&format!("/api/v1/orgs/{}/audit-events/verify", org.org_id))
        .bearer_auth(token)
        .send()
        .await
        .expect("verify");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

async fn verify(app: &TestApp, org: &OrgFixture) -> Value {
    let (status, body) = verify_as(app, org, &org.owner.token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn events(app: &TestApp) -> mongodb::Collection<Document> {
    app.store.database().collection("audit_events")
}

/// The organization's event ids, in id order.
async fn event_ids(app: &TestApp, org: &OrgFixture) -> Vec<String> {
    let docs: Vec<Document> = events(app)
        .find(doc! { "org_id": org.org_id.as_str() })
        .sort(doc! { "_id": 1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    docs.iter()
        .map(|doc| doc.get_str("_id").expect("a string id").to_owned())
        .collect()
}

async fn event_count(app: &TestApp, org: &OrgFixture) -> u64 {
    muster::store::audit::count_for_org(&app.store, org.org_id.as_str())
        .await
        .expect("count")
}

/// An organization with a few events, all sealed.
async fn sealed_org(app: &TestApp) -> OrgFixture {
    let org = app.with_org_owner().await;
    for action in ["test.one", "test.two", "test.three"] {
        record(app, &org, action).await;
    }
    let sealed = seal(app, &org, settled()).await;
    assert_eq!(sealed.seals, 1);
    assert_eq!(sealed.events, event_count(app, &org).await);
    org
}

fn assert_difference(body: &Value, kind: &str, id: &str, reason: &str) {
    assert_eq!(body["intact"], false, "{body}");
    let difference = &body["first_difference"];
    assert_eq!(difference["kind"], kind, "{body}");
    assert_eq!(difference["id"], id, "{body}");
    let said = difference["reason"].as_str().expect("a reason");
    assert!(said.contains(reason), "{body}");
}

#[tokio::test]
async fn sealed_events_verify_intact_and_recent_ones_wait_for_the_margin() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    record(&app, &org, "test.one").await;
    let written = event_count(&app, &org).await;

    // Too recent: a transaction with an earlier id may still commit.
    assert_eq!(seal(&app, &org, Utc::now()).await.seals, 0);
    let body = verify(&app, &org).await;
    assert_eq!(body["intact"], true, "{body}");
    assert_eq!(body["seals"], 0);
    assert_eq!(body["unsealed_events"], written);
    assert!(body["first_difference"].is_null());

    let sealed = seal(&app, &org, settled()).await;
    assert_eq!((sealed.seals, sealed.events), (1, written));
    let body = verify(&app, &org).await;
    assert_eq!(body["intact"], true, "{body}");
    assert_eq!(body["seals"], 1);
    assert_eq!(body["sealed_events"], written);
    assert_eq!(body["unsealed_events"], 0);
    assert!(body["head_digest"].as_str().is_some_and(|d| d.len() == 64));

    // Nothing new: nothing to seal.
    assert_eq!(seal(&app, &org, settled()).await.seals, 0);

    // Owners and admins only.
    let viewer = app.with_member(&org, Role::Viewer).await;
    let (status, _) = verify_as(&app, &org, &viewer.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = app.with_member(&org, Role::Admin).await;
    let (status, body) = verify_as(&app, &org, &admin.token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_event_altered_after_sealing_is_named() {
    let app = TestApp::spawn().await;
    let org = sealed_org(&app).await;
    let ids = event_ids(&app, &org).await;
    let victim = &ids[ids.len() / 2];
    events(&app)
        .update_one(
            doc! { "_id": victim },
            doc! { "$set": { "ip": "203.0.113.9" } },
        )
        .await
        .expect("tamper");
    let body = verify(&app, &org).await;
    assert_difference(&body, "event", victim, "altered");

    // A change of type alone is a change too.
    let app = TestApp::spawn().await;
    let org = sealed_org(&app).await;
    let ids = event_ids(&app, &org).await;
    let victim = ids.last().expect("an event");
    events(&app)
        .update_one(doc! { "_id": victim }, doc! { "$set": { "after.n": 1.0 } })
        .await
        .expect("tamper");
    let body = verify(&app, &org).await;
    assert_difference(&body, "event", victim, "altered");
}

#[tokio::test]
async fn an_event_deleted_after_sealing_is_named() {
    let app = TestApp::spawn().await;
    let org = sealed_org(&app).await;
    let ids = event_ids(&app, &org).await;
    let victim = &ids[1];
    events(&app)
        .delete_one(doc! { "_id": victim })
        .await
        .expect("tamper");
    let body = verify(&app, &org).await;
    assert_difference(&body, "event", victim, "deleted");
}

#[tokio::test]
async fn an_event_inserted_into_a_sealed_range_is_named() {
    let app = TestApp::spawn().await;
    let org = sealed_org(&app).await;
    let ids = event_ids(&app, &org).await;
    let mut forged = events(&app)
        .find_one(doc! { "_id": &ids[0] })
        .await
        .expect("find")
        .expect("the first event");
    // Sorts between the first and the second sealed event.
    let forged_id = format!("{}0", ids[0]);
    forged.insert("_id", &forged_id);
    forged.insert("action", "member.removed");
    events(&app).insert_one(forged).await.expect("tamper");
    let body = verify(&app, &org).await;
    assert_difference(&body, "event", &forged_id, "inserted");
}

#[tokio::test]
async fn a_seal_altered_or_removed_is_named() {
    let app = TestApp::spawn().await;
    let org = sealed_org(&app).await;
    record(&app, &org, "test.four").await;
    assert_eq!(seal(&app, &org, settled()).await.seals, 1);
    let seals = app.store.database().collection::<Document>("audit_seals");
    let second = seals
        .find_one(doc! { "org_id": org.org_id.as_str(), "seq": 2_i64 })
        .await
        .expect("find")
        .expect("the second seal");
    let second_id = second.get_str("_id").expect("an id").to_owned();

    // Rewriting an event and its hash in the seal breaks the seal's digest.
    seals
        .update_one(
            doc! { "_id": &second_id },
            doc! { "$set": { "events.0.hash": "0".repeat(64) } },
        )
        .await
        .expect("tamper");
    let body = verify(&app, &org).await;
    assert_difference(&body, "seal", &second_id, "altered");

    // Removing the first seal breaks the chain at the second.
    seals
        .replace_one(doc! { "_id": &second_id }, second)
        .await
        .expect("restore");
    assert_eq!(verify(&app, &org).await["intact"], true);
    seals
        .delete_one(doc! { "org_id": org.org_id.as_str(), "seq": 1_i64 })
        .await
        .expect("tamper");
    let body = verify(&app, &org).await;
    assert_difference(&body, "seal", &second_id, "missing");
}

#[tokio::test]
async fn two_sealers_at_once_extend_one_chain() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let mut seals = 0;
    for round in 0..5 {
        record(&app, &org, "test.round").await;
        let now = settled();
        let (first, second) = tokio::join!(seal(&app, &org, now), seal(&app, &org, now));
        seals += first.seals + second.seals;
        assert_eq!(seals, round + 1, "each round adds exactly one seal");
    }
    let body = verify(&app, &org).await;
    assert_eq!(body["intact"], true, "{body}");
    assert_eq!(body["seals"], seals);
    assert_eq!(body["sealed_events"], event_count(&app, &org).await);
}

#[tokio::test]
async fn events_written_while_sealing_are_sealed_next_time() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    for _ in 0..5 {
        record(&app, &org, "test.before").await;
    }
    // Everything before `cutoff` has committed; what is written from now
    // on is still settling for a sealer that believes it is `cutoff` +
    // the margin.
    let cutoff = Utc::now();
    let writers = async {
        for _ in 0..20 {
            record(&app, &org, "test.during").await;
        }
    };
    let sealer = seal(&app, &org, cutoff + SETTLE_MARGIN);
    let ((), first) = tokio::join!(writers, sealer);
    assert!(first.seals >= 1);

    let second = seal(&app, &org, settled()).await;
    assert!(second.seals >= 1, "the events written meanwhile are sealed");
    let body = verify(&app, &org).await;
    assert_eq!(body["intact"], true, "{body}");
    assert_eq!(body["unsealed_events"], 0);
    assert_eq!(body["sealed_events"], event_count(&app, &org).await);
    assert_eq!(body["seals"], first.seals + second.seals);
}

#[tokio::test]
async fn retention_purges_whole_sealed_batches_and_the_chain_still_verifies() {
    let app = TestApp::spawn().await;
    let org = sealed_org(&app).await;
    let first_batch = event_ids(&app, &org).await;
    record(&app, &org, "test.later").await;
    assert_eq!(seal(&app, &org, settled()).await.seals, 1);
    let later = event_ids(&app, &org).await.len() - first_batch.len();

    // As if retention ended between the two batches: only the first goes.
    let seals = app.store.database().collection::<Document>("audit_seals");
    let second = seals
        .find_one(doc! { "org_id": org.org_id.as_str(), "seq": 2_i64 })
        .await
        .expect("find")
        .expect("the second seal");
    let before = second
        .get_datetime("newest_at")
        .expect("newest_at")
        .to_chrono();
    let purged = audit_seals::purge(&app.store, &org.org_id, before, Utc::now())
        .await
        .expect("purge");
    assert_eq!(purged, first_batch.len() as u64);
    assert_eq!(event_count(&app, &org).await, later as u64);
    let body = verify(&app, &org).await;
    assert_eq!(body["intact"], true, "{body}");
    assert_eq!(body["seals"], 2);
    assert_eq!(body["sealed_events"], later);

    // A purged batch's range stays sealed: nothing may reappear in it.
    let mut forged = events(&app)
        .find_one(doc! { "org_id": org.org_id.as_str() })
        .await
        .expect("find")
        .expect("an event");
    forged.insert("_id", &first_batch[0]);
    events(&app).insert_one(forged).await.expect("tamper");
    let body = verify(&app, &org).await;
    assert_difference(&body, "event", &first_batch[0], "inserted");
}

#[tokio::test]
async fn the_hourly_purge_keeps_the_purged_seals_a_prefix_of_the_chain() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    assert_eq!(seal(&app, &org, settled()).await.seals, 1);
    // Back-dated events sealed after recent ones: their batch is past
    // retention, the one before it is not.
    let old = Utc::now() - chrono::Duration::days(400);
    for action in ["test.old", "test.older"] {
        let event = AuditEvent {
            org_id: Some(org.org_id.clone()),
            at: old,
            actor: Actor::System,
            actor_label: None,
            action,
            target: Target {
                kind: "organization",
                id: org.org_id.to_string(),
            },
            before: None,
            after: None,
            origin: RequestOrigin::default(),
        };
        let store = &app.store;
        muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
            muster::store::audit::record(store, session, &event).await
        })
        .expect("an old event");
    }
    assert_eq!(seal(&app, &org, settled()).await.seals, 1);
    let written = event_count(&app, &org).await;

    let purged = muster::jobs::purge_audit(&app.state).await.expect("purge");
    assert_eq!(purged, 0, "a batch waits for the batches before it");
    assert_eq!(event_count(&app, &org).await, written);
    let body = verify(&app, &org).await;
    assert_eq!(body["intact"], true, "{body}");
    assert_eq!(body["sealed_events"], written);
}

#[tokio::test]
async fn the_minutely_run_seals_every_organization() {
    let app = TestApp::spawn().await;
    let first = app.with_org_owner().await;
    let second = app.with_org_owner().await;
    record(&app, &second, "test.one").await;
    let sealed = audit_seals::seal_all(&app.store, settled())
        .await
        .expect("seal");
    assert_eq!(sealed.seals, 2);
    for org in [&first, &second] {
        let body = verify(&app, org).await;
        assert_eq!(body["intact"], true, "{body}");
        assert_eq!(body["seals"], 1);
        assert_eq!(body["unsealed_events"], 0);
        assert_eq!(body["sealed_events"], event_count(&app, org).await);
    }
}
