use chrono::{DateTime, Utc};
use poem_openapi::payload::Json;
use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::access::{caller_account, role_with};
use super::examples::{ACCOUNT_ID, ORG_ID, example_time};
use super::projects::{EffectiveProjectRightsView, effective_rights_view};
use super::text::Text;
use super::{ApiTags, BearerAuth, SessionAuth};
use crate::app;
use crate::app::accounts::{AccountActing, AccountChange};
use crate::app::mfa::MfaProof;
use crate::auth::Principal;
use crate::domain::role::effective_project_rights;
use crate::error::AppError;
use crate::scim::origin_of;
use crate::state::AppState;
use crate::store;

pub struct MeApi;

#[derive(Debug, Object)]
#[oai(example)]
pub struct MeResponse {
    pub account: AccountView,
    /// Every organization the account belongs to (with a personal token,
    /// only the token's organization): the "switch organization" list.
    pub memberships: Vec<MembershipView>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AccountView {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Whether signing in asks for a code from an authenticator app.
    pub mfa_enabled: bool,
    /// With two-factor authentication on: how many recovery codes are
    /// left unused.
    pub recovery_codes_left: Option<u32>,
}

#[derive(Debug, Object)]
pub struct MembershipView {
    pub org_id: String,
    pub org_name: String,
    pub member_id: String,
    /// `owner`, `admin`, `contributor` or `viewer`.
    pub role: String,
    /// `active`, `inactive`, `pending` or `suspended`.
    pub status: String,
    /// What the membership may do on the organization's projects.
    pub project_rights: EffectiveProjectRightsView,
}

impl Example for MeResponse {
    fn example() -> Self {
        MeResponse {
            account: AccountView {
                id: ACCOUNT_ID.to_owned(),
                email: "grace@example.com".to_owned(),
                display_name: Some("Grace Hopper".to_owned()),
                created_at: example_time("2024-11-03T06:40:00Z"),
                mfa_enabled: true,
                recovery_codes_left: Some(9),
            },
            memberships: vec![MembershipView {
                org_id: ORG_ID.to_owned(),
                org_name: "Acme Corp".to_owned(),
                member_id: "0192f0c4-6a1b-7660-b54f-47527a37e5d3".to_owned(),
                role: "owner".to_owned(),
                status: "active".to_owned(),
                project_rights: EffectiveProjectRightsView {
                    all_projects: true,
                    projects: Vec::new(),
                },
            }],
        }
    }
}

/// Only the fields sent change.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct UpdateMeRequest {
    /// 1 to 100 characters after trimming; null clears it.
    #[oai(nullable)]
    pub display_name: MaybeUndefined<Text>,
    /// A new password, with the current one as proof.
    #[oai(nullable)]
    pub password: Option<PasswordChange>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password the account has now.
    pub current: Text,
    /// At least 10 characters (and at most 1024 bytes).
    pub new: Text,
}

impl Example for UpdateMeRequest {
    fn example() -> Self {
        UpdateMeRequest {
            display_name: MaybeUndefined::Value("Grace Hopper".into()),
            password: Some(PasswordChange {
                current: "correct horse battery staple".into(),
                new: "a longer and newer passphrase".into(),
            }),
        }
    }
}

/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

fn display_name(raw: &str) -> Result<String, AppError> {
    checked_display_name("display_name", raw)
}

/// A display name as typed by a person, checked; errors name `field`.
pub fn checked_display_name(field: &str, raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::invalid(
            field,
            "the display name must not be empty; send null to clear it",
        ));
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(AppError::invalid(
            field,
            format!("the display name must be at most {MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            "the display name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Deleting the account: its password, and with two-factor
/// authentication on, a code or a recovery code.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct DeleteMeRequest {
    #[oai(validator(max_length = 1024))]
    pub password: Text,
    /// A code from the authenticator app (with two-factor authentication
    /// on).
    #[oai(validator(max_length = 32))]
    pub code: Option<Text>,
    /// Or one of the recovery codes.
    #[oai(validator(max_length = 64))]
    pub recovery_code: Option<Text>,
}

impl Example for DeleteMeRequest {
    fn example() -> Self {
        DeleteMeRequest {
            password: "correct horse battery staple".into(),
            code: Some("287082".into()),
            recovery_code: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum AccountDeleted {
    /// The account, its memberships, tokens and sessions are gone.
    #[oai(status = 204)]
    Deleted,
}

/// A signed-in account acting for itself, as the use cases take it.
pub fn account_acting(auth: &SessionAuth, req: &poem::Request) -> AccountActing {
    AccountActing {
        account_id: auth.account_id().clone(),
        actor: auth.principal().actor(),
        origin: origin_of(req),
    }
}

#[OpenApi(tag = "ApiTags::Me")]
impl MeApi {
    /// The signed-in account and its memberships
    ///
    /// Answers who the token belongs to and in which organizations it can
    /// act, with role and status in each.
    #[oai(path = "/me", method = "get")]
    async fn me(
        &self,
        state: poem::web::Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<MeResponse>, AppError> {
        Ok(Json(me_response(&state, &auth.0).await?))
    }

    /// Change your display name or password
    ///
    /// Only the fields sent change; `display_name: null` clears the name.
    /// A new password needs the current one (403 when it is wrong, 409
    /// when the account has none yet) and at least 10 characters; changing
    /// it ends your other sessions. Answers like `GET /me`. The account's
    /// name shows in every organization's mails, so only a session may
    /// change it: a personal token gets 403.
    #[oai(path = "/me", method = "patch")]
    async fn update(
        &self,
        state: poem::web::Data<&AppState>,
        auth: SessionAuth,
        req: &poem::Request,
        body: Json<UpdateMeRequest>,
    ) -> Result<Json<MeResponse>, AppError> {
        update_me(
            &state,
            &account_acting(&auth, req),
            auth.session_id(),
            body.0,
        )
        .await?;
        Ok(Json(me_response(&state, &auth.principal()).await?))
    }

    /// Delete your account
    ///
    /// Needs the password, and with two-factor authentication on a code
    /// or a recovery code. Refused (409, `last-owner`, naming them) while
    /// the account is the last active owner of an organization. Otherwise
    /// its memberships (each organization's audit log records the
    /// departure), personal tokens, sessions and personal data go at once.
    /// Audit events keep the account's id and show it as "deleted
    /// account". Session only: a personal token gets 403.
    #[oai(path = "/me", method = "delete")]
    async fn delete(
        &self,
        state: poem::web::Data<&AppState>,
        auth: SessionAuth,
        req: &poem::Request,
        body: Json<DeleteMeRequest>,
    ) -> Result<AccountDeleted, AppError> {
        delete_me(&state, &account_acting(&auth, req), body.0).await?;
        Ok(AccountDeleted::Deleted)
    }
}

/// `PATCH /me`'s work, for the API and the console alike: the name is
/// checked before any work (as the password is by the use case), then
/// the use case runs. `keep` is the caller's session, which a password
/// change does not end.
pub async fn update_me(
    state: &AppState,
    caller: &AccountActing,
    keep: &crate::domain::TokenId,
    body: UpdateMeRequest,
) -> Result<(), AppError> {
    let UpdateMeRequest {
        display_name: name,
        password,
    } = body;
    let display_name = match name {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(raw) => Some(Some(display_name(&raw)?)),
    };
    let change = AccountChange {
        display_name,
        password: password.map(
            |PasswordChange { current, new }| app::accounts::PasswordChange {
                current: current.into_string(),
                new: new.into_string(),
            },
        ),
    };
    app::accounts::update(
        state.store(),
        state,
        state.clock().now(),
        caller,
        keep,
        change,
    )
    .await
}

/// `DELETE /me`'s work, for the API and the console alike.
pub async fn delete_me(
    state: &AppState,
    caller: &AccountActing,
    body: DeleteMeRequest,
) -> Result<(), AppError> {
    let DeleteMeRequest {
        password,
        code,
        recovery_code,
    } = body;
    let mfa = MfaProof::from_fields(
        code.map(Text::into_string),
        recovery_code.map(Text::into_string),
    )?;
    app::accounts::delete(
        state.store(),
        state,
        state.clock().now(),
        caller,
        app::accounts::DeletionProof {
            password: password.into_string(),
            mfa,
        },
    )
    .await
}

/// The account and its memberships (with a personal token, only the
/// token's organization): `GET /me`, and the console's organizations.
pub async fn me_response(state: &AppState, principal: &Principal) -> Result<MeResponse, AppError> {
    let account_id = caller_account(principal)?;
    let store = state.store();
    let credentials = store::accounts::get_credentials(store, None, account_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))?;
    let mfa = credentials.enabled_mfa();
    let mfa_enabled = mfa.is_some();
    let recovery_codes_left =
        mfa.map(|mfa| u32::try_from(mfa.recovery_codes.len()).unwrap_or(u32::MAX));
    let account = credentials.account;
    let mut members = store::members::list_for_account(store, account_id).await?;
    if let Principal::PersonalToken { org_id, .. } = principal {
        members.retain(|member| &member.org_id == org_id);
    }
    let org_ids: Vec<_> = members.iter().map(|m| m.org_id.clone()).collect();
    let orgs = store::orgs::get_many(store, &org_ids).await?;
    let member_ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let mapped = store::groups::mapped_roles_of(store, &member_ids).await?;
    let mapped_rights = store::groups::mapped_project_rights_of(store, &member_ids).await?;
    let now = state.clock().now();
    let memberships = members
        .into_iter()
        .filter_map(|member| {
            let org = orgs.iter().find(|org| org.id == member.org_id)?;
            // Effective: raised by the member's groups, as permissions are.
            let role = role_with(&member, &mapped);
            let group_rights = mapped_rights.get(member.id.as_str()).into_iter().flatten();
            let rights = effective_project_rights(role, &member.project_rights, group_rights);
            Some(MembershipView {
                org_id: org.id.to_string(),
                org_name: org.name.clone(),
                member_id: member.id.to_string(),
                role: role.to_string(),
                status: member.effective_status(now).as_str().to_owned(),
                project_rights: effective_rights_view(&rights),
            })
        })
        .collect();
    Ok(MeResponse {
        account: AccountView {
            id: account.id.to_string(),
            email: account.email.to_string(),
            display_name: account.display_name,
            created_at: account.created_at,
            mfa_enabled,
            recovery_codes_left,
        },
        memberships,
    })
}
