//! Organizations: create (the caller becomes the owner), read, change,
//! delete.

use super::access::OrgAccess;
use super::examples::{ORG_ID, example_time};
use super::me::account_acting;
use super::text::Text;
use super::{ApiTags, BearerAuth, SessionAuth};
use crate::app;
use crate::domain::{Organization, Permission, Role};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

pub struct OrgsApi;

#[derive(Debug, Object)]
#[oai(example)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    /// Unique across the service, derived from the name.
    pub slug: String,
    pub settings: OrgSettingsView,
    /// The caller's effective role here.
    pub your_role: String,
    /// Advice for the organization's owners, e.g. when it has a single
    /// owner.
    pub warnings: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Example for OrgView {
    fn example() -> Self {
        OrgView {
            id: ORG_ID.to_owned(),
            name: "Acme Corp".to_owned(),
            slug: "acme-corp".to_owned(),
            settings: OrgSettingsView {
                invitation_ttl_days: 7,
                audit_retention_days: 365,
                allowed_email_domains: vec!["example.com".to_owned()],
                scim_activation_emails: true,
                require_mfa: false,
            },
            your_role: "owner".to_owned(),
            warnings: vec![SINGLE_OWNER_WARNING.to_owned()],
            created_at: example_time("2024-11-03T06:44:17.051Z"),
            updated_at: example_time("2025-01-08T15:20:00Z"),
        }
    }
}

#[derive(Debug, Object)]
pub struct OrgSettingsView {
    /// Days an invitation stays valid.
    pub invitation_ttl_days: u32,
    /// Days audit events are kept.
    pub audit_retention_days: u32,
    /// Email domains members may be invited from; empty allows any.
    pub allowed_email_domains: Vec<String>,
    /// Whether members an identity provider creates get an activation
    /// email.
    pub scim_activation_emails: bool,
    /// Whether members must have two-factor authentication on to act in
    /// the organization (identity providers' SCIM calls are not affected).
    pub require_mfa: bool,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CreateOrgRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Text,
}

impl Example for CreateOrgRequest {
    fn example() -> Self {
        CreateOrgRequest {
            name: "Acme Corp".into(),
        }
    }
}

/// Only the fields sent change.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct UpdateOrgRequest {
    #[oai(nullable, validator(min_length = 1, max_length = 100))]
    pub name: Option<Text>,
    #[oai(nullable)]
    pub settings: Option<UpdateOrgSettings>,
}

impl Example for UpdateOrgRequest {
    fn example() -> Self {
        UpdateOrgRequest {
            name: Some("Acme Corporation".into()),
            settings: Some(UpdateOrgSettings {
                invitation_ttl_days: Some(14),
                audit_retention_days: None,
                allowed_email_domains: Some(vec!["acme.example".into()]),
                scim_activation_emails: Some(false),
                require_mfa: Some(true),
            }),
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateOrgSettings {
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "90")))]
    pub invitation_ttl_days: Option<u32>,
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3650")))]
    pub audit_retention_days: Option<u32>,
    #[oai(nullable, validator(max_items = 100))]
    pub allowed_email_domains: Option<Vec<Text>>,
    #[oai(nullable)]
    pub scim_activation_emails: Option<bool>,
    /// Require two-factor authentication of every member: one without it
    /// gets 403 (`mfa-required`) on this organization's routes, with
    /// sessions and personal tokens alike, until they turn it on. Only an
    /// owner who has it on may turn this on.
    #[oai(nullable)]
    pub require_mfa: Option<bool>,
}

#[derive(ApiResponse)]
pub enum CreatedOrg {
    /// The organization, with the caller as its owner.
    #[oai(status = 201)]
    Created(Json<OrgView>),
}

#[derive(ApiResponse)]
pub enum DeletedOrg {
    /// The organization and everything in it are gone; its audit trail is
    /// kept until its retention ends.
    #[oai(status = 204)]
    Deleted,
}

pub const SINGLE_OWNER_WARNING: &str = "this organization has a single owner: promote a second \
     member to owner so that it is never left without one";

fn org_view(org: &Organization, your_role: Role, active_owners: u64) -> OrgView {
    let s = &org.settings;
    OrgView {
        id: org.id.to_string(),
        name: org.name.clone(),
        slug: org.slug.clone(),
        settings: OrgSettingsView {
            invitation_ttl_days: s.invitation_ttl_days,
            audit_retention_days: s.audit_retention_days,
            allowed_email_domains: s.allowed_email_domains.clone(),
            scim_activation_emails: s.scim_activation_emails,
            require_mfa: s.mfa_required,
        },
        your_role: your_role.to_string(),
        warnings: if active_owners <= 1 {
            vec![SINGLE_OWNER_WARNING.to_owned()]
        } else {
            Vec::new()
        },
        created_at: org.created_at,
        updated_at: org.updated_at,
    }
}

// What each operation does after authentication, shared by the API's
// handlers and the console's forms (issue 15), so both faces run the
// same permission checks, input rules and use cases.

/// `GET /orgs/{org}`.
pub(crate) async fn org_of(state: &AppState, access: &OrgAccess) -> Result<OrgView, AppError> {
    access.require(Permission::ViewDirectory)?;
    let owners = store::members::count_active_owners(state.store(), None, access.org_id()).await?;
    Ok(org_view(&access.org, access.role, owners))
}

/// `PATCH /orgs/{org}`: the use case checks that the caller is an owner.
pub(crate) async fn update_org(
    state: &AppState,
    access: &OrgAccess,
    body: UpdateOrgRequest,
) -> Result<OrgView, AppError> {
    let UpdateOrgRequest { name, settings } = body;
    let mut update = app::orgs::OrgUpdate {
        name: name.map(Text::into_string),
        ..Default::default()
    };
    if let Some(settings) = settings {
        update.invitation_ttl_days = settings.invitation_ttl_days;
        update.audit_retention_days = settings.audit_retention_days;
        update.allowed_email_domains = settings
            .allowed_email_domains
            .map(|domains| domains.into_iter().map(Text::into_string).collect());
        update.scim_activation_emails = settings.scim_activation_emails;
        update.require_mfa = settings.require_mfa;
    }
    let changed =
        app::orgs::update(state.store(), state.clock().now(), &access.acting(), update).await?;
    Ok(org_view(&changed.org, access.role, changed.active_owners))
}

/// `DELETE /orgs/{org}`: the use case checks that the caller is an owner.
pub(crate) async fn delete_org(state: &AppState, access: &OrgAccess) -> Result<(), AppError> {
    app::orgs::delete(state.store(), state.clock().now(), &access.acting()).await
}

#[OpenApi(tag = "ApiTags::Organizations")]
impl OrgsApi {
    /// Create an organization
    ///
    /// Any signed-in account may create one and becomes its owner. Names are
    /// unique ignoring case and punctuation. A session only: a personal
    /// token acts inside its organization and gets 403.
    #[oai(path = "/orgs", method = "post")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        req: &Request,
        body: Json<CreateOrgRequest>,
    ) -> Result<CreatedOrg, AppError> {
        let org = app::orgs::create(
            state.store(),
            state.clock().now(),
            &account_acting(&auth, req),
            &body.0.name,
        )
        .await?;
        Ok(CreatedOrg::Created(Json(org_view(&org, Role::Owner, 1))))
    }

    /// Get an organization
    ///
    /// With its settings and the caller's role. When it has a single active
    /// owner, `warnings` recommends a second one.
    #[oai(path = "/orgs/:org", method = "get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
    ) -> Result<Json<OrgView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        Ok(Json(org_of(&state, &access).await?))
    }

    /// Change an organization's name or settings
    ///
    /// Owners only. Only the fields sent change.
    #[oai(path = "/orgs/:org", method = "patch")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        body: Json<UpdateOrgRequest>,
    ) -> Result<Json<OrgView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        Ok(Json(update_org(&state, &access, body.0).await?))
    }

    /// Delete an organization
    ///
    /// Owners only. Deletes its members, groups, projects and tokens, and
    /// revokes its pending invitations (their links answer 410, their
    /// mails are not sent); the accounts of its members remain.
    #[oai(path = "/orgs/:org", method = "delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
    ) -> Result<DeletedOrg, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        delete_org(&state, &access).await?;
        Ok(DeletedOrg::Deleted)
    }
}
