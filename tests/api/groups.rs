//! Groups mapped to roles: the effective role, owner grants through
//! mappings, and the list of a group's members.

use muster::domain::{MemberStatus, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::common::TestApp;
use super::{Cast, call};

#[tokio::test]
async fn a_group_mapping_raises_the_effective_role_and_says_where_it_came_from() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let org = cast.org();
    let owner = Some(cast.org.owner.token.as_str());
    let admin = Some(cast.admin.token.as_str());
    let viewer = &cast.viewer;
    let other = app.with_member(&cast.org, Role::Viewer).await;
    let other_path = format!("/orgs/{org}/members/{}", other.member_id);

    // As a plain viewer, the member may not change others.
    let denied = call(
        &app,
        Method::PATCH,
        &other_path,
        Some(&viewer.token),
        Some(&json!({ "role": "contributor" })),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let created = call(
        &app,
        Method::POST,
        &format!("/orgs/{org}/groups"),
        admin,
        Some(&json!({ "display_name": "Helpdesk", "members": [viewer.member_id.to_string()] })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["member_count"], 1);
    let group = created.body["id"].as_str().expect("id").to_owned();
    let mapping = format!("/orgs/{org}/groups/{group}/role-mapping");

    // Admins map to admin, never to owner.
    let to_owner = call(
        &app,
        Method::PUT,
        &mapping,
        admin,
        Some(&json!({ "role": "owner" })),
    )
    .await;
    assert_eq!(to_owner.status, StatusCode::FORBIDDEN);
    let to_admin = call(
        &app,
        Method::PUT,
        &mapping,
        admin,
        Some(&json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(to_admin.status, StatusCode::OK, "{}", to_admin.body);
    assert_eq!(to_admin.body["role_mapping"]["role"], "admin");

    let shown = call(
        &app,
        Method::GET,
        &format!("/orgs/{org}/members/{}", viewer.member_id),
        owner,
        None,
    )
    .await;
    assert_eq!(shown.body["role"], "admin");
    assert_eq!(shown.body["direct_role"], "viewer");
    // The organization switcher shows the same effective role.
    let me = call(&app, Method::GET, "/me", Some(&viewer.token), None).await;
    assert_eq!(me.body["memberships"][0]["role"], "admin", "{}", me.body);
    assert_eq!(
        shown.body["group_roles"],
        json!([{ "group_id": group, "group_name": "Helpdesk", "role": "admin" }])
    );
    let allowed = call(
        &app,
        Method::PATCH,
        &other_path,
        Some(&viewer.token),
        Some(&json!({ "role": "contributor" })),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);

    // Owner mappings: only owners set them, and only owners change the
    // members of such a group.
    let owner_mapping = call(
        &app,
        Method::PUT,
        &mapping,
        owner,
        Some(&json!({ "role": "owner" })),
    )
    .await;
    assert_eq!(owner_mapping.status, StatusCode::OK);
    let add = call(
        &app,
        Method::PATCH,
        &format!("/orgs/{org}/groups/{group}"),
        admin,
        Some(&json!({ "add_members": [other.member_id.to_string()] })),
    )
    .await;
    assert_eq!(add.status, StatusCode::FORBIDDEN);
    let unmap = call(
        &app,
        Method::PUT,
        &mapping,
        admin,
        Some(&json!({ "role": null })),
    )
    .await;
    assert_eq!(unmap.status, StatusCode::FORBIDDEN);
    let delete = call(
        &app,
        Method::DELETE,
        &format!("/orgs/{org}/groups/{group}"),
        admin,
        None,
    )
    .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);

    // Removing the member from the group takes the role away at once.
    let removed = call(
        &app,
        Method::PATCH,
        &format!("/orgs/{org}/groups/{group}"),
        owner,
        Some(&json!({ "remove_members": [viewer.member_id.to_string()] })),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body["member_count"], 0);
    let denied = call(
        &app,
        Method::PATCH,
        &other_path,
        Some(&viewer.token),
        Some(&json!({ "role": "viewer" })),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn groups_made_here_are_the_groups_scim_sees() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let org = cast.org();
    let owner = Some(cast.org.owner.token.as_str());
    let created = call(
        &app,
        Method::POST,
        &format!("/orgs/{org}/groups"),
        owner,
        Some(&json!({ "display_name": "Sales", "members": [cast.viewer.member_id.to_string()] })),
    )
    .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let scim = super::common::Scim::new(&app, &cast.org.scim_token);
    let group = scim.get(&format!("/Groups/{id}")).await;
    assert_eq!(group.body["displayName"], "Sales");
    assert_eq!(
        group.body["members"][0]["value"],
        cast.viewer.member_id.to_string()
    );

    let duplicate = call(
        &app,
        Method::POST,
        &format!("/orgs/{org}/groups"),
        owner,
        Some(&json!({ "display_name": "SALES" })),
    )
    .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let unknown_member = call(
        &app,
        Method::POST,
        &format!("/orgs/{org}/groups"),
        owner,
        Some(&json!({ "display_name": "Ghosts", "members": [uuid::Uuid::now_v7().to_string()] })),
    )
    .await;
    assert_eq!(unknown_member.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown_member.body["field"], "members[0]");
}

#[tokio::test]
async fn a_groups_members_are_listed_a_page_at_a_time_to_whoever_may_read_the_group() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let org = cast.org();
    let owner = Some(cast.org.owner.token.as_str());
    let suspended = app.with_member(&cast.org, Role::Viewer).await;
    app.set_member_status(&cast.org, &suspended, MemberStatus::Suspended, None)
        .await;
    let in_group = [&cast.admin, &cast.viewer, &suspended];
    let created = call(
        &app,
        Method::POST,
        &format!("/orgs/{org}/groups"),
        owner,
        Some(&json!({
            "display_name": "Support",
            "members": in_group.iter().map(|m| m.member_id.to_string()).collect::<Vec<_>>(),
        })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let group = created.body["id"].as_str().expect("id").to_owned();
    let members = format!("/orgs/{org}/groups/{group}/members");

    // Two pages of two, read by a viewer: the same permission as reading
    // the group. Members come in id order, which is the order they joined.
    let viewer = Some(cast.viewer.token.as_str());
    let first = call(
        &app,
        Method::GET,
        &format!("{members}?limit=2"),
        viewer,
        None,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = call(
        &app,
        Method::GET,
        &format!("{members}?limit=2&cursor={cursor}"),
        viewer,
        None,
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert!(second.body["next_cursor"].is_null(), "{}", second.body);
    let items: Vec<&Value> = [&first, &second]
        .iter()
        .flat_map(|page| page.body["items"].as_array().expect("items"))
        .collect();
    let mut expected: Vec<String> = in_group.iter().map(|m| m.member_id.to_string()).collect();
    expected.sort();
    let listed: Vec<&str> = items
        .iter()
        .map(|item| item["id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, expected);
    for fixture in in_group {
        let id = fixture.member_id.to_string();
        let item = items
            .iter()
            .find(|item| item["id"] == id.as_str())
            .expect("listed");
        assert_eq!(item["email"], fixture.email.as_str(), "{item}");
        assert!(item["user_name"].is_string(), "{item}");
        let status = if fixture.member_id == suspended.member_id {
            "suspended"
        } else {
            "active"
        };
        assert_eq!(item["status"], status, "{item}");
    }

    // An empty group is an empty last page.
    let empty = call(
        &app,
        Method::POST,
        &format!("/orgs/{org}/groups"),
        owner,
        Some(&json!({ "display_name": "Nobody" })),
    )
    .await;
    let empty = empty.body["id"].as_str().expect("id");
    let none = call(
        &app,
        Method::GET,
        &format!("/orgs/{org}/groups/{empty}/members"),
        owner,
        None,
    )
    .await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert_eq!(none.body, json!({ "items": [], "next_cursor": null }));

    // A cursor this API did not hand out is refused, naming `cursor`.
    let bad = call(
        &app,
        Method::GET,
        &format!("{members}?cursor=nope"),
        owner,
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["field"], "cursor");

    // No such group, or not an id: 404, as for the group itself.
    for unknown in [uuid::Uuid::now_v7().to_string(), "nope".to_owned()] {
        let missing = call(
            &app,
            Method::GET,
            &format!("/orgs/{org}/groups/{unknown}/members"),
            owner,
            None,
        )
        .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    }

    // Another organization's group is not found through this one, and
    // its owner cannot read this organization's group.
    let outsider = cast.outsider.org_id.to_string();
    let theirs = call(
        &app,
        Method::POST,
        &format!("/orgs/{outsider}/groups"),
        Some(&cast.outsider.owner.token),
        Some(&json!({ "display_name": "Theirs" })),
    )
    .await;
    let theirs = theirs.body["id"].as_str().expect("id");
    let crossed = call(
        &app,
        Method::GET,
        &format!("/orgs/{org}/groups/{theirs}/members"),
        owner,
        None,
    )
    .await;
    assert_eq!(crossed.status, StatusCode::NOT_FOUND, "{}", crossed.body);
    let intruder = call(
        &app,
        Method::GET,
        &members,
        Some(&cast.outsider.owner.token),
        None,
    )
    .await;
    assert_eq!(intruder.status, StatusCode::NOT_FOUND, "{}", intruder.body);
}
