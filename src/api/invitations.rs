//! Invitations: invite many addresses at once, list, resend, revoke, and
//! accept (for clients other than the `/invite/{token}` page).

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi, Union};

use super::access::{Granted, OrgAccess};
use super::examples::{ORG_ID, example_time};
use super::members::{ProjectRightsView, parse_rights, rights_view};
use super::paging;
use super::text::Text;
use super::{ApiTags, BearerAuth};
use crate::app::invitations::{self, AcceptInput, InviteInput};
use crate::app::mfa::MfaProof;
use crate::domain::invitation::{self, Delivery, Invitation, InvitationKind, InvitationStatus};
use crate::domain::{InvitationId, Permission, Role};
use crate::error::AppError;
use crate::scim::origin_of;
use crate::state::AppState;
use crate::store;

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
    /// For an existing account with two-factor authentication: a code
    /// from its authenticator app (or send `recovery_code`).
    #[oai(nullable, validator(max_length = 32))]
    pub code: Option<Text>,
    /// For an existing account with two-factor authentication: one of its
    /// recovery codes, instead of `code`.
    #[oai(nullable, validator(max_length = 64))]
    pub recovery_code: Option<Text>,
}

impl Example for AcceptRequest {
    fn example() -> Self {
        AcceptRequest {
            token: format!("mst_inv_{}", "7c".repeat(32)).as_str().into(),
            name: None,
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            password: Some("correct horse battery staple".into()),
            code: None,
            recovery_code: None,
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

fn parse_invitation_id(raw: &str) -> Result<InvitationId, AppError> {
    InvitationId::parse(raw).map_err(|_| invitation_not_found())
}

// What the routes below do, for the API and the console alike (the
// console's invitation pages call these, so a person can do exactly the
// same there as here, past the same checks).

/// `POST /orgs/{org}/invitations` once its addresses are a list: the role
/// and project rights parsed as the API parses them, then the use case,
/// with the configured hourly cap. One outcome per address.
pub(crate) async fn invite_addresses(
    state: &AppState,
    granted: &Granted<'_>,
    addresses: Vec<String>,
    role: &str,
    project_rights: Vec<ProjectRightsView>,
    message: Option<String>,
) -> Result<Vec<invitations::InviteResult>, AppError> {
    let role: Role = role.parse().map_err(|err| AppError::invalid("role", err))?;
    let input = InviteInput {
        addresses,
        role,
        project_rights: parse_rights(project_rights)?,
        message,
    };
    invitations::invite(
        state.store(),
        state.clock().now(),
        &granted.acting(),
        &input,
        state.settings().invitations.max_per_org_per_hour,
    )
    .await
}

/// One page of `GET /orgs/{org}/invitations`: `status` and `cursor` as
/// sent (pending by default), `limit` already within 1 to 200.
pub(crate) async fn list_page(
    state: &AppState,
    granted: &Granted<'_>,
    status: Option<&str>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<InvitationPage, AppError> {
    let status = status
        .map(str::parse::<InvitationStatus>)
        .transpose()
        .map_err(|err| AppError::invalid("status", err))?
        .unwrap_or(InvitationStatus::Pending);
    let after = paging::cursor(cursor, InvitationId::parse)?;
    let now = state.clock().now();
    let (invitations, more) = store::invitations::list_page(
        state.store(),
        granted.org_id(),
        status,
        after.as_ref(),
        limit,
        now,
    )
    .await?;
    let next_cursor = more
        .then(|| invitations.last().map(|i| i.id.to_string()))
        .flatten();
    Ok(InvitationPage {
        items: invitations
            .iter()
            .map(|i| invitation_view(i, now))
            .collect(),
        next_cursor,
    })
}

/// `POST /orgs/{org}/invitations/{id}/resend`, with the id as sent.
pub(crate) async fn resend_invitation(
    state: &AppState,
    granted: &Granted<'_>,
    id: &str,
) -> Result<InvitationView, AppError> {
    let id = parse_invitation_id(id)?;
    let now = state.clock().now();
    let invitation = invitations::resend(
        state.store(),
        now,
        &granted.acting(),
        &id,
        state.settings().invitations.max_per_org_per_hour,
    )
    .await?;
    Ok(invitation_view(&invitation, now))
}

/// `DELETE /orgs/{org}/invitations/{id}`, with the id as sent.
pub(crate) async fn revoke_invitation(
    state: &AppState,
    granted: &Granted<'_>,
    id: &str,
) -> Result<(), AppError> {
    let id = parse_invitation_id(id)?;
    invitations::revoke(state.store(), state.clock().now(), &granted.acting(), &id).await
}

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
        let addresses = match emails {
            Addresses::List(list) => list.into_iter().map(Text::into_string).collect(),
            Addresses::Pasted(text) => invitation::split_addresses(&text),
        };
        let results = invite_addresses(
            &state,
            &granted,
            addresses,
            &role,
            project_rights,
            message.map(Text::into_string),
        )
        .await?
        .into_iter()
        .map(|result| InviteResult {
            email: result.email,
            outcome: result.outcome.as_str().into(),
            invitation_id: result.invitation_id.map(|id| id.to_string()),
        })
        .collect();
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
        let granted = access.require(Permission::ManageInvitations)?;
        let page = list_page(
            &state,
            &granted,
            status.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )
        .await?;
        Ok(Json(page))
    }

    /// Resend an invitation
    ///
    /// A new link (the old one stops working at once), a new expiry, and
    /// the mail again. Owners and admins; only owners resend an invitation
    /// to become owner. A pending invitation only (409 otherwise). Resends
    /// count against the organization's hourly cap on invitation mails
    /// (429 past it).
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
        Ok(Json(resend_invitation(&state, &granted, &id).await?))
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
        revoke_invitation(&state, &granted, &id).await?;
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
            code,
            recovery_code,
        } = body.0;
        let mfa_proof = MfaProof::from_fields(
            code.map(Text::into_string),
            recovery_code.map(Text::into_string),
        )?;
        let accepted = invitations::accept(
            state.store(),
            state.clock().now(),
            origin_of(req),
            state.0,
            AcceptInput {
                token: token.into_string(),
                name: name.map(Text::into_string),
                given_name: given_name.map(Text::into_string),
                family_name: family_name.map(Text::into_string),
                names_required: false,
                password: password.map(Text::into_string),
                mfa_proof,
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
