//! The audit log: an organization's (`/orgs/{org}/audit-events`, owners
//! and admins) and a person's own account-level events
//! (`/me/audit-events`, a session only). Newest first, in cursor pages.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{
    Example, ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use poem_openapi::{Object, OpenApi};
use serde_json::Value;

use super::access::OrgAccess;
use super::examples::{ACCOUNT_ID, MEMBER_ID, ORG_ID, example_time};
use super::paging;
use super::{ApiTags, BearerAuth, SessionAuth};
use crate::app;
use crate::app::audit::{LogItem, LogPage, Named};
use crate::domain::AuditEventId;
use crate::domain::audit::{ACTIONS, ActionFilter, Change, time_range};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::audit::{LogQuery, LogScope};

pub struct AuditApi;

const EXAMPLE_EVENT_ID: &str = "0194d3a1-2f00-7c3e-8a51-3b0f5e6d7c21";

/// An action of the catalogue (`domain::audit::ACTIONS`): the schema lists
/// every one, so clients can switch on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAction(pub String);

impl Type for AuditAction {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "AuditAction".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(Self::name().into_owned())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(Self::name().into_owned(), |_| MetaSchema {
            description: Some("What an event records: `subject.verb`."),
            enum_items: ACTIONS.iter().map(|a| Value::String((*a).into())).collect(),
            ..MetaSchema::new("string")
        });
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for AuditAction {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(action)) if ACTIONS.contains(&action.as_str()) => {
                Ok(AuditAction(action))
            }
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for AuditAction {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// The `action` filter: an [`AuditAction`], or a prefix of some ending in
/// `.` (`member.`). Checked against the catalogue by the domain, so that
/// a typo answers 422 naming `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionParam(pub String);

impl Type for ActionParam {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "ActionFilter".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            any_of: vec![
                AuditAction::schema_ref(),
                MetaSchemaRef::Inline(Box::new(MetaSchema {
                    pattern: Some("^[a-z_]+\\.$".to_owned()),
                    ..MetaSchema::new("string")
                })),
            ],
            ..MetaSchema::ANY
        }))
    }

    fn register(registry: &mut Registry) {
        AuditAction::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for ActionParam {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(ActionParam(value.to_owned()))
    }
}

/// Who acted, or what was acted on, named as it is now.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditPartyView {
    /// Actors: `account` (a session), `api_token` (an account through a
    /// personal token), `scim_token` (an identity provider) or `system`
    /// (Muster: the CLI, the worker). Targets: `organization`, `member`,
    /// `group`, `project`, `invitation`, `scim_token`, `personal_token`,
    /// `account`.
    pub kind: String,
    /// Absent for `system`. For an `api_token` actor, the token's id.
    pub id: Option<String>,
    /// The current name: an account's email, a token's name, a member's
    /// userName, a group's displayName, a project's or organization's
    /// name, an invitation's email; `deleted` when it is gone.
    pub label: String,
    /// For an `api_token` actor: the account acting through it.
    pub account_id: Option<String>,
}

/// One top-level field an event changed.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditChangeView {
    pub field: String,
    /// Absent when the field did not exist before (a creation).
    pub before: Option<Value>,
    /// Absent when the field no longer exists (a removal).
    pub after: Option<Value>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct AuditEventView {
    pub id: String,
    /// Absent for an account's own events.
    pub org_id: Option<String>,
    pub at: DateTime<Utc>,
    pub actor: AuditPartyView,
    pub action: AuditAction,
    pub target: AuditPartyView,
    /// The target's snapshot before the change (secrets never).
    pub before: Option<Value>,
    /// The target's snapshot after the change.
    pub after: Option<Value>,
    /// `before` and `after` as a list of the top-level fields that differ.
    pub changes: Vec<AuditChangeView>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Example for AuditEventView {
    fn example() -> Self {
        AuditEventView {
            id: EXAMPLE_EVENT_ID.to_owned(),
            org_id: Some(ORG_ID.to_owned()),
            at: example_time("2025-02-03T17:45:12Z"),
            actor: AuditPartyView {
                kind: "account".to_owned(),
                id: Some(ACCOUNT_ID.to_owned()),
                label: "grace@example.com".to_owned(),
                account_id: None,
            },
            action: AuditAction("member.updated".to_owned()),
            target: AuditPartyView {
                kind: "member".to_owned(),
                id: Some(MEMBER_ID.to_owned()),
                label: "ada@example.com".to_owned(),
                account_id: None,
            },
            before: Some(serde_json::json!({ "role": "viewer", "status": "active" })),
            after: Some(serde_json::json!({ "role": "admin", "status": "active" })),
            changes: vec![AuditChangeView {
                field: "role".to_owned(),
                before: Some(Value::String("viewer".to_owned())),
                after: Some(Value::String("admin".to_owned())),
            }],
            ip: Some("203.0.113.7".to_owned()),
            user_agent: Some("Mozilla/5.0".to_owned()),
            request_id: Some("0194d3a1-2eff-7a10-9d2c-1b0e4f5a6b7c".to_owned()),
        }
    }
}

/// One page of events, newest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AuditEventList {
    pub items: Vec<AuditEventView>,
    /// Pass as `cursor` to get the next (older) page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for AuditEventList {
    fn example() -> Self {
        AuditEventList {
            items: vec![AuditEventView::example()],
            next_cursor: Some(EXAMPLE_EVENT_ID.to_owned()),
        }
    }
}

fn party_view(named: Named) -> AuditPartyView {
    AuditPartyView {
        kind: named.kind,
        id: named.id,
        label: named.label,
        account_id: named.account_id,
    }
}

fn change_view(change: Change) -> AuditChangeView {
    AuditChangeView {
        field: change.field,
        before: change.before,
        after: change.after,
    }
}

fn event_view(item: LogItem) -> AuditEventView {
    AuditEventView {
        id: item.id.into_string(),
        org_id: item.org_id,
        at: item.at,
        actor: party_view(item.actor),
        action: AuditAction(item.action),
        target: party_view(item.target),
        before: item.before,
        after: item.after,
        changes: item.changes.into_iter().map(change_view).collect(),
        ip: item.ip,
        user_agent: item.user_agent,
        request_id: item.request_id,
    }
}

fn list_view(page: LogPage) -> AuditEventList {
    AuditEventList {
        items: page.items.into_iter().map(event_view).collect(),
        next_cursor: page.next_cursor,
    }
}

/// The filters and page every log read takes.
struct Filters {
    actor: Option<String>,
    action: Option<ActionParam>,
    target: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: u32,
}

impl Filters {
    /// The query for `scope`, or 422 naming the filter that is wrong.
    fn query(self, scope: LogScope) -> Result<LogQuery, AppError> {
        let action = self
            .action
            .map(|ActionParam(raw)| ActionFilter::parse(&raw))
            .transpose()?;
        let (since, until) = time_range(self.since, self.until)?;
        Ok(LogQuery {
            scope,
            actor: self.actor,
            action,
            target: self.target,
            since,
            until,
            before: paging::cursor(self.cursor.as_deref(), AuditEventId::parse)?,
            limit: self.limit,
        })
    }
}

#[OpenApi(tag = "ApiTags::Audit")]
impl AuditApi {
    /// Read an organization's audit log
    ///
    /// Owners and admins (the `view_audit_log` permission). Newest first,
    /// in pages: pass the previous page's `next_cursor` as `cursor` until
    /// it is null; events written meanwhile never shift the pages that
    /// follow. Filters combine (all must hold).
    #[oai(path = "/orgs/:org/audit-events", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn org_events(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// Events by this actor: an account id (what the person did with
        /// a session or any of their personal tokens) or a token id (what
        /// one personal or SCIM token did).
        actor: Query<Option<String>>,
        /// An action of the catalogue (`member.updated`) or a prefix of
        /// some ending in `.` (`member.`).
        action: Query<Option<ActionParam>>,
        /// Events about this target id (a member, group, project,
        /// invitation, token or the organization).
        target: Query<Option<String>>,
        /// Events at or after this time (RFC 3339).
        since: Query<Option<DateTime<Utc>>>,
        /// Events at or before this time (RFC 3339).
        until: Query<Option<DateTime<Utc>>>,
        /// The `next_cursor` of the previous page; omit for the first page.
        cursor: Query<Option<String>>,
        /// Events per page, 1 to 200.
        #[oai(
            default = "paging::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<AuditEventList>, AppError> {
        // The use case checks `view_audit_log`.
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let query = Filters {
            actor: actor.0,
            action: action.0,
            target: target.0,
            since: since.0,
            until: until.0,
            cursor: cursor.0,
            limit: limit.0,
        }
        .query(LogScope::Org(access.org_id().clone()))?;
        let page = app::audit::org_log(state.store(), access.role, access.org_id(), query).await?;
        Ok(Json(list_view(page)))
    }

    /// Read your own account's activity
    ///
    /// Your account-level events, newest first in cursor pages: sign-ins
    /// and sign-outs (with IP address and user agent), changes to your
    /// account, so that you can spot a sign-in that was not yours. Changes
    /// inside organizations are in their logs. Same filters as the
    /// organization's log. A session only (a personal token gets 403).
    #[oai(path = "/me/audit-events", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn own_events(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        /// Events by this actor: your account id, or one of your tokens.
        actor: Query<Option<String>>,
        /// An action of the catalogue (`account.signed_in`) or a prefix
        /// of some ending in `.` (`account.`).
        action: Query<Option<ActionParam>>,
        /// Events about this target id.
        target: Query<Option<String>>,
        /// Events at or after this time (RFC 3339).
        since: Query<Option<DateTime<Utc>>>,
        /// Events at or before this time (RFC 3339).
        until: Query<Option<DateTime<Utc>>>,
        /// The `next_cursor` of the previous page; omit for the first page.
        cursor: Query<Option<String>>,
        /// Events per page, 1 to 200.
        #[oai(
            default = "paging::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<AuditEventList>, AppError> {
        let query = Filters {
            actor: actor.0,
            action: action.0,
            target: target.0,
            since: since.0,
            until: until.0,
            cursor: cursor.0,
            limit: limit.0,
        }
        .query(LogScope::Account(auth.account_id().clone()))?;
        let page = app::audit::own_log(state.store(), auth.account_id(), query).await?;
        Ok(Json(list_view(page)))
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::audit::ACTIONS;

    #[test]
    fn the_spec_publishes_the_action_catalogue_as_an_enum() {
        let spec: serde_json::Value =
            serde_json::from_str(&super::super::spec_json()).expect("the spec is JSON");
        let schemas = &spec["components"]["schemas"];
        assert_eq!(schemas["AuditAction"]["enum"], serde_json::json!(ACTIONS));
        assert_eq!(
            schemas["AuditEventView"]["properties"]["action"]["$ref"],
            "#/components/schemas/AuditAction"
        );
        let filter = spec["paths"]["/orgs/{org}/audit-events"]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "action")
            .expect("the action filter")
            .clone();
        assert_eq!(
            filter["schema"]["anyOf"][0]["$ref"],
            "#/components/schemas/AuditAction"
        );
    }
}
