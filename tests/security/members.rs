//! Who may change whom, across the API, SCIM and /Bulk: scenarios 1 to 4
//! of issue 10, and the SCIM authority table.

use muster::domain::{MemberStatus, Role};
use muster::store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{call, session_for};
use crate::common::{MemberFixture, OrgFixture, Scim, TestApp};

/// A group mapped to `role`, made by the owner, with `members` in it.
async fn mapped_group(app: &TestApp, org: &OrgFixture, role: &str, members: &[&str]) -> String {
    let orgs = format!("/orgs/{}", org.org_id);
    let created = call(
        app,
        Method::POST,
        &format!("{orgs}/groups"),
        Some(&org.owner.token),
        Some(&json!({ "display_name": format!("{role}s {}", uuid::Uuid::new_v4().simple()), "members": members })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("group id").to_owned();
    let mapped = call(
        app,
        Method::PUT,
        &format!("{orgs}/groups/{id}/role-mapping"),
        Some(&org.owner.token),
        Some(&json!({ "role": role, "project_rights": [] })),
    )
    .await;
    assert_eq!(mapped.status, StatusCode::OK, "{}", mapped.body);
    id
}

/// A SCIM token minted through the API by `by`.
async fn scim_token(
    app: &TestApp,
    org: &OrgFixture,
    by: &MemberFixture,
    allow_owner_changes: bool,
) -> (StatusCode, Option<String>) {
    let mut body = json!({ "name": "IdP" });
    if allow_owner_changes {
        body["allow_owner_changes"] = json!(true);
    }
    let answer = call(
        app,
        Method::POST,
        &format!("/orgs/{}/scim-tokens", org.org_id),
        Some(&by.token),
        Some(&body),
    )
    .await;
    let token = answer.body["token"].as_str().map(str::to_owned);
    (answer.status, token)
}

async fn role_of(app: &TestApp, org: &OrgFixture, member: &MemberFixture) -> String {
    let answer = call(
        app,
        Method::GET,
        &format!("/orgs/{}/members/{}", org.org_id, member.member_id),
        Some(&org.owner.token),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["role"].as_str().expect("role").to_owned()
}

fn add_member(id: &str) -> Value {
    json!([{ "op": "add", "path": "members", "value": [{ "value": id }] }])
}

fn deactivate() -> Value {
    json!([{ "op": "replace", "path": "active", "value": false }])
}

/// Scenario 1: an admin mints a SCIM token and adds themself to the
/// group mapped to owner.
#[tokio::test]
async fn an_admin_cannot_become_owner_through_a_scim_token() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let admin = app.with_member(&org, Role::Admin).await;
    let second_owner = app.with_member(&org, Role::Owner).await;
    let owners = mapped_group(&app, &org, "owner", &[]).await;

    let (status, token) = scim_token(&app, &org, &admin, false).await;
    assert_eq!(status, StatusCode::CREATED);
    let idp = Scim::new(&app, &token.expect("a token"));

    let answer = idp
        .patch_ops(
            &format!("/Groups/{owners}"),
            add_member(admin.member_id.as_str()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("allow_owner_changes")),
        "the SCIM error says why: {}",
        answer.body
    );
    assert_eq!(role_of(&app, &org, &admin).await, "admin");

    // Nor can it take owners away.
    let path = format!("/Users/{}", second_owner.member_id);
    assert_eq!(
        idp.patch_ops(&path, deactivate()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(idp.delete(&path).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        idp.delete(&format!("/Groups/{owners}")).await.status,
        StatusCode::FORBIDDEN
    );
    let member = store::members::get_user(&app.store, None, &org.org_id, &second_owner.member_id)
        .await
        .expect("read")
        .expect("the owner is still there");
    assert_eq!(member.member.status, MemberStatus::Active);

    let (status, _) = scim_token(&app, &org, &admin, true).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only owners hand out authority over owners"
    );

    // An owner can give an identity provider that authority.
    let (status, token) = scim_token(&app, &org, &org.owner, true).await;
    assert_eq!(status, StatusCode::CREATED);
    let trusted = Scim::new(&app, &token.expect("a token"));
    let answer = trusted
        .patch_ops(
            &format!("/Groups/{owners}"),
            add_member(admin.member_id.as_str()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(role_of(&app, &org, &admin).await, "owner");
}

/// Scenario 2: an admin suspends or removes a member whose owner role
/// comes from a group.
#[tokio::test]
async fn an_owner_through_a_group_is_an_owner_for_admins() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let admin = app.with_member(&org, Role::Admin).await;
    let grouped = app.with_member(&org, Role::Viewer).await;
    mapped_group(&app, &org, "owner", &[grouped.member_id.as_str()]).await;
    let path = format!("/orgs/{}/members/{}", org.org_id, grouped.member_id);

    for body in [
        json!({ "status": "suspended" }),
        json!({ "role": "contributor" }),
        json!({ "project_rights": [] }),
    ] {
        let answer = call(&app, Method::PATCH, &path, Some(&admin.token), Some(&body)).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{body}: {}",
            answer.body
        );
    }
    let answer = call(&app, Method::DELETE, &path, Some(&admin.token), None).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    let member = store::members::get_user(&app.store, None, &org.org_id, &grouped.member_id)
        .await
        .expect("read")
        .expect("still a member");
    assert_eq!(member.member.status, MemberStatus::Active);

    // Owners may.
    let body = json!({ "status": "suspended" });
    let answer = call(
        &app,
        Method::PATCH,
        &path,
        Some(&org.owner.token),
        Some(&body),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

/// Scenario 3: another tenant provisions someone else's email.
#[tokio::test]
async fn another_tenant_cannot_enrol_an_existing_account() {
    let app = TestApp::spawn().await;
    let home = app.with_org_owner().await;
    let person = app.with_member(&home, Role::Viewer).await;
    let attacker = app.with_org_owner().await;
    let idp = Scim::new(&app, &attacker.scim_token);

    let created = idp
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": person.email,
                "emails": [{ "value": person.email, "primary": true }],
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let member_id = created.id();

    // The attacker's view reveals nothing about the account.
    let view = call(
        &app,
        Method::GET,
        &format!("/orgs/{}/members/{member_id}", attacker.org_id),
        Some(&attacker.owner.token),
        None,
    )
    .await;
    assert_eq!(view.status, StatusCode::OK);
    assert!(view.body.get("account_id").is_none(), "{}", view.body);
    assert_eq!(view.body["status"], "pending");

    // The person's memberships do not include the attacker's organization,
    // before or after signing in.
    let session = session_for(&app, &person.account_id).await;
    let me = app.me(&session).await;
    let orgs: Vec<&str> = me["memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .filter_map(|m| m["org_id"].as_str())
        .collect();
    assert_eq!(orgs, [home.org_id.as_str()], "{me}");
    let linked =
        store::members::find_by_account(&app.store, None, &attacker.org_id, &person.account_id)
            .await
            .expect("read");
    assert!(linked.is_none(), "no membership links the account");
}

/// Scenario 4: a removed member's personal token must not come back when
/// the person rejoins.
#[tokio::test]
async fn removal_deletes_the_members_personal_tokens() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    for how in ["api", "scim", "leave"] {
        let role = if how == "leave" {
            Role::Admin
        } else {
            Role::Contributor
        };
        let member = app.with_member(&org, role).await;
        let path = format!("/orgs/{}/members/{}", org.org_id, member.member_id);
        let status = match how {
            "api" => {
                call(&app, Method::DELETE, &path, Some(&org.owner.token), None)
                    .await
                    .status
            }
            "scim" => {
                Scim::new(&app, &org.scim_token)
                    .delete(&format!("/Users/{}", member.member_id))
                    .await
                    .status
            }
            _ => {
                let leave = format!("/orgs/{}/leave", org.org_id);
                call(&app, Method::POST, &leave, Some(&member.token), None)
                    .await
                    .status
            }
        };
        assert_eq!(status, StatusCode::NO_CONTENT, "{how}");
        rejoin(&app, &org, &member, role).await;
        let answer = call(&app, Method::GET, "/me", Some(&member.token), None).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{how}: {}",
            answer.body
        );
    }
}

/// The person joins again, as an accepted invitation would make them.
async fn rejoin(app: &TestApp, org: &OrgFixture, member: &MemberFixture, role: Role) {
    let now = chrono::Utc::now();
    let again = muster::domain::Member {
        id: muster::domain::MemberId::new(),
        org_id: org.org_id.clone(),
        account_id: Some(member.account_id.clone()),
        role,
        status: MemberStatus::Active,
        suspended_until: None,
        project_rights: Vec::new(),
        created_at: now,
        updated_at: now,
        last_sign_in_at: None,
    };
    let email = muster::domain::Email::parse(&member.email).expect("email");
    let profile = muster::protocol::user::UserProfile::for_email(&email);
    let store = &app.store;
    muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
        let _ = store::members::insert(store, session, &again, &profile).await?;
        Ok(())
    })
    .expect("rejoin");
}

/// What a SCIM token may do to owners, by who made it.
///
/// | SCIM operation                          | by admin | by owner | by owner, allow_owner_changes |
/// |-----------------------------------------|----------|----------|-------------------------------|
/// | POST   /Users                           | 201      | 201      | 201                           |
/// | PATCH  /Users/{viewer} active=false     | 200      | 200      | 200                           |
/// | DELETE /Users/{viewer}                  | 204      | 204      | 204                           |
/// | PATCH  /Users/{owner} active=false      | 403      | 403      | 200                           |
/// | DELETE /Users/{owner}                   | 403      | 403      | 204                           |
/// | DELETE /Users/{owner through a group}   | 403      | 403      | 204                           |
/// | PATCH  /Groups/{owners} add a member    | 403      | 403      | 200                           |
/// | PATCH  /Groups/{owners} remove a member | 403      | 403      | 200                           |
/// | PUT    /Groups/{owners} same members    | 200      | 200      | 200                           |
/// | DELETE /Groups/{owners}                 | 403      | 403      | 204                           |
/// | PATCH  /Groups/{admins} add a member    | 200      | 200      | 200                           |
/// | POST   /Bulk: add to {owners}           | 403      | 403      | 200                           |
///
/// Every call gets fresh targets, so the rows do not depend on each other.
#[tokio::test]
async fn scim_tokens_change_owners_only_with_an_owners_authority() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let admin = app.with_member(&org, Role::Admin).await;
    let mut tokens = Vec::new();
    for (by, allow) in [(&admin, false), (&org.owner, false), (&org.owner, true)] {
        let (status, token) = scim_token(&app, &org, by, allow).await;
        assert_eq!(status, StatusCode::CREATED);
        tokens.push(token.expect("a token"));
    }
    let rows: [(&str, [u16; 3]); 12] = [
        ("create a user", [201, 201, 201]),
        ("deactivate a viewer", [200, 200, 200]),
        ("delete a viewer", [204, 204, 204]),
        ("deactivate an owner", [403, 403, 200]),
        ("delete an owner", [403, 403, 204]),
        ("delete an owner through a group", [403, 403, 204]),
        ("add to the owners group", [403, 403, 200]),
        ("remove from the owners group", [403, 403, 200]),
        ("put the owners group unchanged", [200, 200, 200]),
        ("delete the owners group", [403, 403, 204]),
        ("add to an admins group", [200, 200, 200]),
        ("bulk add to the owners group", [403, 403, 200]),
    ];
    let mut failures = Vec::new();
    for (what, expected) in rows {
        for (column, token) in tokens.iter().enumerate() {
            let got = scim_call(&app, &org, token, what).await;
            if got != expected[column] {
                failures.push(format!(
                    "{what}, column {column}: expected {}, got {got}",
                    expected[column]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

async fn scim_call(app: &TestApp, org: &OrgFixture, token: &str, what: &str) -> u16 {
    let idp = Scim::new(app, token);
    let viewer = app.with_member(org, Role::Viewer).await;
    let owner = app.with_member(org, Role::Owner).await;
    let user = |m: &MemberFixture| format!("/Users/{}", m.member_id);
    let answer = match what {
        "create a user" => {
            let name = format!("new-{}@example.com", uuid::Uuid::new_v4().simple());
            idp.post(
                "/Users",
                &json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name }),
            )
            .await
        }
        "deactivate a viewer" => idp.patch_ops(&user(&viewer), deactivate()).await,
        "delete a viewer" => idp.delete(&user(&viewer)).await,
        "deactivate an owner" => idp.patch_ops(&user(&owner), deactivate()).await,
        "delete an owner" => idp.delete(&user(&owner)).await,
        "delete an owner through a group" => {
            mapped_group(app, org, "owner", &[viewer.member_id.as_str()]).await;
            idp.delete(&user(&viewer)).await
        }
        "add to the owners group" => {
            let group = mapped_group(app, org, "owner", &[]).await;
            idp.patch_ops(
                &format!("/Groups/{group}"),
                add_member(viewer.member_id.as_str()),
            )
            .await
        }
        "remove from the owners group" => {
            let group = mapped_group(app, org, "owner", &[viewer.member_id.as_str()]).await;
            let remove = json!([{ "op": "remove", "path": format!("members[value eq \"{}\"]", viewer.member_id) }]);
            idp.patch_ops(&format!("/Groups/{group}"), remove).await
        }
        "put the owners group unchanged" => {
            let group = mapped_group(app, org, "owner", &[viewer.member_id.as_str()]).await;
            let current = idp.get(&format!("/Groups/{group}")).await;
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": current.body["displayName"],
                "members": [{ "value": viewer.member_id.as_str() }],
            });
            idp.put(&format!("/Groups/{group}"), &body).await
        }
        "delete the owners group" => {
            let group = mapped_group(app, org, "owner", &[]).await;
            idp.delete(&format!("/Groups/{group}")).await
        }
        "add to an admins group" => {
            let group = mapped_group(app, org, "admin", &[]).await;
            idp.patch_ops(
                &format!("/Groups/{group}"),
                add_member(viewer.member_id.as_str()),
            )
            .await
        }
        "bulk add to the owners group" => {
            let group = mapped_group(app, org, "owner", &[]).await;
            let bulk = idp
                .post(
                    "/Bulk",
                    &json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                        "Operations": [{
                            "method": "PATCH",
                            "path": format!("/Groups/{group}"),
                            "data": {
                                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                "Operations": add_member(viewer.member_id.as_str()),
                            },
                        }],
                    }),
                )
                .await;
            assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
            let status = bulk.body["Operations"][0]["status"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("an operation status");
            return status;
        }
        other => panic!("no such row: {other}"),
    };
    answer.status.as_u16()
}
