//! Groups mapped to roles: the effective role, and owner grants through
//! mappings.

use muster::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

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
