//! Per-project rights: held directly or through a group, enforced on the
//! project routes for contributors and viewers, and shown to applications.

use crate::common::{MemberFixture, OrgFixture, TestApp};
use muster::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A management API call as this file's tests write it: the answer's
/// status and JSON body (`crate::api::call` underneath).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let answer = crate::api::call(app, method, path, Some(token), body.as_ref()).await;
    (answer.status, answer.body)
}

fn projects(org: &OrgFixture) -> String {
    format!("/orgs/{}/projects", org.org_id)
}

fn project_path(org: &OrgFixture, id: &str) -> String {
    format!("{}/{id}", projects(org))
}

async fn create_project(app: &TestApp, org: &OrgFixture, token: &str, name: &str) -> String {
    let (status, body) = call(
        app,
        Method::POST,
        &projects(org),
        token,
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("an id").to_owned()
}

/// Replaces a member's direct project rights (as an owner).
async fn grant(app: &TestApp, org: &OrgFixture, member: &MemberFixture, rights: Value) {
    let (status, body) = call(
        app,
        Method::PATCH,
        &format!("/orgs/{}/members/{}", org.org_id, member.member_id),
        &org.owner.token,
        Some(json!({ "project_rights": rights })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A group holding `member`, mapped to `rights` (as an owner).
async fn group_granting(app: &TestApp, org: &OrgFixture, member: &MemberFixture, rights: Value) {
    let (status, group) = call(
        app,
        Method::POST,
        &format!("/orgs/{}/groups", org.org_id),
        &org.owner.token,
        Some(json!({ "display_name": "Release managers", "members": [member.member_id.as_str()] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let (status, body) = call(
        app,
        Method::PUT,
        &format!(
            "/orgs/{}/groups/{}/role-mapping",
            org.org_id,
            group["id"].as_str().expect("a group id")
        ),
        &org.owner.token,
        Some(json!({ "project_rights": rights })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn rename(app: &TestApp, org: &OrgFixture, id: &str, token: &str, name: &str) -> StatusCode {
    let (status, body) = call(
        app,
        Method::PATCH,
        &project_path(org, id),
        token,
        Some(json!({ "name": name })),
    )
    .await;
    if status == StatusCode::FORBIDDEN {
        assert_forbidden_for_want_of(&body, "write");
    }
    status
}

async fn remove(app: &TestApp, org: &OrgFixture, id: &str, token: &str) -> StatusCode {
    let (status, body) = call(app, Method::DELETE, &project_path(org, id), token, None).await;
    if status == StatusCode::FORBIDDEN {
        assert_forbidden_for_want_of(&body, "delete");
    }
    status
}

/// A 403 problem naming the missing right.
fn assert_forbidden_for_want_of(body: &Value, right: &str) {
    assert_eq!(body["status"], 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("`{right}`"))),
        "the refusal names the missing right `{right}`: {body}"
    );
}

async fn name_of(app: &TestApp, org: &OrgFixture, id: &str) -> String {
    let (status, body) = call(
        app,
        Method::GET,
        &project_path(org, id),
        &org.owner.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["name"].as_str().expect("a name").to_owned()
}

#[tokio::test]
async fn a_contributor_changes_only_the_projects_their_rights_allow() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let contributor = app.with_member(&org, Role::Contributor).await;
    let website = create_project(&app, &org, &org.owner.token, "Website").await;

    // No rights on the project: the contributor role alone is not enough.
    assert_eq!(
        rename(&app, &org, &website, &contributor.token, "Defaced").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        remove(&app, &org, &website, &contributor.token).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(name_of(&app, &org, &website).await, "Website");

    // `write` renames, and deletes nothing.
    grant(
        &app,
        &org,
        &contributor,
        json!([{ "project_id": website, "rights": ["read", "write"] }]),
    )
    .await;
    assert_eq!(
        rename(&app, &org, &website, &contributor.token, "Website 2").await,
        StatusCode::OK
    );
    assert_eq!(
        remove(&app, &org, &website, &contributor.token).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(name_of(&app, &org, &website).await, "Website 2");

    // `delete` through a group mapped to project rights.
    group_granting(
        &app,
        &org,
        &contributor,
        json!([{ "project_id": website, "rights": ["delete"] }]),
    )
    .await;
    assert_eq!(
        remove(&app, &org, &website, &contributor.token).await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn read_gates_reading_and_listing_a_project() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    let contributor = app.with_member(&org, Role::Contributor).await;
    let website = create_project(&app, &org, &org.owner.token, "Website").await;
    let secret = create_project(&app, &org, &org.owner.token, "Secret").await;
    grant(
        &app,
        &org,
        &viewer,
        json!([{ "project_id": website, "rights": ["read"] }]),
    )
    .await;

    let (status, body) = call(
        &app,
        Method::GET,
        &project_path(&org, &website),
        &viewer.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["my_rights"], json!(["read"]));
    for member in [&viewer, &contributor] {
        let (status, body) = call(
            &app,
            Method::GET,
            &project_path(&org, &secret),
            &member.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_forbidden_for_want_of(&body, "read");
    }

    // Lists show the projects the caller may read, with their rights.
    let (status, list) = call(&app, Method::GET, &projects(&org), &viewer.token, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, [website.as_str()]);
    let (_, list) = call(&app, Method::GET, &projects(&org), &contributor.token, None).await;
    assert_eq!(list["items"], json!([]));
    let (_, list) = call(&app, Method::GET, &projects(&org), &org.owner.token, None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        list["items"][0]["my_rights"],
        json!(["read", "write", "delete"])
    );
}

#[tokio::test]
async fn the_creator_of_a_project_holds_every_right_on_it() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let contributor = app.with_member(&org, Role::Contributor).await;
    let id = create_project(&app, &org, &contributor.token, "Mine").await;

    let (status, body) = call(
        &app,
        Method::GET,
        &project_path(&org, &id),
        &contributor.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["my_rights"], json!(["read", "write", "delete"]));
    assert_eq!(
        rename(&app, &org, &id, &contributor.token, "Mine 2").await,
        StatusCode::OK
    );
    assert_eq!(
        remove(&app, &org, &id, &contributor.token).await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn owners_and_admins_may_do_anything_with_any_project() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let admin = app.with_member(&org, Role::Admin).await;
    let contributor = app.with_member(&org, Role::Contributor).await;
    let theirs = create_project(&app, &org, &contributor.token, "Theirs").await;
    for (who, token) in [("owner", &org.owner.token), ("admin", &admin.token)] {
        let (status, body) =
            call(&app, Method::GET, &project_path(&org, &theirs), token, None).await;
        assert_eq!(status, StatusCode::OK, "{who}: {body}");
        assert_eq!(
            rename(&app, &org, &theirs, token, &format!("Renamed by {who}")).await,
            StatusCode::OK,
            "{who}"
        );
    }
    assert_eq!(
        remove(&app, &org, &theirs, &admin.token).await,
        StatusCode::NO_CONTENT
    );
    let other = create_project(&app, &org, &contributor.token, "Other").await;
    assert_eq!(
        remove(&app, &org, &other, &org.owner.token).await,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn effective_project_rights_are_shown_to_applications() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let contributor = app.with_member(&org, Role::Contributor).await;
    let website = create_project(&app, &org, &org.owner.token, "Website").await;
    let docs = create_project(&app, &org, &org.owner.token, "Docs").await;
    grant(
        &app,
        &org,
        &contributor,
        json!([{ "project_id": website, "rights": ["read"] }]),
    )
    .await;
    group_granting(
        &app,
        &org,
        &contributor,
        json!([
            { "project_id": website, "rights": ["write"] },
            { "project_id": docs, "rights": ["read", "delete"] }
        ]),
    )
    .await;
    let mut expected = vec![
        json!({ "project_id": website, "rights": ["read", "write"] }),
        json!({ "project_id": docs, "rights": ["read", "delete"] }),
    ];
    expected.sort_by_key(|grant| grant["project_id"].as_str().map(str::to_owned));
    let expected = json!({ "all_projects": false, "projects": expected });

    let (status, member) = call(
        &app,
        Method::GET,
        &format!("/orgs/{}/members/{}", org.org_id, contributor.member_id),
        &org.owner.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{member}");
    assert_eq!(member["effective_project_rights"], expected, "{member}");
    // The direct grants stay as they were given.
    assert_eq!(
        member["project_rights"],
        json!([{ "project_id": website, "rights": ["read"] }])
    );

    let me = app.me(&contributor.token).await;
    assert_eq!(me["memberships"][0]["project_rights"], expected, "{me}");

    let me = app.me(&org.owner.token).await;
    assert_eq!(
        me["memberships"][0]["project_rights"],
        json!({ "all_projects": true, "projects": [] }),
        "{me}"
    );
}
