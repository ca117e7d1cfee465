//! SCIM 2.0 against the real server and database.

use crate::common;

mod bad_input;
mod bulk;
mod discovery;
mod groups;
mod idp_shapes;
mod lists;
mod query_plans;
mod users;

use common::{OrgFixture, Scim, TestApp};

/// A server with one organization and a SCIM client for it.
pub async fn setup() -> (TestApp, OrgFixture) {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    (app, org)
}

pub fn scim<'a>(app: &'a TestApp, org: &OrgFixture) -> Scim<'a> {
    Scim::new(app, &org.scim_token)
}

/// A SCIM token an owner made with authority over owners, for identity
/// providers that manage owners (the bootstrap token has none).
pub async fn owner_authorized_scim<'a>(app: &'a TestApp, org: &OrgFixture) -> Scim<'a> {
    let response = app
        .post(&format!("/api/v1/orgs/{}/scim-tokens", org.org_id))
        .bearer_auth(&org.owner.token)
        .json(&serde_json::json!({ "name": "IdP managing owners", "allow_owner_changes": true }))
        .send()
        .await
        .expect("create a SCIM token");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let created: serde_json::Value = response.json().await.expect("json");
    Scim::new(app, created["token"].as_str().expect("the secret"))
}
