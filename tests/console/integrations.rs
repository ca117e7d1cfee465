//! The console's integrations and audit pages over HTTP: SCIM tokens made,
//! used against `/scim/v2` and revoked through the forms; the secret
//! shown once; the API's permission checks and the forms' CSRF checks;
//! the audit log's filters, pages and downloads; a person's own activity.

use super::{client, member_in_console, owner_in_console};
use crate::common::{self, TestApp};

use muster::domain::Role;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

/// A page as a browser reads it: minijinja escapes `/` in values.
fn decoded(page: String) -> String {
    page.replace("&#x2f;", "/").replace("&amp;", "&")
}

/// An event of `action` in a log page's table (the filter's list of
/// actions names them all).
fn row_of(action: &str) -> String {
    format!("<td><code>{action}</code></td>")
}

/// The value of the readonly field `id` on a page.
fn field_value(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {page}"));
    let rest = &page[start..];
    let at = rest.find("value=\"").expect("a value") + "value=\"".len();
    rest[at..at + rest[at..].find('"').expect("the value ends")].to_owned()
}

/// The organization's SCIM tokens as the API lists them.
async fn api_scim_tokens(app: &TestApp, org: &common::OrgFixture) -> Vec<Value> {
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/scim-tokens", org.org_id),
            &org.owner.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

async fn scim_users(app: &TestApp, token: &str) -> StatusCode {
    app.get("/scim/v2/Users")
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /scim/v2/Users")
        .status()
}

#[tokio::test]
async fn console_scim_token_is_shown_once_works_over_scim_and_is_revoked() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let integrations = format!("/console/orgs/{}/integrations", org.org_id);
    let page = decoded(browser.page(&integrations, StatusCode::OK).await);
    let base_url = format!("{}/scim/v2", app.settings.http.public_url);
    assert_eq!(field_value(&page, "scim-base-url"), base_url);
    assert!(page.contains("data-copy=\"scim-base-url\""), "{page}");
    assert!(page.contains("<label for=\"token-name\">"), "{page}");
    let before = api_scim_tokens(&app, &org).await.len();

    let created = browser
        .submit(
            &format!("{integrations}/scim-tokens"),
            &[("name", "Okta console"), ("expires_on", "")],
        )
        .await;
    // The secret's page is the answer itself: no redirect, no caching.
    assert_eq!(created.status(), StatusCode::CREATED);
    assert!(created.headers().get(LOCATION).is_none());
    assert_eq!(created.headers()[CACHE_CONTROL], "no-store");
    let shown = decoded(created.text().await.expect("a page"));
    let token = field_value(&shown, "scim-token");
    assert!(token.starts_with("mst_scim_"), "{token}");
    assert!(shown.contains("data-copy=\"scim-token\""), "{shown}");
    for field in [
        "SCIM connector base URL",
        "Unique identifier field for users",
        "<code>userName</code>",
        "Supported provisioning actions",
        "Authentication Mode",
        "HTTP Header",
        "Authorization",
        "Bearer",
        "Tenant URL",
        "Secret Token",
    ] {
        assert!(shown.contains(field), "{field} in {shown}");
    }
    assert!(shown.contains(&base_url), "{shown}");

    // The identity provider's view: the shown token works over SCIM.
    assert_eq!(scim_users(&app, &token).await, StatusCode::OK);

    // Listed (by the API and the page) without its secret.
    let listed = api_scim_tokens(&app, &org).await;
    assert_eq!(listed.len(), before + 1);
    let made = listed
        .iter()
        .find(|t| t["name"] == "Okta console")
        .expect("the new token")
        .clone();
    let id = made["id"].as_str().expect("an id");
    let list = browser.page(&integrations, StatusCode::OK).await;
    assert!(list.contains("Okta console"), "{list}");
    assert!(!list.contains(&token), "the secret is shown once only");
    assert!(
        list.contains(made["display_prefix"].as_str().expect("a prefix")),
        "{list}"
    );

    // Revoking asks first, on a page of its own.
    let revoke = format!("{integrations}/scim-tokens/{id}/revoke");
    let confirm = browser.page(&revoke, StatusCode::OK).await;
    assert!(confirm.contains("Revoke") && confirm.contains("Okta console"));
    assert!(!confirm.contains(&token));
    let revoked = browser.submit(&revoke, &[]).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        revoked.headers()[LOCATION],
        format!("{integrations}?revoked=1").as_str()
    );
    assert_eq!(scim_users(&app, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(api_scim_tokens(&app, &org).await.len(), before);
    let after = browser
        .page(&format!("{integrations}?revoked=1"), StatusCode::OK)
        .await;
    assert!(after.contains("The token was revoked"), "{after}");
    assert!(!after.contains("Okta console"), "{after}");
    // Revoking again: the API's 404.
    assert_eq!(
        browser.submit(&revoke, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    app.shutdown().await;
}

#[tokio::test]
async fn console_scim_tokens_need_the_permission_and_a_form_from_the_console() {
    let app = TestApp::spawn().await;
    let (owner, org, _) = owner_in_console(&app).await;
    let integrations = format!("/console/orgs/{}/integrations", org.org_id);
    let create = format!("{integrations}/scim-tokens");
    let before = api_scim_tokens(&app, &org).await.len();

    // A contributor lacks `manage_integrations`: refused on the page and
    // the form, as the API refuses them.
    let (contributor, member) = member_in_console(&app, &org, Role::Contributor).await;
    let refused = contributor.get(&integrations).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let said = refused.text().await.expect("a page");
    assert!(said.contains("manage_integrations"), "{said}");
    let created = contributor.submit(&create, &[("name", "sneaky")]).await;
    assert_eq!(created.status(), StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            reqwest::Method::POST,
            &format!("/orgs/{}/scim-tokens", org.org_id),
            &member.token,
            Some(json!({ "name": "sneaky" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api_scim_tokens(&app, &org).await.len(), before);

    // The owner's form without its token, or from another site: 403.
    let origin = app.settings.http.public_url.clone();
    let csrf = owner.session_token().await;
    for (form, origin) in [
        (vec![("name", "no token")], Some(origin.as_str())),
        (
            vec![("csrf", "0".repeat(64).as_str()), ("name", "wrong token")],
            Some(origin.as_str()),
        ),
        (
            vec![("csrf", csrf.as_str()), ("name", "foreign")],
            Some("https://evil.example"),
        ),
    ] {
        let refused = owner.post(&create, &form, origin).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{form:?}");
        let page = refused.text().await.expect("a page");
        assert!(!page.contains("mst_scim_"), "{page}");
    }
    let listed = api_scim_tokens(&app, &org).await;
    assert_eq!(listed.len(), before, "nothing was created: {listed:?}");

    // So is a revocation without the token.
    let id = listed[0]["id"].as_str().expect("an id");
    let revoke = format!("{integrations}/scim-tokens/{id}/revoke");
    assert_eq!(
        owner.post(&revoke, &[], Some(&origin)).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        contributor.submit(&revoke, &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(api_scim_tokens(&app, &org).await.len(), before);

    // The API's own checks of the values: the form again, with why.
    let empty = owner.submit(&create, &[("name", "  ")]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = empty.text().await.expect("a page");
    assert!(page.contains("must not be empty"), "{page}");
    assert!(page.contains("role=\"alert\""), "{page}");
    let past = owner
        .submit(&create, &[("name", "old"), ("expires_on", "2001-01-01")])
        .await;
    assert_eq!(past.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = past.text().await.expect("a page");
    assert!(page.contains("in the future"), "{page}");
    assert!(page.contains("value=\"old\""), "what was typed is kept");
    // Only an owner may let a token change owners: an admin is refused.
    let (admin, _) = member_in_console(&app, &org, Role::Admin).await;
    let refused = admin
        .submit(
            &create,
            &[("name", "owners"), ("allow_owner_changes", "on")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(api_scim_tokens(&app, &org).await.len(), before);
    app.shutdown().await;
}

#[tokio::test]
async fn console_audit_page_filters_pages_and_downloads_the_api_export() {
    let app = TestApp::spawn().await;
    let (browser, org, email) = owner_in_console(&app).await;
    let integrations = format!("/console/orgs/{}/integrations", org.org_id);
    let created = browser
        .submit(
            &format!("{integrations}/scim-tokens"),
            &[("name", "Entra audit")],
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let secret = field_value(&created.text().await.expect("a page"), "scim-token");
    let audit = format!("/console/orgs/{}/audit", org.org_id);

    let page = browser.page(&audit, StatusCode::OK).await;
    assert!(page.contains(&row_of("scim_token.created")), "{page}");
    assert!(page.contains("Entra audit"), "{page}");
    assert!(page.contains(&email), "the actor: {page}");
    for label in ["f-action", "f-actor", "f-target", "f-since", "f-until"] {
        assert!(page.contains(&format!("<label for=\"{label}\">")), "{page}");
    }

    let only_tokens = decoded(
        browser
            .page(&format!("{audit}?action=scim_token."), StatusCode::OK)
            .await,
    );
    assert!(only_tokens.contains("Entra audit"), "{only_tokens}");
    assert!(!only_tokens.contains(&row_of("organization.bootstrapped")));
    // An actor's name links to their events alone.
    let by_owner = format!("{audit}?actor={}", org.owner.account_id);
    assert!(only_tokens.contains(&by_owner), "{only_tokens}");
    let owners = browser.page(&by_owner, StatusCode::OK).await;
    assert!(owners.contains("Entra audit"), "{owners}");
    let by_nobody = browser
        .page(&format!("{audit}?actor=nobody"), StatusCode::OK)
        .await;
    assert!(!by_nobody.contains("Entra audit"), "{by_nobody}");
    let none = browser
        .page(&format!("{audit}?action=member.removed"), StatusCode::OK)
        .await;
    assert!(none.contains("No event matches"), "{none}");
    let future = browser
        .page(&format!("{audit}?since=2999-01-01T00%3A00"), StatusCode::OK)
        .await;
    assert!(!future.contains(&row_of("scim_token.created")), "{future}");
    assert!(future.contains("No event matches"), "{future}");
    // The API's check of the filter, as the form again with its reason.
    let wrong = browser
        .page(
            &format!("{audit}?action=nonsense"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert!(wrong.contains("nonsense"), "{wrong}");
    assert!(wrong.contains("role=\"alert\""), "{wrong}");

    // Pages of 50, through the API's cursor.
    for n in 0..50 {
        let (status, body) = app
            .call(
                reqwest::Method::POST,
                &format!("/orgs/{}/scim-tokens", org.org_id),
                &org.owner.token,
                Some(json!({ "name": format!("bulk {n}") })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let first = decoded(
        browser
            .page(&format!("{audit}?action=scim_token."), StatusCode::OK)
            .await,
    );
    assert!(first.contains("bulk 49"), "newest first");
    assert!(!first.contains("Entra audit"), "on the next page");
    let next = first
        .split("href=\"")
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| part.split('"').next())
        .expect("a next page link")
        .replace("&amp;", "&");
    assert!(next.contains("action=scim_token."), "{next}");
    let second = browser.page(&next, StatusCode::OK).await;
    assert!(second.contains("Entra audit"), "{second}");
    assert!(!second.contains("bulk 49"), "{second}");

    // The downloads keep the filters and are the API's export.
    let link = format!("{audit}/export.csv?action=scim_token.created");
    assert!(
        only_tokens.contains(&format!("{audit}/export.csv?action=scim_token.")),
        "{only_tokens}"
    );
    let csv = browser.get(&link).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()[CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    let disposition = csv.headers()[CONTENT_DISPOSITION]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        disposition.starts_with(&format!("attachment; filename=\"audit-{}-", org.org_id))
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let body = csv.text().await.expect("a body");
    assert!(body.starts_with("id,at,actor_kind,"), "{body}");
    assert!(body.contains("scim_token.created") && body.contains("Entra audit"));
    assert!(!body.contains(&secret), "secrets never reach the log");
    assert!(!page.contains(&secret), "{page}");
    let csv_events = body.lines().count() - 1;
    assert!(
        csv_events >= 51,
        "every matching event, not a page: {csv_events}"
    );
    assert!(!body.contains("organization.bootstrapped"), "filtered");

    let jsonl = browser
        .get(&format!("{audit}/export.jsonl?action=scim_token.created"))
        .await;
    assert_eq!(jsonl.status(), StatusCode::OK);
    assert_eq!(jsonl.headers()[CONTENT_TYPE], "application/x-ndjson");
    assert!(
        jsonl.headers()[CONTENT_DISPOSITION]
            .to_str()
            .expect("ascii")
            .ends_with(".jsonl\"")
    );
    let lines: Vec<Value> = jsonl
        .text()
        .await
        .expect("a body")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), csv_events, "the same events as the CSV");
    assert!(lines.iter().all(|e| e["action"] == "scim_token.created"));
    assert!(lines.iter().any(|e| e["target"]["label"] == "Entra audit"));
    app.shutdown().await;
}

#[tokio::test]
async fn console_audit_is_refused_without_the_permission() {
    let app = TestApp::spawn().await;
    let (_, org, _) = owner_in_console(&app).await;
    let (viewer, member) = member_in_console(&app, &org, Role::Contributor).await;
    let audit = format!("/console/orgs/{}/audit", org.org_id);
    for path in [
        audit.clone(),
        format!("{audit}/export.csv"),
        format!("{audit}/export.jsonl"),
    ] {
        let refused = viewer.get(&path).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        let page = refused.text().await.expect("a page");
        assert!(page.contains("view_audit_log"), "{page}");
        assert!(!page.contains("organization.bootstrapped"), "{page}");
    }
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/audit-events", org.org_id),
            &member.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the API agrees");
    // Signed out: the sign-in page, no file.
    let anonymous = client()
        .get(app.url(&format!("{audit}/export.csv")))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    app.shutdown().await;
}

#[tokio::test]
async fn console_my_activity_shows_the_persons_own_sign_ins_only() {
    let app = TestApp::spawn().await;
    let (owner, org, email) = owner_in_console(&app).await;
    let (member, fixture) = member_in_console(&app, &org, Role::Viewer).await;

    let mine = decoded(owner.page("/console/me/activity", StatusCode::OK).await);
    assert!(mine.contains(&row_of("account.signed_in")), "{mine}");
    assert!(mine.contains(&email), "{mine}");
    assert!(
        !mine.contains(&fixture.email),
        "not another person's: {mine}"
    );
    assert!(mine.contains("href=\"/console/me/activity\""), "{mine}");
    let theirs = member.page("/console/me/activity", StatusCode::OK).await;
    assert!(theirs.contains(&row_of("account.signed_in")), "{theirs}");
    assert!(!theirs.contains(&email), "{theirs}");

    let out = owner
        .page(
            "/console/me/activity?action=account.signed_out",
            StatusCode::OK,
        )
        .await;
    assert!(out.contains("No event matches"), "{out}");
    let anonymous = client()
        .get(app.url("/console/me/activity"))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    app.shutdown().await;
}
