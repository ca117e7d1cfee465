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
