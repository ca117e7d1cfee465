//! The lookups identity providers make use indexes, never a collection
//! scan.

use bson::{Bson, Document, doc};
use muster::protocol::filter::parse_filter;
use muster::protocol::schema::ResourceKind;
use muster::store::scim_query::compile;

use super::setup;

fn stages(plan: &Bson, found: &mut Vec<String>) {
    match plan {
        Bson::Document(doc) => {
            if let Ok(stage) = doc.get_str("stage") {
                found.push(stage.to_owned());
            }
            for (_, value) in doc {
                stages(value, found);
            }
        }
        Bson::Array(items) => items.iter().for_each(|item| stages(item, found)),
        _ => {}
    }
}

async fn winning_stages(
    store: &muster::store::Store,
    collection: &str,
    org_id: &str,
    filter: &str,
    kind: ResourceKind,
) -> Vec<String> {
    let mut query = compile(kind, &parse_filter(filter).expect("parses")).expect("compiles");
    query.insert("org_id", org_id);
    let explained: Document = store
        .database()
        .run_command(doc! {
            "explain": { "find": collection, "filter": query },
            "verbosity": "queryPlanner",
        })
        .await
        .expect("explain");
    let winning = explained
        .get_document("queryPlanner")
        .and_then(|planner| {
            planner
                .get("winningPlan")
                .ok_or(bson::document::ValueAccessError::NotPresent)
        })
        .cloned()
        .unwrap_or_else(|_| panic!("no winning plan in {explained}"));
    let mut found = Vec::new();
    stages(&winning, &mut found);
    found
}

#[tokio::test]
async fn idp_lookups_use_indexes() {
    let (app, org) = setup().await;
    let org_id = org.org_id.as_str();
    for (filter, kind, collection) in [
        (
            "userName eq \"bjensen@example.com\"",
            ResourceKind::User,
            "members",
        ),
        ("externalId eq \"00u1\"", ResourceKind::User, "members"),
        (
            "emails.value eq \"bjensen@example.com\"",
            ResourceKind::User,
            "members",
        ),
        ("displayName eq \"Babs\"", ResourceKind::User, "members"),
        (
            "meta.lastModified gt \"2024-01-01T00:00:00Z\"",
            ResourceKind::User,
            "members",
        ),
        (
            "displayName eq \"Engineering\"",
            ResourceKind::Group,
            "groups",
        ),
        ("externalId eq \"g-1\"", ResourceKind::Group, "groups"),
    ] {
        let stages = winning_stages(&app.store, collection, org_id, filter, kind).await;
        assert!(stages.iter().any(|s| s == "IXSCAN"), "{filter}: {stages:?}");
        assert!(
            !stages.iter().any(|s| s == "COLLSCAN"),
            "{filter}: {stages:?}"
        );
    }
}
