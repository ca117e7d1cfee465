//! `/Bulk` (RFC 7644 §3.7). Each operation runs as its own sub-request
//! through the same routes, so validation, rules and audit events are
//! exactly those of a single request. `bulkId` references are resolved in
//! whatever order the operations can run; a cycle fails the operations in
//! it with 409.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use futures::FutureExt as _;
use poem::endpoint::BoxEndpoint;
use poem::http::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MATCH, LOCATION};
use poem::http::{Method, StatusCode, Uri};
use poem::{Endpoint, EndpointExt, Request, Response, handler};
use serde_json::{Map, Value, json};

use super::{ScimContext, scim_response};
use crate::config::ScimSettings;
use crate::error::{AppError, SCIM_JSON, ScimType};
use crate::http::RequestId;
use crate::state::AppState;

pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The resource routes operations are dispatched to (never `/Bulk`).
static RESOURCES: LazyLock<BoxEndpoint<'static, Response>> =
    LazyLock::new(|| super::resource_routes().boxed());

/// One operation of a BulkRequest, as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub method: Method,
    pub path: String,
    pub bulk_id: Option<String>,
    pub version: Option<String>,
    pub data: Option<Value>,
}

/// A BulkRequest body, checked against the limits before anything runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    pub operations: Vec<Operation>,
    /// Stop once this many operations have failed.
    pub fail_on_errors: Option<u64>,
}

fn bad(detail: impl Into<String>) -> AppError {
    AppError::scim(ScimType::InvalidSyntax, detail)
}

fn field<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

fn parse_operation(index: usize, raw: &Value) -> Result<Operation, AppError> {
    let object = raw
        .as_object()
        .ok_or_else(|| bad(format!("operation {index} is not an object")))?;
    let method = match field(object, "method")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("POST") => Method::POST,
        Some("PUT") => Method::PUT,
        Some("PATCH") => Method::PATCH,
        Some("DELETE") => Method::DELETE,
        _ => {
            return Err(bad(format!(
                "operation {index}: `method` is POST, PUT, PATCH or DELETE"
            )));
        }
    };
    let path = field(object, "path")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("operation {index}: `path` is required")))?
        .to_owned();
    let text = |name: &str| {
        field(object, name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let operation = Operation {
        bulk_id: text("bulkId"),
        version: text("version"),
        data: field(object, "data").filter(|d| !d.is_null()).cloned(),
        method,
        path,
    };
    if operation.method == Method::POST && operation.bulk_id.is_none() {
        return Err(bad(format!("operation {index}: a POST needs a `bulkId`")));
    }
    if operation.method != Method::DELETE && operation.data.is_none() {
        return Err(bad(format!("operation {index}: `data` is required")));
    }
    Ok(operation)
}

/// Every `bulkId:x` a value mentions.
fn references(value: &Value, found: &mut HashSet<String>) {
    match value {
        Value::String(text) => {
            if let Some(id) = text.strip_prefix("bulkId:") {
                found.insert(id.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        Value::Object(object) => object.values().for_each(|item| references(item, found)),
        _ => {}
    }
}

impl Operation {
    /// The bulkIds this operation waits for: in its path and its data.
    pub fn references(&self) -> HashSet<String> {
        let mut found = HashSet::new();
        for segment in self.path.split('/') {
            if let Some(id) = segment.strip_prefix("bulkId:") {
                found.insert(id.to_owned());
            }
        }
        if let Some(data) = &self.data {
            references(data, &mut found);
        }
        found
    }

    /// The path with the ids of the resources `resolved` created in place
    /// of their bulkIds.
    pub fn resolved_path(&self, resolved: &HashMap<String, String>) -> String {
        // Whole segments, as `references` reads them: replacing text
        // would turn `bulkId:u2` into the id of `u` followed by `2` when
        // `u` came first in the map (found by the bulk fuzz target).
        self.path
            .split('/')
            .map(|segment| {
                segment
                    .strip_prefix("bulkId:")
                    .and_then(|bulk_id| resolved.get(bulk_id))
                    .map_or(segment, String::as_str)
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The data with the ids of the resources `resolved` created in place
    /// of their bulkIds.
    pub fn resolved_data(&self, resolved: &HashMap<String, String>) -> Option<Value> {
        let mut data = self.data.clone()?;
        substitute(&mut data, resolved);
        Some(data)
    }
}

fn substitute(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::String(text) => {
            if let Some(id) = text.strip_prefix("bulkId:").and_then(|b| ids.get(b)) {
                *text = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| substitute(item, ids)),
        Value::Object(object) => object.values_mut().for_each(|item| substitute(item, ids)),
        _ => {}
    }
}

fn error_result(
    operation: &Operation,
    status: StatusCode,
    scim_type: Option<&str>,
    detail: &str,
) -> Value {
    let mut response = json!({ "schemas": [ERROR_SCHEMA], "status": status.as_u16().to_string(), "detail": detail });
    if let Some(scim_type) = scim_type {
        response["scimType"] = json!(scim_type);
    }
    let mut result = json!({ "method": operation.method.as_str(), "status": status.as_u16().to_string(), "response": response });
    if let Some(bulk_id) = &operation.bulk_id {
        result["bulkId"] = json!(bulk_id);
    }
    result
}

/// The sub-request's URI, if the path may be run: a resource path, not
/// `/Bulk` or discovery, and nothing but a path (no query, no fragment, no
/// character a URI cannot hold: it came from a JSON string, not a request
/// line that hyper already checked).
pub fn resource_uri(method: &Method, path: &str) -> Option<Uri> {
    let mut segments = path.trim_start_matches('/').split('/');
    let collection = segments.next().unwrap_or_default();
    let id = segments.next();
    let more = segments.next().is_some();
    let resource = collection == "Users" || collection == "Groups";
    let shape = resource
        && !more
        && match id {
            None => *method == Method::POST,
            Some(id) => !id.is_empty() && *method != Method::POST,
        };
    if !shape {
        return None;
    }
    let path = format!("/{}", path.trim_start_matches('/'));
    let uri = path.parse::<Uri>().ok()?;
    (uri.path() == path && uri.query().is_none()).then_some(uri)
}

/// Parses and checks a `/Bulk` body: pure, so it can be fuzzed without a
/// server (see `fuzz/`).
pub fn parse_request(bytes: &[u8], settings: &ScimSettings) -> Result<BulkRequest, AppError> {
    if bytes.len() > settings.bulk_max_payload_bytes {
        return Err(AppError::Scim {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            scim_type: ScimType::TooMany,
            detail: format!(
                "a bulk request may carry at most {} bytes",
                settings.bulk_max_payload_bytes
            ),
        });
    }
    let request: Value = serde_json::from_slice(bytes)
        .map_err(|err| bad(format!("the body is not valid JSON: {err}")))?;
    let object = request
        .as_object()
        .ok_or_else(|| bad("a BulkRequest is a JSON object"))?;
    let raw_operations = field(object, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("a BulkRequest needs an `Operations` array"))?;
    if raw_operations.len() > settings.bulk_max_operations {
        return Err(AppError::Scim {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            scim_type: ScimType::TooMany,
            detail: format!(
                "a bulk request may carry at most {} operations",
                settings.bulk_max_operations
            ),
        });
    }
    let fail_on_errors = match field(object, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
            AppError::scim(
                ScimType::InvalidValue,
                "`failOnErrors` is a positive integer",
            )
        })?),
    };
    let operations = raw_operations
        .iter()
        .enumerate()
        .map(|(index, raw)| parse_operation(index, raw))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    for operation in &operations {
        if let Some(bulk_id) = &operation.bulk_id
            && !seen.insert(bulk_id.clone())
        {
            return Err(bad(format!("bulkId `{bulk_id}` is used twice")));
        }
    }
    Ok(BulkRequest {
        operations,
        fail_on_errors,
    })
}

#[handler]
pub async fn bulk(context: ScimContext, req: &Request, body: poem::Body) -> poem::Result<Response> {
    let bytes = body
        .into_bytes()
        .await
        .map_err(|err| bad(format!("cannot read the body: {err}")))?;
    let BulkRequest {
        operations,
        fail_on_errors,
    } = parse_request(&bytes, &context.state.settings().scim)?;

    let authorization = req.headers().get(AUTHORIZATION).cloned();
    let state = req.data::<AppState>().cloned();
    let request_id = req.extensions().get::<RequestId>().cloned();
    let defined: HashSet<&str> = operations
        .iter()
        .filter_map(|o| o.bulk_id.as_deref())
        .collect();
    let mut resolved: HashMap<String, String> = HashMap::new();
    let mut failed: HashSet<String> = HashSet::new();
    let mut results: Vec<Option<Value>> = vec![None; operations.len()];
    let mut pending: Vec<usize> = (0..operations.len()).collect();
    let mut errors = 0u64;

    'rounds: while !pending.is_empty() {
        let mut progressed = false;
        let mut still_pending = Vec::new();
        for index in pending {
            let operation = &operations[index];
            let wanted = operation.references();
            if let Some(unknown) = wanted.iter().find(|id| !defined.contains(id.as_str())) {
                results[index] = Some(error_result(
                    operation,
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    &format!("bulkId `{unknown}` is not defined in this request"),
                ));
                errors += 1;
            } else if let Some(broken) = wanted.iter().find(|id| failed.contains(*id)) {
                results[index] = Some(error_result(
                    operation,
                    StatusCode::CONFLICT,
                    None,
                    &format!("the operation with bulkId `{broken}` failed"),
                ));
                errors += 1;
            } else if wanted.iter().all(|id| resolved.contains_key(id)) {
                let result = dispatch(
                    operation,
                    &resolved,
                    authorization.as_ref(),
                    state.as_ref(),
                    request_id.as_ref(),
                    &context,
                )
                .await;
                let status = result["status"]
                    .as_str()
                    .and_then(|s| s.parse::<u16>().ok())
                    .unwrap_or(500);
                if let Some(bulk_id) = &operation.bulk_id {
                    match result["location"]
                        .as_str()
                        .and_then(|l| l.rsplit('/').next())
                    {
                        Some(id) if status < 300 => {
                            resolved.insert(bulk_id.clone(), id.to_owned());
                        }
                        _ => {
                            failed.insert(bulk_id.clone());
                        }
                    }
                }
                if status >= 400 {
                    errors += 1;
                }
                results[index] = Some(result);
            } else {
                still_pending.push(index);
                continue;
            }
            progressed = true;
            if fail_on_errors.is_some_and(|limit| errors >= limit) {
                break 'rounds;
            }
        }
        if !progressed {
            // What is left waits on itself: a cycle.
            for index in &still_pending {
                let operation = &operations[*index];
                if let Some(bulk_id) = &operation.bulk_id {
                    failed.insert(bulk_id.clone());
                }
                results[*index] = Some(error_result(
                    operation,
                    StatusCode::CONFLICT,
                    None,
                    "circular bulkId references: these operations wait on each other",
                ));
            }
            break;
        }
        pending = still_pending;
    }

    let body = json!({
        "schemas": [BULK_RESPONSE_SCHEMA],
        "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
    });
    Ok(scim_response(StatusCode::OK, &body))
}

async fn dispatch(
    operation: &Operation,
    resolved: &HashMap<String, String>,
    authorization: Option<&poem::http::HeaderValue>,
    state: Option<&AppState>,
    request_id: Option<&RequestId>,
    context: &ScimContext,
) -> Value {
    let path = operation.resolved_path(resolved);
    let Some(uri) = resource_uri(&operation.method, &path) else {
        return error_result(
            operation,
            StatusCode::BAD_REQUEST,
            Some("invalidPath"),
            &format!(
                "`{} {}` is not a resource operation",
                operation.method, operation.path
            ),
        );
    };
    let mut builder = Request::builder().method(operation.method.clone()).uri(uri);
    if let Some(authorization) = authorization {
        builder = builder.header(AUTHORIZATION, authorization.clone());
    }
    if let Some(version) = &operation.version {
        builder = builder.header(IF_MATCH, version.as_str());
    }
    let mut sub = match operation.resolved_data(resolved) {
        Some(data) => builder
            .header(CONTENT_TYPE, SCIM_JSON)
            .body(data.to_string()),
        None => builder.finish(),
    };
    if let Some(state) = state {
        sub.extensions_mut().insert(state.clone());
    }
    if let Some(request_id) = request_id {
        sub.extensions_mut().insert(request_id.clone());
    }
    sub.extensions_mut().insert(context.acting.origin.clone());
    // Operations before this one are committed: a panic must fail only
    // this one, or the client never learns what the others did.
    let outcome = std::panic::AssertUnwindSafe(RESOURCES.call(sub))
        .catch_unwind()
        .await;
    let response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => AppError::from_poem(err).scim_response(),
        Err(panic) => {
            AppError::internal(crate::http::panic_message(panic.as_ref())).scim_response()
        }
    };
    let status = response.status();
    let location = response.header(LOCATION).map(str::to_owned).or_else(|| {
        (status.is_success() && operation.method != Method::DELETE)
            .then(|| format!("{}{}", context.base_url, path))
    });
    let version = response.header(ETAG).map(str::to_owned);
    let mut result =
        json!({ "method": operation.method.as_str(), "status": status.as_u16().to_string() });
    if let Some(bulk_id) = &operation.bulk_id {
        result["bulkId"] = json!(bulk_id);
    }
    if let Some(location) = location {
        result["location"] = json!(location);
    }
    if let Some(version) = version {
        result["version"] = json!(version);
    }
    if !status.is_success() {
        let body = response.into_body().into_bytes().await.unwrap_or_default();
        result["response"] = serde_json::from_slice(&body).unwrap_or(Value::Null);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_resource_paths_become_sub_requests() {
        let put = Method::PUT;
        assert!(resource_uri(&Method::POST, "/Users").is_some());
        assert!(resource_uri(&put, "/Groups/abc").is_some());
        assert!(resource_uri(&put, "Users/abc").is_some());
        for path in [
            "/Users/a b",
            "/Users/abc?attributes=x",
            "/Users/abc#x",
            "/Users/abc/more",
            "/Users/",
            "/Bulk",
            "/Schemas",
        ] {
            assert!(resource_uri(&put, path).is_none(), "{path}");
        }
        assert!(resource_uri(&put, "/Users").is_none());
        assert!(resource_uri(&Method::POST, "/Users/abc").is_none());
    }

    #[test]
    fn a_bulk_id_that_prefixes_another_does_not_resolve_it() {
        // `u`, `uu`, …: whatever order the map iterates in, replacing text
        // would have some shorter id eat into a longer one.
        let ids: Vec<String> = (1..=20).map(|n| "u".repeat(n)).collect();
        let resolved: HashMap<String, String> = ids
            .iter()
            .map(|id| (id.clone(), format!("id-{id}")))
            .collect();
        for id in &ids {
            let operation = Operation {
                method: Method::PUT,
                path: format!("/Users/bulkId:{id}"),
                bulk_id: None,
                version: None,
                data: None,
            };
            assert_eq!(
                operation.resolved_path(&resolved),
                format!("/Users/id-{id}")
            );
        }
    }
}
