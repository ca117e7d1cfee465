use muster::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{scim, setup};

fn bjensen() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen@example.com",
        "externalId": "00u1",
        "password": "t1meMa$heen",
        "name": { "givenName": "Barbara", "familyName": "Jensen" },
        "displayName": "Babs Jensen",
        "emails": [{ "value": "bjensen@example.com", "type": "work", "primary": true }],
        "active": true,
    })
}

#[tokio::test]
async fn create_read_delete() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let created = scim.post("/Users", &bjensen()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let location = created.header("location").expect("Location").to_owned();
    assert_eq!(created.body["meta"]["location"], location.as_str());
    assert!(location.starts_with("http"), "absolute: {location}");
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert!(created.body["meta"]["created"].is_string());
    assert!(created.body["meta"]["lastModified"].is_string());
    assert_eq!(
        created.header("etag"),
        created.body["meta"]["version"].as_str()
    );
    assert!(
        created.body.get("password").is_none(),
        "password is never returned"
    );
    assert_eq!(created.body["active"], true);
    let id = created.id();

    let read = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["userName"], "bjensen@example.com");
    assert_eq!(read.body["name"]["givenName"], "Barbara");
    assert!(read.body.get("password").is_none());

    let deleted = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        scim.delete(&format!("/Users/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn ids_that_are_not_ours_are_404() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    for id in ["nope", "00000000-0000-0000-0000-000000000000", "%24ne"] {
        let answer = scim.get(&format!("/Users/{id}")).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(answer.body["status"], "404");
    }
    // Another organization's user is not ours either.
    let other = app.with_org_owner().await;
    let theirs = super::scim(&app, &other)
        .create_user("theirs@example.com")
        .await;
    assert_eq!(
        scim.get(&format!("/Users/{theirs}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        scim.delete(&format!("/Users/{theirs}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        scim.patch_ops(
            &format!("/Users/{theirs}"),
            json!([{ "op": "replace", "path": "active", "value": false }])
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn user_name_is_unique_case_insensitively_and_external_id_exactly() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    assert_eq!(
        scim.post("/Users", &bjensen()).await.status,
        StatusCode::CREATED
    );

    let mut same_name = bjensen();
    same_name["userName"] = json!("BJENSEN@example.com");
    same_name["externalId"] = json!("00u2");
    let conflict = scim.post("/Users", &same_name).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.scim_type(), Some("uniqueness"));
    assert_eq!(conflict.body["status"], "409");
    // The unique index refuses it; the answer still names the attribute.
    assert!(
        conflict.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("userName"))
    );

    let mut same_external = bjensen();
    same_external["userName"] = json!("someone.else@example.com");
    let conflict = scim.post("/Users", &same_external).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert!(
        conflict.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("externalId"))
    );

    // externalId is caseExact: another case is another id.
    let mut other_case = bjensen();
    other_case["userName"] = json!("third@example.com");
    other_case["externalId"] = json!("00U1");
    other_case["emails"] = json!([{ "value": "third@example.com" }]);
    assert_eq!(
        scim.post("/Users", &other_case).await.status,
        StatusCode::CREATED
    );
    let list = scim.get("/Users?count=0").await;
    assert_eq!(list.body["totalResults"], 3, "the owner and two users");
}

#[tokio::test]
async fn etags_guard_writes_and_spare_reads() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let created = scim.post("/Users", &bjensen()).await;
    let id = created.id();
    let etag = created.header("etag").expect("ETag").to_owned();
    assert_eq!(etag, "W/\"1\"");

    let unchanged = scim
        .send(
            app.client
                .get(app.url(&format!("/scim/v2/Users/{id}")))
                .header("If-None-Match", &etag),
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);

    let stale = scim
        .send(
            app.client
                .patch(app.url(&format!("/scim/v2/Users/{id}")))
                .header("If-Match", "W/\"7\"")
                .header("content-type", "application/scim+json")
                .body(
                    json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{ "op": "replace", "path": "displayName", "value": "X" }] })
                    .to_string(),
                ),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.body["status"], "412");

    let fresh = scim
        .send(
            app.client
                .put(app.url(&format!("/scim/v2/Users/{id}")))
                .header("If-Match", &etag)
                .header("content-type", "application/scim+json")
                .body(bjensen().to_string()),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(fresh.header("etag"), Some("W/\"2\""));
    assert_eq!(fresh.body["meta"]["version"], "W/\"2\"");

    let stale_delete = scim
        .send(
            app.client
                .delete(app.url(&format!("/scim/v2/Users/{id}")))
                .header("If-Match", &etag),
        )
        .await;
    assert_eq!(stale_delete.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn put_replaces_the_profile() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let id = scim.post("/Users", &bjensen()).await.id();
    let replacement = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen@example.com",
        "name": { "givenName": "Babs" },
        "title": "Tour Guide",
        "active": true,
    });
    let put = scim.put(&format!("/Users/{id}"), &replacement).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["title"], "Tour Guide");
    assert!(
        put.body.get("displayName").is_none(),
        "PUT clears what it omits"
    );
    assert!(put.body["name"].get("familyName").is_none());
    assert!(put.body.get("externalId").is_none());
}

#[tokio::test]
async fn deactivation_keeps_the_user_listable_and_stops_their_tokens() {
    let (app, org) = setup().await;
    let member = app.with_member(&org, Role::Contributor).await;
    let scim = scim(&app, &org);
    let found = scim
        .filter("Users", &format!("userName eq \"{}\"", member.email))
        .await;
    assert_eq!(found.body["totalResults"], 1);
    let id = found.body["Resources"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let me = |token: String| {
        let app = &app;
        async move {
            app.get("/api/v1/me")
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
                .status()
        }
    };
    assert_eq!(me(member.token.clone()).await, StatusCode::OK);

    let off = scim
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": false } }]),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(off.body["active"], false);
    assert_eq!(me(member.token.clone()).await, StatusCode::UNAUTHORIZED);

    let listed = scim.filter("Users", "active eq false").await;
    assert_eq!(listed.body["totalResults"], 1);
    assert_eq!(listed.body["Resources"][0]["id"], id.as_str());

    let on = scim
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": true } }]),
        )
        .await;
    assert_eq!(on.body["active"], true);
    assert_eq!(me(member.token.clone()).await, StatusCode::OK);
}

#[tokio::test]
async fn an_existing_account_is_not_linked_until_its_person_accepts() {
    let (app, org) = setup().await;
    // The owner of another organization, pushed into this one by its IdP.
    let other = app.with_org_owner().await;
    let scim = scim(&app, &org);
    let created = scim
        .post(
            "/Users",
            &json!({ "userName": other.owner.email.to_uppercase(), "emails": [{ "value": other.owner.email }] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let linked = muster::store::members::find_by_account(
        &app.store,
        None,
        &org.org_id,
        &other.owner.account_id,
    )
    .await
    .expect("read");
    assert!(linked.is_none(), "only the person links their account");
    let id = muster::domain::MemberId::parse(&created.id()).expect("id");
    let member = muster::store::members::get_user(&app.store, None, &org.org_id, &id)
        .await
        .expect("read")
        .expect("the member");
    assert_eq!(member.member.account_id, None);
    assert_eq!(member.member.status, muster::domain::MemberStatus::Pending);
}

#[tokio::test]
async fn scim_cannot_remove_or_deactivate_the_last_owner() {
    let (app, org) = setup().await;
    // Even a token with authority over owners.
    let scim = super::owner_authorized_scim(&app, &org).await;
    let owner = org.owner.member_id.as_str();
    let off = scim
        .patch_ops(
            &format!("/Users/{owner}"),
            json!([{ "op": "replace", "path": "active", "value": false }]),
        )
        .await;
    assert_eq!(off.status, StatusCode::CONFLICT, "{}", off.body);
    assert!(
        off.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("owner"))
    );
    let delete = scim.delete(&format!("/Users/{owner}")).await;
    assert_eq!(delete.status, StatusCode::CONFLICT);
    let still = scim.get(&format!("/Users/{owner}")).await;
    assert_eq!(still.body["active"], true);

    // With a second owner, the first may go.
    app.with_member(&org, Role::Owner).await;
    let delete = scim.delete(&format!("/Users/{owner}")).await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn every_change_writes_an_audit_event() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let count = || muster::store::audit::count_for_org(&app.store, org.org_id.as_str());
    let start = count().await.expect("count");
    let id = scim.post("/Users", &bjensen()).await.id();
    scim.patch_ops(
        &format!("/Users/{id}"),
        json!([{ "op": "replace", "path": "title", "value": "X" }]),
    )
    .await;
    scim.put(&format!("/Users/{id}"), &bjensen()).await;
    scim.delete(&format!("/Users/{id}")).await;
    // Four changes; creating a user without a login also invites them to
    // activate it (one more event), and deleting them revokes that (one
    // more).
    assert_eq!(count().await.expect("count"), start + 6);
    // A refused change writes nothing.
    scim.post("/Users", &json!({ "userName": 5 })).await;
    assert_eq!(count().await.expect("count"), start + 6);
}

#[tokio::test]
async fn passwords_are_kept_as_argon2id_hashes_and_never_returned() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let created = scim.post("/Users", &bjensen()).await;
    let id = created.id();
    let stored_hash = || {
        let app = &app;
        let id = id.clone();
        async move {
            app.store
                .database()
                .collection::<bson::Document>("members")
                .find_one(bson::doc! { "_id": id })
                .await
                .expect("read")
                .and_then(|doc| doc.get_str("idp_password_hash").ok().map(str::to_owned))
                .expect("a stored hash")
        }
    };
    let first = stored_hash().await;
    assert!(first.starts_with("$argon2id$"), "{first}");
    assert!(!first.contains("t1meMa$heen"));

    let changed = scim
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "path": "password", "value": "an0ther-Secret" }]),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert!(changed.body.get("password").is_none());
    let second = stored_hash().await;
    assert_ne!(first, second, "the new password was hashed and stored");
    let asked = scim.get(&format!("/Users/{id}?attributes=password")).await;
    assert!(
        asked.body.get("password").is_none(),
        "not even when asked for"
    );
}

#[tokio::test]
async fn whole_extension_paths_and_unassigned_attributes() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let id = scim.post("/Users", &bjensen()).await.id();
    let path = format!("/Users/{id}");
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let added = scim
        .patch_ops(
            &path,
            json!([{ "op": "add", "path": enterprise, "value": {
                "schemas": [enterprise], "employeeNumber": "7", "department": "Ops" } }]),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body[enterprise]["employeeNumber"], "7");
    let removed = scim
        .patch_ops(&path, json!([{ "op": "remove", "path": enterprise }]))
        .await;
    assert!(removed.body.get(enterprise).is_none(), "{}", removed.body);
    assert!(
        !removed.body["schemas"]
            .as_array()
            .expect("schemas")
            .contains(&json!(enterprise))
    );

    // Removing `active` leaves it unassigned: not shown, status unchanged.
    let unassigned = scim
        .patch_ops(&path, json!([{ "op": "remove", "path": "active" }]))
        .await;
    assert_eq!(unassigned.status, StatusCode::OK);
    assert!(
        unassigned.body.get("active").is_none(),
        "{}",
        unassigned.body
    );
    let active = scim
        .filter(
            "Users",
            "active eq true and userName eq \"bjensen@example.com\"",
        )
        .await;
    assert_eq!(active.body["totalResults"], 1, "still an active member");
    let shown = scim
        .patch_ops(
            &path,
            json!([{ "op": "add", "path": "active", "value": true }]),
        )
        .await;
    assert_eq!(shown.body["active"], true);
}

#[tokio::test]
async fn two_concurrent_removals_of_two_owners_cannot_both_succeed() {
    let (app, org) = setup().await;
    let second = app.with_member(&org, Role::Owner).await;
    let scim = super::owner_authorized_scim(&app, &org).await;
    let off = json!([{ "op": "replace", "path": "active", "value": false }]);
    let first_path = format!("/Users/{}", org.owner.member_id);
    let second_path = format!("/Users/{}", second.member_id);
    let (a, b) = tokio::join!(
        scim.patch_ops(&first_path, off.clone()),
        scim.patch_ops(&second_path, off.clone()),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.body,
        b.body
    );
    let active = scim.filter("Users", "active eq true").await;
    assert_eq!(active.body["totalResults"], 1, "one owner is still active");
}

/// A user with a primary work email and a home email; returns its id.
async fn user_with_two_emails(scim: &crate::common::Scim<'_>) -> String {
    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bjensen@example.com",
                "emails": [
                    { "value": "bjensen@example.com", "type": "work", "primary": true },
                    { "value": "babs@home.example", "type": "home" }
                ],
                "phoneNumbers": [
                    { "value": "+1 555 0100", "type": "work", "primary": true },
                    { "value": "+1 555 0199", "type": "mobile" }
                ],
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.id()
}

/// The values of `attribute` marked primary.
fn primaries(body: &Value, attribute: &str) -> Vec<String> {
    body[attribute]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["primary"] == true)
        .filter_map(|item| item["value"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn setting_primary_on_one_value_clears_it_on_the_others() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let id = user_with_two_emails(&scim).await;
    let path = format!("/Users/{id}");

    // RFC 7643 §2.4: the server clears `primary` on the other values.
    for (filter_path, value, now_primary) in [
        (
            r#"emails[type eq "home"].primary"#,
            json!(true),
            "babs@home.example",
        ),
        (
            r#"emails[value eq "bjensen@example.com"].primary"#,
            json!("True"),
            "bjensen@example.com",
        ),
        (
            r#"phoneNumbers[type eq "mobile"].primary"#,
            json!(true),
            "+1 555 0199",
        ),
    ] {
        let answer = scim
            .patch_ops(
                &path,
                json!([{ "op": "replace", "path": filter_path, "value": value }]),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{filter_path}: {}",
            answer.body
        );
        let attribute = filter_path.split('[').next().unwrap_or_default();
        assert_eq!(
            primaries(&answer.body, attribute),
            [now_primary],
            "{}",
            answer.body
        );
        let read = scim.get(&path).await;
        assert_eq!(primaries(&read.body, attribute), [now_primary]);
    }

    // Whole values carrying primary:true, added or replaced by filter.
    let answer = scim
        .patch_ops(
            &path,
            json!([{ "op": "add", "path": "emails", "value": [{ "value": "new@example.com", "type": "other", "primary": true }] }]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(primaries(&answer.body, "emails"), ["new@example.com"]);
    let answer = scim
        .patch_ops(
            &path,
            json!([{ "op": "replace", "path": r#"emails[type eq "home"]"#, "value": { "value": "babs@home.example", "type": "home", "primary": true } }]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(primaries(&answer.body, "emails"), ["babs@home.example"]);
    let answer = scim
        .patch_ops(
            &path,
            json!([{ "op": "replace", "value": { "emails": [{ "value": "only@example.com", "primary": true }] } }]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(primaries(&answer.body, "emails"), ["only@example.com"]);
    assert_eq!(answer.body["emails"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn two_primary_values_sent_at_once_are_refused() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let id = user_with_two_emails(&scim).await;
    let path = format!("/Users/{id}");
    let two = json!([
        { "value": "a@example.com", "primary": true },
        { "value": "b@example.com", "primary": true }
    ]);
    for op in ["replace", "add"] {
        let answer = scim
            .patch_ops(&path, json!([{ "op": op, "path": "emails", "value": two }]))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{op}: {}",
            answer.body
        );
        assert_eq!(answer.scim_type(), Some("invalidValue"));
        assert!(
            answer.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("at most one value of `emails` may be primary")),
            "{}",
            answer.body
        );
    }
    let read = scim.get(&path).await;
    assert_eq!(primaries(&read.body, "emails"), ["bjensen@example.com"]);
    assert_eq!(read.body["emails"].as_array().map(Vec::len), Some(2));
}

/// `count` email values, none primary.
fn emails(count: usize) -> Value {
    (0..count)
        .map(|n| json!({ "value": format!("user{n}@example.com"), "type": "other" }))
        .collect()
}

#[tokio::test]
async fn patch_operations_and_multi_valued_attributes_are_bounded() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let id = user_with_two_emails(&scim).await;
    let path = format!("/Users/{id}");

    // Clients can read the limits.
    let schema = scim
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    assert_eq!(schema.status, StatusCode::OK, "{}", schema.body);
    assert!(
        schema.body["description"].as_str().is_some_and(
            |d| d.contains("at most 1000 operations") && d.contains("at most 100 values")
        ),
        "{}",
        schema.body["description"]
    );

    let too_many_operations: Vec<Value> = (0..1001)
        .map(|n| json!({ "op": "replace", "path": "title", "value": format!("T{n}") }))
        .collect();
    let answer = scim.patch_ops(&path, json!(too_many_operations)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.scim_type(), Some("invalidValue"));
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("at most 1000 operations")),
        "{}",
        answer.body
    );

    // A thousand operations are fine.
    let many_operations: Vec<Value> = (0..1000)
        .map(|n| json!({ "op": "replace", "path": "title", "value": format!("T{n}") }))
        .collect();
    let answer = scim.patch_ops(&path, json!(many_operations)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["title"], "T999");

    // 2,000 emails in one operation, or one at a time: refused, naming the limit.
    for operations in [
        json!([{ "op": "add", "path": "emails", "value": emails(2000) }]),
        json!(
            emails(200)
                .as_array()
                .into_iter()
                .flatten()
                .map(|email| json!({ "op": "add", "path": "emails", "value": [email] }))
                .collect::<Vec<_>>()
        ),
    ] {
        let answer = scim.patch_ops(&path, operations).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
        assert_eq!(answer.scim_type(), Some("invalidValue"));
        assert!(
            answer.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("`emails` may hold at most 100 values")),
            "{}",
            answer.body
        );
    }
    let read = scim.get(&path).await;
    assert_eq!(read.body["emails"].as_array().map(Vec::len), Some(2));

    // Up to the limit, a PATCH adds them all.
    let answer = scim
        .patch_ops(
            &path,
            json!([{ "op": "add", "path": "emails", "value": emails(98) }]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["emails"].as_array().map(Vec::len), Some(100));

    // Creating a user with too many values is refused the same way.
    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "many@example.com",
                "phoneNumbers": (0..101).map(|n| json!({ "value": format!("+1 555 {n:04}") })).collect::<Vec<_>>(),
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::BAD_REQUEST, "{}", created.body);
    assert!(
        created.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`phoneNumbers` may hold at most 100 values")),
        "{}",
        created.body
    );
}
