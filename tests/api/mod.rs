//! The management API against the real server: the permission table,
//! the last-owner rule, tenant isolation, group role mappings, bad input.

use crate::common;

mod groups;
mod isolation;
mod members;
mod orgs;
mod projects_tokens;
mod rbac;

use chrono::Utc;
use common::{MemberFixture, OrgFixture, TestApp};
use muster::auth::token::{IssuedToken, TokenKind, TokenRecord};
use muster::domain::{AccountId, MemberStatus, Role};
use muster::store;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A session token for an account, as `POST /auth/login` would issue.
pub async fn session_for(app: &TestApp, account_id: &AccountId) -> String {
    let issued = IssuedToken::generate(TokenKind::Session);
    let record = TokenRecord::new(
        &issued,
        None,
        Some(account_id.clone()),
        None,
        Utc::now(),
        Some(Utc::now() + chrono::Duration::hours(1)),
    );
    let _ = store::tokens::insert(&app.store, None, &record)
        .await
        .expect("insert a session");
    issued.secret.into_exposed()
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut request = app
        .client
        .request(method, app.url(&format!("/api/v1{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Answer { status, body }
}

/// An organization with one member of each role, plus a suspended
/// contributor (signed in with a session) and the owner of another
/// organization.
pub struct Cast {
    pub org: OrgFixture,
    pub admin: MemberFixture,
    pub contributor: MemberFixture,
    pub viewer: MemberFixture,
    pub suspended_session: String,
    pub outsider: OrgFixture,
}

impl Cast {
    pub async fn new(app: &TestApp) -> Cast {
        let org = app.with_org_owner().await;
        let admin = app.with_member(&org, Role::Admin).await;
        let contributor = app.with_member(&org, Role::Contributor).await;
        let viewer = app.with_member(&org, Role::Viewer).await;
        let suspended = app.with_member(&org, Role::Contributor).await;
        app.set_member_status(&org, &suspended, MemberStatus::Suspended, None)
            .await;
        let suspended_session = session_for(app, &suspended.account_id).await;
        let outsider = app.with_org_owner().await;
        Cast {
            org,
            admin,
            contributor,
            viewer,
            suspended_session,
            outsider,
        }
    }

    pub fn org(&self) -> String {
        self.org.org_id.to_string()
    }
}
