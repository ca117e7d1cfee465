//! The audit log: an organization's (`/orgs/{org}/audit-events`, owners
//! and admins) and a person's own account-level events
//! (`/me/audit-events`, a session only). Newest first, in cursor pages.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use poem::web::Data;
use poem::{Body, Request};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{
    Example, ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, ResponseContent};
use serde_json::Value;

use super::access::OrgAccess;
use super::examples::{ACCOUNT_ID, MEMBER_ID, ORG_ID, example_time};
use super::paging;
use super::{ApiTags, BearerAuth, SessionAuth};
use crate::app;
use crate::app::audit::{LogItem, LogPage, Named};
use crate::domain::audit::{ACTIONS, ActionFilter, Change, time_range};
use crate::domain::{AccountId, AuditEventId};
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

/// How the organization's log answers: a page of JSON, or the whole
/// filtered range as a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ExportFormat {
    /// A page of events (the default).
    Json,
    /// Every matching event, one CSV row each after a header row.
    Csv,
    /// Every matching event, one JSON object per line, shaped as a list item.
    Jsonl,
}

impl ExportFormat {
    /// The format the `Accept` header asks for: its first media type Muster
    /// serves, JSON when none is.
    fn from_accept(accept: Option<&str>) -> ExportFormat {
        accept
            .into_iter()
            .flat_map(|accept| accept.split(','))
            .filter_map(|range| range.split(';').next())
            .find_map(|media| match media.trim().to_ascii_lowercase().as_str() {
                "text/csv" => Some(ExportFormat::Csv),
                "application/x-ndjson" | "application/jsonl" => Some(ExportFormat::Jsonl),
                "application/json" => Some(ExportFormat::Json),
                _ => None,
            })
            .unwrap_or(ExportFormat::Json)
    }
}

#[derive(ResponseContent)]
pub enum AuditEventsBody {
    Json(Json<AuditEventList>),
    /// Columns: see [`CSV_HEADER`].
    #[oai(content_type = "text/csv")]
    Csv(Binary<Body>),
    #[oai(content_type = "application/x-ndjson")]
    Jsonl(Binary<Body>),
}

#[derive(ApiResponse)]
pub enum AuditEventsResponse {
    /// A page of events, or, with `format` (or `Accept`) `csv` or `jsonl`,
    /// every matching event as a file.
    #[oai(status = 200)]
    Ok(
        AuditEventsBody,
        /// For an export: `attachment; filename="audit-{org}-{date}.csv"`.
        #[oai(header = "Content-Disposition")]
        Option<String>,
    ),
}

/// The columns of a CSV export, in order.
pub const CSV_HEADER: [&str; 15] = [
    "id",
    "at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "target_kind",
    "target_id",
    "target_label",
    "changes",
    "before",
    "after",
    "ip",
    "user_agent",
    "request_id",
];

/// Appends one CSV record (RFC 4180, CRLF-terminated) to `out`. A field
/// that a spreadsheet would read as a formula (starting with `=`, `+`,
/// `-`, `@`, tab or CR, per OWASP) gets a leading `'`, so that opening an
/// export never runs what a user typed as a name; a field holding a comma,
/// quote, CR or LF is quoted, its quotes doubled.
pub fn write_csv_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let field = field.as_ref();
        let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            if formula {
                out.push('\'');
            }
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            if formula {
                out.push('\'');
            }
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

/// An event's changes as one line a person reads:
/// `role: "viewer" -> "admin"; status: (none) -> "active"`.
fn changes_text(changes: &[Change]) -> String {
    let side = |value: &Option<Value>| {
        value
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), Value::to_string)
    };
    changes
        .iter()
        .map(|c| format!("{}: {} -> {}", c.field, side(&c.before), side(&c.after)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn csv_row(item: &LogItem, out: &mut String) {
    let json = |value: &Option<Value>| value.as_ref().map(Value::to_string).unwrap_or_default();
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    write_csv_record(
        out,
        &[
            item.id.as_str().to_owned(),
            item.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            item.actor.kind.clone(),
            text(&item.actor.id),
            item.actor.label.clone(),
            item.action.clone(),
            item.target.kind.clone(),
            text(&item.target.id),
            item.target.label.clone(),
            changes_text(&item.changes),
            json(&item.before),
            json(&item.after),
            text(&item.ip),
            text(&item.user_agent),
            text(&item.request_id),
        ],
    );
}

fn jsonl_row(item: LogItem, out: &mut String) {
    let line = event_view(item).to_json().unwrap_or(Value::Null);
    out.push_str(&line.to_string());
    out.push('\n');
}

/// The export as a body streamed as the items arrive: the rows of each
/// batch of ready items go out as one chunk. An error after the first
/// byte can only cut the body short (the status is sent), so it is logged
/// and ends the stream.
fn export_body(
    format: ExportFormat,
    items: impl futures::Stream<Item = Result<LogItem, AppError>> + Send + 'static,
) -> Body {
    let header = match format {
        ExportFormat::Csv => {
            let mut out = String::new();
            write_csv_record(&mut out, &CSV_HEADER);
            Some(out)
        }
        _ => None,
    };
    let rows = items
        .map_err(|error| {
            tracing::error!(%error, "the audit export stopped");
            std::io::Error::other(error.to_string())
        })
        .ready_chunks(app::audit::EXPORT_CHUNK)
        .map(move |batch| {
            let mut out = String::new();
            for item in batch {
                match format {
                    ExportFormat::Csv => csv_row(&item?, &mut out),
                    _ => jsonl_row(item?, &mut out),
                }
            }
            Ok::<_, std::io::Error>(out)
        });
    Body::from_bytes_stream(futures::stream::iter(header.map(Ok)).chain(rows))
}

/// The filters and page every log read takes.
pub struct Filters {
    pub actor: Option<String>,
    pub action: Option<ActionParam>,
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: u32,
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
    ///
    /// Export: `format=csv` or `format=jsonl` (or an `Accept` of `text/csv`,
    /// `application/x-ndjson` or `application/jsonl`; `format` wins) answers
    /// every matching event, newest first, as a file streamed while it is
    /// read (`cursor` and `limit` do not apply). CSV cells that a
    /// spreadsheet would run as a formula start with `'`.
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
        /// `json` (a page), or `csv` or `jsonl` (every matching event, as
        /// a download). Without it, the `Accept` header decides.
        format: Query<Option<ExportFormat>>,
    ) -> Result<AuditEventsResponse, AppError> {
        // The use case checks `view_audit_log`.
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let format = format.0.unwrap_or_else(|| {
            ExportFormat::from_accept(
                req.headers()
                    .get(poem::http::header::ACCEPT)
                    .and_then(|accept| accept.to_str().ok()),
            )
        });
        let filters = Filters {
            actor: actor.0,
            action: action.0,
            target: target.0,
            since: since.0,
            until: until.0,
            cursor: cursor.0,
            limit: limit.0,
        };
        if format == ExportFormat::Json {
            let page = org_page(&state, &access, filters).await?;
            return Ok(AuditEventsResponse::Ok(
                AuditEventsBody::Json(Json(page)),
                None,
            ));
        }
        let (body, disposition) = org_export_file(&state, &access, format, filters).await?;
        let body = match format {
            ExportFormat::Csv => AuditEventsBody::Csv(Binary(body)),
            _ => AuditEventsBody::Jsonl(Binary(body)),
        };
        Ok(AuditEventsResponse::Ok(body, Some(disposition)))
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
        let filters = Filters {
            actor: actor.0,
            action: action.0,
            target: target.0,
            since: since.0,
            until: until.0,
            cursor: cursor.0,
            limit: limit.0,
        };
        Ok(Json(own_page(&state, auth.account_id(), filters).await?))
    }
}

// The log's reads as the API runs them, shared with the console (issue
// 15): the same filters' checks, the same use cases (which check
// `view_audit_log`), the same export file.

/// One page of the organization's log.
pub async fn org_page(
    state: &AppState,
    access: &OrgAccess,
    filters: Filters,
) -> Result<AuditEventList, AppError> {
    let query = filters.query(LogScope::Org(access.org_id().clone()))?;
    let page = app::audit::org_log(state.store(), access.role, access.org_id(), query).await?;
    Ok(list_view(page))
}

/// Every event of the organization's log the filters select, as a CSV or
/// JSONL body streamed while it is read (`format` is not `Json`), with its
/// `Content-Disposition`.
pub async fn org_export_file(
    state: &AppState,
    access: &OrgAccess,
    format: ExportFormat,
    filters: Filters,
) -> Result<(Body, String), AppError> {
    let query = filters.query(LogScope::Org(access.org_id().clone()))?;
    let items = app::audit::org_export(state.store(), access.role, access.org_id(), query).await?;
    let extension = if format == ExportFormat::Csv {
        "csv"
    } else {
        "jsonl"
    };
    let disposition = format!(
        "attachment; filename=\"audit-{}-{}.{extension}\"",
        access.org_id().as_str(),
        Utc::now().format("%Y-%m-%d"),
    );
    Ok((export_body(format, items), disposition))
}

/// One page of the caller's own account-level events.
pub async fn own_page(
    state: &AppState,
    account_id: &AccountId,
    filters: Filters,
) -> Result<AuditEventList, AppError> {
    let query = filters.query(LogScope::Account(account_id.clone()))?;
    let page = app::audit::own_log(state.store(), account_id, query).await?;
    Ok(list_view(page))
}

#[cfg(test)]
mod tests {
    use super::{ExportFormat, write_csv_record};
    use crate::domain::audit::ACTIONS;

    fn record(fields: &[&str]) -> String {
        let mut out = String::new();
        write_csv_record(&mut out, fields);
        out
    }

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(record(&["a", "", "b c"]), "a,,b c\r\n");
        assert_eq!(record(&["a,b"]), "\"a,b\"\r\n");
        assert_eq!(record(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(
            record(&["two\nlines", "cr\rhere"]),
            "\"two\nlines\",\"cr\rhere\"\r\n"
        );
    }

    #[test]
    fn csv_fields_that_a_spreadsheet_would_run_start_with_a_quote() {
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx"] {
            assert_eq!(record(&[formula]), format!("'{formula}\r\n"), "{formula:?}");
        }
        assert_eq!(
            record(&["=HYPERLINK(\"x\")"]),
            "\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
        assert_eq!(record(&["\rx"]), "\"'\rx\"\r\n");
        // Only the first character counts.
        assert_eq!(record(&["a=b", "1-2"]), "a=b,1-2\r\n");
    }

    #[test]
    fn accept_picks_the_first_media_type_served_and_defaults_to_json() {
        let pick = |accept: Option<&str>| ExportFormat::from_accept(accept);
        assert_eq!(pick(None), ExportFormat::Json);
        assert_eq!(pick(Some("*/*")), ExportFormat::Json);
        assert_eq!(pick(Some("text/csv")), ExportFormat::Csv);
        assert_eq!(pick(Some("Text/CSV; charset=utf-8")), ExportFormat::Csv);
        assert_eq!(pick(Some("application/jsonl")), ExportFormat::Jsonl);
        assert_eq!(
            pick(Some("text/html, application/x-ndjson;q=0.9, text/csv")),
            ExportFormat::Jsonl
        );
        assert_eq!(pick(Some("application/json, text/csv")), ExportFormat::Json);
    }

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
