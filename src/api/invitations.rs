//! Invitations: invite many addresses at once, list, resend, revoke, and
//! accept (for clients other than the `/invite/{token}` page).

use chrono::{DateTime, Duration, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi, Union};

use super::access::OrgAccess;
use super::examples::{ORG_ID, example_time};
use super::members::{ProjectRightsView, parse_rights, rights_view};
use super::paging;
use super::text::Text;
use super::{ApiTags, BearerAuth};
use crate::app::members::ensure_projects_exist;
use crate::domain::invitation::{
    self, Delivery, Invitation, InvitationKind, InvitationStatus, InviteOutcome, MAX_ADDRESSES,
};
use crate::domain::{InvitationId, Permission, Role};
use crate::error::AppError;
use crate::in_transaction;
use crate::invitations::{AcceptInput, accept, fresh_token_hash};
use crate::scim::origin_of;
use crate::state::AppState;
use crate::store::{self, Inserted};

pub struct InvitationsApi;

/// Addresses as one string (separated by commas, semicolons or new lines,
/// as pasted) or as an array.
#[derive(Debug, Union)]
pub enum Addresses {
    List(Vec<Text>),
    Pasted(Text),
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct InviteRequest {
    /// Up to 1,000 addresses.
    pub emails: Addresses,
    /// `owner`, `admin`, `contributor` or `viewer`; only owners invite
    /// owners.
    pub role: Text,
    #[oai(default, nullable, validator(max_items = 1000))]
    pub project_rights: Vec<ProjectRightsView>,
    /// A note for the invitees, shown in the mail (at most 1,000
    /// characters).
    #[oai(nullable)]
    pub message: Option<Text>,
}

impl Example for InviteRequest {
    fn example() -> Self {
        InviteRequest {
            emails: Addresses::Pasted("ada@example.com, alan@example.com".into()),
            role: "contributor".into(),
            project_rights: Vec::new(),
            message: Some("Welcome to the Website project!".into()),
        }
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct InviteResponse {
    /// One entry per address, in the order sent.
    pub results: Vec<InviteResult>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct InviteResult {
    /// The address as sent (normalized when valid).
    pub email: String,
    /// `invited`, `already_pending`, `already_member`, `invalid_email`,
    /// `not_allowed` or `domain_not_allowed`.
    pub outcome: String,
    /// The new invitation, when `invited`.
    pub invitation_id: Option<String>,
}

impl Example for InviteResponse {
    fn example() -> Self {
        InviteResponse {
            results: vec![
                InviteResult {
                    email: "ada@example.com".into(),
                    outcome: "invited".into(),
                    invitation_id: Some(INVITATION_ID.into()),
                },
                InviteResult {
                    email: "alan@example.com".into(),
                    outcome: "already_member".into(),
                    invitation_id: None,
                },
            ],
        }
    }
}

const INVITATION_ID: &str = "01944a9e-0e00-7a3b-8c1d-2e3f4a5b6c7d";

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct InvitationView {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: String,
    pub project_rights: Vec<ProjectRightsView>,
    pub message: Option<String>,
    /// `invite` (by an admin) or `scim_activation` (a member an identity
    /// provider created).
    pub kind: String,
    /// `pending`, `accepted`, `revoked` or `expired` (a pending invitation
    /// past its expiry reads `expired`).
    pub status: String,
    pub invited_by: Option<String>,
    pub member_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub delivery: DeliveryView,
}

/// How sending the mail went.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryView {
    /// Mails asked for: 1, plus one per resend.
    pub sends: u32,
    /// Attempts to hand a mail to the mail server.
    pub attempts: u32,
    /// When the latest mail was handed over.
    pub sent_at: Option<DateTime<Utc>>,
    /// Why the latest attempt failed, if it did.
    pub last_error: Option<String>,
}

impl Example for InvitationView {
    fn example() -> Self {
        InvitationView {
            id: INVITATION_ID.into(),
            org_id: ORG_ID.into(),
            email: "ada@example.com".into(),
            role: "contributor".into(),
            project_rights: Vec::new(),
            message: Some("Welcome to the Website project!".into()),
            kind: "invite".into(),
            status: "pending".into(),
            invited_by: Some(super::examples::ACCOUNT_ID.into()),
            member_id: None,
            created_at: example_time("2025-01-06T10:00:00Z"),
            expires_at: example_time("2025-01-13T10:00:00Z"),
            accepted_at: None,
            delivery: DeliveryView {
                sends: 1,
                attempts: 1,
                sent_at: Some(example_time("2025-01-06T10:00:02Z")),
                last_error: None,
            },
        }
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct InvitationPage {
    pub items: Vec<InvitationView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for InvitationPage {
    fn example() -> Self {
        InvitationPage {
            items: vec![InvitationView::example()],
            next_cursor: None,
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct AcceptRequest {
    /// The secret from the invitation link (`mst_inv_…`).
    pub token: Text,
    /// For a new account: the name to show. Without `given_name` and
    /// `family_name`, a name of two words or more also gives them (the
    /// first word is the given name).
    #[oai(nullable)]
    pub name: Option<Text>,
    /// The given name (with `family_name`): what the member's SCIM User
    /// shows as `name.givenName`, and identity providers such as Okta
    /// require on import. At most 100 characters.
    #[oai(nullable)]
    pub given_name: Option<Text>,
    /// The family name (with `given_name`): `name.familyName`.
    #[oai(nullable)]
    pub family_name: Option<Text>,
    /// A new account's password (at least 10 characters), or the existing
    /// account's own password.
    #[oai(nullable)]
    pub password: Option<Text>,
}

impl Example for AcceptRequest {
    fn example() -> Self {
        AcceptRequest {
            token: format!("mst_inv_{}", "7c".repeat(32)).as_str().into(),
            name: None,
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            password: Some("correct horse battery staple".into()),
        }
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct AcceptResponse {
    pub org_id: String,
    pub member_id: String,
    pub account_id: String,
    /// Whether a new account was made (otherwise an existing one joined).
    pub account_created: bool,
}

impl Example for AcceptResponse {
    fn example() -> Self {
        AcceptResponse {
            org_id: ORG_ID.into(),
            member_id: super::examples::MEMBER_ID.into(),
            account_id: super::examples::ACCOUNT_ID.into(),
            account_created: true,
        }
    }
}

#[derive(ApiResponse)]
pub enum Revoked {
    /// The invitation is revoked; its link no longer works.
    #[oai(status = 204)]
    Revoked,
}

fn invitation_not_found() -> AppError {
    AppError::NotFound("invitation")
}

fn invitation_view(invitation: &Invitation, now: DateTime<Utc>) -> InvitationView {
    let Delivery {
        sends,
        attempts,
        sent_at,
        last_error,
        ..
    } = invitation.delivery.clone();
    InvitationView {
        id: invitation.id.to_string(),
        org_id: invitation.org_id.to_string(),
        email: invitation.email.to_string(),
        role: invitation.role.to_string(),
        project_rights: rights_view(&invitation.project_rights),
        message: invitation.message.clone(),
        kind: match invitation.kind {
            InvitationKind::Invite => "invite",
            InvitationKind::ScimActivation => "scim_activation",
        }
        .into(),
        status: invitation.effective_status(now).to_string(),
        invited_by: invitation.invited_by.as_ref().map(ToString::to_string),
        member_id: invitation.member_id.as_ref().map(ToString::to_string),
        created_at: invitation.created_at,
        expires_at: invitation.expires_at,
        accepted_at: invitation.accepted_at,
        delivery: DeliveryView {
            sends,
            attempts,
            sent_at,
            last_error,
        },
    }
}

fn audited(invitation: &Invitation) -> serde_json::Value {
    serde_json::json!({
        "email": invitation.email.as_str(),
        "role": invitation.role,
        "project_rights": invitation.project_rights,
        "status": invitation.status,
        "expires_at": invitation.expires_at,
        "sends": invitation.delivery.sends,
    })
}

fn parse_invitation_id(raw: &str) -> Result<InvitationId, AppError> {
    InvitationId::parse(raw).map_err(|_| invitation_not_found())
}

const MAX_MESSAGE_CHARS: usize = 1000;

#[OpenApi(tag = "ApiTags::Invitations")]
impl InvitationsApi {
    /// Invite people
    ///
    /// Owners and admins; only owners invite owners. Each address gets its
    /// own outcome and one bad address never fails the others. Each
    /// invitation, its audit event and its mail job are written in one
    /// transaction; the mail goes out from the worker. Invitations per
    /// organization per hour are capped (`invitations.max_per_org_per_hour`):
    /// a request that would pass the cap is refused whole with 429.
    #[oai(path = "/orgs/:org/invitations", method = "post")]
    async fn invite(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        body: Json<InviteRequest>,
    ) -> Result<Json<InviteResponse>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::ManageInvitations)?;
        let InviteRequest {
            emails,
            role,
            project_rights,
            message,
        } = body.0;
        let role: Role = role.parse().map_err(|err| AppError::invalid("role", err))?;
        let project_rights = parse_rights(project_rights)?;
        let message = message
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty());
        if message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_MESSAGE_CHARS)
        {
            return Err(AppError::invalid(
                "message",
                format!("at most {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        let raw: Vec<String> = match emails {
            Addresses::List(list) => list.into_iter().map(Text::into_string).collect(),
            Addresses::Pasted(text) => invitation::split_addresses(&text),
        };
        if raw.is_empty() {
            return Err(AppError::invalid("emails", "no address given"));
        }
        if raw.len() > MAX_ADDRESSES {
            return Err(AppError::invalid(
                "emails",
                format!("at most {MAX_ADDRESSES} addresses per request"),
            ));
        }
        let allowed_owner = invitation::ensure_may_invite(granted.role, role).is_ok();
        let allowed_domains = &access.org.settings.allowed_email_domains;
        // Screened first; the store then tells pending and members apart.
        let screened: Vec<(String, Result<crate::domain::Email, InviteOutcome>)> = raw
            .into_iter()
            .map(|raw| {
                let outcome = if allowed_owner {
                    invitation::screen_address(&raw, allowed_domains)
                } else {
                    Err(InviteOutcome::NotAllowed)
                };
                (raw, outcome)
            })
            .collect();
        let now = state.clock().now();
        let ttl_days = access.org.settings.invitation_ttl_days;
        let cap = u64::from(state.settings().invitations.max_per_org_per_hour);
        let store = state.store();
        let results = in_transaction!(store, |session| -> Result<Vec<InviteResult>, AppError> {
            ensure_projects_exist(store, session, access.org_id(), &project_rights).await?;
            let valid: Vec<&str> = screened
                .iter()
                .filter_map(|(_, outcome)| outcome.as_ref().ok().map(|e| e.as_str()))
                .collect();
            let pending =
                store::invitations::pending_emails(store, session, access.org_id(), &valid).await?;
            let members =
                store::members::existing_emails(store, session, access.org_id(), &valid).await?;
            let mut results = Vec::with_capacity(screened.len());
            let mut invited = std::collections::HashSet::new();
            let mut invitations = Vec::new();
            for (raw, outcome) in &screened {
                let email = match outcome {
                    Err(outcome) => {
                        results.push(InviteResult {
                            email: raw.trim().to_owned(),
                            outcome: outcome.as_str().into(),
                            invitation_id: None,
                        });
                        continue;
                    }
                    Ok(email) => email,
                };
                let outcome = if members.contains(email.as_str()) {
                    InviteOutcome::AlreadyMember
                } else if pending.contains(email.as_str()) || !invited.insert(email.clone()) {
                    InviteOutcome::AlreadyPending
                } else {
                    InviteOutcome::Invited
                };
                let mut result = InviteResult {
                    email: email.to_string(),
                    outcome: outcome.as_str().into(),
                    invitation_id: None,
                };
                if outcome == InviteOutcome::Invited {
                    let invitation = Invitation {
                        id: InvitationId::new(),
                        org_id: access.org_id().clone(),
                        email: email.clone(),
                        role,
                        project_rights: project_rights.clone(),
                        message: message.clone(),
                        kind: InvitationKind::Invite,
                        invited_by: Some(access.account_id.clone()),
                        member_id: None,
                        status: InvitationStatus::Pending,
                        created_at: now,
                        expires_at: invitation::expiry(now, ttl_days),
                        updated_at: now,
                        accepted_at: None,
                        delivery: Delivery {
                            sends: 1,
                            ..Delivery::default()
                        },
                    };
                    result.invitation_id = Some(invitation.id.to_string());
                    invitations.push(invitation);
                }
                results.push(result);
            }
            // The invitations (each with a placeholder link: the mail job
            // sets the real one), their mails and their events: four round
            // trips however many addresses there are.
            let with_links = invitations.iter().map(|i| (i, fresh_token_hash()));
            if store::invitations::insert_many(store, session, with_links).await?
                == Inserted::AlreadyExists
            {
                return Err(AppError::Conflict {
                    problem: "concurrent-invitation",
                    detail: "another request invited the same address at the same time; \
                             send the request again"
                        .into(),
                });
            }
            crate::jobs::enqueue_send_invitations(store, session, &invitations).await?;
            let events: Vec<_> = invitations
                .iter()
                .map(|invitation| {
                    granted.event(
                        now,
                        "invitation.created",
                        ("invitation", invitation.id.as_str()),
                        None,
                        Some(audited(invitation)),
                    )
                })
                .collect();
            store::audit::record_many(store, session, &events).await?;
            // Counted after this request's inserts, in its transaction, so
            // concurrent requests cannot pass the cap together unnoticed.
            let since = now - Duration::hours(1);
            let created =
                store::invitations::count_created_since(store, session, access.org_id(), since)
                    .await?;
            if created > cap {
                return Err(AppError::TooManyRequests {
                    retry_after_secs: 3600,
                });
            }
            Ok(results)
        })?;
        Ok(Json(InviteResponse { results }))
    }

    /// List invitations
    ///
    /// Pending ones by default; `status` asks for `accepted`, `revoked` or
    /// `expired` instead. Owners and admins.
    #[oai(path = "/orgs/:org/invitations", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// `pending` (the default), `accepted`, `revoked` or `expired`.
        status: Query<Option<String>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "paging::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<InvitationPage>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        access.require(Permission::ManageInvitations)?;
        let status = status
            .0
            .as_deref()
            .map(str::parse::<InvitationStatus>)
            .transpose()
            .map_err(|err| AppError::invalid("status", err))?
            .unwrap_or(InvitationStatus::Pending);
        let after = paging::cursor(cursor.0.as_deref(), InvitationId::parse)?;
        let now = state.clock().now();
        let (invitations, more) = store::invitations::list_page(
            state.store(),
            access.org_id(),
            status,
            after.as_ref(),
            limit.0,
            now,
        )
        .await?;
        let next_cursor = more
            .then(|| invitations.last().map(|i| i.id.to_string()))
            .flatten();
        Ok(Json(InvitationPage {
            items: invitations
                .iter()
                .map(|i| invitation_view(i, now))
                .collect(),
            next_cursor,
        }))
    }

    /// Resend an invitation
    ///
    /// A new link (the old one stops working at once), a new expiry, and
    /// the mail again. Owners and admins; only owners resend an invitation
    /// to become owner. A pending invitation only (409 otherwise).
    #[oai(path = "/orgs/:org/invitations/:id/resend", method = "post")]
    async fn resend(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The invitation's id.
        id: Path<String>,
    ) -> Result<Json<InvitationView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::ManageInvitations)?;
        let id = parse_invitation_id(&id)?;
        let now = state.clock().now();
        let ttl_days = access.org.settings.invitation_ttl_days;
        let store = state.store();
        let invitation = in_transaction!(store, |session| -> Result<Invitation, AppError> {
            let current = store::invitations::get(store, Some(&mut *session), access.org_id(), &id)
                .await?
                .ok_or_else(invitation_not_found)?;
            invitation::ensure_may_invite(granted.role, current.role)?;
            if current.effective_status(now) != InvitationStatus::Pending {
                return Err(not_pending(&current, now));
            }
            let mut invitation = current.clone();
            invitation.expires_at = invitation::expiry(now, ttl_days);
            invitation.updated_at = now;
            invitation.delivery.sends += 1;
            if !store::invitations::rotate(store, session, &invitation, &fresh_token_hash()).await?
            {
                return Err(not_pending(&current, now));
            }
            crate::jobs::enqueue_send_invitation(store, session, &invitation).await?;
            let event = granted.event(
                now,
                "invitation.resent",
                ("invitation", id.as_str()),
                Some(audited(&current)),
                Some(audited(&invitation)),
            );
            store::audit::record(store, session, &event).await?;
            Ok(invitation)
        })?;
        Ok(Json(invitation_view(&invitation, now)))
    }

    /// Revoke an invitation
    ///
    /// Its link stops working at once. Owners and admins; only owners
    /// revoke an invitation to become owner. A pending invitation only
    /// (409 otherwise).
    #[oai(path = "/orgs/:org/invitations/:id", method = "delete")]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The invitation's id.
        id: Path<String>,
    ) -> Result<Revoked, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::ManageInvitations)?;
        let id = parse_invitation_id(&id)?;
        let now = state.clock().now();
        let store = state.store();
        in_transaction!(store, |session| -> Result<(), AppError> {
            let current = store::invitations::get(store, Some(&mut *session), access.org_id(), &id)
                .await?
                .ok_or_else(invitation_not_found)?;
            invitation::ensure_may_invite(granted.role, current.role)?;
            if current.effective_status(now) != InvitationStatus::Pending
                || !store::invitations::finish(store, session, &id, InvitationStatus::Revoked, now)
                    .await?
            {
                return Err(not_pending(&current, now));
            }
            let mut after = current.clone();
            after.status = InvitationStatus::Revoked;
            let event = granted.event(
                now,
                "invitation.revoked",
                ("invitation", id.as_str()),
                Some(audited(&current)),
                Some(audited(&after)),
            );
            store::audit::record(store, session, &event).await?;
            Ok(())
        })?;
        Ok(Revoked::Revoked)
    }

    /// Accept an invitation
    ///
    /// For clients other than the `/invite/{token}` page. A new person
    /// sends a password (and given and family names) for their new
    /// account; a person who has an account sends that account's password.
    /// The membership is active at once, and accepting through the emailed
    /// link verifies the email. No bearer token: the invitation's secret
    /// is the credential. An expired, revoked or used invitation, or one
    /// whose organization was deleted, answers 410.
    #[oai(path = "/invitations/accept", method = "post")]
    async fn accept(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<AcceptRequest>,
    ) -> Result<Json<AcceptResponse>, AppError> {
        let AcceptRequest {
            token,
            name,
            given_name,
            family_name,
            password,
        } = body.0;
        let accepted = accept(
            &state,
            origin_of(req),
            AcceptInput {
                token: token.into_string(),
                name: name.map(Text::into_string),
                given_name: given_name.map(Text::into_string),
                family_name: family_name.map(Text::into_string),
                names_required: false,
                password: password.map(Text::into_string),
                signed_in: None,
            },
        )
        .await?;
        Ok(Json(AcceptResponse {
            org_id: accepted.org_id.to_string(),
            member_id: accepted.member_id.to_string(),
            account_id: accepted.account_id.to_string(),
            account_created: accepted.account_created,
        }))
    }
}

fn not_pending(invitation: &Invitation, now: DateTime<Utc>) -> AppError {
    AppError::Conflict {
        problem: "invitation-not-pending",
        detail: format!(
            "the invitation is {}, not pending",
            invitation.effective_status(now)
        ),
    }
}
