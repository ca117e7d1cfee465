//! The console's groups, projects and settings pages over HTTP: each form
//! runs the API's operation, so what it changes is what the API then
//! shows, and what it refuses it refuses with the API's status and reason,
//! changing nothing.

use super::{Browser, api_session, owner_in_console};
use crate::common::TestApp;

use muster::domain::Role;
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The path a 303 points to, checked to start with `prefix`.
fn redirected(response: &reqwest::Response, prefix: &str) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a redirect");
    let to = response.headers()[LOCATION]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(to.starts_with(prefix), "{to} starts with {prefix}");
    to
}

async fn api(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, body) = app.call(method, path, token, body).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// A refusal shown in a page: its status, and the alert's text present.
async fn refused(response: reqwest::Response, status: StatusCode, reason: &str) -> String {
    assert_eq!(response.status(), status);
    let page = response.text().await.expect("a page");
    assert!(page.contains("class=\"error\" role=\"alert\""), "{page}");
    assert!(page.contains(reason), "{reason} in {page}");
    page
}

#[tokio::test]
async fn console_group_mapped_to_a_role_raises_its_members_role_in_the_api() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let member = app.with_member(&org, Role::Viewer).await;
    let owner = &org.owner.token;
    let groups = format!("/console/orgs/{}/groups", org.org_id);

    let empty = browser.page(&groups, StatusCode::OK).await;
    assert!(empty.contains("has no groups yet"), "{empty}");
    // A cursor the API does not take: its 422, as a page.
    let bad = browser
        .page(
            &format!("{groups}?cursor=nope"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert!(bad.contains("not a cursor"), "{bad}");

    let created = browser
        .submit(&groups, &[("display_name", "Engineering")])
        .await;
    let to = redirected(&created, &format!("{groups}/"));
    assert!(to.ends_with("?done=group-created"), "{to}");
    let group_id = to
        .trim_start_matches(&format!("{groups}/"))
        .trim_end_matches("?done=group-created")
        .to_owned();
    let page = browser.page(&to, StatusCode::OK).await;
    assert!(
        page.contains("<p class=\"notice\" role=\"status\">"),
        "{page}"
    );

    let group = format!("{groups}/{group_id}");
    let mapped = browser
        .submit(&format!("{group}/role-mapping"), &[("role", "admin")])
        .await;
    assert_eq!(
        redirected(&mapped, &group),
        format!("{group}?done=role-mapped")
    );
    let added = browser
        .submit(
            &format!("{group}/members"),
            &[("member", member.member_id.as_str()), ("action", "add")],
        )
        .await;
    assert_eq!(
        redirected(&added, &group),
        format!("{group}?done=member-added")
    );

    // The API sees the group's mapping and the member's raised role.
    let seen = api(
        &app,
        owner,
        Method::GET,
        &format!("/orgs/{}/groups/{group_id}", org.org_id),
        None,
    )
    .await;
    assert_eq!(seen["role_mapping"]["role"], "admin");
    assert_eq!(seen["member_count"], 1);
    let seen = api(
        &app,
        owner,
        Method::GET,
        &format!("/orgs/{}/members/{}", org.org_id, member.member_id),
        None,
    )
    .await;
    assert_eq!(seen["direct_role"], "viewer");
    assert_eq!(seen["role"], "admin", "{seen}");
    assert_eq!(seen["group_roles"][0]["group_id"], group_id.as_str());

    // The pages show it too.
    let list = browser.page(&groups, StatusCode::OK).await;
    assert!(list.contains("Engineering"), "{list}");
    assert!(list.contains("<td>admin</td>"), "{list}");
    let page = browser.page(&group, StatusCode::OK).await;
    assert!(
        page.contains(&format!(
            "href=\"/console/orgs/{}/members/{}\"",
            org.org_id, member.member_id
        )),
        "{page}"
    );
    assert!(page.contains(&member.email), "{page}");

    // Removing the member and clearing the mapping undo it.
    let removed = browser
        .submit(
            &format!("{group}/members"),
            &[("member", member.member_id.as_str()), ("action", "remove")],
        )
        .await;
    redirected(&removed, &format!("{group}?done=member-removed"));
    let cleared = browser
        .submit(&format!("{group}/role-mapping"), &[("clear", "1")])
        .await;
    redirected(&cleared, &format!("{group}?done=mapping-cleared"));
    let seen = api(
        &app,
        owner,
        Method::GET,
        &format!("/orgs/{}/members/{}", org.org_id, member.member_id),
        None,
    )
    .await;
    assert_eq!(seen["role"], "viewer");
    app.shutdown().await;
}

#[tokio::test]
async fn console_group_page_lists_its_members_a_page_at_a_time_as_the_api_does() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let owner = &org.owner.token;
    let mut in_group = [
        app.with_member(&org, Role::Viewer).await,
        app.with_member(&org, Role::Contributor).await,
    ];
    // Pages run in member id order.
    in_group.sort_by(|a, b| a.member_id.as_str().cmp(b.member_id.as_str()));
    let outside = app.with_member(&org, Role::Viewer).await;
    let groups = format!("/orgs/{}/groups", org.org_id);
    let made = |name: &str, members: Vec<String>| {
        api(
            &app,
            owner,
            Method::POST,
            &groups,
            Some(json!({ "display_name": name, "members": members })),
        )
    };
    let group = made(
        "Support",
        in_group.iter().map(|m| m.member_id.to_string()).collect(),
    )
    .await;
    let group_id = group["id"].as_str().expect("an id");
    let page_path = format!("/console/orgs/{}/groups/{group_id}", org.org_id);
    let link = |member: &muster::domain::MemberId| {
        format!("href=\"/console/orgs/{}/members/{member}\"", org.org_id)
    };

    // Both members, each linked to their page, with email and status.
    let page = browser.page(&page_path, StatusCode::OK).await;
    assert!(
        page.contains("aria-label=\"Members of the group\""),
        "{page}"
    );
    for member in &in_group {
        assert!(page.contains(&link(&member.member_id)), "{page}");
        assert!(page.contains(&member.email), "{page}");
    }
    assert!(page.contains("<td>active</td>"), "{page}");
    // The form offers the organization's members; the table only the
    // group's.
    assert!(!page.contains(&link(&outside.member_id)), "{page}");
    assert!(!page.contains("rel=\"next\""), "one page: {page}");

    // The API's cursor: after the first member, the second alone, with a
    // way back to the first page.
    let later = browser
        .page(
            &format!("{page_path}?cursor={}", in_group[0].member_id),
            StatusCode::OK,
        )
        .await;
    assert!(!later.contains(&link(&in_group[0].member_id)), "{later}");
    assert!(later.contains(&link(&in_group[1].member_id)), "{later}");
    assert!(later.contains(">First page</a>"), "{later}");
    let bad = browser
        .page(
            &format!("{page_path}?cursor=nope"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert!(bad.contains("not a cursor"), "{bad}");

    // A group without members says so.
    let empty = made("Nobody", Vec::new()).await;
    let empty = browser
        .page(
            &format!(
                "/console/orgs/{}/groups/{}",
                org.org_id,
                empty["id"].as_str().expect("an id")
            ),
            StatusCode::OK,
        )
        .await;
    assert!(empty.contains("This group has no members yet"), "{empty}");
    app.shutdown().await;
}

#[tokio::test]
async fn console_refuses_an_admin_mapping_a_group_to_owner_as_the_api_does() {
    let app = TestApp::spawn().await;
    let (_, org, _) = owner_in_console(&app).await;
    let admin = app.member_with_password(&org, Role::Admin).await;
    let browser = Browser::signed_in(&app, &admin.email).await;
    let created = api(
        &app,
        &org.owner.token,
        Method::POST,
        &format!("/orgs/{}/groups", org.org_id),
        Some(json!({ "display_name": "Founders" })),
    )
    .await;
    let group_id = created["id"].as_str().expect("an id");
    let api_path = format!("/orgs/{}/groups/{group_id}", org.org_id);

    let (api_status, api_body) = app
        .call(
            Method::PUT,
            &format!("{api_path}/role-mapping"),
            &admin.token,
            Some(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(api_status, StatusCode::FORBIDDEN, "{api_body}");
    let reason = api_body["detail"].as_str().expect("a detail");

    let console = browser
        .submit(
            &format!(
                "/console/orgs/{}/groups/{group_id}/role-mapping",
                org.org_id
            ),
            &[("role", "owner")],
        )
        .await;
    let page = refused(console, api_status, &minijinja_escaped(reason)).await;
    assert!(page.contains("id=\"mapping-error\""), "next to its form");

    let seen = api(&app, &org.owner.token, Method::GET, &api_path, None).await;
    assert!(seen.get("role_mapping").is_none(), "unchanged: {seen}");
    app.shutdown().await;
}

/// `text` as the console's HTML shows it (minijinja's escaping).
fn minijinja_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

#[tokio::test]
async fn console_projects_created_and_renamed_are_what_the_api_lists() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let projects = format!("/console/orgs/{}/projects", org.org_id);
    let api_list = format!("/orgs/{}/projects", org.org_id);

    let empty = browser.page(&projects, StatusCode::OK).await;
    assert!(empty.contains("no projects you can read yet"), "{empty}");
    let created = browser.submit(&projects, &[("name", "Website")]).await;
    assert_eq!(
        redirected(&created, &projects),
        format!("{projects}?done=project-created")
    );
    let listed = api(&app, &org.owner.token, Method::GET, &api_list, None).await;
    assert_eq!(listed["items"][0]["name"], "Website");
    let project_id = listed["items"][0]["id"].as_str().expect("an id").to_owned();

    let renamed = browser
        .submit(
            &format!("{projects}/{project_id}/rename"),
            &[("name", "Website 2027")],
        )
        .await;
    redirected(&renamed, &format!("{projects}?done=project-renamed"));
    let seen = api(
        &app,
        &org.owner.token,
        Method::GET,
        &format!("{api_list}/{project_id}"),
        None,
    )
    .await;
    assert_eq!(seen["name"], "Website 2027");

    // A second project of the same name: the API's 409, in the page.
    let taken = browser.submit(&projects, &[("name", "website 2027")]).await;
    refused(taken, StatusCode::CONFLICT, "").await;
    let listed = api(&app, &org.owner.token, Method::GET, &api_list, None).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));

    let deleted = browser
        .submit(&format!("{projects}/{project_id}/delete"), &[])
        .await;
    redirected(&deleted, &format!("{projects}?done=project-deleted"));
    let listed = api(&app, &org.owner.token, Method::GET, &api_list, None).await;
    assert_eq!(listed["items"], json!([]));
    app.shutdown().await;
}

/// The settings form's fields as the page shows them for `org` (from the
/// API), with `changes` applied; a checkbox is sent only when checked.
fn settings_form(org: &Value, changes: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let settings = &org["settings"];
    let domains: Vec<&str> = settings["allowed_email_domains"]
        .as_array()
        .expect("domains")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut fields = vec![
        ("name", org["name"].as_str().expect("a name").to_owned()),
        (
            "invitation_ttl_days",
            settings["invitation_ttl_days"].to_string(),
        ),
        (
            "audit_retention_days",
            settings["audit_retention_days"].to_string(),
        ),
        ("allowed_email_domains", domains.join("\n")),
    ];
    for check in ["scim_activation_emails", "require_mfa"] {
        if settings[check] == json!(true) {
            fields.push((check, "on".to_owned()));
        }
    }
    for (name, value) in changes {
        fields.retain(|(field, _)| field != name);
        if !value.is_empty() {
            fields.push((name, (*value).to_owned()));
        }
    }
    fields
}

fn as_form<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn console_settings_are_changed_through_the_api_and_refused_as_it_refuses() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let owner = &org.owner.token;
    let api_org = format!("/orgs/{}", org.org_id);
    let settings = format!("/console/orgs/{}/settings", org.org_id);
    let before = api(&app, owner, Method::GET, &api_org, None).await;

    let page = browser.page(&settings, StatusCode::OK).await;
    assert!(
        page.contains("<label for=\"allowed_email_domains\">"),
        "{page}"
    );
    let form = settings_form(
        &before,
        &[
            ("allowed_email_domains", "acme.example\r\nexample.org"),
            ("invitation_ttl_days", "14"),
            ("scim_activation_emails", ""),
        ],
    );
    let saved = browser.submit(&settings, &as_form(&form)).await;
    assert_eq!(
        redirected(&saved, &settings),
        format!("{settings}?done=settings-saved")
    );
    let after = api(&app, owner, Method::GET, &api_org, None).await;
    assert_eq!(
        after["settings"]["allowed_email_domains"],
        json!(["acme.example", "example.org"])
    );
    assert_eq!(after["settings"]["invitation_ttl_days"], 14);
    assert_eq!(after["settings"]["scim_activation_emails"], false);
    assert_eq!(after["name"], before["name"]);

    // Requiring a second factor the owner does not have: the API's own
    // refusal, with its status, and nothing changed.
    let (api_status, api_body) = app
        .call(
            Method::PATCH,
            &api_org,
            owner,
            Some(json!({ "settings": { "require_mfa": true } })),
        )
        .await;
    assert!(api_status.is_client_error(), "{api_body}");
    let form = settings_form(&after, &[("require_mfa", "on")]);
    let refusal = browser.submit(&settings, &as_form(&form)).await;
    refused(refusal, api_status, "").await;
    // A number the API's validator refuses (1 to 90): its 400.
    let form = settings_form(&after, &[("invitation_ttl_days", "400")]);
    let refusal = browser.submit(&settings, &as_form(&form)).await;
    let page = refused(refusal, StatusCode::BAD_REQUEST, "").await;
    assert!(page.contains("value=\"400\""), "what was typed is kept");
    assert_eq!(api(&app, owner, Method::GET, &api_org, None).await, after);

    // A non-owner (an admin) gets the API's 403; nothing changes.
    let admin = app.member_with_password(&org, Role::Admin).await;
    let as_admin = Browser::signed_in(&app, &admin.email).await;
    let page = as_admin.page(&settings, StatusCode::OK).await;
    assert!(page.contains("Only the organization's owners"), "{page}");
    let form = settings_form(&after, &[("name", "Taken over")]);
    let refusal = as_admin.submit(&settings, &as_form(&form)).await;
    refused(refusal, StatusCode::FORBIDDEN, "").await;
    let deleting = as_admin
        .submit(
            &format!("/console/orgs/{}/delete", org.org_id),
            &[("confirm", after["name"].as_str().expect("a name"))],
        )
        .await;
    refused(deleting, StatusCode::FORBIDDEN, "").await;
    assert_eq!(api(&app, owner, Method::GET, &api_org, None).await, after);
    app.shutdown().await;
}

#[tokio::test]
async fn console_deletes_an_organization_only_when_its_name_is_typed() {
    let app = TestApp::spawn().await;
    let (browser, org, email) = owner_in_console(&app).await;
    let session = api_session(&app, &email).await;
    let api_org = format!("/orgs/{}", org.org_id);
    let name = api(&app, &session, Method::GET, &api_org, None).await["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    let delete = format!("/console/orgs/{}/delete", org.org_id);

    let wrong = browser
        .submit(&delete, &[("confirm", &format!("{name} please"))])
        .await;
    let page = refused(
        wrong,
        StatusCode::UNPROCESSABLE_ENTITY,
        "type the organization",
    )
    .await;
    assert!(page.contains("id=\"delete-error\""), "next to its form");
    api(&app, &session, Method::GET, &api_org, None).await;

    let right = browser.submit(&delete, &[("confirm", &name)]).await;
    redirected(&right, "/console?done=organization-deleted");
    let home = browser
        .page("/console?done=organization-deleted", StatusCode::OK)
        .await;
    assert!(home.contains("The organization was deleted."), "{home}");
    assert!(!home.contains(org.org_id.as_str()), "{home}");
    let (status, body) = app.call(Method::GET, &api_org, &session, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.shutdown().await;
}

#[tokio::test]
async fn console_orgadmin_forms_without_the_token_or_from_another_origin_change_nothing() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let owner = &org.owner.token;
    let origin = app.settings.http.public_url.clone();
    let token = browser.session_token().await;
    let groups = format!("/console/orgs/{}/groups", org.org_id);
    let settings = format!("/console/orgs/{}/settings", org.org_id);
    let api_org = format!("/orgs/{}", org.org_id);
    let before = api(&app, owner, Method::GET, &api_org, None).await;
    let settings_fields = settings_form(&before, &[("name", "Hijacked")]);

    for (path, mut fields) in [
        (groups.clone(), vec![("display_name", "Sneaky")]),
        (settings.clone(), as_form(&settings_fields)),
        (
            format!("/console/orgs/{}/delete", org.org_id),
            vec![("confirm", before["name"].as_str().expect("a name"))],
        ),
    ] {
        let without = browser.post(&path, &fields, Some(&origin)).await;
        assert_eq!(
            without.status(),
            StatusCode::FORBIDDEN,
            "{path} without a token"
        );
        fields.push(("csrf", &token));
        let foreign = browser
            .post(&path, &fields, Some("https://attacker.example"))
            .await;
        assert_eq!(
            foreign.status(),
            StatusCode::FORBIDDEN,
            "{path} from elsewhere"
        );
        let null = browser.post(&path, &fields, Some("null")).await;
        assert_eq!(null.status(), StatusCode::FORBIDDEN, "{path} from null");
    }
    let listed = api(
        &app,
        owner,
        Method::GET,
        &format!("/orgs/{}/groups", org.org_id),
        None,
    )
    .await;
    assert_eq!(listed["items"], json!([]));
    assert_eq!(api(&app, owner, Method::GET, &api_org, None).await, before);
    app.shutdown().await;
}

#[tokio::test]
async fn console_role_form_keeps_the_project_rights_a_mapping_grants_until_cleared() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let owner = &org.owner.token;
    let project = api(
        &app,
        owner,
        Method::POST,
        &format!("/orgs/{}/projects", org.org_id),
        Some(json!({ "name": "Website" })),
    )
    .await;
    let project_id = project["id"].as_str().expect("an id");
    let group = api(
        &app,
        owner,
        Method::POST,
        &format!("/orgs/{}/groups", org.org_id),
        Some(json!({ "display_name": "Web" })),
    )
    .await;
    let group_id = group["id"].as_str().expect("an id");
    let api_group = format!("/orgs/{}/groups/{group_id}", org.org_id);
    let rights = json!([{ "project_id": project_id, "rights": ["read", "write"] }]);
    api(
        &app,
        owner,
        Method::PUT,
        &format!("{api_group}/role-mapping"),
        Some(json!({ "role": "contributor", "project_rights": rights })),
    )
    .await;
    let page = format!("/console/orgs/{}/groups/{group_id}", org.org_id);
    let shown = browser.page(&page, StatusCode::OK).await;
    assert!(
        shown.contains("<li>Website: read, write</li>"),
        "the rights are shown: {shown}"
    );

    let mapped = browser
        .submit(&format!("{page}/role-mapping"), &[("role", "viewer")])
        .await;
    redirected(&mapped, &format!("{page}?done=role-mapped"));
    let seen = api(&app, owner, Method::GET, &api_group, None).await;
    assert_eq!(seen["role_mapping"]["role"], "viewer");
    assert_eq!(seen["role_mapping"]["project_rights"], rights);

    let cleared = browser
        .submit(
            &format!("{page}/role-mapping"),
            &[("role", "viewer"), ("clear", "1")],
        )
        .await;
    redirected(&cleared, &format!("{page}?done=mapping-cleared"));
    let seen = api(&app, owner, Method::GET, &api_group, None).await;
    assert!(seen.get("role_mapping").is_none(), "{seen}");
    app.shutdown().await;
}
