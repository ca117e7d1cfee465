//! Every route, walked with every kind of caller, against this table.
//!
//! Columns: owner, admin, contributor, viewer, a suspended member (signed
//! in with a session), the owner of another organization, and no token.
//! Callers run from the right-hand column to the left, so that the
//! destructive successes (leaving, deleting the organization) come last.
//!
//! | route                                   | own | adm | con | vie | sus | out | none |
//! |-----------------------------------------|-----|-----|-----|-----|-----|-----|------|
//! | GET    /roles                           | 200 | 200 | 200 | 200 | 200 | 200 | 200  |
//! | GET    /me                              | 200 | 200 | 200 | 200 | 200 | 200 | 401  |
//! | POST   /orgs                            | 403 | 403 | 403 | 403 | 201 | 403 | 401  |
//! | GET    /orgs/{org}                      | 200 | 200 | 200 | 200 | 403 | 404 | 401  |
//! | PATCH  /orgs/{org}                      | 200 | 403 | 403 | 403 | 403 | 404 | 401  |
//! | GET    /orgs/{org}/members              | 200 | 200 | 200 | 200 | 403 | 404 | 401  |
//! | GET    /orgs/{org}/members/{m}          | 200 | 200 | 200 | 200 | 403 | 404 | 401  |
//! | PATCH  /orgs/{org}/members/{m}          | 200 | 200 | 403 | 403 | 403 | 404 | 401  |
//! | DELETE /orgs/{org}/members/{m}          | 204 | 204 | 403 | 403 | 403 | 404 | 401  |
//! | GET    /orgs/{org}/groups               | 200 | 200 | 200 | 200 | 403 | 404 | 401  |
//! | POST   /orgs/{org}/groups               | 201 | 201 | 403 | 403 | 403 | 404 | 401  |
//! | GET    /orgs/{org}/groups/{g}           | 200 | 200 | 200 | 200 | 403 | 404 | 401  |
//! | GET    /orgs/{org}/groups/{g}/members   | 200 | 200 | 200 | 200 | 403 | 404 | 401  |
//! | PATCH  /orgs/{org}/groups/{g}           | 200 | 200 | 403 | 403 | 403 | 404 | 401  |
//! | PUT    /orgs/{org}/groups/{g}/role-mapping | 200 | 200 | 403 | 403 | 403 | 404 | 401 |
//! | DELETE /orgs/{org}/groups/{g}           | 204 | 204 | 403 | 403 | 403 | 404 | 401  |
//! | GET    /orgs/{org}/projects             | 200 | 200 | 200 | 200 | 403 | 404 | 401  |
//! | POST   /orgs/{org}/projects             | 201 | 201 | 201 | 403 | 403 | 404 | 401  |
//! | GET    /orgs/{org}/projects/{p}         | 200 | 200 | 403 | 403 | 403 | 404 | 401  |
//! | PATCH  /orgs/{org}/projects/{p}         | 200 | 200 | 403 | 403 | 403 | 404 | 401  |
//! | DELETE /orgs/{org}/projects/{p}         | 204 | 204 | 403 | 403 | 403 | 404 | 401  |
//! | GET    /orgs/{org}/scim-tokens          | 200 | 200 | 403 | 403 | 403 | 404 | 401  |
//! | POST   /orgs/{org}/scim-tokens          | 201 | 201 | 403 | 403 | 403 | 404 | 401  |
//! | DELETE /orgs/{org}/scim-tokens/{s}      | 204 | 204 | 403 | 403 | 403 | 404 | 401  |
//! | PATCH  /me                              | 403 | 403 | 403 | 403 | 200 | 403 | 401  |
//! | GET    /me/tokens                       | 403 | 403 | 403 | 403 | 200 | 403 | 401  |
//! | POST   /me/tokens  (for {org})          | 403 | 403 | 403 | 403 | 403 | 403 | 401  |
//! | DELETE /me/tokens/{t}  (the owner's)    | 403 | 403 | 403 | 403 | 404 | 403 | 401  |
//! | GET    /me/sessions                     | 403 | 403 | 403 | 403 | 200 | 403 | 401  |
//! | DELETE /me/sessions/{t}  (not a session of theirs) | 403 | 403 | 403 | 403 | 404 | 403 | 401 |
//! | DELETE /me/sessions  (the others)       | 403 | 403 | 403 | 403 | 200 | 403 | 401  |
//! | POST   /me/mfa/recovery-codes  (MFA off) | 403 | 403 | 403 | 403 | 409 | 403 | 401 |
//! | GET    /orgs/{org}/invitations          | 200 | 200 | 403 | 403 | 403 | 404 | 401  |
//! | POST   /orgs/{org}/invitations          | 200 | 200 | 403 | 403 | 403 | 404 | 401  |
//! | POST   /orgs/{org}/invitations/{i}/resend | 200 | 200 | 403 | 403 | 403 | 404 | 401 |
//! | DELETE /orgs/{org}/invitations/{i}      | 204 | 204 | 403 | 403 | 403 | 404 | 401  |
//! | POST   /orgs/{org}/leave                | 409 | 204 | 403 | 403 | 403 | 404 | 401  |
//! | DELETE /orgs/{org}                      | 204 | 403 | 403 | 403 | 403 | 404 | 401  |
//!
//! Every caller but the suspended one holds a personal token, which acts
//! only inside its organization: account-level routes (`POST /orgs`,
//! `PATCH /me`, `/me/tokens`, `/me/sessions`, `/me/mfa`) refuse it with 403 and want
//! a session.
//!
//! `{m}` is a fresh viewer, `{g}` a fresh group, `{p}` a fresh project
//! (on which contributors and viewers hold no project rights: how rights
//! open it is tests/security/projects.rs),
//! `{s}` a fresh SCIM token, `{t}` a fresh personal token of the owner and
//! `{i}` a fresh invitation for every call. The
//! owner cannot leave because they are the last owner (409) once the admin
//! has left.

use reqwest::Method;
use serde_json::{Value, json};

use super::common::TestApp;
use super::{Cast, call};

struct Row {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    /// owner, admin, contributor, viewer, suspended, outsider, anonymous.
    expect: [u16; 7],
}

fn row(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 7]) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

fn table() -> Vec<Row> {
    use Method as M;
    let rename = || Some(json!({ "name": "Renamed {u}" }));
    vec![
        row(M::GET, "/roles", None, [200, 200, 200, 200, 200, 200, 200]),
        row(M::GET, "/me", None, [200, 200, 200, 200, 200, 200, 401]),
        row(
            M::POST,
            "/orgs",
            Some(json!({ "name": "New {u}" })),
            [403, 403, 403, 403, 201, 403, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}",
            None,
            [200, 200, 200, 200, 403, 404, 401],
        ),
        row(
            M::PATCH,
            "/orgs/{org}",
            rename(),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}/members",
            None,
            [200, 200, 200, 200, 403, 404, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}/members/{m}",
            None,
            [200, 200, 200, 200, 403, 404, 401],
        ),
        row(
            M::PATCH,
            "/orgs/{org}/members/{m}",
            Some(json!({ "role": "contributor" })),
            [200, 200, 403, 403, 403, 404, 401],
        ),
        row(
            M::DELETE,
            "/orgs/{org}/members/{m}",
            None,
            [204, 204, 403, 403, 403, 404, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}/groups",
            None,
            [200, 200, 200, 200, 403, 404, 401],
        ),
        row(
            M::POST,
            "/orgs/{org}/groups",
            Some(json!({ "display_name": "Group {u}" })),
            [201, 201, 403, 403, 403, 404, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}/groups/{g}",
            None,
            [200, 200, 200, 200, 403, 404, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}/groups/{g}/members",
            None,
            [200, 200, 200, 200, 403, 404, 401],
        ),
        row(
            M::PATCH,
            "/orgs/{org}/groups/{g}",
            Some(json!({ "display_name": "Group {u}" })),
            [200, 200, 403, 403, 403, 404, 401],
        ),
        row(
            M::PUT,
            "/orgs/{org}/groups/{g}/role-mapping",
            Some(json!({ "role": "viewer" })),
            [200, 200, 403, 403, 403, 404, 401],
        ),
        row(
            M::DELETE,
            "/orgs/{org}/groups/{g}",
            None,
            [204, 204, 403, 403, 403, 404, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}/projects",
            None,
            [200, 200, 200, 200, 403, 404, 401],
        ),
        row(
            M::POST,
            "/orgs/{org}/projects",
            Some(json!({ "name": "Project {u}" })),
            [201, 201, 201, 403, 403, 404, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}/projects/{p}",
            None,
            [200, 200, 403, 403, 403, 404, 401],
        ),
        row(
            M::PATCH,
            "/orgs/{org}/projects/{p}",
            Some(json!({ "name": "Project {u}" })),
            [200, 200, 403, 403, 403, 404, 401],
        ),
        row(
            M::DELETE,
            "/orgs/{org}/projects/{p}",
            None,
            [204, 204, 403, 403, 403, 404, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}/scim-tokens",
            None,
            [200, 200, 403, 403, 403, 404, 401],
        ),
        row(
            M::POST,
            "/orgs/{org}/scim-tokens",
            Some(json!({ "name": "IdP {u}" })),
            [201, 201, 403, 403, 403, 404, 401],
        ),
        row(
            M::DELETE,
            "/orgs/{org}/scim-tokens/{s}",
            None,
            [204, 204, 403, 403, 403, 404, 401],
        ),
        row(
            M::PATCH,
            "/me",
            Some(json!({ "display_name": "Me {u}" })),
            [403, 403, 403, 403, 200, 403, 401],
        ),
        row(
            M::GET,
            "/me/tokens",
            None,
            [403, 403, 403, 403, 200, 403, 401],
        ),
        row(
            M::POST,
            "/me/tokens",
            Some(json!({ "org_id": "{org}", "name": "Token {u}" })),
            [403, 403, 403, 403, 403, 403, 401],
        ),
        row(
            M::DELETE,
            "/me/tokens/{t}",
            None,
            [403, 403, 403, 403, 404, 403, 401],
        ),
        row(
            M::GET,
            "/me/sessions",
            None,
            [403, 403, 403, 403, 200, 403, 401],
        ),
        row(
            M::DELETE,
            "/me/sessions/{t}",
            None,
            [403, 403, 403, 403, 404, 403, 401],
        ),
        row(
            M::DELETE,
            "/me/sessions",
            None,
            [403, 403, 403, 403, 200, 403, 401],
        ),
        row(
            M::POST,
            "/me/mfa/recovery-codes",
            Some(json!({ "code": "123456", "password": "not checked" })),
            [403, 403, 403, 403, 409, 403, 401],
        ),
        row(
            M::GET,
            "/orgs/{org}/invitations",
            None,
            [200, 200, 403, 403, 403, 404, 401],
        ),
        row(
            M::POST,
            "/orgs/{org}/invitations",
            Some(json!({ "emails": "{u}@example.com", "role": "viewer" })),
            [200, 200, 403, 403, 403, 404, 401],
        ),
        row(
            M::POST,
            "/orgs/{org}/invitations/{i}/resend",
            None,
            [200, 200, 403, 403, 403, 404, 401],
        ),
        row(
            M::DELETE,
            "/orgs/{org}/invitations/{i}",
            None,
            [204, 204, 403, 403, 403, 404, 401],
        ),
        row(
            M::POST,
            "/orgs/{org}/leave",
            None,
            [409, 204, 403, 403, 403, 404, 401],
        ),
        row(
            M::DELETE,
            "/orgs/{org}",
            None,
            [204, 403, 403, 403, 403, 404, 401],
        ),
    ]
}

const CALLERS: [&str; 7] = [
    "owner",
    "admin",
    "contributor",
    "viewer",
    "suspended",
    "outsider",
    "anonymous",
];

/// Ids of things made fresh for one call.
struct Fresh {
    member: String,
    group: String,
    project: String,
    scim_token: String,
    personal_token: String,
    invitation: String,
}

fn fill(template: &str, org: &str, fresh: &Fresh) -> String {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    template
        .replace("{org}", org)
        .replace("{m}", &fresh.member)
        .replace("{g}", &fresh.group)
        .replace("{p}", &fresh.project)
        .replace("{s}", &fresh.scim_token)
        .replace("{t}", &fresh.personal_token)
        .replace("{i}", &fresh.invitation)
        .replace("{u}", &unique)
}

/// Creates, as the owner, what one call may act on.
async fn fresh(app: &TestApp, cast: &Cast) -> Fresh {
    let org = cast.org();
    let owner = Some(cast.org.owner.token.as_str());
    // Personal tokens are minted by a session only.
    let owner_session = super::session_for(app, &cast.org.owner.account_id).await;
    let unique = || uuid::Uuid::new_v4().simple().to_string();
    let mut ids = Vec::new();
    for (path, body) in [
        (
            format!("/orgs/{org}/groups"),
            json!({ "display_name": unique() }),
        ),
        (format!("/orgs/{org}/projects"), json!({ "name": unique() })),
        (
            format!("/orgs/{org}/scim-tokens"),
            json!({ "name": unique() }),
        ),
        (
            "/me/tokens".to_owned(),
            json!({ "org_id": org, "name": unique() }),
        ),
    ] {
        let token = if path == "/me/tokens" {
            Some(owner_session.as_str())
        } else {
            owner
        };
        let answer = call(app, Method::POST, &path, token, Some(&body)).await;
        assert!(answer.status.is_success(), "setup {path}: {}", answer.body);
        ids.push(answer.body["id"].as_str().unwrap_or_default().to_owned());
    }
    let [group, project, scim_token, personal_token] =
        <[String; 4]>::try_from(ids).expect("four ids");
    let invited = call(
        app,
        Method::POST,
        &format!("/orgs/{org}/invitations"),
        owner,
        Some(&json!({ "emails": [format!("{}@example.com", unique())], "role": "viewer" })),
    )
    .await;
    let invitation = invited.body["results"][0]["invitation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Fresh {
        member: app
            .with_member(&cast.org, muster::domain::Role::Viewer)
            .await
            .member_id
            .to_string(),
        group,
        project,
        scim_token,
        personal_token,
        invitation,
    }
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_table_says() {
    let app = TestApp::spawn().await;
    let mut mismatches = Vec::new();
    for row in table() {
        // A cast per row: a row's successful writes never change the next.
        let cast = Cast::new(&app).await;
        let org = cast.org();
        let tokens: [Option<&str>; 7] = [
            Some(&cast.org.owner.token),
            Some(&cast.admin.token),
            Some(&cast.contributor.token),
            Some(&cast.viewer.token),
            Some(&cast.suspended_session),
            Some(&cast.outsider.owner.token),
            None,
        ];
        for caller in (0..7).rev() {
            let fresh = fresh(&app, &cast).await;
            let path = fill(row.path, &org, &fresh);
            let body = row
                .body
                .as_ref()
                .map(|b| serde_json::from_str(&fill(&b.to_string(), &org, &fresh)).expect("json"));
            let answer = call(
                &app,
                row.method.clone(),
                &path,
                tokens[caller],
                body.as_ref(),
            )
            .await;
            if answer.status.as_u16() != row.expect[caller] {
                mismatches.push(format!(
                    "{} {} as {}: expected {}, got {} {}",
                    row.method,
                    row.path,
                    CALLERS[caller],
                    row.expect[caller],
                    answer.status,
                    answer.body
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
