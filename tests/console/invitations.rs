//! The console's invite form and invitations list over HTTP: every answer
//! is checked against what the management API then reports, since the
//! pages must run the API's use cases and nothing else.

use super::{member_in_console, owner_in_console};
use crate::common::{self, TestApp};

use muster::domain::Role;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

/// The organization's invitations with `status`, as the API lists them.
async fn listed(app: &TestApp, org: &common::OrgFixture, status: &str) -> Vec<Value> {
    let (code, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/invitations?status={status}", org.org_id),
            &org.owner.token,
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

fn emails(invitations: &[Value]) -> Vec<&str> {
    invitations
        .iter()
        .filter_map(|i| i["email"].as_str())
        .collect()
}

/// Invites `emails` through the API; the new invitations' ids.
async fn invite_by_api(app: &TestApp, org: &common::OrgFixture, emails: &str) -> Vec<String> {
    let (code, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/orgs/{}/invitations", org.org_id),
            &org.owner.token,
            Some(json!({ "emails": emails, "role": "viewer" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["invitation_id"].as_str().map(str::to_owned))
        .collect()
}

/// The table row of the outcomes page that names `email`.
fn row_of<'p>(page: &'p str, email: &str) -> &'p str {
    page.split("<tr")
        .find(|row| row.contains(&format!("<td>{email}</td>")))
        .unwrap_or_else(|| panic!("a row for {email} in {page}"))
}

#[tokio::test]
async fn console_invites_a_pasted_list_and_shows_each_address_outcome() {
    let app = TestApp::spawn().await;
    let (browser, org, owner_email) = owner_in_console(&app).await;
    let (code, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/orgs/{}", org.org_id),
            &org.owner.token,
            Some(json!({ "settings": { "allowed_email_domains": ["example.com"] } })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    invite_by_api(&app, &org, "pending@example.com").await;

    let invite = format!("/console/orgs/{}/invite", org.org_id);
    let form = browser.page(&invite, StatusCode::OK).await;
    for label in [
        "<label for=\"emails\">",
        "<label for=\"role\">",
        "<label for=\"message\">",
    ] {
        assert!(form.contains(label), "{label} in {form}");
    }
    assert!(form.contains("example.com"), "the allowed domains: {form}");

    // Commas, semicolons and new lines, as pasted from a spreadsheet.
    let pasted = format!(
        "new@example.com, {owner_email};Pending@example.com\nnot-an-address\r\noutsider@elsewhere.org"
    );
    let answer = browser
        .submit(
            &invite,
            &[
                ("emails", &pasted),
                ("role", "contributor"),
                ("message", "Welcome aboard"),
            ],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.expect("a page");
    for (email, outcome, sentence) in [
        ("new@example.com", "invited", "Invited"),
        (owner_email.as_str(), "already_member", "already a member"),
        ("pending@example.com", "already_pending", "already pending"),
        ("not-an-address", "invalid_email", "not a valid email"),
        (
            "outsider@elsewhere.org",
            "domain_not_allowed",
            "allowed domains",
        ),
    ] {
        let row = row_of(&page, email);
        assert!(
            row.contains(&format!("outcome-{outcome}")),
            "{email}: {row}"
        );
        assert!(row.contains(sentence), "{email}: {row}");
    }
    assert!(page.contains("1 invitation was sent."), "{page}");

    // The API sees what the page said: one new invitation, with the role
    // and message from the form.
    let pending = listed(&app, &org, "pending").await;
    let mut found = emails(&pending);
    found.sort_unstable();
    assert_eq!(found, ["new@example.com", "pending@example.com"]);
    let new = pending
        .iter()
        .find(|i| i["email"] == "new@example.com")
        .expect("the new invitation");
    assert_eq!(new["role"], "contributor");
    assert_eq!(new["message"], "Welcome aboard");
    assert_eq!(new["invited_by"], org.owner.account_id.to_string());

    // The list shows both, pending, with the inviter's address.
    let list = browser
        .page(
            &format!("/console/orgs/{}/invitations", org.org_id),
            StatusCode::OK,
        )
        .await;
    assert!(list.contains("new@example.com"), "{list}");
    assert!(list.contains(&owner_email), "the inviter: {list}");
    assert!(list.contains("aria-current=\"page\">Pending"), "{list}");
    app.shutdown().await;
}

#[tokio::test]
async fn console_refuses_a_whole_invitation_as_the_api_does() {
    let app = TestApp::spawn().await;
    let (owner, org, _) = owner_in_console(&app).await;
    let invite = format!("/console/orgs/{}/invite", org.org_id);

    // A role that does not exist: the API's 422, the form again, typed
    // addresses kept.
    let answer = owner
        .submit(&invite, &[("emails", "kim@example.com"), ("role", "boss")])
        .await;
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = answer.text().await.expect("a page");
    assert!(
        page.contains("<p class=\"error\" role=\"alert\">"),
        "{page}"
    );
    assert!(page.contains("kim@example.com</textarea>"), "{page}");

    // An admin may not invite an owner: the API's per-address outcome.
    let (admin, _) = member_in_console(&app, &org, Role::Admin).await;
    let answer = admin
        .submit(&invite, &[("emails", "kim@example.com"), ("role", "owner")])
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.expect("a page");
    assert!(
        row_of(&page, "kim@example.com").contains("only an owner can invite an owner"),
        "{page}"
    );

    // A viewer may not invite at all: 403 on the form and its POST.
    let (viewer, _) = member_in_console(&app, &org, Role::Viewer).await;
    viewer.page(&invite, StatusCode::FORBIDDEN).await;
    let answer = viewer
        .submit(
            &invite,
            &[("emails", "kim@example.com"), ("role", "viewer")],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let page = answer.text().await.expect("a page");
    assert!(
        page.contains("<p class=\"error\" role=\"alert\">"),
        "{page}"
    );
    viewer
        .page(
            &format!("/console/orgs/{}/invitations", org.org_id),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(listed(&app, &org, "pending").await.is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn console_resends_and_withdraws_invitations_through_the_api_use_cases() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let ids = invite_by_api(&app, &org, "ren@example.com, wim@example.com").await;
    let [ren, wim] = ids.as_slice() else {
        panic!("two invitations: {ids:?}");
    };
    let base = format!("/console/orgs/{}/invitations", org.org_id);
    let before = listed(&app, &org, "pending").await;
    let ren_before = before
        .iter()
        .find(|i| i["id"] == ren.as_str())
        .expect("ren's invitation")
        .clone();

    let page = browser.page(&base, StatusCode::OK).await;
    assert!(page.contains(&format!("{base}/{ren}/resend")), "{page}");
    assert!(page.contains(&format!("{base}/{wim}/withdraw")), "{page}");

    let resent = browser.submit(&format!("{base}/{ren}/resend"), &[]).await;
    assert_eq!(resent.status(), StatusCode::SEE_OTHER);
    assert_eq!(resent.headers()[LOCATION], format!("{base}?done=resent"));
    let page = browser
        .page(&format!("{base}?done=resent"), StatusCode::OK)
        .await;
    assert!(
        page.contains("<p class=\"notice\" role=\"status\">The invitation was sent again"),
        "{page}"
    );
    let ren_after = listed(&app, &org, "pending")
        .await
        .into_iter()
        .find(|i| i["id"] == ren.as_str())
        .expect("still pending");
    assert_eq!(ren_after["delivery"]["sends"], 2, "{ren_after}");
    assert_eq!(ren_before["delivery"]["sends"], 1, "{ren_before}");

    let withdrawn = browser.submit(&format!("{base}/{wim}/withdraw"), &[]).await;
    assert_eq!(withdrawn.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        withdrawn.headers()[LOCATION],
        format!("{base}?done=withdrawn")
    );
    assert_eq!(
        emails(&listed(&app, &org, "pending").await),
        ["ren@example.com"]
    );
    assert_eq!(
        emails(&listed(&app, &org, "revoked").await),
        ["wim@example.com"]
    );
    let page = browser
        .page(&format!("{base}?status=revoked"), StatusCode::OK)
        .await;
    assert!(page.contains("wim@example.com"), "{page}");
    assert!(!page.contains("/withdraw\""), "no buttons there: {page}");

    // Withdrawing it again: the API's 409, on the list, with the reason.
    let again = browser.submit(&format!("{base}/{wim}/withdraw"), &[]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let page = again.text().await.expect("a page");
    assert!(
        page.contains("<p class=\"error\" role=\"alert\">the invitation is revoked"),
        "{page}"
    );
    // An id that is no invitation: the API's 404.
    let unknown = browser
        .submit(&format!("{base}/nonsense/resend"), &[])
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // A view the API does not know: its 422.
    browser
        .page(
            &format!("{base}?status=lost"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    app.shutdown().await;
}

#[tokio::test]
async fn console_invitation_forms_without_the_token_or_from_another_origin_change_nothing() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let ids = invite_by_api(&app, &org, "ren@example.com").await;
    let ren = ids.first().expect("an invitation");
    let token = browser.session_token().await;
    let origin = app.settings.http.public_url.clone();
    let invite = format!("/console/orgs/{}/invite", org.org_id);
    let fields = [("emails", "eve@example.com"), ("role", "viewer")];
    let base = format!("/console/orgs/{}/invitations", org.org_id);

    for (path, csrf, origin) in [
        (invite.clone(), None, origin.as_str()),
        (invite.clone(), Some(token.as_str()), "https://evil.example"),
        (format!("{base}/{ren}/resend"), None, origin.as_str()),
        (
            format!("{base}/{ren}/resend"),
            Some(token.as_str()),
            "https://evil.example",
        ),
        (format!("{base}/{ren}/withdraw"), None, origin.as_str()),
        (
            format!("{base}/{ren}/withdraw"),
            Some(token.as_str()),
            "https://evil.example",
        ),
    ] {
        let mut form = fields.to_vec();
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let refused = browser.post(&path, &form, Some(origin)).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path} {origin}");
    }
    let pending = listed(&app, &org, "pending").await;
    assert_eq!(emails(&pending), ["ren@example.com"], "nothing invited");
    assert_eq!(pending[0]["delivery"]["sends"], 1, "not resent");

    // The same form with the token and our origin goes through.
    let mut form = fields.to_vec();
    form.push(("csrf", &token));
    let accepted = browser.post(&invite, &form, Some(&origin)).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    assert_eq!(listed(&app, &org, "pending").await.len(), 2);
    app.shutdown().await;
}

#[tokio::test]
async fn console_invites_with_project_rights_as_the_api_stores_them() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let (code, project) = app
        .call(
            reqwest::Method::POST,
            &format!("/orgs/{}/projects", org.org_id),
            &org.owner.token,
            Some(json!({ "name": "Website" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{project}");
    let project_id = project["id"].as_str().expect("an id").to_owned();
    let invite = format!("/console/orgs/{}/invite", org.org_id);
    let form = browser.page(&invite, StatusCode::OK).await;
    assert!(
        form.contains(&format!(
            "<label for=\"rights-{project_id}\">Website</label>"
        )),
        "{form}"
    );

    let field = format!("rights:{project_id}");
    let answer = browser
        .submit(
            &invite,
            &[
                ("emails", "pia@example.com"),
                ("role", "contributor"),
                (&field, "write"),
            ],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let pending = listed(&app, &org, "pending").await;
    assert_eq!(
        pending[0]["project_rights"],
        json!([{ "project_id": project_id, "rights": ["read", "write"] }])
    );

    // A right the API does not know is its 422, with the form again.
    let answer = browser
        .submit(
            &invite,
            &[
                ("emails", "quinn@example.com"),
                ("role", "contributor"),
                (&field, "admin"),
            ],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = answer.text().await.expect("a page");
    assert!(page.contains("unknown right"), "{page}");
    assert_eq!(listed(&app, &org, "pending").await.len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn console_refuses_an_invitation_past_the_hourly_cap_with_the_api_status() {
    let app = TestApp::builder()
        .settings(|s| s.invitations.max_per_org_per_hour = 2)
        .spawn()
        .await;
    let (browser, org, _) = owner_in_console(&app).await;
    let answer = browser
        .submit(
            &format!("/console/orgs/{}/invite", org.org_id),
            &[
                ("emails", "a@example.com\nb@example.com\nc@example.com"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(answer.headers().contains_key("retry-after"), "as the API");
    let page = answer.text().await.expect("a page");
    assert!(
        page.contains("<p class=\"error\" role=\"alert\">"),
        "{page}"
    );
    assert!(page.contains("c@example.com</textarea>"), "{page}");
    assert!(listed(&app, &org, "pending").await.is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn console_invitations_page_through_the_api_cursor() {
    let app = TestApp::spawn().await;
    let (browser, org, _) = owner_in_console(&app).await;
    let addresses: Vec<String> = (0..51).map(|i| format!("p{i}@example.com")).collect();
    assert_eq!(
        invite_by_api(&app, &org, &addresses.join(",")).await.len(),
        51
    );

    let base = format!("/console/orgs/{}/invitations", org.org_id);
    let first = browser.page(&base, StatusCode::OK).await;
    assert_eq!(first.matches("/resend\"").count(), 50, "{first}");
    let at = first.find("rel=\"next\"").expect("a next page link");
    let href_at = first[..at].rfind("href=\"").expect("its href") + "href=\"".len();
    let next = first[href_at..].split('"').next().expect("the link");
    let next = next.replace("&amp;", "&");
    assert!(next.contains("cursor="), "{next}");
    let second = browser.page(&next, StatusCode::OK).await;
    assert_eq!(second.matches("/resend\"").count(), 1, "{second}");
    assert!(!second.contains("rel=\"next\""), "{second}");
    app.shutdown().await;
}
