//! Tenant isolation: every organization-scoped route of the spec, probed
//! with another organization's id and ids, answers 404 and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::common::TestApp;
use super::{Cast, call};

/// The routes of the spec whose path names an organization, with a request
/// body made from the schema's example (so that the body is not what gets
/// refused).
fn org_scoped_routes() -> Vec<(Method, String, Option<Value>)> {
    let spec: Value = serde_json::from_str(&muster::api::spec_json()).expect("spec");
    let mut routes = Vec::new();
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        if !path.contains("{org}") {
            continue;
        }
        for (method, operation) in operations.as_object().expect("operations") {
            let body = operation
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
                .and_then(|content| content.values().next())
                .and_then(|media| media.pointer("/schema/$ref"))
                .and_then(Value::as_str)
                .and_then(|target| target.strip_prefix("#/components/schemas/"))
                .map(|name| spec["components"]["schemas"][name]["example"].clone())
                .map(|example| {
                    if example.is_null() {
                        json!({})
                    } else {
                        example
                    }
                });
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            routes.push((method, path.clone(), body));
        }
    }
    assert!(routes.len() >= 20, "the spec lists the organization routes");
    routes
}

struct Ids {
    org: String,
    member: String,
    group: String,
    project: String,
    scim_token: String,
}

fn fill(path: &str, org: &str, ids: &Ids) -> String {
    path.replace("{org}", org)
        .replace("{member}", &ids.member)
        .replace("{group}", &ids.group)
        .replace("{project}", &ids.project)
        .replace("{id}", &ids.scim_token)
}

async fn made(app: &TestApp, token: &str, path: String, body: Value) -> String {
    let answer = call(app, Method::POST, &path, Some(token), Some(&body)).await;
    assert!(answer.status.is_success(), "{path}: {}", answer.body);
    answer.body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn another_organizations_ids_and_tokens_get_404() {
    let app = TestApp::spawn().await;
    let ours = Cast::new(&app).await;
    let theirs = Cast::new(&app).await;
    let their_org = theirs.org();
    let their_owner = theirs.org.owner.token.as_str();
    let their = Ids {
        org: their_org.clone(),
        member: theirs.viewer.member_id.to_string(),
        group: made(
            &app,
            their_owner,
            format!("/orgs/{their_org}/groups"),
            json!({ "display_name": "Theirs" }),
        )
        .await,
        project: made(
            &app,
            their_owner,
            format!("/orgs/{their_org}/projects"),
            json!({ "name": "Theirs" }),
        )
        .await,
        scim_token: made(
            &app,
            their_owner,
            format!("/orgs/{their_org}/scim-tokens"),
            json!({ "name": "Theirs" }),
        )
        .await,
    };
    let their_session = super::session_for(&app, &theirs.org.owner.account_id).await;
    let our_session = super::session_for(&app, &ours.org.owner.account_id).await;
    let their_personal_token = made(
        &app,
        &their_session,
        "/me/tokens".to_owned(),
        json!({ "org_id": their_org, "name": "Theirs" }),
    )
    .await;
    let audit_before = muster::store::audit::count_for_org(&app.store, &their_org)
        .await
        .expect("count");

    let our_owner = Some(ours.org.owner.token.as_str());
    let mut probes = Vec::new();
    for (method, path, body) in org_scoped_routes() {
        // Their organization, with our owner's token.
        probes.push((
            our_owner,
            method.clone(),
            fill(&path, &their.org, &their),
            body.clone(),
        ));
        // Our organization, with their ids in it.
        if path.matches('{').count() > 1 {
            probes.push((our_owner, method, fill(&path, &ours.org(), &their), body));
        }
    }
    // Account-level routes take a session.
    probes.push((
        Some(our_session.as_str()),
        Method::DELETE,
        format!("/me/tokens/{their_personal_token}"),
        None,
    ));
    probes.push((
        Some(our_session.as_str()),
        Method::POST,
        "/me/tokens".to_owned(),
        Some(json!({ "org_id": their_org, "name": "Mine" })),
    ));
    probes.push((our_owner, Method::GET, "/orgs/not-an-id".to_owned(), None));
    probes.push((
        our_owner,
        Method::GET,
        format!("/orgs/{}/members/not-an-id", ours.org()),
        None,
    ));

    let mut wrong = Vec::new();
    for (token, method, path, body) in &probes {
        let answer = call(&app, method.clone(), path, *token, body.as_ref()).await;
        if answer.status != StatusCode::NOT_FOUND
            || answer.body["type"] != "urn:muster:problem:not-found"
        {
            wrong.push(format!(
                "{method} {path}: {} {}",
                answer.status, answer.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(probes.len() > 30, "{} probes", probes.len());
    let audit_after = muster::store::audit::count_for_org(&app.store, &their_org)
        .await
        .expect("count");
    assert_eq!(
        audit_after, audit_before,
        "nothing changed in their organization"
    );
    // Their things are all still there.
    let their_token = Some(their_owner);
    for path in [
        format!("/orgs/{their_org}/groups/{}", their.group),
        format!("/orgs/{their_org}/projects/{}", their.project),
        format!("/orgs/{their_org}/members/{}", their.member),
    ] {
        let answer = call(&app, Method::GET, &path, their_token, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
}
