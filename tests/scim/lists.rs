//! Filters, pagination, sorting, projection and searches.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{scim, setup};

fn ids(body: &Value) -> Vec<String> {
    body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn pages_are_stable_and_counted_honestly() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    for i in 0..6 {
        scim.create_user(&format!("user{i}@example.com")).await;
    }
    let total = 7; // and the owner
    let mut seen = Vec::new();
    for start in [1, 3, 5, 7] {
        let page = scim
            .get(&format!("/Users?startIndex={start}&count=2"))
            .await;
        assert_eq!(page.body["totalResults"], total);
        assert_eq!(page.body["startIndex"], start);
        let page_ids = ids(&page.body);
        assert_eq!(
            page.body["itemsPerPage"],
            page_ids.len(),
            "itemsPerPage counts what came"
        );
        seen.extend(page_ids);
    }
    assert_eq!(seen.len(), total);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        total,
        "no user twice"
    );

    let only_total = scim.get("/Users?count=0").await;
    assert_eq!(only_total.body["totalResults"], total);
    assert_eq!(only_total.body["itemsPerPage"], 0);
    let below_one = scim.get("/Users?startIndex=0&count=1").await;
    assert_eq!(below_one.body["startIndex"], 1);
    assert_eq!(ids(&below_one.body), seen[..1]);
    let past_the_end = scim.get("/Users?startIndex=100").await;
    assert_eq!(past_the_end.body["itemsPerPage"], 0);
    assert_eq!(past_the_end.body["totalResults"], total);
    let bad = scim.get("/Users?count=ten").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn counts_over_the_maximum_are_clamped() {
    let app = super::common::TestApp::builder()
        .settings(|s| s.scim.max_results = 3)
        .spawn()
        .await;
    let org = app.with_org_owner().await;
    let scim = scim(&app, &org);
    for i in 0..4 {
        scim.create_user(&format!("u{i}@example.com")).await;
    }
    let page = scim.get("/Users?count=100").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["itemsPerPage"], 3);
    assert_eq!(page.body["totalResults"], 5);
}

#[tokio::test]
async fn sorting() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    for name in [
        "Charlie@example.com",
        "alice@example.com",
        "bob@example.com",
    ] {
        scim.create_user(name).await;
    }
    let filter = "userName ne \"".to_owned() + &org.owner.email + "\"";
    let query =
        super::common::form_urlencoded_query(&[("filter", &filter), ("sortBy", "userName")]);
    let ascending = scim.get(&format!("/Users?{query}")).await;
    let names: Vec<&str> = ascending.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|r| r["userName"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "alice@example.com",
            "bob@example.com",
            "Charlie@example.com"
        ]
    );
    let descending = scim
        .get(&format!("/Users?{query}&sortOrder=descending"))
        .await;
    assert_eq!(
        descending.body["Resources"][0]["userName"],
        "Charlie@example.com"
    );
}

#[tokio::test]
async fn filters_cover_every_operator() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    scim.post(
        "/Users",
        &json!({
            "userName": "ada@corp.example", "externalId": "E-1", "title": "Engineer",
            "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "emails": [{ "value": "ada@corp.example", "type": "work" }, { "value": "ada@home.example", "type": "home" }],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "employeeNumber": "42" }
        }),
    )
    .await;
    scim.post(
        "/Users",
        &json!({ "userName": "grace@corp.example", "externalId": "E-2", "title": "Admiral",
                 "emails": [{ "value": "grace@navy.example", "type": "work" }] }),
    )
    .await;
    let count = |filter: &'static str| {
        let scim = &scim;
        async move {
            let answer = scim.filter("Users", filter).await;
            assert_eq!(answer.status, StatusCode::OK, "{filter}: {}", answer.body);
            answer.body["totalResults"].as_u64().expect("total")
        }
    };
    assert_eq!(count("userName eq \"ADA@CORP.EXAMPLE\"").await, 1);
    assert_eq!(count("userName ne \"ada@corp.example\"").await, 2);
    assert_eq!(count("userName co \"corp\"").await, 2);
    assert_eq!(count("userName sw \"GRA\"").await, 1);
    assert_eq!(count("userName ew \"corp.example\"").await, 2);
    assert_eq!(
        count("userName gt \"b\"").await,
        1 + u64::from(org.owner.email.as_str() > "b")
    );
    assert_eq!(count("externalId eq \"E-1\"").await, 1);
    assert_eq!(
        count("externalId eq \"e-1\"").await,
        0,
        "externalId is caseExact"
    );
    assert_eq!(count("title pr").await, 2);
    assert_eq!(
        count("title eq \"engineer\" or title eq \"admiral\"").await,
        2
    );
    assert_eq!(
        count("title eq \"engineer\" and not (emails.value co \"home\")").await,
        0
    );
    assert_eq!(
        count("(title eq \"Engineer\" or title eq \"Nobody\") and userName sw \"ada\"").await,
        1
    );
    assert_eq!(count("emails.value eq \"grace@navy.example\"").await, 1);
    assert_eq!(
        count("emails[type eq \"work\" and value co \"@corp\"]").await,
        1
    );
    assert_eq!(count("emails[type eq \"home\"]").await, 1);
    assert_eq!(count("name.familyName eq \"lovelace\"").await, 1);
    assert_eq!(
        count(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"42\""
        )
        .await,
        1
    );
    assert_eq!(
        count("urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"ada@corp.example\"").await,
        1
    );
    assert_eq!(
        count("USERNAME EQ \"ada@corp.example\"").await,
        1,
        "names and operators are case-insensitive"
    );
    assert_eq!(
        count("meta.lastModified gt \"2000-01-01T00:00:00Z\"").await,
        3
    );
    assert_eq!(count("meta.created lt \"2000-01-01T00:00:00Z\"").await, 0);
    assert_eq!(count("active eq true").await, 3);
    let invalid = scim.filter("Users", "active gt true").await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.scim_type(), Some("invalidFilter"));
}

#[tokio::test]
async fn attributes_and_excluded_attributes() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    let id = scim.create_user("proj@example.com").await;
    let only = scim
        .get(&format!("/Users/{id}?attributes=userName,name.givenName"))
        .await;
    let keys: HashSet<&str> = only
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        keys.contains("id") && keys.contains("userName") && keys.contains("name"),
        "{keys:?}"
    );
    assert!(
        !keys.contains("emails") && !keys.contains("meta"),
        "{keys:?}"
    );
    assert!(only.body["name"].get("familyName").is_none());

    let without = scim
        .get(&format!("/Users/{id}?excludedAttributes=emails,name"))
        .await;
    assert!(without.body.get("emails").is_none());
    assert!(without.body.get("name").is_none());
    assert_eq!(without.body["id"], id.as_str(), "id is always returned");

    let listed = scim.get("/Users?attributes=userName").await;
    for resource in listed.body["Resources"].as_array().expect("Resources") {
        assert!(resource.get("emails").is_none());
        assert!(resource["userName"].is_string());
    }

    // On writes too.
    let created = scim
        .send(
            app.client
                .post(app.url("/scim/v2/Users?attributes=userName"))
                .header("content-type", "application/scim+json")
                .body(json!({ "userName": "w@example.com", "title": "T" }).to_string()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert!(created.body.get("title").is_none());
}

#[tokio::test]
async fn searches_by_post() {
    let (app, org) = setup().await;
    let scim = scim(&app, &org);
    scim.create_user("s1@example.com").await;
    scim.post("/Groups", &json!({ "displayName": "Searchers" }))
        .await;
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"s1\"",
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10
    });
    let users = scim.post("/Users/.search", &search).await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);
    assert_eq!(users.body["totalResults"], 1);

    let everything = scim
        .post(
            "/.search",
            &json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"] }),
        )
        .await;
    assert_eq!(everything.status, StatusCode::OK);
    assert_eq!(everything.body["totalResults"], 3, "owner, user and group");
    let types: HashSet<&str> = everything.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|r| r["meta"]["resourceType"].as_str())
        .collect();
    assert_eq!(types, HashSet::from(["User", "Group"]));

    let groups_only = scim
        .post(
            "/.search",
            &json!({ "filter": "displayName eq \"searchers\"" }),
        )
        .await;
    assert_eq!(groups_only.body["totalResults"], 1);
    let paged = scim
        .post("/.search", &json!({ "startIndex": 3, "count": 1 }))
        .await;
    assert_eq!(paged.body["Resources"][0]["meta"]["resourceType"], "Group");
}
