//! Members: the last-owner rule (also under concurrency), suspension and
//! reactivation, tenant isolation, audit events, bad input.

use muster::domain::Role;
use muster::store;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::common::TestApp;
use super::{Cast, call, session_for};

async fn audit_count(app: &TestApp, org: &str) -> u64 {
    store::audit::count_for_org(&app.store, org)
        .await
        .expect("count audit events")
}

#[tokio::test]
async fn the_last_owner_cannot_be_downgraded_suspended_deactivated_removed_or_leave() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let org = cast.org();
    let owner = &cast.org.owner;
    let me = format!("/orgs/{org}/members/{}", owner.member_id);
    let before = audit_count(&app, &org).await;
    for body in [
        json!({ "role": "admin" }),
        json!({ "status": "suspended" }),
        json!({ "status": "inactive" }),
    ] {
        let answer = call(&app, Method::PATCH, &me, Some(&owner.token), Some(&body)).await;
        assert_eq!(
            answer.status,
            StatusCode::CONFLICT,
            "{body}: {}",
            answer.body
        );
        assert_eq!(answer.body["type"], "urn:muster:problem:last-owner");
        assert!(
            answer.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("promote another member to owner first")),
            "{}",
            answer.body
        );
    }
    let removed = call(&app, Method::DELETE, &me, Some(&owner.token), None).await;
    assert_eq!(removed.status, StatusCode::CONFLICT);
    let left = call(
        &app,
        Method::POST,
        &format!("/orgs/{org}/leave"),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(left.status, StatusCode::CONFLICT);
    assert_eq!(audit_count(&app, &org).await, before, "nothing was written");

    // The single owner is warned; promoting a second owner lifts the
    // warning and lets the first one step down.
    let org_view = call(
        &app,
        Method::GET,
        &format!("/orgs/{org}"),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(org_view.body["warnings"].as_array().map(Vec::len), Some(1));
    let promote = format!("/orgs/{org}/members/{}", cast.admin.member_id);
    let promoted = call(
        &app,
        Method::PATCH,
        &promote,
        Some(&owner.token),
        Some(&json!({ "role": "owner" })),
    )
    .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(promoted.body["role"], "owner");
    let org_view = call(
        &app,
        Method::GET,
        &format!("/orgs/{org}"),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(org_view.body["warnings"], json!([]));
    let stepped_down = call(
        &app,
        Method::PATCH,
        &me,
        Some(&owner.token),
        Some(&json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(stepped_down.status, StatusCode::OK, "{}", stepped_down.body);
    assert_eq!(
        audit_count(&app, &org).await,
        before + 2,
        "one event per change"
    );
}

#[tokio::test]
async fn two_owners_stepping_down_at_once_cannot_both_succeed() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        let cast = Cast::new(&app).await;
        let org = cast.org();
        let second = app.with_member(&cast.org, Role::Owner).await;
        let first = &cast.org.owner;
        let demote = |member: &muster::domain::MemberId| format!("/orgs/{org}/members/{member}");
        let body = json!({ "role": "admin" });
        let (first_path, second_path) = (demote(&first.member_id), demote(&second.member_id));
        let (a, b) = tokio::join!(
            call(
                &app,
                Method::PATCH,
                &first_path,
                Some(&first.token),
                Some(&body)
            ),
            call(
                &app,
                Method::PATCH,
                &second_path,
                Some(&second.token),
                Some(&body)
            ),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
        let owners = store::members::count_active_owners(&app.store, None, &cast.org.org_id)
            .await
            .expect("count owners");
        assert_eq!(owners, 1);
    }
}

#[tokio::test]
async fn admins_manage_non_owners_and_only_owners_touch_owners() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let org = cast.org();
    let admin = Some(cast.admin.token.as_str());
    let owner_path = format!("/orgs/{org}/members/{}", cast.org.owner.member_id);
    let viewer_path = format!("/orgs/{org}/members/{}", cast.viewer.member_id);
    for body in [json!({ "role": "admin" }), json!({ "status": "suspended" })] {
        let answer = call(&app, Method::PATCH, &owner_path, admin, Some(&body)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{body}");
    }
    let grant = call(
        &app,
        Method::PATCH,
        &viewer_path,
        admin,
        Some(&json!({ "role": "owner" })),
    )
    .await;
    assert_eq!(grant.status, StatusCode::FORBIDDEN);
    assert!(
        grant.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("only an owner"))
    );
    let removed = call(&app, Method::DELETE, &owner_path, admin, None).await;
    assert_eq!(removed.status, StatusCode::FORBIDDEN);
    // Contributors and viewers may not leave on their own.
    let left = call(
        &app,
        Method::POST,
        &format!("/orgs/{org}/leave"),
        Some(&cast.viewer.token),
        None,
    )
    .await;
    assert_eq!(left.status, StatusCode::FORBIDDEN);
    assert!(
        left.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("owners and admins"))
    );
}

#[tokio::test]
async fn suspension_stops_sessions_and_tokens_at_once_and_its_end_restores_them() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let org = cast.org();
    let member = &cast.contributor;
    let session = session_for(&app, &member.account_id).await;
    let path = format!("/orgs/{org}/members/{}", member.member_id);
    let org_path = format!("/orgs/{org}");
    assert_eq!(
        call(&app, Method::GET, &org_path, Some(&session), None)
            .await
            .status,
        StatusCode::OK
    );

    let until = chrono::Utc::now() + chrono::Duration::seconds(2);
    let suspended = call(
        &app,
        Method::PATCH,
        &path,
        Some(&cast.admin.token),
        Some(&json!({ "status": "suspended", "suspended_until": until })),
    )
    .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    assert_eq!(suspended.body["status"], "suspended");
    assert_eq!(
        call(&app, Method::GET, &org_path, Some(&session), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, Method::GET, &org_path, Some(&member.token), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // The suspension lifts by itself at its end.
    super::common::eventually(
        std::time::Duration::from_secs(10),
        "the suspension ends",
        || async {
            let answer = call(&app, Method::GET, &org_path, Some(&member.token), None).await;
            (answer.status == StatusCode::OK).then_some(())
        },
    )
    .await;

    // Deactivated, then reactivated by an admin.
    let off = call(
        &app,
        Method::PATCH,
        &path,
        Some(&cast.admin.token),
        Some(&json!({ "status": "inactive" })),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(
        call(&app, Method::GET, &org_path, Some(&session), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let on = call(
        &app,
        Method::PATCH,
        &path,
        Some(&cast.admin.token),
        Some(&json!({ "status": "active" })),
    )
    .await;
    assert_eq!(on.status, StatusCode::OK);
    assert_eq!(
        call(&app, Method::GET, &org_path, Some(&session), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Method::GET, &org_path, Some(&member.token), None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_member_changes_name_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let org = cast.org();
    let path = format!("/orgs/{org}/members/{}", cast.viewer.member_id);
    let owner = Some(cast.org.owner.token.as_str());
    let before = audit_count(&app, &org).await;
    for (body, status, field) in [
        (json!({ "role": "superuser" }), 422, Some("role")),
        (json!({ "status": "sleeping" }), 422, Some("status")),
        (
            json!({ "suspended_until": "2030-01-01T00:00:00Z" }),
            422,
            Some("suspended_until"),
        ),
        (
            json!({ "status": "suspended", "suspended_until": "2001-01-01T00:00:00Z" }),
            422,
            Some("suspended_until"),
        ),
        (
            json!({ "project_rights": [{ "project_id": "nope", "rights": ["read"] }] }),
            422,
            Some("project_rights[0].project_id"),
        ),
        // A number is not a string, whatever it would parse to.
        (json!({ "role": 7 }), 400, None),
        (json!({ "status": ["active"] }), 400, None),
        (json!({ "colour": "blue" }), 400, None),
    ] {
        let answer = call(&app, Method::PATCH, &path, owner, Some(&body)).await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", answer.body);
        if let Some(field) = field {
            assert_eq!(answer.body["field"], field, "{body}");
        }
    }
    assert_eq!(audit_count(&app, &org).await, before);
    let member = call(&app, Method::GET, &path, owner, None).await;
    assert_eq!(member.body["role"], "viewer");
    assert_eq!(member.body["status"], "active");
}

#[tokio::test]
async fn member_lists_filter_search_and_page() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let org = cast.org();
    let owner = Some(cast.org.owner.token.as_str());
    for _ in 0..3 {
        app.with_member(&cast.org, Role::Viewer).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/orgs/{org}/members?limit=2");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = call(&app, Method::GET, &path, owner, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages += 1;
        for item in page.body["items"].as_array().expect("items") {
            seen.push(item["id"].as_str().expect("id").to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    // Owner, admin, contributor, viewer, suspended, three more viewers.
    assert_eq!(seen.len(), 8);
    assert_eq!(pages, 4);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique, seen, "no member twice, in id order");

    let viewers = call(
        &app,
        Method::GET,
        &format!("/orgs/{org}/members?role=viewer"),
        owner,
        None,
    )
    .await;
    assert_eq!(viewers.body["items"].as_array().map(Vec::len), Some(4));
    let suspended = call(
        &app,
        Method::GET,
        &format!("/orgs/{org}/members?status=suspended"),
        owner,
        None,
    )
    .await;
    assert_eq!(suspended.body["items"].as_array().map(Vec::len), Some(1));
    let admin_email = &cast.admin.email;
    let found = call(
        &app,
        Method::GET,
        &format!(
            "/orgs/{org}/members?q={}",
            &admin_email[..12].to_uppercase()
        ),
        owner,
        None,
    )
    .await;
    let items = found.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", found.body);
    assert_eq!(items[0]["email"], admin_email.as_str());
    let bad = call(
        &app,
        Method::GET,
        &format!("/orgs/{org}/members?role=boss"),
        owner,
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["field"], "role");
}
