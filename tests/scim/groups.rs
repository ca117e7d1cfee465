use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{scim, setup};

fn member_ids(body: &Value) -> HashSet<String> {
    body["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .filter_map(|m| m["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn create_with_members_and_read_both_ways() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let a = scim.create_user("a@example.com").await;
    let created = scim
        .post("/Groups", &json!({ "displayName": "Ops", "externalId": "g-1", "members": [{ "value": a, "type": "User" }] }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.header("location"),
        created.body["meta"]["location"].as_str()
    );
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    assert_eq!(member_ids(&created.body), HashSet::from([a.clone()]));
    let gid = created.id();
    let user = scim.get(&format!("/Users/{a}")).await;
    assert_eq!(user.body["groups"][0]["value"], gid.as_str());
    let by_external = scim.filter("Groups", "externalId eq \"g-1\"").await;
    assert_eq!(by_external.body["totalResults"], 1);
}

#[tokio::test]
async fn unknown_members_are_left_out_and_the_rest_applies() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let a = scim.create_user("a@example.com").await;
    let gid = scim
        .post(
            "/Groups",
            &json!({ "displayName": "G", "members": [{ "value": a }] }),
        )
        .await
        .id();
    let stranger = "01a00000-0000-7000-8000-000000000000";
    let answer = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([
                { "op": "replace", "path": "displayName", "value": "Renamed" },
                { "op": "add", "path": "members", "value": [{ "value": stranger }] }
            ]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let group = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(group.body["displayName"], "Renamed");
    assert_eq!(
        member_ids(&group.body),
        HashSet::from([a.clone()]),
        "the stranger is left out"
    );

    // Another organization's user is unknown here too.
    let other = app.with_org_owner().await;
    let theirs = super::scim(&app, &other).create_user("t@example.com").await;
    let answer = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([{ "op": "add", "path": "members", "value": [{ "value": theirs }] }]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let group = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(member_ids(&group.body), HashSet::from([a]));
}

#[tokio::test]
async fn removing_a_member_that_is_not_there_is_no_target() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let gid = scim
        .post("/Groups", &json!({ "displayName": "G" }))
        .await
        .id();
    let answer = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([{ "op": "remove", "path": "members[value eq \"nobody\"]" }]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.scim_type(), Some("noTarget"));
}

#[tokio::test]
async fn concurrent_patches_lose_no_member() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(scim.create_user(&format!("c{i}@example.com")).await);
    }
    let gid = scim
        .post("/Groups", &json!({ "displayName": "Busy" }))
        .await
        .id();
    let path = format!("/Groups/{gid}");
    let patches = users.iter().map(|user| {
        scim.patch_ops(
            &path,
            json!([{ "op": "add", "path": "members", "value": [{ "value": user }] }]),
        )
    });
    for answer in futures::future::join_all(patches).await {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let group = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(
        member_ids(&group.body),
        users.into_iter().collect::<HashSet<_>>()
    );
    assert_eq!(group.body["meta"]["version"], "W/\"9\"");
}

#[tokio::test]
async fn large_groups_work_and_deleting_users_leaves_no_dangling_members() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let mut users = Vec::new();
    for i in 0..60 {
        users.push(scim.create_user(&format!("m{i}@example.com")).await);
    }
    let members: Vec<Value> = users.iter().map(|id| json!({ "value": id })).collect();
    let gid = scim
        .post(
            "/Groups",
            &json!({ "displayName": "Everyone", "members": members }),
        )
        .await
        .id();
    let group = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(member_ids(&group.body).len(), 60);

    assert_eq!(
        scim.delete(&format!("/Users/{}", users[0])).await.status,
        StatusCode::NO_CONTENT
    );
    let group = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(member_ids(&group.body).len(), 59);
    assert!(!member_ids(&group.body).contains(&users[0]));
}

#[tokio::test]
async fn group_etags_and_deletion() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let gid = scim
        .post("/Groups", &json!({ "displayName": "E" }))
        .await
        .id();
    let stale = scim
        .send(
            app.client
                .put(app.url(&format!("/scim/v2/Groups/{gid}")))
                .header("If-Match", "W/\"5\"")
                .header("content-type", "application/scim+json")
                .body(json!({ "displayName": "F" }).to_string()),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let unchanged = scim
        .send(
            app.client
                .get(app.url(&format!("/scim/v2/Groups/{gid}")))
                .header("If-None-Match", "W/\"1\""),
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        scim.delete(&format!("/Groups/{gid}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        scim.delete(&format!("/Groups/{gid}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_muster_extension_is_read_only() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let gid = scim
        .post("/Groups", &json!({ "displayName": "Mapped" }))
        .await
        .id();
    let urn = "urn:muster:params:scim:schemas:extension:muster:2.0:Group";
    let refused = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([{ "op": "add", "path": format!("{urn}:role"), "value": "owner" }]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.scim_type(), Some("mutability"));
    let refused = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([{ "op": "add", "path": urn, "value": { "role": "owner" } }]),
        )
        .await;
    assert_eq!(
        refused.scim_type(),
        Some("mutability"),
        "no path to the owner role through SCIM"
    );
    // An empty extension object may be assigned and removed.
    let assigned = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([{ "op": "add", "path": urn, "value": { "schemas": [urn] } }]),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK);
    assert_eq!(assigned.body[urn], json!({}));
    let removed = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([{ "op": "remove", "path": urn }]),
        )
        .await;
    assert!(removed.body.get(urn).is_none());
}
