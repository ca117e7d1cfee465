//! The requests Okta and Microsoft Entra ID really send (SCIM-NOTES.md).

use reqwest::StatusCode;
use serde_json::json;

use super::{scim, setup};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[tokio::test]
async fn okta_lifecycle() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    // Existence check before create: an empty list, not a 404.
    let absent = scim
        .get("/Users?filter=userName%20eq%20%22dade.murphy%40example.com%22&startIndex=1&count=100")
        .await;
    assert_eq!(absent.status, StatusCode::OK);
    assert_eq!(absent.body["totalResults"], 0);
    assert_eq!(absent.body["itemsPerPage"], 0);
    assert_eq!(absent.body["Resources"], json!([]));

    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "dade.murphy@example.com",
                "name": { "givenName": "Dade", "familyName": "Murphy" },
                "emails": [{ "primary": true, "value": "dade.murphy@example.com", "type": "work" }],
                "displayName": "Dade Murphy",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "password": "1mz050nq",
                "active": true
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.id();

    // The SPEC test looks the user up in upper case.
    let found = scim
        .get("/Users?filter=userName%20eq%20%22DADE.MURPHY%40EXAMPLE.COM%22")
        .await;
    assert_eq!(found.body["totalResults"], 1);

    // Profile change by PUT (GET, modify, PUT).
    let mut user = scim.get(&format!("/Users/{id}")).await.body;
    user["name"]["familyName"] = json!("Murphy-Burke");
    let put = scim.put(&format!("/Users/{id}"), &user).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["name"]["familyName"], "Murphy-Burke");

    // Deactivation by PATCH without a path; Okta never deletes users.
    let off = scim
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": false } }]),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(off.body["active"], false);
    // AIW apps deactivate by PUT.
    let mut user = off.body.clone();
    user["active"] = json!(true);
    assert_eq!(
        scim.put(&format!("/Users/{id}"), &user).await.body["active"],
        true
    );
    user["active"] = json!(false);
    assert_eq!(
        scim.put(&format!("/Users/{id}"), &user).await.body["active"],
        false
    );
    let listed = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(listed.body["active"], false);
}

#[tokio::test]
async fn okta_group_push() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let a = scim.create_user("a@example.com").await;
    let b = scim.create_user("b@example.com").await;
    let c = scim.create_user("c@example.com").await;
    let group = scim
        .post(
            "/Groups",
            &json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Test SCIMv2", "members": [] }),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let gid = group.id();
    let found = scim
        .get("/Groups?filter=displayName%20eq%20%22Test%20SCIMv2%22")
        .await;
    assert_eq!(found.body["Resources"][0]["id"], gid.as_str());

    // Rename together with membership: remove by filter plus add.
    let patched = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([
                { "op": "replace", "value": { "id": gid, "displayName": "Renamed" } },
                { "op": "add", "path": "members", "value": [{ "value": a, "display": "a" }, { "value": b }] },
            ]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["displayName"], "Renamed");
    assert_eq!(patched.body["members"].as_array().map(Vec::len), Some(2));
    let patched = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([
                { "op": "remove", "path": format!("members[value eq \"{a}\"]") },
                { "op": "add", "path": "members", "value": [{ "value": c }] },
            ]),
        )
        .await;
    let mut ids: Vec<&str> = patched.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![b.as_str(), c.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    // A full push replaces the list.
    let replaced = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([{ "op": "replace", "path": "members", "value": [{ "value": a }] }]),
        )
        .await;
    assert_eq!(
        replaced.body["members"],
        json!([{ "value": a, "$ref": format!("{}/Users/{a}", scim_base(&app)), "type": "User" }])
    );

    // AIW: PUT with members.
    let put = scim
        .put(
            &format!("/Groups/{gid}"),
            &json!({ "displayName": "Renamed", "members": [{ "value": b }, { "value": c }] }),
        )
        .await;
    assert_eq!(put.body["members"].as_array().map(Vec::len), Some(2));

    assert_eq!(
        scim.delete(&format!("/Groups/{gid}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        scim.get(&format!("/Groups/{gid}")).await.status,
        StatusCode::NOT_FOUND
    );
}

fn scim_base(app: &super::common::TestApp) -> String {
    format!("{}/scim/v2", app.settings.public_url())
}

#[tokio::test]
async fn entra_create_with_nulls_strings_and_the_enterprise_extension() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let manager = scim.create_user("boss@contoso.example").await;
    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "externalId": "f5c0d2b4-5f6e-4a8f-9d43-1b2c3d4e5f60",
                "userName": "Test_User_ab6490ee@contoso.example",
                "active": "True",
                "displayName": "Test User",
                "emails": [{ "primary": true, "type": "work", "value": "Test_User_ab6490ee@contoso.example" }],
                "meta": { "resourceType": "User" },
                "name": { "formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName" },
                "roles": [],
                "title": null,
                ENTERPRISE: { "employeeNumber": "701984", "department": "Tour Operations", "manager": manager }
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["active"], true);
    assert!(created.body.get("title").is_none(), "null means unset");
    assert_eq!(created.body[ENTERPRISE]["employeeNumber"], "701984");
    assert_eq!(
        created.body[ENTERPRISE]["manager"]["value"],
        manager.as_str()
    );
    let id = created.id();

    // Matching by externalId, by email value path, and the Test
    // Connection's random GUID.
    let by_external = scim
        .filter(
            "Users",
            "externalId eq \"f5c0d2b4-5f6e-4a8f-9d43-1b2c3d4e5f60\"",
        )
        .await;
    assert_eq!(by_external.body["totalResults"], 1);
    let by_email = scim
        .filter(
            "Users",
            "emails[type eq \"work\" and value eq \"test_user_ab6490ee@contoso.example\"]",
        )
        .await;
    assert_eq!(by_email.body["totalResults"], 1, "{}", by_email.body);
    let random = scim
        .filter(
            "Users",
            "userName eq \"8b5cbbd4-2b34-4e3c-9a3f-5e7d0b1b6c9d\"",
        )
        .await;
    assert_eq!(random.status, StatusCode::OK);
    assert_eq!(random.body["totalResults"], 0);

    // Capitalised ops, string booleans, dotted and URN keys, manager as a
    // bare id, and its removal.
    let patched = scim
        .patch_ops(
            &format!("/Users/{id}"),
            json!([
                { "op": "Replace", "path": "active", "value": "False" },
                { "op": "Replace", "value": { "name.givenName": "Given", format!("{ENTERPRISE}:department"): "Sales" } },
                { "op": "Add", "path": "emails[type eq \"work\"].value", "value": "new@contoso.example" },
                { "op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100" },
                { "op": "Replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St" },
                { "op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager },
            ]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let user = &patched.body;
    assert_eq!(user["active"], false);
    assert_eq!(user["name"]["givenName"], "Given");
    assert_eq!(user["name"]["familyName"], "familyName");
    assert_eq!(user[ENTERPRISE]["department"], "Sales");
    assert_eq!(user["emails"][0]["value"], "new@contoso.example");
    assert_eq!(user["phoneNumbers"][0]["value"], "+1 555 0100");
    assert_eq!(user["addresses"][0]["streetAddress"], "1 Main St");
    let removed = scim
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{ "op": "Remove", "path": format!("{ENTERPRISE}:manager") }]),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(removed.body[ENTERPRISE].get("manager").is_none());
    assert_eq!(removed.body[ENTERPRISE]["employeeNumber"], "701984");
}

#[tokio::test]
async fn entra_groups() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let a = scim.create_user("a@contoso.example").await;
    let b = scim.create_user("b@contoso.example").await;
    let group = scim
        .post(
            "/Groups",
            &json!({
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:Group",
                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
                ],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "Group1DisplayName",
                "meta": { "resourceType": "Group" }
            }),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    let gid = group.id();
    let duplicate = scim
        .post("/Groups", &json!({ "displayName": "group1displayname" }))
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.scim_type(), Some("uniqueness"));

    let added = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([{ "op": "Add", "path": "members", "value": [{ "$ref": null, "value": a }, { "$ref": null, "value": b }] }]),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let read = scim
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    assert!(read.body.get("members").is_none());
    assert_eq!(read.body["displayName"], "Group1DisplayName");
    let found = scim
        .filter("Groups", "displayName eq \"GROUP1DISPLAYNAME\"")
        .await;
    assert_eq!(found.body["totalResults"], 1);

    // Legacy removal: a value array on `members`.
    let removed = scim
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": a }] }]),
        )
        .await;
    assert_eq!(removed.body["members"].as_array().map(Vec::len), Some(1));
    assert_eq!(removed.body["members"][0]["value"], b.as_str());
    let user = scim.get(&format!("/Users/{b}")).await;
    assert_eq!(user.body["groups"][0]["value"], gid.as_str());
    assert_eq!(user.body["groups"][0]["display"], "Group1DisplayName");

    // Replace displayName.
    let renamed = scim
        .patch_ops(&format!("/Groups/{gid}"), json!([{ "op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName" }]))
        .await;
    assert_eq!(
        renamed.body["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
}
