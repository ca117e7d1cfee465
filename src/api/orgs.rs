//! Organizations: create (the caller becomes the owner), read, change,
//! delete.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;

use super::access::OrgAccess;
use super::examples::{ORG_ID, example_time};
use super::text::Text;
use super::{ApiTags, BearerAuth, SessionAuth};
use crate::domain::{
    Member, MemberId, MemberStatus, OrgId, OrgSettings, Organization, Permission, Role,
    org_name_and_slug,
};
use crate::error::AppError;
use crate::in_transaction;
use crate::protocol::user::UserProfile;
use crate::scim::origin_of;
use crate::state::AppState;
use crate::store::{self, Inserted};

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

fn name_taken() -> AppError {
    AppError::Conflict {
        problem: "organization-name-taken",
        detail: "an organization with this name already exists; choose another name".into(),
    }
}

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

fn audited(org: &Organization) -> serde_json::Value {
    let s = &org.settings;
    json!({
        "name": org.name,
        "settings": {
            "invitation_ttl_days": s.invitation_ttl_days,
            "audit_retention_days": s.audit_retention_days,
            "allowed_email_domains": s.allowed_email_domains,
            "scim_activation_emails": s.scim_activation_emails,
        },
    })
}

/// Lower-cased domains; each must look like a host name.
fn email_domains(raw: Vec<Text>) -> Result<Vec<String>, AppError> {
    let mut domains = Vec::with_capacity(raw.len());
    for domain in raw {
        let domain = domain.trim().to_ascii_lowercase();
        let valid = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return Err(AppError::invalid(
                "settings.allowed_email_domains",
                format!(
                    "{:?} is not an email domain such as example.com",
                    domain.chars().take(64).collect::<String>()
                ),
            ));
        }
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    Ok(domains)
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
        let account_id = auth.account_id().clone();
        let (name, slug) =
            org_name_and_slug(&body.0.name).map_err(|err| AppError::invalid("name", err))?;
        let store = state.store();
        let account = store::accounts::get(store, &account_id)
            .await?
            .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))?;
        let now = state.clock().now();
        let org = Organization {
            id: OrgId::new(),
            name,
            slug,
            settings: OrgSettings::default(),
            created_at: now,
            updated_at: now,
        };
        let owner = Member {
            id: MemberId::new(),
            org_id: org.id.clone(),
            account_id: Some(account_id),
            role: Role::Owner,
            status: MemberStatus::Active,
            suspended_until: None,
            project_rights: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        let profile = UserProfile::for_email(&account.email);
        let origin = origin_of(req);
        in_transaction!(store, |session| -> Result<(), AppError> {
            if store::orgs::insert(store, session, &org).await? == Inserted::AlreadyExists {
                return Err(name_taken());
            }
            if store::members::insert(store, session, &owner, &profile).await?
                == Inserted::AlreadyExists
            {
                return Err(AppError::internal("a new organization already had members"));
            }
            let event = crate::domain::AuditEvent {
                org_id: Some(org.id.clone()),
                at: now,
                actor: auth.principal().actor(),
                action: "organization.created",
                target: crate::domain::Target {
                    kind: "organization",
                    id: org.id.to_string(),
                },
                before: None,
                after: Some(audited(&org)),
                origin: origin.clone(),
            };
            store::audit::record(store, session, &event).await?;
            Ok(())
        })?;
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
        access.require(Permission::ViewDirectory)?;
        let owners =
            store::members::count_active_owners(state.store(), None, access.org_id()).await?;
        Ok(Json(org_view(&access.org, access.role, owners)))
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
        let granted = access.require(Permission::ManageOrganization)?;
        let UpdateOrgRequest { name, settings } = body.0;
        let mut change = store::orgs::OrgChange::default();
        if let Some(name) = name {
            change.name =
                Some(org_name_and_slug(&name).map_err(|err| AppError::invalid("name", err))?);
        }
        if let Some(settings) = settings {
            change.invitation_ttl_days = settings.invitation_ttl_days;
            change.audit_retention_days = settings.audit_retention_days;
            change.allowed_email_domains = settings
                .allowed_email_domains
                .map(email_domains)
                .transpose()?;
            change.scim_activation_emails = settings.scim_activation_emails;
        }
        let now = state.clock().now();
        let store = state.store();
        let org_id = access.org_id();
        let (changed, owners) =
            in_transaction!(store, |session| -> Result<(Organization, u64), AppError> {
                // Before and after as this transaction sees them, not as
                // the copy read before it: concurrent changes of other
                // fields stay in both.
                let before = store::orgs::get(store, Some(&mut *session), org_id)
                    .await?
                    .ok_or(AppError::NotFound("organization"))?;
                match store::orgs::update(store, session, org_id, &change, now).await? {
                    store::orgs::Updated::Yes => {}
                    store::orgs::Updated::NameTaken => return Err(name_taken()),
                    store::orgs::Updated::Missing => {
                        return Err(AppError::NotFound("organization"));
                    }
                }
                let after = store::orgs::get(store, Some(&mut *session), org_id)
                    .await?
                    .ok_or(AppError::NotFound("organization"))?;
                let event = granted.event(
                    now,
                    "organization.updated",
                    ("organization", org_id.as_str()),
                    Some(audited(&before)),
                    Some(audited(&after)),
                );
                store::audit::record(store, session, &event).await?;
                let owners =
                    store::members::count_active_owners(store, Some(session), org_id).await?;
                Ok((after, owners))
            })?;
        Ok(Json(org_view(&changed, access.role, owners)))
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
        let granted = access.require(Permission::ManageOrganization)?;
        let now = state.clock().now();
        let store = state.store();
        in_transaction!(store, |session| -> Result<(), AppError> {
            if !store::orgs::delete(store, session, access.org_id()).await? {
                return Err(AppError::NotFound("organization"));
            }
            let revoked =
                store::invitations::revoke_pending_for_org(store, session, access.org_id(), now)
                    .await?;
            crate::jobs::cancel_send_invitations(store, session, &revoked).await?;
            let event = granted.event(
                now,
                "organization.deleted",
                ("organization", access.org_id().as_str()),
                Some(audited(&access.org)),
                Some(json!({ "revoked_invitations": revoked.len() })),
            );
            store::audit::record(store, session, &event).await?;
            Ok(())
        })?;
        Ok(DeletedOrg::Deleted)
    }
}
