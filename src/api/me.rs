use chrono::{DateTime, Utc};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::{ApiTags, BearerAuth};
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

pub struct MeApi;

#[derive(Debug, Object)]
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
}

fn role_name(role: Role) -> String {
    role.as_str().to_owned()
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
        let account_id = auth
            .0
            .account_id()
            .ok_or_else(|| AppError::Forbidden("SCIM tokens are not accounts".into()))?;
        let store = state.store();
        let account = store::accounts::get(store, account_id)
            .await?
            .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))?;
        let mut members = store::members::list_for_account(store, account_id).await?;
        if let Principal::PersonalToken { org_id, .. } = &auth.0 {
            members.retain(|member| &member.org_id == org_id);
        }
        let org_ids: Vec<_> = members.iter().map(|m| m.org_id.clone()).collect();
        let orgs = store::orgs::get_many(store, &org_ids).await?;
        let now = state.clock().now();
        let memberships = members
            .into_iter()
            .filter_map(|member| {
                let org = orgs.iter().find(|org| org.id == member.org_id)?;
                Some(MembershipView {
                    org_id: org.id.to_string(),
                    org_name: org.name.clone(),
                    member_id: member.id.to_string(),
                    role: role_name(member.role),
                    status: member.effective_status(now).as_str().to_owned(),
                })
            })
            .collect();
        Ok(Json(MeResponse {
            account: AccountView {
                id: account.id.to_string(),
                email: account.email.to_string(),
                display_name: account.display_name,
                created_at: account.created_at,
            },
            memberships,
        }))
    }
}
