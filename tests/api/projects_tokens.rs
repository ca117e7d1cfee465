//! The management API's projects, personal and SCIM tokens, and `PATCH /me`.

use super::common::{OrgFixture, TestApp};
use bson::doc;
use chrono::{Duration, Utc};
use muster::bootstrap::{BootstrapInput, bootstrap};
use muster::domain::{AccountId, OrgId, Role};
use muster::store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

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

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    call(app, Method::GET, path, token, None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, path, token, Some(body)).await
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::PATCH, path, token, Some(body)).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    call(app, Method::DELETE, path, token, None).await
}

async fn audit_count(app: &TestApp, org: &OrgId) -> u64 {
    store::audit::count_for_org(&app.store, org.as_str())
        .await
        .expect("count audit events")
}

/// A problem JSON body with every field, naming `field` when given.
fn assert_problem(body: &Value, status: StatusCode, field: Option<&str>) {
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:muster:problem:"))
    );
    assert!(body["title"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    match field {
        Some(field) => assert_eq!(body["field"], field, "{body}"),
        None => assert!(body.get("field").is_none(), "{body}"),
    }
}

fn projects_path(org: &OrgFixture) -> String {
    format!("/orgs/{}/projects", org.org_id)
}

async fn create_project(app: &TestApp, org: &OrgFixture, token: &str, name: &str) -> Value {
    let (status, body) = post(app, &projects_path(org), token, json!({ "name": name })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post("/api/v1/auth/login")
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("request")
}

async fn session_token(app: &TestApp, email: &str, password: &str) -> String {
    let response = login(app, email, password).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("token").to_owned()
}

/// An organization whose owner has a password; returns (org id, owner's
/// personal token).
async fn org_with_password(app: &TestApp, email: &str, org_name: &str) -> (OrgId, String) {
    let output = bootstrap(
        &app.store,
        Utc::now(),
        BootstrapInput {
            org_name: org_name.into(),
            owner_email: email.into(),
            owner_password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("bootstrap");
    (
        OrgId::parse(&output.org_id).expect("org id"),
        output.owner_token,
    )
}

#[tokio::test]
async fn projects_crud_by_the_owner_with_one_audit_event_per_change() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let token = &org.owner.token;
    let events = audit_count(&app, &org.org_id).await;

    let created = create_project(&app, &org, token, "  Website  ").await;
    assert_eq!(created["name"], "Website");
    assert_eq!(created["org_id"], org.org_id.as_str());
    assert!(created["created_at"].is_string() && created["updated_at"].is_string());
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("{}/{id}", projects_path(&org));
    assert_eq!(audit_count(&app, &org.org_id).await, events + 1);

    let (status, fetched) = get(&app, &path, token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let (status, renamed) = patch(&app, &path, token, json!({ "name": "Web site" })).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Web site");
    assert_eq!(renamed["id"], id.as_str());
    assert_eq!(audit_count(&app, &org.org_id).await, events + 2);

    // A request that changes nothing writes nothing.
    let (status, same) = patch(&app, &path, token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["name"], "Web site");
    let (status, _) = patch(&app, &path, token, json!({ "name": "Web site" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(audit_count(&app, &org.org_id).await, events + 2);

    // Renaming to another case of its own name is a change, not a conflict.
    let (status, body) = patch(&app, &path, token, json!({ "name": "WEB SITE" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(audit_count(&app, &org.org_id).await, events + 3);

    let (status, list) = get(&app, &projects_path(&org), token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["name"], "WEB SITE");
    assert_eq!(list["next_cursor"], Value::Null);

    let (status, body) = delete(&app, &path, token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(audit_count(&app, &org.org_id).await, events + 4);
    let (status, body) = get(&app, &path, token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&body, StatusCode::NOT_FOUND, None);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("project"))
    );
    let (status, _) = delete(&app, &path, token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(audit_count(&app, &org.org_id).await, events + 4);

    // The name is free again.
    create_project(&app, &org, token, "Website").await;
}

#[tokio::test]
async fn who_may_do_what_with_projects() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let other = app.with_org_owner().await;
    let contributor = app.with_member(&org, Role::Contributor).await;
    let viewer = app.with_member(&org, Role::Viewer).await;

    let mine = create_project(&app, &org, &contributor.token, "Contributed").await;
    let mine_path = format!("{}/{}", projects_path(&org), mine["id"].as_str().unwrap());
    let (status, body) = patch(
        &app,
        &mine_path,
        &contributor.token,
        json!({ "name": "Contributed 2" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Viewers read the projects they hold `read` on, and nothing more.
    let (status, list) = get(&app, &projects_path(&org), &viewer.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"], json!([]));
    let (status, body) = get(&app, &mine_path, &viewer.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&body, StatusCode::FORBIDDEN, None);
    let (status, body) = patch(
        &app,
        &format!("/orgs/{}/members/{}", org.org_id, viewer.member_id),
        &org.owner.token,
        json!({ "project_rights": [{ "project_id": mine["id"], "rights": ["read", "write"] }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, list) = get(&app, &projects_path(&org), &viewer.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    // A viewer's `write` is capped by the role.
    assert_eq!(list["items"][0]["my_rights"], json!(["read"]));
    let (status, _) = get(&app, &mine_path, &viewer.token).await;
    assert_eq!(status, StatusCode::OK);
    let events = audit_count(&app, &org.org_id).await;
    let (status, body) = post(
        &app,
        &projects_path(&org),
        &viewer.token,
        json!({ "name": "Nope" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&body, StatusCode::FORBIDDEN, None);
    let (status, _) = patch(&app, &mine_path, &viewer.token, json!({ "name": "Nope" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = delete(&app, &mine_path, &viewer.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(audit_count(&app, &org.org_id).await, events);

    // Outsiders cannot even tell the organization exists.
    let (status, body) = get(&app, &projects_path(&org), &other.owner.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&body, StatusCode::NOT_FOUND, None);
    let (status, _) = get(&app, &mine_path, &other.owner.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &app,
        &projects_path(&org),
        &other.owner.token,
        json!({ "name": "Intruder" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Another organization's project is not found under this one.
    let theirs = create_project(&app, &other, &other.owner.token, "Theirs").await;
    let foreign = format!("{}/{}", projects_path(&org), theirs["id"].as_str().unwrap());
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({ "name": "Stolen" }))),
        (Method::DELETE, None),
    ] {
        let (status, problem) = call(&app, method.clone(), &foreign, &org.owner.token, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("project"))
        );
    }
    let malformed = format!("{}/not-a-project", projects_path(&org));
    let (status, _) = get(&app, &malformed, &org.owner.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, kept) = get(
        &app,
        &format!(
            "{}/{}",
            projects_path(&other),
            theirs["id"].as_str().unwrap()
        ),
        &other.owner.token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kept["name"], "Theirs");
}

#[tokio::test]
async fn projects_page_by_cursor() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let token = &org.owner.token;
    let mut created = Vec::new();
    for n in 1..=5 {
        let project = create_project(&app, &org, token, &format!("Project {n}")).await;
        created.push(project["id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("{}?limit=2&cursor={cursor}", projects_path(&org)),
            None => format!("{}?limit=2", projects_path(&org)),
        };
        let (status, page) = get(&app, &path, token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), items.last().and_then(|p| p["id"].as_str()));
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(page["next_cursor"], Value::Null);
                break;
            }
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every project once, oldest first");

    // A full last page still says it is the last.
    let (_, page) = get(&app, &format!("{}?limit=5", projects_path(&org)), token).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(5));
    assert_eq!(page["next_cursor"], Value::Null);
    let (_, page) = get(&app, &projects_path(&org), token).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(5));

    let (status, body) = get(
        &app,
        &format!("{}?cursor=bogus", projects_path(&org)),
        token,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&body, StatusCode::UNPROCESSABLE_ENTITY, Some("cursor"));
    for limit in ["0", "201"] {
        let (status, body) = get(
            &app,
            &format!("{}?limit={limit}", projects_path(&org)),
            token,
        )
        .await;
        // Outside the bounds the spec declares: refused while parsing.
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={limit}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("`limit`")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn project_names_are_checked_and_unique_ignoring_case() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let other = app.with_org_owner().await;
    let token = &org.owner.token;
    let first = create_project(&app, &org, token, "Mobile App").await;
    let second = create_project(&app, &org, token, "Backend").await;
    let events = audit_count(&app, &org.org_id).await;

    let (status, body) = post(
        &app,
        &projects_path(&org),
        token,
        json!({ "name": "mobile app" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&body, StatusCode::CONFLICT, None);
    let second_path = format!("{}/{}", projects_path(&org), second["id"].as_str().unwrap());
    let (status, _) = patch(&app, &second_path, token, json!({ "name": "MOBILE APP" })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Another organization may use the name.
    create_project(&app, &other, &other.owner.token, "Mobile App").await;

    for name in [
        json!(""),
        json!("   "),
        json!("x".repeat(101)),
        json!("a\u{7}b"),
    ] {
        let (status, body) = post(&app, &projects_path(&org), token, json!({ "name": name })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert_problem(&body, StatusCode::UNPROCESSABLE_ENTITY, Some("name"));
        let (status, body) = patch(&app, &second_path, token, json!({ "name": name })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert_problem(&body, StatusCode::UNPROCESSABLE_ENTITY, Some("name"));
    }
    let (status, _) = post(
        &app,
        &projects_path(&org),
        token,
        json!({ "name": "é".repeat(100) }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let events = events + 1;

    // Unknown fields are refused, and nothing changes.
    let (status, body) = post(
        &app,
        &projects_path(&org),
        token,
        json!({ "name": "Sneaky", "org_id": other.org_id.as_str() }),
    )
    .await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{status} {body}"
    );
    assert_problem(&body, status, body.get("field").and_then(Value::as_str));
    let (status, _) = patch(
        &app,
        &second_path,
        token,
        json!({ "name": "Renamed", "colour": "red" }),
    )
    .await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY);
    let (_, list) = get(&app, &projects_path(&org), token).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names.len(), 3);
    assert_eq!(names[0], first["name"].as_str().unwrap());
    assert_eq!(names[1], "Backend");
    assert_eq!(audit_count(&app, &org.org_id).await, events);
}

#[tokio::test]
async fn deleting_a_project_removes_the_rights_members_hold_on_it() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let member = app.with_member(&org, Role::Contributor).await;
    let doomed = create_project(&app, &org, &org.owner.token, "Doomed").await;
    let kept = create_project(&app, &org, &org.owner.token, "Kept").await;
    let doomed_id = doomed["id"].as_str().unwrap();
    let kept_id = kept["id"].as_str().unwrap();
    app.store
        .database()
        .collection::<bson::Document>("members")
        .update_one(
            doc! { "_id": member.member_id.as_str() },
            doc! { "$set": { "project_rights": [
                { "project_id": doomed_id, "rights": ["read", "delete"] },
                { "project_id": kept_id, "rights": ["read"] },
            ] } },
        )
        .await
        .expect("grant project rights");

    let (status, _) = delete(
        &app,
        &format!("{}/{doomed_id}", projects_path(&org)),
        &member.token,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = store::members::find_by_account(&app.store, None, &org.org_id, &member.account_id)
        .await
        .expect("read member")
        .expect("member");
    let projects: Vec<&str> = after
        .project_rights
        .iter()
        .map(|grant| grant.project_id.as_str())
        .collect();
    assert_eq!(projects, [kept_id]);
}

#[tokio::test]
async fn personal_tokens_are_shown_once_work_and_die_when_deleted() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    // Personal tokens are managed with a session.
    let owner = &super::session_for(&app, &org.owner.account_id).await;
    let events = audit_count(&app, &org.org_id).await;

    let expires_at = (Utc::now() + Duration::days(30)).to_rfc3339();
    let (status, created) = post(
        &app,
        "/me/tokens",
        owner,
        json!({ "org_id": org.org_id.as_str(), "name": "CI", "expires_at": expires_at }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("mst_pat_"));
    assert_eq!(created["name"], "CI");
    assert_eq!(created["org_id"], org.org_id.as_str());
    assert!(secret.starts_with(created["display_prefix"].as_str().unwrap()));
    assert!(created["expires_at"].is_string());
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(audit_count(&app, &org.org_id).await, events + 1);

    let (status, me) = get(&app, "/me", &secret).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["account"]["id"], org.owner.account_id.as_str());

    let (status, list) = get(&app, "/me/tokens", owner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(&secret));
    assert_eq!(list["next_cursor"], Value::Null);
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .expect("the new token is listed");
    assert!(listed.get("token").is_none());
    assert_eq!(listed["display_prefix"], created["display_prefix"]);
    assert_eq!(listed["org_id"], org.org_id.as_str());
    // The new token has been used once (GET /me above).
    assert!(listed["last_used_at"].is_string(), "{listed}");

    // Nobody else can delete it.
    let member = app.with_member(&org, Role::Admin).await;
    let member_session = super::session_for(&app, &member.account_id).await;
    let (status, body) = delete(&app, &format!("/me/tokens/{id}"), &member_session).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("token")));
    let (status, _) = delete(&app, "/me/tokens/not-a-token", owner).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/me", &secret).await.0, StatusCode::OK);

    let (status, _) = delete(&app, &format!("/me/tokens/{id}"), owner).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(audit_count(&app, &org.org_id).await, events + 2);
    assert_eq!(get(&app, "/me", &secret).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = delete(&app, &format!("/me/tokens/{id}"), owner).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(audit_count(&app, &org.org_id).await, events + 2);
}

#[tokio::test]
async fn who_may_create_personal_tokens_and_for_what() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let other = app.with_org_owner().await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    let contributor = app.with_member(&org, Role::Contributor).await;
    let events = audit_count(&app, &org.org_id).await;
    let body = |name: &str| json!({ "org_id": org.org_id.as_str(), "name": name });
    // Signed in: personal tokens are made with a session.
    let viewer = super::session_for(&app, &viewer.account_id).await;
    let contributor_session = super::session_for(&app, &contributor.account_id).await;
    let contributor = super::common::MemberFixture {
        token: contributor_session,
        ..contributor
    };
    let other_owner = super::session_for(&app, &other.owner.account_id).await;

    let (status, problem) = post(&app, "/me/tokens", &viewer, body("mine")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&problem, StatusCode::FORBIDDEN, None);
    let (status, _) = post(&app, "/me/tokens", &other_owner, body("theirs")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(audit_count(&app, &org.org_id).await, events);

    let (status, created) = post(&app, "/me/tokens", &contributor.token, body("script")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(audit_count(&app, &org.org_id).await, events + 1);

    let past = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    let (status, problem) = post(
        &app,
        "/me/tokens",
        &contributor.token,
        json!({ "org_id": org.org_id.as_str(), "name": "old", "expires_at": past }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("expires_at"),
    );
    for name in ["", "  ", &"n".repeat(101)] {
        let (status, problem) = post(&app, "/me/tokens", &contributor.token, body(name)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_problem(&problem, StatusCode::UNPROCESSABLE_ENTITY, Some("name"));
    }
    let (status, _) = post(
        &app,
        "/me/tokens",
        &contributor.token,
        json!({ "org_id": org.org_id.as_str(), "name": "x", "scopes": ["all"] }),
    )
    .await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(audit_count(&app, &org.org_id).await, events + 1);

    // The contributor sees their two tokens (the fixture's and the new
    // one), not the owner's.
    let (_, list) = get(&app, "/me/tokens", &contributor.token).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&created["id"].as_str().unwrap()));
}

#[tokio::test]
async fn a_personal_token_neither_lists_nor_makes_nor_deletes_tokens() {
    let app = TestApp::spawn().await;
    let email = "ada@example.com";
    let (first, first_pat) = org_with_password(&app, email, "First").await;
    let (second, _) = org_with_password(&app, email, "Second").await;
    let session = session_token(&app, email, PASSWORD).await;
    for org in [&first, &second] {
        let (status, body) = post(
            &app,
            "/me/tokens",
            &session,
            json!({ "org_id": org.as_str(), "name": "laptop" }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let orgs_of = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["org_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = get(&app, "/me/tokens", &session).await;
    let all = orgs_of(&all);
    // The bootstrap token of each organization, and the two new ones.
    assert_eq!(all.len(), 4);
    assert!(all.contains(&second.to_string()));
    // Personal tokens act inside their organization only: the account's
    // tokens are a session's business.
    let (status, _) = get(&app, "/me/tokens", &first_pat).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = get(&app, "/me/tokens", &session).await;
    let second_token = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["org_id"] == second.as_str())
        .and_then(|t| t["id"].as_str())
        .unwrap()
        .to_owned();
    let (status, _) = delete(&app, &format!("/me/tokens/{second_token}"), &first_pat).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for org in [&first, &second] {
        let (status, _) = post(
            &app,
            "/me/tokens",
            &first_pat,
            json!({ "org_id": org.as_str(), "name": "sideways" }),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = delete(&app, &format!("/me/tokens/{second_token}"), &session).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

async fn scim_users_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/scim/v2/Users")
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test]
async fn scim_tokens_are_managed_by_owners_and_admins() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let admin = app.with_member(&org, Role::Admin).await;
    let contributor = app.with_member(&org, Role::Contributor).await;
    let other = app.with_org_owner().await;
    let path = format!("/orgs/{}/scim-tokens", org.org_id);
    let events = audit_count(&app, &org.org_id).await;

    let (status, created) = post(&app, &path, &org.owner.token, json!({ "name": "Okta" })).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("mst_scim_"));
    assert_eq!(created["name"], "Okta");
    assert_eq!(created["expires_at"], Value::Null);
    assert_eq!(audit_count(&app, &org.org_id).await, events + 1);
    assert_eq!(scim_users_status(&app, &secret).await, StatusCode::OK);
    // SCIM tokens are no way into the management API.
    assert_eq!(get(&app, "/me", &secret).await.0, StatusCode::UNAUTHORIZED);

    let (status, list) = get(&app, &path, &admin.token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(&secret));
    assert_eq!(list["next_cursor"], Value::Null);
    // The bootstrap token and the new one.
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == created["id"])
        .expect("listed");
    assert!(listed.get("token").is_none());
    assert_eq!(listed["display_prefix"], created["display_prefix"]);

    let (status, by_admin) = post(
        &app,
        &path,
        &admin.token,
        json!({ "name": "Entra ID", "expires_at": (Utc::now() + Duration::days(90)).to_rfc3339() }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{by_admin}");
    assert_eq!(
        scim_users_status(&app, by_admin["token"].as_str().unwrap()).await,
        StatusCode::OK
    );

    for (status, body) in [
        get(&app, &path, &contributor.token).await,
        post(&app, &path, &contributor.token, json!({ "name": "x" })).await,
        delete(
            &app,
            &format!("{path}/{}", created["id"].as_str().unwrap()),
            &contributor.token,
        )
        .await,
    ] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _) = get(&app, &path, &other.owner.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, problem) = post(
        &app,
        &path,
        &org.owner.token,
        json!({ "name": "old", "expires_at": (Utc::now() - Duration::hours(1)).to_rfc3339() }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("expires_at"),
    );
    assert_eq!(audit_count(&app, &org.org_id).await, events + 2);

    // Another organization's owner cannot delete it, even by id under
    // their own organization.
    let foreign = format!(
        "/orgs/{}/scim-tokens/{}",
        other.org_id,
        created["id"].as_str().unwrap()
    );
    let (status, body) = delete(&app, &foreign, &other.owner.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("token")));
    assert_eq!(scim_users_status(&app, &secret).await, StatusCode::OK);

    let mine = format!("{path}/{}", created["id"].as_str().unwrap());
    let (status, _) = delete(&app, &mine, &admin.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(audit_count(&app, &org.org_id).await, events + 3);
    assert_eq!(
        scim_users_status(&app, &secret).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = delete(&app, &mine, &admin.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The organization's other SCIM tokens keep working.
    assert_eq!(
        scim_users_status(&app, &org.scim_token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn patch_me_changes_the_display_name_and_the_password() {
    let app = TestApp::spawn().await;
    let email = "hopper@example.com";
    let (org_id, _) = org_with_password(&app, email, "Navy").await;
    let session = session_token(&app, email, PASSWORD).await;
    let other_session = session_token(&app, email, PASSWORD).await;
    let events = audit_count(&app, &org_id).await;

    let (status, me) = patch(&app, "/me", &session, json!({ "display_name": " Grace " })).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["account"]["display_name"], "Grace");
    assert_eq!(me["memberships"].as_array().map(Vec::len), Some(1));
    let (_, fetched) = get(&app, "/me", &session).await;
    assert_eq!(fetched, me);

    let (status, problem) = patch(&app, "/me", &session, json!({ "display_name": "  " })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("display_name"),
    );
    let (status, _) = patch(
        &app,
        "/me",
        &session,
        json!({ "display_name": "x".repeat(101) }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = patch(&app, "/me", &session, json!({ "email": "new@example.com" })).await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY);
    let (_, me) = get(&app, "/me", &session).await;
    assert_eq!(me["account"]["display_name"], "Grace");
    assert_eq!(me["account"]["email"], email);

    // Omitted leaves it, null clears it.
    let (_, me) = patch(&app, "/me", &session, json!({})).await;
    assert_eq!(me["account"]["display_name"], "Grace");
    let (status, me) = patch(&app, "/me", &session, json!({ "display_name": null })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["account"]["display_name"], Value::Null);

    let new_password = "a brand new passphrase";
    let (status, problem) = patch(
        &app,
        "/me",
        &session,
        json!({ "password": { "current": "not my password", "new": new_password } }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&problem, StatusCode::FORBIDDEN, None);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("current password"))
    );
    let (status, problem) = patch(
        &app,
        "/me",
        &session,
        json!({ "password": { "current": PASSWORD, "new": "short" } }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("password.new"),
    );
    let (status, _) = patch(
        &app,
        "/me",
        &session,
        json!({ "password": { "current": PASSWORD, "new": new_password, "confirm": new_password } }),
    )
    .await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(login(&app, email, PASSWORD).await.status(), StatusCode::OK);

    let (status, me) = patch(
        &app,
        "/me",
        &session,
        json!({
            "display_name": "Grace Hopper",
            "password": { "current": PASSWORD, "new": new_password },
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["account"]["display_name"], "Grace Hopper");
    assert_eq!(
        login(&app, email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, email, new_password).await.status(),
        StatusCode::OK
    );
    // The session that changed it goes on; the others end.
    assert_eq!(get(&app, "/me", &session).await.0, StatusCode::OK);
    assert_eq!(
        get(&app, "/me", &other_session).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Accounts are not organization-scoped: no organization event.
    assert_eq!(audit_count(&app, &org_id).await, events);
}

#[tokio::test]
async fn an_account_without_a_password_cannot_change_it() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let member = app.with_member(&org, Role::Contributor).await;
    // A session without a password: one the invitation page started.
    let session = super::session_for(&app, &member.account_id).await;
    let (status, problem) = patch(
        &app,
        "/me",
        &session,
        json!({ "password": { "current": "anything at all", "new": "a brand new passphrase" } }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&problem, StatusCode::CONFLICT, None);
    let account = AccountId::parse(member.account_id.as_str()).unwrap();
    let credentials = store::accounts::get_credentials(&app.store, None, &account)
        .await
        .expect("read")
        .expect("account");
    assert!(credentials.password_hash.is_none());
}

#[tokio::test]
async fn deleting_an_organization_deletes_its_projects() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let other = app.with_org_owner().await;
    create_project(&app, &org, &org.owner.token, "Gone").await;
    create_project(&app, &other, &other.owner.token, "Stays").await;
    let projects = app
        .store
        .database()
        .collection::<bson::Document>("projects");
    let count = |org: &OrgId| projects.count_documents(doc! { "org_id": org.as_str() });
    assert_eq!(count(&org.org_id).await.expect("count"), 1);

    let (status, body) = delete(&app, &format!("/orgs/{}", org.org_id), &org.owner.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(count(&org.org_id).await.expect("count"), 0);
    assert_eq!(count(&other.org_id).await.expect("count"), 1);
}
