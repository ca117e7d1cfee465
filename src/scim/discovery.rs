//! Discovery endpoints (RFC 7644 §4): what this server supports, derived
//! from the same schema data that validates requests.

use poem::http::StatusCode;
use poem::web::Path;
use poem::{Response, handler};
use serde_json::Value;

use super::params::list_response;
use super::{ScimContext, scim_response};
use crate::error::AppError;
use crate::protocol::schema::{
    ResourceKind, ServiceProviderLimits, resource_type_document, schema_document, schemas,
    service_provider_config as service_provider_config_document,
};

fn limits(context: &ScimContext) -> ServiceProviderLimits {
    let scim = &context.state.settings().scim;
    ServiceProviderLimits {
        bulk_max_operations: scim.bulk_max_operations,
        bulk_max_payload_bytes: scim.bulk_max_payload_bytes,
        filter_max_results: scim.max_results,
    }
}

#[handler]
pub async fn service_provider_config(context: ScimContext) -> Response {
    let document = service_provider_config_document(&context.base_url, &limits(&context));
    scim_response(StatusCode::OK, &document)
}

const KINDS: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

#[handler]
pub async fn resource_types(context: ScimContext) -> Response {
    let documents: Vec<Value> = KINDS
        .iter()
        .map(|kind| resource_type_document(*kind, &context.base_url))
        .collect();
    let total = documents.len() as u64;
    list_response(documents, total, 1)
}

#[handler]
pub async fn resource_type(context: ScimContext, Path(id): Path<String>) -> poem::Result<Response> {
    let document = KINDS
        .iter()
        .map(|kind| resource_type_document(*kind, &context.base_url))
        .find(|document| document.get("id").and_then(Value::as_str) == Some(id.as_str()))
        .ok_or(AppError::NotFound("resource type"))?;
    Ok(scim_response(StatusCode::OK, &document))
}

#[handler]
pub async fn list_schemas(context: ScimContext) -> Response {
    let documents: Vec<Value> = schemas()
        .iter()
        .map(|schema| schema_document(schema, &context.base_url))
        .collect();
    let total = documents.len() as u64;
    list_response(documents, total, 1)
}

#[handler]
pub async fn read_schema(context: ScimContext, Path(id): Path<String>) -> poem::Result<Response> {
    let schema = schemas()
        .iter()
        .find(|schema| schema.id.eq_ignore_ascii_case(&id))
        .ok_or(AppError::NotFound("schema"))?;
    Ok(scim_response(
        StatusCode::OK,
        &schema_document(schema, &context.base_url),
    ))
}
