//! The console's members pages over HTTP: the table's filters, search and
//! paging, and the member page's forms, each checked against what the API
//! answers for the same member afterwards.

use super::{Browser, client, owner_in_console};
use crate::common::{MemberFixture, OrgFixture, TestApp};

use chrono::Utc;
use muster::domain::Role;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

fn members_path(org: &OrgFixture) -> String {
    format!("/console/orgs/{}/members", org.org_id)
}

fn member_path(org: &OrgFixture, member: &MemberFixture) -> String {
    format!("/console/orgs/{}/members/{}", org.org_id, member.member_id)
}

/// The member as `GET /orgs/{org}/members/{member}` shows it to the owner.
async fn api_member(
    app: &TestApp,
    org: &OrgFixture,
    member: &MemberFixture,
) -> (StatusCode, Value) {
    app.call(
        reqwest::Method::GET,
        &format!("/orgs/{}/members/{}", org.org_id, member.member_id),
        &org.owner.token,
        None,
    )
    .await
}

async fn api_role(app: &TestApp, org: &OrgFixture, member: &MemberFixture) -> String {
    let (status, body) = api_member(app, org, member).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["role"].as_str().expect("a role").to_owned()
}

/// Text as the pages' templates escape it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// The text of the page's `<p class="error" role="alert">`.
fn alert(page: &str) -> Option<&str> {
    let start = page.find("class=\"error\" role=\"alert\"")?;
    let rest = &page[start..];
    let text = &rest[rest.find('>')? + 1..];
    Some(&text[..text.find("</p>")?])
}

/// The table's rows (each links its member's name).
fn rows(page: &str) -> usize {
    page.matches("<tr><td><a href=").count()
}

/// A link's target, as the browser would follow it.
fn link(page: &str, text: &str) -> Option<String> {
    let end = page.find(&format!(">{text}</a>"))?;
    let anchor = &page[page[..end].rfind("<a ")?..end];
    let start = anchor.find("href=\"")? + "href=\"".len();
    let href = &anchor[start..];
    // Attribute values as the templates escape them.
    Some(
        href[..href.find('"')?]
            .replace("&#x2f;", "/")
            .replace("&amp;", "&"),
    )
}

/// An instant the API answered, whichever way it writes UTC.
fn instant(value: &Value) -> Option<chrono::DateTime<Utc>> {
    chrono::DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[tokio::test]
async fn console_members_table_searches_filters_and_pages_with_the_api_cursor() {
    let app = TestApp::spawn().await;
    let (browser, org, owner_email) = owner_in_console(&app).await;
    let mut viewers = Vec::new();
    // One more than the smallest page, so the viewers take two pages.
    for _ in 0..26 {
        viewers.push(app.with_member(&org, Role::Viewer).await);
    }
    let admin = app.with_member(&org, Role::Admin).await;
    let members = members_path(&org);

    let first = browser
        .page(&format!("{members}?role=viewer&limit=25"), StatusCode::OK)
        .await;
    assert_eq!(rows(&first), 25, "{first}");
    assert!(!first.contains(&admin.email) && !first.contains(&owner_email));
    assert!(
        first.contains("<option value=\"viewer\" selected>"),
        "{first}"
    );
    assert!(
        !first.contains(">First page</a>"),
        "no way back on the first page"
    );
    let next = link(&first, "Next page").expect("a next page link");
    assert!(
        next.contains("role=viewer") && next.contains("limit=25"),
        "{next}"
    );
    assert!(next.contains("cursor="), "{next}");

    let second = browser.page(&next, StatusCode::OK).await;
    assert_eq!(rows(&second), 1, "{second}");
    assert!(!second.contains(">Next page</a>"), "{second}");
    let back = link(&second, "First page").expect("a first page link");
    assert_eq!(back, format!("{members}?role=viewer&limit=25"));
    // Both pages together: every viewer once.
    for viewer in &viewers {
        let shown = [&first, &second]
            .iter()
            .filter(|page| page.contains(&viewer.email))
            .count();
        assert_eq!(shown, 1, "{}", viewer.email);
    }

    let admins = browser
        .page(&format!("{members}?role=admin&status="), StatusCode::OK)
        .await;
    assert_eq!(rows(&admins), 1, "{admins}");
    assert!(admins.contains(&admin.email));
    assert!(
        admins.contains("admin <span class=\"source\">(direct)</span>"),
        "{admins}"
    );

    let local = admin.email.split('@').next().expect("a local part");
    let found = browser
        .page(&format!("{members}?q={local}"), StatusCode::OK)
        .await;
    assert_eq!(rows(&found), 1, "{found}");
    assert!(found.contains(&admin.email));
    assert!(found.contains("Clear the filters"), "{found}");

    let none = browser
        .page(&format!("{members}?status=suspended"), StatusCode::OK)
        .await;
    assert_eq!(rows(&none), 0, "{none}");
    assert!(none.contains("No member matches these filters"), "{none}");
    assert!(none.contains("clear the filters</a>"), "{none}");

    // A filter the API refuses is refused the same way.
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/members?role=emperor", org.org_id),
            &org.owner.token,
            None,
        )
        .await;
    assert_eq!(
        browser
            .get(&format!("{members}?role=emperor"))
            .await
            .status(),
        status
    );
    app.shutdown().await;
}

#[tokio::test]
async fn console_role_and_rights_changes_are_what_the_api_then_shows() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    let path = member_path(&org, &viewer);

    let page = browser.page(&path, StatusCode::OK).await;
    assert!(page.contains(&viewer.email), "{page}");
    assert!(page.contains("<label for=\"new-role\">"), "{page}");

    let changed = browser
        .submit(&format!("{path}/role"), &[("role", "contributor")])
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(changed.headers()[LOCATION], format!("{path}?done=role"));
    let page = browser
        .page(&format!("{path}?done=role"), StatusCode::OK)
        .await;
    assert!(
        page.contains("<p class=\"notice\" role=\"status\">The role was changed.</p>"),
        "{page}"
    );
    assert_eq!(api_role(&app, &org, &viewer).await, "contributor");

    // Project rights: the checkboxes become the API's project_rights.
    let (status, project) = app
        .call(
            reqwest::Method::POST,
            &format!("/orgs/{}/projects", org.org_id),
            &org.owner.token,
            Some(json!({ "name": "Apollo" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let project_id = project["id"].as_str().expect("an id");
    let page = browser.page(&path, StatusCode::OK).await;
    assert!(page.contains("<legend>Apollo</legend>"), "{page}");
    let read = format!("{project_id}:read");
    let write = format!("{project_id}:write");
    let saved = browser
        .submit(
            &format!("{path}/rights"),
            &[("right", read.as_str()), ("right", write.as_str())],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, member) = api_member(&app, &org, &viewer).await;
    assert_eq!(
        member["project_rights"],
        json!([{ "project_id": project_id, "rights": ["read", "write"] }])
    );
    let page = browser.page(&path, StatusCode::OK).await;
    assert!(page.contains("Apollo: read, write"), "{page}");

    // A right the API does not know is refused with its reason; nothing changes.
    let bogus = format!("{project_id}:fly");
    let refused = browser
        .submit(&format!("{path}/rights"), &[("right", bogus.as_str())])
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.expect("a page");
    assert!(
        alert(&page).is_some_and(|a| a.contains("unknown right")),
        "{page}"
    );
    let (_, after) = api_member(&app, &org, &viewer).await;
    assert_eq!(after["project_rights"], member["project_rights"]);
    app.shutdown().await;
}

#[tokio::test]
async fn console_suspension_until_a_date_is_the_api_s_suspension() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let member = app.with_member(&org, Role::Contributor).await;
    let path = member_path(&org, &member);

    let suspended = browser
        .submit(
            &format!("{path}/status"),
            &[
                ("status", "suspended"),
                ("suspended_until", "2030-01-31T09:30"),
            ],
        )
        .await;
    assert_eq!(suspended.status(), StatusCode::SEE_OTHER);
    assert_eq!(suspended.headers()[LOCATION], format!("{path}?done=status"));
    let (_, view) = api_member(&app, &org, &member).await;
    assert_eq!(view["status"], "suspended");
    let until = "2030-01-31T09:30:00Z".parse::<chrono::DateTime<Utc>>().ok();
    assert_eq!(instant(&view["suspended_until"]), until, "{view}");

    let page = browser
        .page(&format!("{path}?done=status"), StatusCode::OK)
        .await;
    assert!(page.contains("The status was changed."), "{page}");
    assert!(
        page.contains("until <time datetime=\"2030-01-31T09:30:00Z\">2030-01-31 09:30 UTC</time>"),
        "{page}"
    );
    let table = browser.page(&members_path(&org), StatusCode::OK).await;
    assert!(
        table.contains("<time datetime=\"2030-01-31T09:30:00Z\">"),
        "{table}"
    );

    // An end in the past is the use case's refusal, shown at the form.
    let past = browser
        .submit(
            &format!("{path}/status"),
            &[
                ("status", "suspended"),
                ("suspended_until", "2001-01-01T00:00"),
            ],
        )
        .await;
    assert_eq!(past.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = past.text().await.expect("a page");
    assert!(page.contains("id=\"status-error\""), "{page}");
    let (_, unchanged) = api_member(&app, &org, &member).await;
    assert_eq!(instant(&unchanged["suspended_until"]), until);

    // Back to active: the end goes with the suspension.
    let active = browser
        .submit(
            &format!("{path}/status"),
            &[("status", "active"), ("suspended_until", "")],
        )
        .await;
    assert_eq!(active.status(), StatusCode::SEE_OTHER);
    let (_, view) = api_member(&app, &org, &member).await;
    assert_eq!(view["status"], "active");
    assert!(
        view.get("suspended_until").is_none_or(Value::is_null),
        "{view}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn console_an_admin_is_refused_the_owner_role_with_the_api_s_reason() {
    let app = TestApp::spawn().await;
    let (_, org, _) = owner_in_console(&app).await;
    let admin = app.member_with_password(&org, Role::Admin).await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    let browser = Browser::signed_in(&app, &admin.email).await;
    let path = member_path(&org, &viewer);

    let refused = browser
        .submit(&format!("{path}/role"), &[("role", "owner")])
        .await;
    let (api_status, problem) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/orgs/{}/members/{}", org.org_id, viewer.member_id),
            &admin.token,
            Some(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(api_status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(refused.status(), api_status);
    let page = refused.text().await.expect("a page");
    let reason = problem["detail"].as_str().expect("a reason");
    assert_eq!(alert(&page), Some(escaped(reason).as_str()), "{page}");
    assert!(
        page.contains("id=\"role-error\""),
        "next to the role form: {page}"
    );
    assert_eq!(api_role(&app, &org, &viewer).await, "viewer");

    // The admin may still change what admins may change.
    let changed = browser
        .submit(&format!("{path}/role"), &[("role", "contributor")])
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(api_role(&app, &org, &viewer).await, "contributor");
    app.shutdown().await;
}

#[tokio::test]
async fn console_the_last_owner_is_neither_demoted_nor_removed() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let path = member_path(&org, &org.owner);

    let demoted = browser
        .submit(&format!("{path}/role"), &[("role", "admin")])
        .await;
    assert_eq!(demoted.status(), StatusCode::CONFLICT);
    let page = demoted.text().await.expect("a page");
    assert!(
        alert(&page).is_some_and(|a| a.contains("last active owner")),
        "{page}"
    );

    let removed = browser
        .submit(&format!("{path}/remove"), &[("confirm", "yes")])
        .await;
    assert_eq!(removed.status(), StatusCode::CONFLICT);
    let page = removed.text().await.expect("a page");
    assert!(page.contains("id=\"remove-error\""), "{page}");
    assert!(
        alert(&page).is_some_and(|a| a.contains("last active owner")),
        "{page}"
    );
    assert_eq!(api_role(&app, &org, &org.owner).await, "owner");

    // Removing someone else takes the confirmation, then works.
    let viewer = app.with_member(&org, Role::Viewer).await;
    let viewer_path = member_path(&org, &viewer);
    let unconfirmed = browser.submit(&format!("{viewer_path}/remove"), &[]).await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api_member(&app, &org, &viewer).await.0, StatusCode::OK);
    let gone = browser
        .submit(&format!("{viewer_path}/remove"), &[("confirm", "yes")])
        .await;
    assert_eq!(gone.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        gone.headers()[LOCATION],
        format!("{}?done=removed", members_path(&org))
    );
    assert_eq!(
        api_member(&app, &org, &viewer).await.0,
        StatusCode::NOT_FOUND
    );
    let table = browser
        .page(
            &format!("{}?done=removed", members_path(&org)),
            StatusCode::OK,
        )
        .await;
    assert!(table.contains("The member was removed."), "{table}");
    app.shutdown().await;
}

#[tokio::test]
async fn console_member_forms_without_the_token_or_from_another_origin_change_nothing() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    let path = format!("{}/role", member_path(&org, &viewer));
    let origin = app.settings.http.public_url.clone();
    let token = browser.session_token().await;

    for (form, origin) in [
        (vec![("role", "admin")], Some(origin.as_str())),
        (
            vec![("role", "admin"), ("csrf", "0".repeat(64).as_str())],
            Some(origin.as_str()),
        ),
        (
            vec![("role", "admin"), ("csrf", token.as_str())],
            Some("https://evil.example"),
        ),
    ] {
        let refused = browser.post(&path, &form, origin).await;
        assert_eq!(
            refused.status(),
            StatusCode::FORBIDDEN,
            "{form:?} {origin:?}"
        );
    }
    let remove = format!("{}/remove", member_path(&org, &viewer));
    let refused = browser
        .post(&remove, &[("confirm", "yes")], Some(&origin))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(api_role(&app, &org, &viewer).await, "viewer");

    // Signed out, a form is a way to the sign-in page, not a change.
    let anonymous = client()
        .post(app.url(&path))
        .form(&[("role", "admin"), ("csrf", token.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(api_role(&app, &org, &viewer).await, "viewer");
    app.shutdown().await;
}

#[tokio::test]
async fn console_a_viewer_sees_no_forms_and_a_posted_change_is_refused() {
    let app = TestApp::spawn().await;
    let (_, org, _) = owner_in_console(&app).await;
    let viewer = app.member_with_password(&org, Role::Viewer).await;
    let other = app.with_member(&org, Role::Viewer).await;
    let browser = Browser::signed_in(&app, &viewer.email).await;
    let path = member_path(&org, &other);

    let page = browser.page(&path, StatusCode::OK).await;
    assert!(page.contains(&other.email), "{page}");
    assert!(
        !page.contains("/role\""),
        "no role form for a viewer: {page}"
    );
    assert!(
        !page.contains("/remove\""),
        "no remove form for a viewer: {page}"
    );

    let refused = browser
        .submit(&format!("{path}/role"), &[("role", "admin")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await.expect("a page");
    assert!(alert(&page).is_some(), "the reason is shown: {page}");
    let removed = browser
        .submit(&format!("{path}/remove"), &[("confirm", "yes")])
        .await;
    assert_eq!(removed.status(), StatusCode::FORBIDDEN);
    assert_eq!(api_role(&app, &org, &other).await, "viewer");
    app.shutdown().await;
}

#[tokio::test]
async fn console_member_page_of_another_org_s_member_is_not_found() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let elsewhere = app.with_org_owner().await;
    let stranger = app.with_member(&elsewhere, Role::Viewer).await;
    let path = format!(
        "/console/orgs/{}/members/{}",
        org.org_id, stranger.member_id
    );
    assert_eq!(browser.get(&path).await.status(), StatusCode::NOT_FOUND);
    let refused = browser
        .submit(&format!("{path}/role"), &[("role", "admin")])
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(api_role(&app, &elsewhere, &stranger).await, "viewer");
    app.shutdown().await;
}

#[tokio::test]
async fn console_shows_a_role_held_through_a_group_and_the_member_s_groups() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let viewer = app.with_member(&org, Role::Viewer).await;
    let (status, group) = app
        .call(
            reqwest::Method::POST,
            &format!("/orgs/{}/groups", org.org_id),
            &org.owner.token,
            Some(json!({ "display_name": "Release managers", "members": [viewer.member_id.to_string()] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let group_id = group["id"].as_str().expect("an id");
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("/orgs/{}/groups/{group_id}/role-mapping", org.org_id),
            &org.owner.token,
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let table = browser.page(&members_path(&org), StatusCode::OK).await;
    assert!(
        table.contains("admin <span class=\"source\">(via group Release managers)</span>"),
        "{table}"
    );
    let page = browser
        .page(&member_path(&org, &viewer), StatusCode::OK)
        .await;
    assert!(page.contains("<li>Direct role: viewer</li>"), "{page}");
    assert!(
        page.contains("<li>Via group Release managers: admin</li>"),
        "{page}"
    );
    assert!(
        page.contains("<dt>Groups</dt><dd>Release managers</dd>"),
        "{page}"
    );
    app.shutdown().await;
}

/// A sign-in (the console's, as the API's) is noted on every membership
/// of the account: the API's member view and both pages show it, and a
/// member who never signed in reads "never".
#[tokio::test]
async fn console_shows_when_a_member_last_signed_in() {
    let app = TestApp::spawn().await;
    let (_, org, _) = owner_in_console(&app).await;
    let admin = app.member_with_password(&org, Role::Admin).await;
    let (status, before) = api_member(&app, &org, &admin).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert!(before.get("last_sign_in_at").is_none(), "{before}");
    let started = Utc::now();

    let browser = Browser::signed_in(&app, &admin.email).await;
    let (_, after) = api_member(&app, &org, &admin).await;
    let at: chrono::DateTime<Utc> = after["last_sign_in_at"]
        .as_str()
        .and_then(|at| at.parse().ok())
        .unwrap_or_else(|| panic!("a sign-in time in {after}"));
    assert!(at >= started - chrono::Duration::seconds(1), "{at}");
    // Not a change of the SCIM resource.
    assert_eq!(after["updated_at"], before["updated_at"]);

    let page = browser
        .page(&member_path(&org, &admin), StatusCode::OK)
        .await;
    assert!(page.contains("<dt>Last sign-in</dt><dd><time"), "{page}");
    let never = app.with_member(&org, Role::Viewer).await;
    let table = browser.page(&members_path(&org), StatusCode::OK).await;
    assert!(
        table.contains("<th scope=\"col\">Last sign-in</th>"),
        "{table}"
    );
    let row = table
        .split("<tr>")
        .find(|row| row.contains(&never.email))
        .expect("the new member's row");
    assert!(row.contains("<td>never</td>"), "{row}");
    app.shutdown().await;
}
