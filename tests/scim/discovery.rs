use reqwest::StatusCode;
use serde_json::json;

use super::{scim, setup};

#[tokio::test]
async fn service_provider_config_tells_the_truth() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let config = scim.get("/ServiceProviderConfig").await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(config.header("content-type"), Some("application/scim+json"));
    let body = &config.body;
    for feature in ["patch", "bulk", "filter", "changePassword", "sort", "etag"] {
        assert_eq!(body[feature]["supported"], true, "{feature}");
    }
    assert_eq!(
        body["bulk"]["maxOperations"],
        app.settings.scim.bulk_max_operations
    );
    assert_eq!(
        body["bulk"]["maxPayloadSize"],
        app.settings.scim.bulk_max_payload_bytes
    );
    assert_eq!(body["filter"]["maxResults"], app.settings.scim.max_results);
    assert_eq!(body["authenticationSchemes"][0]["type"], "oauthbearertoken");
}

#[tokio::test]
async fn resource_types_and_schemas() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let types = scim.get("/ResourceTypes").await;
    assert_eq!(types.status, StatusCode::OK);
    assert_eq!(types.body["totalResults"], 2);
    let user = scim.get("/ResourceTypes/User").await;
    assert_eq!(user.body["endpoint"], "/Users");
    assert_eq!(
        user.body["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    assert_eq!(
        scim.get("/ResourceTypes/Nope").await.status,
        StatusCode::NOT_FOUND
    );

    let schemas = scim.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 4);
    let core = scim
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    assert_eq!(core.status, StatusCode::OK);
    let user_name = core.body["attributes"]
        .as_array()
        .and_then(|attrs| attrs.iter().find(|a| a["name"] == "userName"))
        .expect("userName is described");
    assert_eq!(user_name["caseExact"], false);
    assert_eq!(user_name["uniqueness"], "server");
    let unknown = scim.get("/Schemas/urn:nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["status"], "404");
}

#[tokio::test]
async fn discovery_is_read_only_and_me_is_not_implemented() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    for path in ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"] {
        let answer = scim.post(path, &json!({})).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(answer.body["status"], "405");
    }
    let answer = scim
        .delete("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    let me = scim.get("/Me").await;
    assert_eq!(me.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(me.body["status"], "501");
}

#[tokio::test]
async fn a_deleted_or_other_organizations_token_gets_401() {
    let (app, org) = setup().await;
    let response = app
        .get("/scim/v2/Users")
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let revoked = muster::auth::token::IssuedToken::generate(muster::auth::token::TokenKind::Scim);
    let response = app
        .get("/scim/v2/Users")
        .bearer_auth(revoked.secret.expose())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
