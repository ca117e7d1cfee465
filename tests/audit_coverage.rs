//! Every mutation writes exactly one audit event: one row per mutating
//! management route and SCIM operation, performed once against the real
//! server, then the worker's rows (mail sent, mail refused, invitation
//! expired, events purged), accepting the mailed invitation, and
//! authentication's (sign-in, its failure, a password change, ending one
//! session or all the others, sign-out).
//!
//! Each row reads the events that appeared since the previous row, so an
//! operation that writes none, or two, fails its own row.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use common::smtp::{SmtpServer, invitation_token, parse_message};
use common::{TestApp, eventually};
use muster::auth::token::{TokenHash, TokenKind};
use muster::bootstrap::{BootstrapInput, bootstrap};
use muster::domain::Role;
use muster::state::AppState;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// Who an event must name as its actor.
#[derive(Debug, Clone)]
enum Who {
    Account(String),
    ApiToken { account: String, token: String },
    Scim { token: String, name: String },
    System,
}

/// What one row expects of its one event.
struct Expect<'a> {
    action: &'a str,
    actor: &'a Who,
    target: (&'a str, &'a str),
    before: bool,
    after: bool,
}

/// The events seen so far, so that each row reads only its own.
struct Log<'a> {
    app: &'a TestApp,
    seen: HashSet<String>,
}

impl<'a> Log<'a> {
    async fn new(app: &'a TestApp) -> Log<'a> {
        let mut log = Log {
            app,
            seen: HashSet::new(),
        };
        let _ = log.fresh().await;
        log
    }

    /// The events written since the last call, oldest first.
    async fn fresh(&mut self) -> Vec<Value> {
        let mut cursor = self
            .app
            .store
            .database()
            .collection::<bson::Document>("audit_events")
            .find(bson::doc! {})
            .sort(bson::doc! { "_id": 1 })
            .await
            .expect("read the audit log");
        let mut found = Vec::new();
        while cursor.advance().await.expect("advance") {
            let event = cursor.deserialize_current().expect("an event");
            let id = event.get_str("_id").expect("an id").to_owned();
            if self.seen.insert(id) {
                found.push(serde_json::to_value(&event).expect("event as json"));
            }
        }
        found
    }

    /// The one event written since the last call, checked against `expect`.
    async fn one(&mut self, row: &str, expect: Expect<'_>) -> Value {
        let events = self.fresh().await;
        let actions: Vec<&str> = events
            .iter()
            .map(|event| event["action"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            actions,
            [expect.action],
            "{row}: exactly one `{}` event; got {events:#?}",
            expect.action
        );
        let event = events.into_iter().next().unwrap_or_default();
        check(row, &event, &expect);
        event
    }

    /// Nothing was written since the last call.
    async fn none(&mut self, row: &str) {
        let events = self.fresh().await;
        assert!(events.is_empty(), "{row}: no event; got {events:#?}");
    }
}

fn check(row: &str, event: &Value, expect: &Expect<'_>) {
    let actor = &event["actor"];
    let field = |name: &str| actor[name].as_str().map(str::to_owned);
    match expect.actor {
        Who::Account(account) => {
            assert_eq!(
                field("kind").as_deref(),
                Some("account"),
                "{row}: {event:#}"
            );
            assert_eq!(
                field("account_id").as_ref(),
                Some(account),
                "{row}: {event:#}"
            );
        }
        Who::ApiToken { account, token } => {
            assert_eq!(
                field("kind").as_deref(),
                Some("api_token"),
                "{row}: {event:#}"
            );
            assert_eq!(
                field("account_id").as_ref(),
                Some(account),
                "{row}: {event:#}"
            );
            assert_eq!(field("token_id").as_ref(), Some(token), "{row}: {event:#}");
        }
        Who::Scim { token, name } => {
            assert_eq!(
                field("kind").as_deref(),
                Some("scim_token"),
                "{row}: {event:#}"
            );
            assert_eq!(field("token_id").as_ref(), Some(token), "{row}: {event:#}");
            assert_eq!(field("label").as_ref(), Some(name), "{row}: {event:#}");
        }
        Who::System => {
            assert_eq!(field("kind").as_deref(), Some("system"), "{row}: {event:#}");
        }
    }
    // A request's event says where it came from; Muster's own say nothing.
    let from_request = !matches!(expect.actor, Who::System);
    for origin in ["ip", "request_id"] {
        assert_eq!(
            event[origin].is_string(),
            from_request,
            "{row}: {origin}: {event:#}"
        );
    }
    let (kind, id) = expect.target;
    assert_eq!(event["target"]["kind"], kind, "{row}: {event:#}");
    assert_eq!(event["target"]["id"], id, "{row}: {event:#}");
    let present = |name: &str| !event[name].is_null();
    assert_eq!(present("before"), expect.before, "{row}: before: {event:#}");
    assert_eq!(present("after"), expect.after, "{row}: after: {event:#}");
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let mut request = app
        .client
        .request(method.clone(), app.url(&format!("/api/v1{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let got = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The id of a stored token, found by its secret.
async fn token_id(app: &TestApp, kind: TokenKind, secret: &str) -> (String, Option<String>) {
    let record = muster::store::tokens::find_by_hash(&app.store, kind, &TokenHash::of(secret))
        .await
        .expect("read the token")
        .expect("the token exists");
    (record.id.to_string(), record.name)
}

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn every_mutating_management_route_writes_exactly_one_event() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let o = org.org_id.to_string();
    let owner = &org.owner;
    let owner_account = owner.account_id.to_string();
    let by_owner = Who::ApiToken {
        account: owner_account.clone(),
        token: token_id(&app, TokenKind::Personal, &owner.token).await.0,
    };
    let session = crate::api::session_for(&app, &owner.account_id).await;
    let by_session = Who::Account(owner_account.clone());
    let viewer = app.with_member(&org, Role::Viewer).await;
    let admin = app.with_member(&org, Role::Admin).await;
    let mut log = Log::new(&app).await;
    let (t, ok, created, gone) = (
        owner.token.as_str(),
        StatusCode::OK,
        StatusCode::CREATED,
        StatusCode::NO_CONTENT,
    );
    let body = |value: Value| Some(value);
    let event = |action, actor, target, before, after| Expect {
        action,
        actor,
        target,
        before,
        after,
    };

    call(
        &app,
        Method::PATCH,
        &format!("/orgs/{o}"),
        t,
        body(json!({ "name": "Renamed" })),
        ok,
    )
    .await;
    log.one(
        "PATCH /orgs/{org}",
        event(
            "organization.updated",
            &by_owner,
            ("organization", &o),
            true,
            true,
        ),
    )
    .await;

    let m = viewer.member_id.to_string();
    let path = format!("/orgs/{o}/members/{m}");
    call(
        &app,
        Method::PATCH,
        &path,
        t,
        body(json!({ "role": "contributor" })),
        ok,
    )
    .await;
    log.one(
        "PATCH /orgs/{org}/members/{m}",
        event("member.updated", &by_owner, ("member", &m), true, true),
    )
    .await;
    call(&app, Method::DELETE, &path, t, None, gone).await;
    log.one(
        "DELETE /orgs/{org}/members/{m}",
        event("member.removed", &by_owner, ("member", &m), true, false),
    )
    .await;

    let group = call(
        &app,
        Method::POST,
        &format!("/orgs/{o}/groups"),
        t,
        body(json!({ "display_name": "Ops" })),
        created,
    )
    .await;
    let g = id_of(&group);
    log.one(
        "POST /orgs/{org}/groups",
        event("group.created", &by_owner, ("group", &g), false, true),
    )
    .await;
    let path = format!("/orgs/{o}/groups/{g}");
    call(
        &app,
        Method::PATCH,
        &path,
        t,
        body(json!({ "display_name": "Ops 2" })),
        ok,
    )
    .await;
    log.one(
        "PATCH /orgs/{org}/groups/{g}",
        event("group.updated", &by_owner, ("group", &g), true, true),
    )
    .await;
    call(
        &app,
        Method::PUT,
        &format!("{path}/role-mapping"),
        t,
        body(json!({ "role": "viewer" })),
        ok,
    )
    .await;
    log.one(
        "PUT /orgs/{org}/groups/{g}/role-mapping",
        event("group.role_mapped", &by_owner, ("group", &g), true, true),
    )
    .await;
    call(&app, Method::DELETE, &path, t, None, gone).await;
    log.one(
        "DELETE /orgs/{org}/groups/{g}",
        event("group.deleted", &by_owner, ("group", &g), true, false),
    )
    .await;

    let project = call(
        &app,
        Method::POST,
        &format!("/orgs/{o}/projects"),
        t,
        body(json!({ "name": "Apollo" })),
        created,
    )
    .await;
    let p = id_of(&project);
    log.one(
        "POST /orgs/{org}/projects",
        event("project.created", &by_owner, ("project", &p), false, true),
    )
    .await;
    let path = format!("/orgs/{o}/projects/{p}");
    call(
        &app,
        Method::PATCH,
        &path,
        t,
        body(json!({ "name": "Gemini" })),
        ok,
    )
    .await;
    log.one(
        "PATCH /orgs/{org}/projects/{p}",
        event("project.updated", &by_owner, ("project", &p), true, true),
    )
    .await;
    call(&app, Method::DELETE, &path, t, None, gone).await;
    log.one(
        "DELETE /orgs/{org}/projects/{p}",
        event("project.deleted", &by_owner, ("project", &p), true, false),
    )
    .await;

    let scim_token = call(
        &app,
        Method::POST,
        &format!("/orgs/{o}/scim-tokens"),
        t,
        body(json!({ "name": "Okta" })),
        created,
    )
    .await;
    let s = id_of(&scim_token);
    let written = log
        .one(
            "POST /orgs/{org}/scim-tokens",
            event(
                "scim_token.created",
                &by_owner,
                ("scim_token", &s),
                false,
                true,
            ),
        )
        .await;
    let secret = scim_token["token"].as_str().expect("the secret");
    assert!(
        !written.to_string().contains(secret),
        "the secret stays out of the log: {written:#}"
    );
    call(
        &app,
        Method::DELETE,
        &format!("/orgs/{o}/scim-tokens/{s}"),
        t,
        None,
        gone,
    )
    .await;
    log.one(
        "DELETE /orgs/{org}/scim-tokens/{s}",
        event(
            "scim_token.deleted",
            &by_owner,
            ("scim_token", &s),
            true,
            false,
        ),
    )
    .await;

    let personal = call(
        &app,
        Method::POST,
        "/me/tokens",
        &session,
        body(json!({ "org_id": o, "name": "CI" })),
        created,
    )
    .await;
    let pt = id_of(&personal);
    let written = log
        .one(
            "POST /me/tokens",
            event(
                "personal_token.created",
                &by_session,
                ("personal_token", &pt),
                false,
                true,
            ),
        )
        .await;
    let secret = personal["token"].as_str().expect("the secret");
    assert!(
        !written.to_string().contains(secret),
        "the secret stays out of the log: {written:#}"
    );
    call(
        &app,
        Method::DELETE,
        &format!("/me/tokens/{pt}"),
        &session,
        None,
        gone,
    )
    .await;
    log.one(
        "DELETE /me/tokens/{t}",
        event(
            "personal_token.deleted",
            &by_session,
            ("personal_token", &pt),
            true,
            false,
        ),
    )
    .await;

    call(
        &app,
        Method::PATCH,
        "/me",
        &session,
        body(json!({ "display_name": "Kim" })),
        ok,
    )
    .await;
    log.one(
        "PATCH /me",
        event(
            "account.updated",
            &by_session,
            ("account", &owner_account),
            false,
            true,
        ),
    )
    .await;

    let invited = call(
        &app,
        Method::POST,
        &format!("/orgs/{o}/invitations"),
        t,
        body(json!({ "emails": "new@example.com", "role": "viewer" })),
        ok,
    )
    .await;
    let i = invited["results"][0]["invitation_id"]
        .as_str()
        .expect("an invitation")
        .to_owned();
    log.one(
        "POST /orgs/{org}/invitations",
        event(
            "invitation.created",
            &by_owner,
            ("invitation", &i),
            false,
            true,
        ),
    )
    .await;
    call(
        &app,
        Method::POST,
        &format!("/orgs/{o}/invitations/{i}/resend"),
        t,
        None,
        ok,
    )
    .await;
    log.one(
        "POST /orgs/{org}/invitations/{i}/resend",
        event(
            "invitation.resent",
            &by_owner,
            ("invitation", &i),
            true,
            true,
        ),
    )
    .await;
    call(
        &app,
        Method::DELETE,
        &format!("/orgs/{o}/invitations/{i}"),
        t,
        None,
        gone,
    )
    .await;
    log.one(
        "DELETE /orgs/{org}/invitations/{i}",
        event(
            "invitation.revoked",
            &by_owner,
            ("invitation", &i),
            true,
            true,
        ),
    )
    .await;

    let by_admin = Who::ApiToken {
        account: admin.account_id.to_string(),
        token: token_id(&app, TokenKind::Personal, &admin.token).await.0,
    };
    let a = admin.member_id.to_string();
    call(
        &app,
        Method::POST,
        &format!("/orgs/{o}/leave"),
        &admin.token,
        None,
        gone,
    )
    .await;
    log.one(
        "POST /orgs/{org}/leave",
        event("member.left", &by_admin, ("member", &a), true, false),
    )
    .await;

    let founded = call(
        &app,
        Method::POST,
        "/orgs",
        &session,
        body(json!({ "name": "Second" })),
        created,
    )
    .await;
    let second = id_of(&founded);
    log.one(
        "POST /orgs",
        event(
            "organization.created",
            &by_session,
            ("organization", &second),
            false,
            true,
        ),
    )
    .await;

    call(&app, Method::DELETE, &format!("/orgs/{o}"), t, None, gone).await;
    log.one(
        "DELETE /orgs/{org}",
        event(
            "organization.deleted",
            &by_owner,
            ("organization", &o),
            true,
            true,
        ),
    )
    .await;
}

#[tokio::test]
async fn every_scim_operation_writes_exactly_one_event_naming_its_token() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let (token, name) = token_id(&app, TokenKind::Scim, &org.scim_token).await;
    let by_idp = Who::Scim {
        token,
        name: name.expect("the bootstrap token has a name"),
    };
    let scim = common::Scim::new(&app, &org.scim_token);
    let mut log = Log::new(&app).await;
    let event = |action, target, before, after| Expect {
        action,
        actor: &by_idp,
        target,
        before,
        after,
    };
    let user = |name: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "emails": [{ "value": name, "type": "work", "primary": true }],
        })
    };

    // An identity provider creating a user also invites it (activation):
    // that is a second change, with an event of its own.
    let created = scim.post("/Users", &user("ada@example.com")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let u = created.id();
    let events = log.fresh().await;
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        ["member.created", "invitation.created"],
        "{events:#?}"
    );
    check(
        "POST /Users",
        &events[0],
        &event("member.created", ("member", &u), false, true),
    );

    let path = format!("/Users/{u}");
    let replaced = scim.put(&path, &user("ada@example.com")).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    log.one(
        "PUT /Users/{id}",
        event("member.updated", ("member", &u), true, true),
    )
    .await;
    let patched = scim
        .patch_ops(
            &path,
            json!([{ "op": "replace", "path": "displayName", "value": "Ada L." }]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    log.one(
        "PATCH /Users/{id}",
        event("member.updated", ("member", &u), true, true),
    )
    .await;

    let group = scim
        .post(
            "/Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Engineers",
            }),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let g = group.id();
    log.one(
        "POST /Groups",
        event("group.created", ("group", &g), false, true),
    )
    .await;
    let path = format!("/Groups/{g}");
    let replaced = scim
        .put(
            &path,
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Engineering",
                "members": [{ "value": u }],
            }),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    log.one(
        "PUT /Groups/{id}",
        event("group.updated", ("group", &g), true, true),
    )
    .await;
    let patched = scim
        .patch_ops(
            &path,
            json!([{ "op": "remove", "path": format!("members[value eq \"{u}\"]") }]),
        )
        .await;
    assert!(patched.status.is_success(), "{}", patched.body);
    log.one(
        "PATCH /Groups/{id}",
        event("group.updated", ("group", &g), true, true),
    )
    .await;
    assert_eq!(scim.delete(&path).await.status, StatusCode::NO_CONTENT);
    log.one(
        "DELETE /Groups/{id}",
        event("group.deleted", ("group", &g), true, false),
    )
    .await;

    // `/Bulk` runs each operation as its own request would: one event each,
    // by the same token, from the same origin.
    let bulk = scim
        .post(
            "/Bulk",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [{ "method": "POST", "path": "/Groups", "bulkId": "b", "data": {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Bulk" } }],
            }),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    let location = bulk.body["Operations"][0]["location"]
        .as_str()
        .expect("a location");
    let b = location.rsplit('/').next().expect("an id").to_owned();
    log.one(
        "POST /Bulk (POST /Groups)",
        event("group.created", ("group", &b), false, true),
    )
    .await;

    assert_eq!(
        scim.delete(&format!("/Users/{u}")).await.status,
        StatusCode::NO_CONTENT
    );
    // The user never activated: removing it also revokes its activation
    // invitation, a second change with its own event.
    let events = log.fresh().await;
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        ["invitation.revoked", "member.removed"],
        "{events:#?}"
    );
    check(
        "DELETE /Users/{id}",
        &events[1],
        &event("member.removed", ("member", &u), true, false),
    );
}

#[tokio::test]
async fn sign_in_its_failure_and_sign_out_are_the_accounts_own_events() {
    let app = TestApp::spawn().await;
    let output = bootstrap(
        &app.store,
        Utc::now(),
        BootstrapInput {
            org_name: "Signing".into(),
            owner_email: "kim@example.com".into(),
            owner_password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("bootstrap");
    let account = output.owner_account_id.clone();
    let kim = Who::Account(account.clone());
    let mut log = Log::new(&app).await;
    let login = |email: &'static str, password: &'static str| {
        app.post("/api/v1/auth/login")
            .header("user-agent", "audit-test/1.0")
            .json(&json!({ "email": email, "password": password }))
            .send()
    };

    let refused = login("kim@example.com", "not the password")
        .await
        .expect("request");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // Written off the request, so that it costs no time an unknown email
    // does not: awaited, not assumed.
    let audit_events = app
        .store
        .database()
        .collection::<bson::Document>("audit_events");
    eventually(Duration::from_secs(10), "the failure is recorded", || {
        let audit_events = audit_events.clone();
        async move {
            audit_events
                .find_one(bson::doc! { "action": "account.sign_in_failed" })
                .await
                .expect("read the log")
        }
    })
    .await;
    let failed = log
        .one(
            "a wrong password",
            Expect {
                action: "account.sign_in_failed",
                actor: &kim,
                target: ("account", &account),
                before: false,
                after: false,
            },
        )
        .await;
    assert_eq!(failed["org_id"], Value::Null, "{failed:#}");
    assert_eq!(failed["account_id"], account.as_str(), "{failed:#}");
    assert_eq!(failed["ip"], "127.0.0.1", "{failed:#}");
    assert_eq!(failed["user_agent"], "audit-test/1.0", "{failed:#}");
    assert_eq!(failed["actor"]["label"], "kim@example.com", "{failed:#}");

    // Nobody to attribute it to: nothing is written.
    let refused = login("nobody@example.com", "not the password")
        .await
        .expect("request");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    log.none("an unknown email").await;

    let signed_in = login("kim@example.com", PASSWORD).await.expect("request");
    assert_eq!(signed_in.status(), StatusCode::OK);
    let session = signed_in.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("a session")
        .to_owned();
    let event = log
        .one(
            "a sign-in",
            Expect {
                action: "account.signed_in",
                actor: &kim,
                target: ("account", &account),
                before: false,
                after: true,
            },
        )
        .await;
    assert_eq!(event["actor"]["label"], "kim@example.com", "{event:#}");

    // A password change ends the account's other sessions: one event says
    // both.
    let other = login("kim@example.com", PASSWORD).await.expect("request");
    assert_eq!(other.status(), StatusCode::OK);
    let _ = log.fresh().await;
    let changed = call(
        &app,
        Method::PATCH,
        "/me",
        &session,
        Some(json!({ "password": { "current": PASSWORD, "new": "a new horse battery staple" } })),
        StatusCode::OK,
    )
    .await;
    let event = log
        .one(
            "a password change",
            Expect {
                action: "account.updated",
                actor: &kim,
                target: ("account", &account),
                before: false,
                after: true,
            },
        )
        .await;
    assert_eq!(
        event["after"]["password_changed"], true,
        "{event:#} {changed}"
    );
    assert_eq!(event["after"]["sessions_ended"], 1, "{event:#}");
    let encoded = event.to_string();
    assert!(
        !encoded.contains("horse"),
        "no password in the log: {encoded}"
    );

    // Ending one session from the list is a sign-out of that session.
    const NEW_PASSWORD: &str = "a new horse battery staple";
    let second = login("kim@example.com", NEW_PASSWORD)
        .await
        .expect("request");
    assert_eq!(second.status(), StatusCode::OK);
    let second = second.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("a session")
        .to_owned();
    let _ = log.fresh().await;
    let listed = call(
        &app,
        Method::GET,
        "/me/sessions",
        &second,
        None,
        StatusCode::OK,
    )
    .await;
    let second_id = listed["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["current"] == true))
        .and_then(|item| item["id"].as_str())
        .expect("the current session")
        .to_owned();
    log.none("GET /me/sessions").await;
    let path = format!("/me/sessions/{second_id}");
    call(
        &app,
        Method::DELETE,
        &path,
        &session,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let event = log
        .one(
            "DELETE /me/sessions/{id}",
            Expect {
                action: "account.signed_out",
                actor: &kim,
                target: ("account", &account),
                before: false,
                after: true,
            },
        )
        .await;
    assert_eq!(
        event["after"]["session_id"],
        second_id.as_str(),
        "{event:#}"
    );
    call(
        &app,
        Method::DELETE,
        &path,
        &session,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    log.none("DELETE /me/sessions/{id} of no session").await;

    // Signing out everywhere else says how many sessions it ended.
    let third = login("kim@example.com", NEW_PASSWORD)
        .await
        .expect("request");
    assert_eq!(third.status(), StatusCode::OK);
    let _ = log.fresh().await;
    let ended = call(
        &app,
        Method::DELETE,
        "/me/sessions",
        &session,
        None,
        StatusCode::OK,
    )
    .await;
    let event = log
        .one(
            "DELETE /me/sessions",
            Expect {
                action: "account.signed_out_elsewhere",
                actor: &kim,
                target: ("account", &account),
                before: false,
                after: true,
            },
        )
        .await;
    assert_eq!(event["after"]["sessions_ended"], 1, "{event:#} {ended}");

    call(
        &app,
        Method::POST,
        "/auth/logout",
        &session,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    log.one(
        "a sign-out",
        Expect {
            action: "account.signed_out",
            actor: &kim,
            target: ("account", &account),
            before: false,
            after: true,
        },
    )
    .await;
}

/// Invites one address with a worker running that mails through `smtp_url`
/// (or the outbox without one); returns the app, the invitation's id and the
/// worker's stop switch.
async fn mail_one(
    smtp_url: Option<String>,
    outbox: &std::path::Path,
) -> (TestApp, String, tokio::sync::oneshot::Sender<()>) {
    let outbox = outbox.display().to_string();
    let app = TestApp::builder()
        .settings(|s| {
            s.smtp.url = smtp_url;
            s.smtp.outbox_dir = outbox;
        })
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    let state = AppState::new(app.store.clone(), app.settings.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(muster::jobs::run_with(state, common::quick_jobs(), async {
        let _ = stopped.await;
    }));
    let o = org.org_id.to_string();
    let invited = call(
        &app,
        Method::POST,
        &format!("/orgs/{o}/invitations"),
        &org.owner.token,
        Some(json!({ "emails": "grace@example.com", "role": "viewer" })),
        StatusCode::OK,
    )
    .await;
    let id = invited["results"][0]["invitation_id"]
        .as_str()
        .expect("an invitation")
        .to_owned();
    (app, id, stop)
}

/// Waits for the worker's event on `invitation`.
async fn worker_event(app: &TestApp, action: &str, invitation: &str) -> Value {
    let events = app
        .store
        .database()
        .collection::<bson::Document>("audit_events");
    let event = eventually(Duration::from_secs(30), action, || {
        let events = events.clone();
        async move {
            events
                .find_one(bson::doc! { "action": action, "target.id": invitation })
                .await
                .expect("read the log")
        }
    })
    .await;
    let count = events
        .count_documents(bson::doc! { "target.id": invitation, "actor.kind": "system" })
        .await
        .expect("count");
    assert_eq!(count, 1, "one event by the worker");
    serde_json::to_value(&event).expect("json")
}

#[tokio::test]
async fn the_worker_records_a_mailed_invitation() {
    let outbox = tempfile::tempdir().expect("tempdir");
    let (app, id, stop) = mail_one(None, outbox.path()).await;
    let event = worker_event(&app, "invitation.mailed", &id).await;
    let _ = stop.send(());
    check(
        "the mail is sent",
        &event,
        &Expect {
            action: "invitation.mailed",
            actor: &Who::System,
            target: ("invitation", &id),
            before: false,
            after: true,
        },
    );
    assert_eq!(event["after"]["send"], 1, "{event:#}");

    // The invitee accepts through the API with the mailed link's secret.
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(outbox.path())
        .expect("the outbox")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let token = invitation_token(&parse_message(&files[0]));
    let mut log = Log::new(&app).await;
    let accepted = app
        .post("/api/v1/invitations/accept")
        .json(&json!({ "token": token, "name": "Grace Hopper", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(accepted.status(), StatusCode::OK);
    let accepted: Value = accepted.json().await.expect("json");
    let account = accepted["account_id"]
        .as_str()
        .expect("the new account")
        .to_owned();
    let event = log
        .one(
            "POST /invitations/accept",
            Expect {
                action: "invitation.accepted",
                actor: &Who::Account(account),
                target: ("invitation", &id),
                before: true,
                after: true,
            },
        )
        .await;
    // No email in an organization's event: its seal would keep it after
    // the account is deleted. Readers resolve the name.
    assert_eq!(event["actor"].get("label"), None, "{event:#}");
}

#[tokio::test]
async fn a_wrong_password_when_accepting_is_a_failed_sign_in() {
    let outbox = tempfile::tempdir().expect("tempdir");
    let (app, id, stop) = mail_one(None, outbox.path()).await;
    let _ = worker_event(&app, "invitation.mailed", &id).await;
    let _ = stop.send(());
    // The invitee has an account of their own by now, with a password.
    let output = bootstrap(
        &app.store,
        Utc::now(),
        BootstrapInput {
            org_name: "Elsewhere".into(),
            owner_email: "grace@example.com".into(),
            owner_password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("bootstrap");
    let account = output.owner_account_id.clone();
    let path = std::fs::read_dir(outbox.path())
        .expect("the outbox")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .next()
        .expect("the mail");
    let token = invitation_token(&parse_message(&path));
    let mut log = Log::new(&app).await;
    // Accepting is a sign-in by another door: a wrong password there is a
    // failed sign-in of that account.
    let refused = app
        .post("/api/v1/invitations/accept")
        .header("user-agent", "audit-test/1.0")
        .json(&json!({ "token": token, "password": "not the password" }))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let event = log
        .one(
            "a wrong password on accepting",
            Expect {
                action: "account.sign_in_failed",
                actor: &Who::Account(account.clone()),
                target: ("account", &account),
                before: false,
                after: true,
            },
        )
        .await;
    assert_eq!(event["org_id"], Value::Null, "{event:#}");
    assert_eq!(event["account_id"], account.as_str(), "{event:#}");
    assert_eq!(event["after"]["invitation_id"], id.as_str(), "{event:#}");
    assert_eq!(event["user_agent"], "audit-test/1.0", "{event:#}");
}

#[tokio::test]
async fn the_worker_records_a_refused_mail() {
    // A 200-byte size limit: the server refuses the mail for good (552).
    let server = SmtpServer::start(&["-s", "200"]);
    let outbox = tempfile::tempdir().expect("tempdir");
    let (app, id, stop) = mail_one(Some(server.url()), outbox.path()).await;
    let event = worker_event(&app, "invitation.delivery_failed", &id).await;
    let _ = stop.send(());
    check(
        "the mail is refused",
        &event,
        &Expect {
            action: "invitation.delivery_failed",
            actor: &Who::System,
            target: ("invitation", &id),
            before: false,
            after: true,
        },
    );
    assert_eq!(event["after"]["send"], 1, "{event:#}");
    assert_eq!(event["after"]["retrying"], false, "{event:#}");
    assert!(event["after"]["error"].is_string(), "{event:#}");
}

#[tokio::test]
async fn the_sweep_records_an_expired_invitation() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let invited = call(
        &app,
        Method::POST,
        &format!("/orgs/{}/invitations", org.org_id),
        &org.owner.token,
        Some(json!({ "emails": "lin@example.com", "role": "viewer" })),
        StatusCode::OK,
    )
    .await;
    let id = invited["results"][0]["invitation_id"]
        .as_str()
        .expect("an invitation")
        .to_owned();
    // Time is an input: move the expiry instead of waiting for it.
    app.store
        .database()
        .collection::<bson::Document>("invitations")
        .update_one(
            bson::doc! { "_id": &id },
            bson::doc! { "$set": { "expires_at": bson::DateTime::from_chrono(Utc::now() - chrono::Duration::minutes(1)) } },
        )
        .await
        .expect("move the expiry");
    let mut log = Log::new(&app).await;
    assert_eq!(
        muster::jobs::expire_due(&app.state).await.expect("sweep"),
        1
    );
    log.one(
        "the expiry sweep",
        Expect {
            action: "invitation.expired",
            actor: &Who::System,
            target: ("invitation", &id),
            before: true,
            after: true,
        },
    )
    .await;
    assert_eq!(
        muster::jobs::expire_due(&app.state).await.expect("sweep"),
        0
    );
    log.none("a sweep with nothing due").await;
}

#[tokio::test]
async fn the_purge_records_how_many_events_it_deleted() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let old = |n: i64| muster::domain::AuditEvent {
        org_id: Some(org.org_id.clone()),
        at: Utc::now() - chrono::Duration::days(400 + n),
        actor: muster::domain::Actor::System,
        actor_label: None,
        action: "test.old",
        target: muster::domain::Target {
            kind: "organization",
            id: org.org_id.to_string(),
        },
        before: None,
        after: None,
        origin: muster::domain::RequestOrigin::default(),
    };
    let store = &app.store;
    let events = [old(1), old(2)];
    muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
        muster::store::audit::record_many(store, session, &events).await
    })
    .expect("old events");
    let mut log = Log::new(&app).await;
    let purged = muster::jobs::purge_audit(&app.state).await.expect("purge");
    assert_eq!(purged, 2);
    let o = org.org_id.to_string();
    let event = log
        .one(
            "the purge",
            Expect {
                action: "audit.purged",
                actor: &Who::System,
                target: ("organization", &o),
                before: false,
                after: true,
            },
        )
        .await;
    assert_eq!(event["org_id"], o.as_str(), "{event:#}");
    assert_eq!(event["after"]["count"], 2, "{event:#}");
    // Nothing left to purge, nothing to record.
    assert_eq!(
        muster::jobs::purge_audit(&app.state).await.expect("purge"),
        0
    );
    log.none("a purge that deleted nothing").await;
}

/// Two-factor authentication and deleting an account: each step is one
/// event of the account's own. The account belongs to no organization, so
/// deleting it is one event too (leaving organizations adds each one's
/// `member.left`, covered by the deletion tests).
#[tokio::test]
async fn second_factors_and_account_deletion_write_their_events() {
    use muster::auth::totp::{TotpSecret, step_of};

    let app = TestApp::spawn().await;
    let now = Utc::now();
    let account = muster::domain::Account {
        id: muster::domain::AccountId::new(),
        email: muster::domain::Email::parse("lee@example.com").expect("email"),
        display_name: None,
        created_at: now,
        updated_at: now,
    };
    let hash = muster::auth::password::hash_password(PASSWORD).expect("hash");
    let store = &app.store;
    muster::in_transaction!(store, |session| -> Result<(), mongodb::error::Error> {
        let _ = muster::store::accounts::insert(store, session, &account, Some(&hash)).await?;
        Ok(())
    })
    .expect("an account");
    let id = account.id.to_string();
    let lee = Who::Account(id.clone());
    let own = |action| Expect {
        action,
        actor: &lee,
        target: ("account", &id),
        before: false,
        after: true,
    };
    let login = || async {
        let response = app
            .post("/api/v1/auth/login")
            .json(&json!({ "email": "lee@example.com", "password": PASSWORD }))
            .send()
            .await
            .expect("login");
        let status = response.status();
        (status, response.json::<Value>().await.expect("json"))
    };
    let (status, signed_in) = login().await;
    assert_eq!(status, StatusCode::OK);
    let session = signed_in["token"].as_str().expect("a session").to_owned();
    let mut log = Log::new(&app).await;

    let enrolment = call(
        &app,
        Method::POST,
        "/me/mfa/totp",
        &session,
        None,
        StatusCode::CREATED,
    )
    .await;
    let event = log
        .one(
            "POST /me/mfa/totp",
            Expect {
                after: false,
                ..own("account.mfa_enrolment_started")
            },
        )
        .await;
    let secret_text = enrolment["secret"].as_str().expect("secret");
    assert!(
        !event.to_string().contains(secret_text),
        "no secret: {event}"
    );
    let secret = TotpSecret::from_base32(secret_text).expect("base32");
    let step = step_of(Utc::now()) - 1;

    call(
        &app,
        Method::POST,
        "/me/mfa/totp/confirm",
        &session,
        Some(json!({ "code": secret.code_at(step), "password": PASSWORD })),
        StatusCode::OK,
    )
    .await;
    log.one("POST /me/mfa/totp/confirm", own("account.mfa_enabled"))
        .await;

    let regenerated = call(
        &app,
        Method::POST,
        "/me/mfa/recovery-codes",
        &session,
        Some(json!({ "code": secret.code_at(step + 1), "password": PASSWORD })),
        StatusCode::OK,
    )
    .await;
    let event = log
        .one(
            "POST /me/mfa/recovery-codes",
            own("account.mfa_recovery_codes_regenerated"),
        )
        .await;
    assert_eq!(event["after"]["recovery_codes"], 10, "{event:#}");
    let recovery_code = regenerated["recovery_codes"][0]
        .as_str()
        .expect("a recovery code")
        .to_owned();
    assert!(
        !event.to_string().contains(&recovery_code),
        "no code: {event}"
    );

    let (status, challenge) = login().await;
    assert_eq!(status, StatusCode::ACCEPTED);
    log.none("the password step").await;
    let challenge = challenge["challenge"].as_str().expect("challenge");
    let wrong = app
        .post("/api/v1/auth/login/mfa")
        .json(&json!({ "challenge": challenge, "code": "000000" }))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    log.one("a wrong code", own("account.mfa_failed")).await;
    let right = app
        .post("/api/v1/auth/login/mfa")
        .json(&json!({ "challenge": challenge, "code": secret.code_at(step + 2) }))
        .send()
        .await
        .expect("request");
    assert_eq!(right.status(), StatusCode::OK);
    let event = log
        .one("POST /auth/login/mfa", own("account.signed_in"))
        .await;
    assert_eq!(event["after"]["second_factor"], "totp", "{event:#}");

    call(
        &app,
        Method::DELETE,
        "/me/mfa/totp",
        &session,
        // The steps either side of now are spent: a regenerated code.
        Some(json!({ "recovery_code": recovery_code })),
        StatusCode::NO_CONTENT,
    )
    .await;
    let event = log
        .one("DELETE /me/mfa/totp", own("account.mfa_disabled"))
        .await;
    assert_eq!(event["after"]["via"], "recovery_code", "{event:#}");
    assert_eq!(event["after"]["sessions_ended"], 1, "{event:#}");

    call(
        &app,
        Method::DELETE,
        "/me",
        &session,
        Some(json!({ "password": PASSWORD })),
        StatusCode::NO_CONTENT,
    )
    .await;
    let event = log.one("DELETE /me", own("account.deleted")).await;
    assert_eq!(event["after"]["memberships_left"], 0, "{event:#}");
    assert!(!event.to_string().contains("lee@example.com"), "{event:#}");
}
