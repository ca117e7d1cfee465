//! Reading the audit log: `/orgs/{org}/audit-events` and
//! `/me/audit-events` against the real server.

use std::collections::HashSet;

use chrono::Utc;
use muster::bootstrap::{BootstrapInput, bootstrap};
use muster::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{OrgFixture, Scim, TestApp};

const PASSWORD: &str = "correct horse battery staple";

async fn read(
    app: &TestApp,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = app
        .get(&format!("/api/v1{path}"))
        .query(query)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET audit events");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The organization's events matching `query`, which must answer 200.
async fn org_events(app: &TestApp, org: &OrgFixture, query: &[(&str, &str)]) -> Vec<Value> {
    let path = format!("/orgs/{}/audit-events", org.org_id);
    let (status, body) = read(app, &org.owner.token, &path, query).await;
    assert_eq!(status, StatusCode::OK, "{query:?}: {body}");
    body["items"].as_array().expect("items").clone()
}

fn actions(items: &[Value]) -> Vec<&str> {
    items.iter().filter_map(|i| i["action"].as_str()).collect()
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn create_project(app: &TestApp, org: &OrgFixture, token: &str, name: &str) -> String {
    let response = app
        .post(&format!("/api/v1/orgs/{}/projects", org.org_id))
        .bearer_auth(token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("create a project");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("project id").to_owned()
}

async fn scim_token_id(app: &TestApp, org: &OrgFixture) -> String {
    let (status, body) = read(
        app,
        &org.owner.token,
        &format!("/orgs/{}/scim-tokens", org.org_id),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    body["items"][0]["id"]
        .as_str()
        .expect("token id")
        .to_owned()
}

#[tokio::test]
async fn filters_narrow_the_log_which_reads_newest_first() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let admin = app.with_member(&org, Role::Admin).await;
    let apollo = create_project(&app, &org, &org.owner.token, "Apollo").await;
    let gemini = create_project(&app, &org, &org.owner.token, "Gemini").await;
    let mercury = create_project(&app, &org, &admin.token, "Mercury").await;
    let renamed = app
        .client
        .patch(app.url(&format!("/api/v1/orgs/{}/projects/{apollo}", org.org_id)))
        .bearer_auth(&org.owner.token)
        .json(&json!({ "name": "Artemis" }))
        .send()
        .await
        .expect("rename");
    assert_eq!(renamed.status(), StatusCode::OK);
    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/orgs/{}/projects/{gemini}", org.org_id)))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let ada = Scim::new(&app, &org.scim_token)
        .create_user("ada@example.com")
        .await;

    // Newest first: the order of the writes, reversed.
    let all = org_events(&app, &org, &[]).await;
    let mut sorted = ids(&all);
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids(&all), sorted);
    assert_eq!(
        actions(&all)[..7],
        [
            // The identity provider's user is invited to activate.
            "invitation.created",
            "member.created",
            "project.deleted",
            "project.updated",
            "project.created",
            "project.created",
            "project.created",
        ]
    );
    assert_eq!(
        all.last().expect("bootstrap")["action"],
        "organization.bootstrapped"
    );

    // The actor: an account id finds what the person did through any token.
    let by_admin = org_events(&app, &org, &[("actor", admin.account_id.as_str())]).await;
    assert_eq!(actions(&by_admin), ["project.created"]);
    let item = &by_admin[0];
    assert_eq!(item["target"]["id"], mercury.as_str());
    assert_eq!(item["target"]["label"], "Mercury");
    assert_eq!(item["actor"]["kind"], "api_token");
    assert_eq!(item["actor"]["label"], admin.email.as_str());
    assert_eq!(item["actor"]["account_id"], admin.account_id.as_str());
    assert_eq!(item["after"]["name"], "Mercury");
    assert!(
        item["changes"]
            .as_array()
            .expect("changes")
            .contains(&json!({ "field": "name", "after": "Mercury" })),
        "{item}"
    );
    // A token id finds what that token did: the identity provider here.
    let scim_id = scim_token_id(&app, &org).await;
    let by_idp = org_events(&app, &org, &[("actor", scim_id.as_str())]).await;
    assert_eq!(actions(&by_idp), ["invitation.created", "member.created"]);
    for item in &by_idp {
        assert_eq!(item["actor"]["kind"], "scim_token");
        assert_eq!(item["actor"]["id"], scim_id.as_str());
        assert_ne!(item["actor"]["label"], "deleted");
        assert_eq!(item["target"]["label"], "ada@example.com");
    }
    assert_eq!(by_idp[1]["target"]["id"], ada.as_str());
    assert_eq!(by_idp[0]["target"]["kind"], "invitation");

    // The action, exact or by its subject's prefix.
    let created = org_events(&app, &org, &[("action", "project.created")]).await;
    assert_eq!(created.len(), 3);
    let of_projects = org_events(&app, &org, &[("action", "project.")]).await;
    assert_eq!(
        actions(&of_projects),
        [
            "project.deleted",
            "project.updated",
            "project.created",
            "project.created",
            "project.created"
        ]
    );

    // The target, with its current name and the change as a list.
    let of_apollo = org_events(&app, &org, &[("target", apollo.as_str())]).await;
    assert_eq!(actions(&of_apollo), ["project.updated", "project.created"]);
    assert_eq!(of_apollo[0]["target"]["label"], "Artemis");
    assert_eq!(
        of_apollo[0]["changes"],
        json!([{ "field": "name", "before": "Apollo", "after": "Artemis" }])
    );
    assert_eq!(of_apollo[0]["before"], json!({ "name": "Apollo" }));
    // What is gone is named so.
    let of_gemini = org_events(&app, &org, &[("target", gemini.as_str())]).await;
    assert_eq!(actions(&of_gemini), ["project.deleted", "project.created"]);
    assert!(of_gemini.iter().all(|i| i["target"]["label"] == "deleted"));

    // The time range, both ends inclusive.
    let pivot = of_apollo[0]["at"].as_str().expect("at").to_owned();
    let pivot_at: chrono::DateTime<Utc> = pivot.parse().expect("RFC 3339");
    let at = |item: &Value| -> chrono::DateTime<Utc> {
        item["at"].as_str().expect("at").parse().expect("RFC 3339")
    };
    let since = org_events(&app, &org, &[("since", pivot.as_str())]).await;
    let until = org_events(&app, &org, &[("until", pivot.as_str())]).await;
    let expected_since: Vec<String> = ids(&all
        .iter()
        .filter(|i| at(i) >= pivot_at)
        .cloned()
        .collect::<Vec<_>>());
    let expected_until: Vec<String> = ids(&all
        .iter()
        .filter(|i| at(i) <= pivot_at)
        .cloned()
        .collect::<Vec<_>>());
    assert_eq!(ids(&since), expected_since);
    assert_eq!(ids(&until), expected_until);
    assert!(ids(&since).contains(&ids(&of_apollo)[0]));
    assert!(ids(&until).contains(&ids(&of_apollo)[0]));
    assert!(since.len() < all.len() && until.len() < all.len());
    let window = org_events(
        &app,
        &org,
        &[
            ("since", pivot.as_str()),
            ("until", pivot.as_str()),
            ("action", "project."),
        ],
    )
    .await;
    assert!(actions(&window).contains(&"project.updated"));

    // Filters that name nothing the log has answer 422, not an empty
    // page; what is not even a time fails to parse (400), like any
    // malformed parameter.
    let path = format!("/orgs/{}/audit-events", org.org_id);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    for (query, wanted, field) in [
        (vec![("action", "project.renamed")], unprocessable, "action"),
        (vec![("action", "projec.")], unprocessable, "action"),
        (vec![("cursor", "not-a-cursor")], unprocessable, "cursor"),
        (
            vec![
                ("since", "2030-01-02T00:00:00Z"),
                ("until", "2030-01-01T00:00:00Z"),
            ],
            unprocessable,
            "since",
        ),
        (
            vec![("since", "yesterday")],
            StatusCode::BAD_REQUEST,
            "since",
        ),
        (vec![("limit", "201")], StatusCode::BAD_REQUEST, "limit"),
    ] {
        let (status, body) = read(&app, &org.owner.token, &path, &query).await;
        assert_eq!(status, wanted, "{query:?}: {body}");
        assert!(body.to_string().contains(field), "{query:?}: {body}");
    }
}

#[tokio::test]
async fn cursor_pages_stay_stable_while_events_arrive() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    for n in 0..12 {
        create_project(&app, &org, &org.owner.token, &format!("before {n}")).await;
    }
    let existing = ids(&org_events(&app, &org, &[("limit", "200")]).await);
    assert!(existing.len() > 12);

    // Another task writes an event whenever asked, and says when it is
    // written: every page below is read after a new event arrived.
    let (ask, mut asked) = tokio::sync::mpsc::channel::<()>(1);
    let (done, mut written) = tokio::sync::mpsc::channel::<String>(1);
    let writer = {
        let base = app.url("");
        let client = app.client.clone();
        let org_id = org.org_id.to_string();
        let token = org.owner.token.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while asked.recv().await.is_some() {
                n += 1;
                let response = client
                    .post(format!("{base}/api/v1/orgs/{org_id}/projects"))
                    .bearer_auth(&token)
                    .json(&json!({ "name": format!("during {n}") }))
                    .send()
                    .await
                    .expect("create a project meanwhile");
                assert_eq!(response.status(), StatusCode::CREATED);
                let _ = done.send(format!("during {n}")).await;
            }
        })
    };

    let path = format!("/orgs/{}/audit-events", org.org_id);
    let mut walked: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        ask.send(()).await.expect("the writer listens");
        written.recv().await.expect("the writer wrote");
        let mut query = vec![("limit", "4".to_owned())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = read(&app, &org.owner.token, &path, &query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        walked.extend(ids(body["items"].as_array().expect("items")));
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "the walk does not end");
    }
    drop(ask);
    writer.await.expect("the writer ends");

    let unique: HashSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "duplicates in {walked:?}");
    let mut sorted = walked.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(walked, sorted, "not newest first");
    // Every event that existed when the walk began, and nothing older
    // missing in between: the walk ends with exactly them.
    assert_eq!(walked[walked.len() - existing.len()..], existing[..]);
    // The first page also saw the event written just before it.
    assert!(walked.len() > existing.len());
    assert!(pages > 3);
}

#[tokio::test]
async fn only_owners_and_admins_of_the_organization_read_its_log() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let other = app.with_org_owner().await;
    let path = format!("/orgs/{}/audit-events", org.org_id);
    let admin = app.with_member(&org, Role::Admin).await;
    let (status, _) = read(&app, &admin.token, &path, &[]).await;
    assert_eq!(status, StatusCode::OK);
    for role in [Role::Contributor, Role::Viewer] {
        let member = app.with_member(&org, role).await;
        let (status, body) = read(&app, &member.token, &path, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}: {body}");
        assert!(body.to_string().contains("view_audit_log"), "{body}");
    }
    // Another organization's owner, even with the right permission in
    // theirs, cannot tell this organization exists.
    let (status, _) = read(&app, &other.owner.token, &path, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let elsewhere = format!("/orgs/{}/audit-events", other.org_id);
    let (status, _) = read(&app, &org.owner.token, &elsewhere, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor can its events leak through the filters of one's own log.
    let other_project = create_project(&app, &other, &other.owner.token, "Theirs").await;
    let leaked = org_events(&app, &org, &[("target", other_project.as_str())]).await;
    assert!(leaked.is_empty());
}

async fn login(app: &TestApp, email: &str, user_agent: &str, password: &str) -> reqwest::Response {
    app.post("/api/v1/auth/login")
        .header("user-agent", user_agent)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("sign in")
}

async fn session(app: &TestApp, email: &str, user_agent: &str) -> String {
    let response = login(app, email, user_agent, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("token").to_owned()
}

async fn person(app: &TestApp, email: &str) -> Value {
    let output = bootstrap(
        &app.store,
        Utc::now(),
        BootstrapInput {
            org_name: format!("Org of {email}"),
            owner_email: email.into(),
            owner_password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("bootstrap");
    serde_json::to_value(&output).expect("json")
}

#[tokio::test]
async fn a_person_sees_their_own_sign_ins_and_no_one_else_s() {
    let app = TestApp::spawn().await;
    let grace = person(&app, "grace@example.com").await;
    person(&app, "linus@example.com").await;
    session(&app, "linus@example.com", "Linus/1.0").await;
    let laptop = session(&app, "grace@example.com", "Laptop/1.0").await;
    let phone = session(&app, "grace@example.com", "Phone/2.0").await;
    let signed_out = app
        .post("/api/v1/auth/logout")
        .bearer_auth(&phone)
        .send()
        .await
        .expect("sign out");
    assert!(signed_out.status().is_success(), "{}", signed_out.status());

    let (status, body) = read(&app, &laptop, "/me/audit-events", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(
        actions(items),
        [
            "account.signed_out",
            "account.signed_in",
            "account.signed_in"
        ]
    );
    let account_id = grace["owner_account_id"].as_str().expect("account id");
    for item in items {
        assert_eq!(item["target"]["id"], account_id);
        assert_eq!(item["target"]["label"], "grace@example.com");
        assert_eq!(item["actor"]["label"], "grace@example.com");
        assert_eq!(item["ip"], "127.0.0.1");
        assert!(item.get("org_id").is_none(), "{item}");
    }
    assert_eq!(items[1]["user_agent"], "Phone/2.0");
    assert_eq!(items[2]["user_agent"], "Laptop/1.0");
    let (_, filtered) = read(
        &app,
        &laptop,
        "/me/audit-events",
        &[("action", "account.signed_in"), ("limit", "1")],
    )
    .await;
    assert_eq!(
        actions(filtered["items"].as_array().expect("items")),
        ["account.signed_in"]
    );
    assert!(filtered["next_cursor"].is_string());

    // An organization's changes are in its log, not in the person's.
    let personal = grace["owner_token"].as_str().expect("personal token");
    let (status, body) = read(&app, personal, "/me/audit-events", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// The key patterns of the plan's index scans.
fn index_scans(plan: &bson::Bson, found: &mut Vec<bson::Document>) {
    match plan {
        bson::Bson::Document(doc) => {
            if doc.get_str("stage") == Ok("IXSCAN")
                && let Ok(keys) = doc.get_document("keyPattern")
            {
                found.push(keys.clone());
            }
            for (_, value) in doc {
                index_scans(value, found);
            }
        }
        bson::Bson::Array(items) => items.iter().for_each(|item| index_scans(item, found)),
        _ => {}
    }
}

/// Every filter of the log reads a page from an index in `_id` order, so
/// MongoDB stops after one page instead of sorting every match (a time
/// range may read `{org_id, at}`) (the test
/// server adds a sort stage to every sorted plan, so the test asks which
/// index was chosen rather than whether a sort is in the plan).
#[tokio::test]
async fn every_filter_of_the_log_reads_an_index_in_page_order() {
    use muster::domain::audit::ActionFilter;
    use muster::domain::{AccountId, AuditEventId};
    use muster::store::audit::{LogQuery, LogScope, log_filters};

    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let base = LogQuery {
        scope: LogScope::Org(org.org_id.clone()),
        actor: None,
        action: None,
        target: None,
        since: None,
        until: None,
        before: None,
        limit: 50,
    };
    let someone = org.owner.account_id.to_string();
    let cases = [
        ("the organization", base.clone()),
        (
            "a page after a cursor",
            LogQuery {
                before: Some(AuditEventId::new()),
                ..base.clone()
            },
        ),
        (
            "an actor",
            LogQuery {
                actor: Some(someone.clone()),
                ..base.clone()
            },
        ),
        (
            "an action",
            LogQuery {
                action: ActionFilter::parse("member.updated").ok(),
                ..base.clone()
            },
        ),
        (
            "an action prefix",
            LogQuery {
                action: ActionFilter::parse("member.").ok(),
                ..base.clone()
            },
        ),
        (
            "a target",
            LogQuery {
                target: Some(someone.clone()),
                ..base.clone()
            },
        ),
        (
            "a time range",
            LogQuery {
                since: Some(Utc::now() - chrono::Duration::days(1)),
                until: Some(Utc::now()),
                ..base.clone()
            },
        ),
        (
            "a person's own events",
            LogQuery {
                scope: LogScope::Account(AccountId::parse(&someone).expect("id")),
                ..base.clone()
            },
        ),
    ];
    for (what, query) in cases {
        for filter in log_filters(&query) {
            let explained: bson::Document = app
                .store
                .database()
                .run_command(bson::doc! {
                    "explain": {
                        "find": "audit_events",
                        "filter": filter,
                        "sort": { "_id": -1 },
                        "limit": 51,
                    },
                    "verbosity": "queryPlanner",
                })
                .await
                .expect("explain");
            let winning = explained
                .get_document("queryPlanner")
                .ok()
                .and_then(|planner| planner.get("winningPlan"))
                .cloned()
                .unwrap_or_else(|| panic!("no winning plan in {explained}"));
            let mut scans = Vec::new();
            index_scans(&winning, &mut scans);
            assert!(!scans.is_empty(), "{what}: no index in {winning}");
            for keys in scans {
                let last = keys.keys().last().map(String::as_str);
                // A time range may instead read just its events from
                // `{org_id, at}` and sort those: the planner's call.
                let ranged = query.since.is_some() && last == Some("at");
                assert!(
                    last == Some("_id") || ranged,
                    "{what}: {keys} is not in page order"
                );
            }
        }
    }
}

/// Issue 11: a person spots a sign-in attempt that was not theirs. The
/// attempt comes from another address (127.0.0.2, a second loopback
/// address, as the TCP peer Muster sees), and their own view shows it with
/// that address and its user agent.
#[tokio::test]
async fn a_person_sees_a_failed_sign_in_from_another_address() {
    let app = TestApp::spawn().await;
    person(&app, "ada@example.com").await;
    let mine = session(&app, "ada@example.com", "Laptop/1.0").await;
    let stranger = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .user_agent("Intruder/6.6")
        .build()
        .expect("a client on 127.0.0.2");
    let guess = stranger
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": "ada@example.com", "password": "not her password" }))
        .send()
        .await
        .expect("a guess");
    assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    // The failure is recorded off the request (so that a known email is
    // not told apart by time); wait for it.
    let failed = crate::common::eventually(
        std::time::Duration::from_secs(10),
        "the failed sign-in in the person's log",
        || async {
            let (_, body) = read(
                &app,
                &mine,
                "/me/audit-events",
                &[("action", "account.sign_in_failed")],
            )
            .await;
            body["items"].as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(failed["ip"], "127.0.0.2", "{failed}");
    assert_eq!(failed["user_agent"], "Intruder/6.6", "{failed}");
    let (_, all) = read(&app, &mine, "/me/audit-events", &[]).await;
    let seen: Vec<(&str, &str)> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| Some((i["action"].as_str()?, i["ip"].as_str()?)))
        .collect();
    assert!(
        seen.contains(&("account.signed_in", "127.0.0.1")),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("account.sign_in_failed", "127.0.0.2")),
        "{seen:?}"
    );
}
