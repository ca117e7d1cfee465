//! List and search parameters (RFC 7644 §3.4.2, §3.4.3) and list
//! responses.

use poem::http::StatusCode;
use poem::{Request, Response, handler};
use serde_json::{Value, json};

use super::{ScimBody, ScimContext, groups, scim_response, users};
use crate::error::{AppError, ScimType};
use crate::protocol::filter::{AttrPath, Filter, parse_filter, parse_patch_path};
use crate::protocol::schema::{Projection, ResourceKind};
use crate::store::scim_query;
use bson::Document;

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A list or search request, validated.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub filter: Option<Filter>,
    /// 1-based; values below 1 were raised to 1.
    pub start_index: u64,
    /// `None`: as many as the server allows.
    pub count: Option<u64>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    pub projection: Projection,
}

impl ListParams {
    /// How many to return, within the advertised maximum.
    pub fn limit(&self, max_results: usize) -> u64 {
        let max = max_results as u64;
        self.count.map_or(max, |count| count.min(max))
    }

    pub fn skip(&self) -> u64 {
        self.start_index.saturating_sub(1)
    }
}

/// Parses one comma-separated attribute list (`attributes=userName,name.givenName`).
pub fn parse_attribute_list(raw: &str) -> Result<Vec<AttrPath>, AppError> {
    raw.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(parse_attribute)
        .collect()
}

fn parse_attribute(raw: &str) -> Result<AttrPath, AppError> {
    let path = parse_patch_path(raw).map_err(|err| {
        AppError::scim(ScimType::InvalidValue, format!("attribute `{raw}`: {err}"))
    })?;
    if path.value_filter.is_some() {
        return Err(AppError::scim(
            ScimType::InvalidValue,
            format!("attribute `{raw}`: value filters are not allowed here"),
        ));
    }
    Ok(path.attr)
}

fn parse_index(name: &str, raw: &str) -> Result<i64, AppError> {
    raw.trim().parse::<i64>().map_err(|_| {
        AppError::scim(
            ScimType::InvalidValue,
            format!("`{name}` must be an integer, not `{raw}`"),
        )
    })
}

fn parse_order(raw: &str) -> Result<bool, AppError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "ascending" => Ok(false),
        "descending" => Ok(true),
        _ => Err(AppError::scim(
            ScimType::InvalidValue,
            format!("`sortOrder` is ascending or descending, not `{raw}`"),
        )),
    }
}

fn parse_filter_param(raw: &str) -> Result<Filter, AppError> {
    parse_filter(raw).map_err(|err| AppError::scim(ScimType::InvalidFilter, err.to_string()))
}

fn parse_sort_by(raw: &str) -> Result<AttrPath, AppError> {
    parse_attribute(raw)
}

/// From a query string. Parameter names are matched case-insensitively;
/// unknown parameters are ignored (Entra ID adds its own).
pub fn from_query(req: &Request) -> Result<ListParams, AppError> {
    let mut params = ListParams {
        start_index: 1,
        ..ListParams::default()
    };
    let query = req.uri().query().unwrap_or_default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.to_ascii_lowercase().as_str() {
            "filter" => params.filter = Some(parse_filter_param(&value)?),
            "startindex" => params.start_index = parse_index("startIndex", &value)?.max(1) as u64,
            "count" => params.count = Some(parse_index("count", &value)?.max(0) as u64),
            "sortby" => params.sort_by = Some(parse_sort_by(&value)?),
            "sortorder" => params.descending = parse_order(&value)?,
            "attributes" => params.projection.attributes = parse_attribute_list(&value)?,
            "excludedattributes" => {
                params.projection.excluded_attributes = parse_attribute_list(&value)?
            }
            _ => {}
        }
    }
    Ok(params)
}

/// Attribute lists in a search body are arrays of strings (RFC 7644
/// §3.4.3); a comma-separated string is accepted too.
fn attribute_list_value(name: &str, value: &Value) -> Result<Vec<AttrPath>, AppError> {
    match value {
        Value::String(raw) => parse_attribute_list(raw),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(raw) => parse_attribute(raw),
                _ => Err(AppError::scim(
                    ScimType::InvalidValue,
                    format!("`{name}` lists attribute names"),
                )),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(AppError::scim(
            ScimType::InvalidValue,
            format!("`{name}` lists attribute names"),
        )),
    }
}

/// From a `/.search` body.
pub fn from_search(body: &Value) -> Result<ListParams, AppError> {
    let object = body.as_object().ok_or_else(|| {
        AppError::scim(ScimType::InvalidSyntax, "a search request is a JSON object")
    })?;
    let mut params = ListParams {
        start_index: 1,
        ..ListParams::default()
    };
    for (name, value) in object {
        let as_str = |value: &Value| -> Result<String, AppError> {
            value.as_str().map(str::to_owned).ok_or_else(|| {
                AppError::scim(ScimType::InvalidValue, format!("`{name}` must be a string"))
            })
        };
        let as_int = |value: &Value| -> Result<i64, AppError> {
            value.as_i64().ok_or_else(|| {
                AppError::scim(
                    ScimType::InvalidValue,
                    format!("`{name}` must be an integer"),
                )
            })
        };
        if value.is_null() {
            continue;
        }
        match name.to_ascii_lowercase().as_str() {
            "filter" => params.filter = Some(parse_filter_param(&as_str(value)?)?),
            "startindex" => params.start_index = as_int(value)?.max(1) as u64,
            "count" => params.count = Some(as_int(value)?.max(0) as u64),
            "sortby" => params.sort_by = Some(parse_sort_by(&as_str(value)?)?),
            "sortorder" => params.descending = parse_order(&as_str(value)?)?,
            "attributes" => params.projection.attributes = attribute_list_value(name, value)?,
            "excludedattributes" => {
                params.projection.excluded_attributes = attribute_list_value(name, value)?
            }
            "schemas" => {}
            _ => {
                return Err(AppError::scim(
                    ScimType::InvalidSyntax,
                    format!("unknown search request attribute `{name}`"),
                ));
            }
        }
    }
    Ok(params)
}

fn is_invalid_filter(err: &AppError) -> bool {
    matches!(
        err,
        AppError::Scim {
            scim_type: ScimType::InvalidFilter,
            ..
        }
    )
}

/// The MongoDB filter and sort for a list of `kind`.
pub fn query(kind: ResourceKind, params: &ListParams) -> Result<(Document, Document), AppError> {
    let filter = match &params.filter {
        Some(filter) => scim_query::compile(kind, filter)
            .map_err(|err| AppError::scim(ScimType::InvalidFilter, err.to_string()))?,
        None => Document::new(),
    };
    let sort = scim_query::sort(kind, params.sort_by.as_ref(), params.descending)
        .map_err(|err| AppError::scim(ScimType::InvalidValue, format!("sortBy: {err}")))?;
    Ok((filter, sort))
}

/// One page of `kind`, rendered, with the total.
pub async fn page(
    context: &ScimContext,
    kind: ResourceKind,
    params: &ListParams,
    skip: u64,
    limit: u64,
) -> Result<(Vec<Value>, u64), AppError> {
    match kind {
        ResourceKind::User => users::page(context, params, skip, limit).await,
        ResourceKind::Group => groups::page(context, params, skip, limit).await,
    }
}

/// A list answer for `GET /{Users,Groups}` and `POST …/.search`.
pub async fn list(
    context: &ScimContext,
    kind: ResourceKind,
    params: ListParams,
) -> Result<Response, AppError> {
    let limit = params.limit(context.state.settings().scim.max_results);
    let (resources, total) = page(context, kind, &params, params.skip(), limit).await?;
    Ok(list_response(resources, total, params.start_index))
}

pub fn list_response(resources: Vec<Value>, total: u64, start_index: u64) -> Response {
    let body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        // What this page holds, never what was asked for: Okta checks.
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    });
    scim_response(StatusCode::OK, &body)
}

/// `POST /.search` at the root: Users then Groups, paged as one list.
#[handler]
pub async fn root_search(context: ScimContext, body: ScimBody) -> poem::Result<Response> {
    let params = from_search(&body.0)?;
    let max = context.state.settings().scim.max_results;
    let limit = params.limit(max);
    let skip = params.skip();
    // A filter on an attribute one resource type lacks matches none of
    // that type; only when it fits neither is it invalid.
    let users = page(&context, ResourceKind::User, &params, skip, limit).await;
    let users_rejected = matches!(&users, Err(err) if is_invalid_filter(err));
    let (mut resources, users_total) = match users {
        Err(err) if is_invalid_filter(&err) => (Vec::new(), 0),
        other => other?,
    };
    let taken = resources.len() as u64;
    let group_skip = skip.saturating_sub(users_total);
    let groups = page(
        &context,
        ResourceKind::Group,
        &params,
        group_skip,
        limit - taken,
    )
    .await;
    let (groups, groups_total) = match groups {
        Err(err) if is_invalid_filter(&err) && !users_rejected => (Vec::new(), 0),
        other => other?,
    };
    resources.extend(groups);
    Ok(list_response(
        resources,
        users_total + groups_total,
        params.start_index,
    ))
}
