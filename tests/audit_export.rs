//! Exporting an organization's audit log as CSV or JSON Lines
//! (`/orgs/{org}/audit-events?format=…`) against the real server.

use chrono::Utc;
use muster::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{OrgFixture, Scim, TestApp};

const CSV_COLUMNS: [&str; 15] = [
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

/// A download: status, content type, disposition and body.
struct Download {
    status: StatusCode,
    content_type: String,
    disposition: Option<String>,
    body: String,
}

async fn download(
    app: &TestApp,
    token: &str,
    org: &OrgFixture,
    query: &[(&str, &str)],
    accept: Option<&str>,
) -> Download {
    let mut request = app
        .get(&format!("/api/v1/orgs/{}/audit-events", org.org_id))
        .query(query)
        .bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("GET audit events");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Download {
        status: response.status(),
        content_type: header("content-type").unwrap_or_default(),
        disposition: header("content-disposition"),
        body: response.text().await.expect("a body"),
    }
}

/// The list's items for `query` (one page of 200: enough for these tests).
async fn listed(app: &TestApp, org: &OrgFixture, query: &[(&str, &str)]) -> Vec<Value> {
    let response = app
        .get(&format!("/api/v1/orgs/{}/audit-events", org.org_id))
        .query(query)
        .query(&[("limit", "200")])
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .expect("GET audit events");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["next_cursor"], Value::Null, "one page holds them all");
    body["items"].as_array().expect("items").clone()
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

/// An RFC 4180 reader, strict enough to catch a writer that is not: every
/// record ends in CRLF, quotes only open a field.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(at_field_start, "a quote inside an unquoted field: {text:?}");
                quoted = true;
                at_field_start = false;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF: {text:?}");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_field_start = true;
            }
            '\n' => panic!("a bare LF outside quotes: {text:?}"),
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    assert!(!quoted, "an unterminated quote");
    assert!(record.is_empty() && field.is_empty(), "no CRLF at the end");
    records
}

/// The CSV's records as maps from column to value, the header checked.
fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut records = parse_csv(text).into_iter();
    let header = records.next().expect("a header row");
    assert_eq!(header, CSV_COLUMNS);
    records
        .map(|record| {
            assert_eq!(record.len(), CSV_COLUMNS.len(), "{record:?}");
            header.iter().cloned().zip(record).collect()
        })
        .collect()
}

async fn create_group(app: &TestApp, org: &OrgFixture, name: &str) -> String {
    let answer = Scim::new(app, &org.scim_token)
        .post(
            "/Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name,
            }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer.id()
}

async fn create_project(app: &TestApp, org: &OrgFixture, token: &str, name: &str) -> String {
    let response = app
        .post(&format!("/api/v1/orgs/{}/projects", org.org_id))
        .bearer_auth(token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("create a project");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("project id").to_owned()
}

fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn csv_export_escapes_and_neutralises_what_users_named() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let formula = r#"=HYPERLINK("x")"#;
    let awkward = "Smith, \"Jr\"\nsecond line";
    let formula_id = create_group(&app, &org, formula).await;
    let awkward_id = create_group(&app, &org, awkward).await;

    let export = download(&app, &org.owner.token, &org, &[("format", "csv")], None).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    assert!(
        export.content_type.starts_with("text/csv"),
        "{}",
        export.content_type
    );
    // Checked on either side of midnight.
    let names = [today(), today()].map(|day| {
        format!(
            "attachment; filename=\"audit-{}-{day}.csv\"",
            org.org_id.as_str()
        )
    });
    let disposition = export.disposition.expect("a Content-Disposition");
    assert!(names.contains(&disposition), "{disposition}");

    let rows = csv_rows(&export.body);
    let label = |id: &str| {
        rows.iter()
            .find(|r| r["target_id"] == id && r["action"] == "group.created")
            .unwrap_or_else(|| panic!("no group.created row for {id}"))["target_label"]
            .clone()
    };
    // A spreadsheet shows the text; it never runs it.
    assert_eq!(label(&formula_id), format!("'{formula}"));
    // Comma, quote and newline come back exactly.
    assert_eq!(label(&awkward_id), awkward);

    // Every event, in the list's order, the list's fields in the cells.
    let items = listed(&app, &org, &[]).await;
    let row_ids: Vec<String> = rows.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(row_ids, ids(&items));
    let created = items
        .iter()
        .find(|i| i["target"]["id"] == awkward_id.as_str())
        .expect("the group's event");
    let row = rows
        .iter()
        .find(|r| r["id"] == created["id"].as_str().expect("id"))
        .expect("its row");
    assert_eq!(row["actor_kind"], "scim_token");
    assert_eq!(
        row["actor_id"],
        created["actor"]["id"].as_str().expect("actor id")
    );
    assert_eq!(
        row["actor_label"],
        created["actor"]["label"].as_str().expect("label")
    );
    let after: Value = serde_json::from_str(&row["after"]).expect("after as JSON");
    assert_eq!(after, created["after"]);
    assert!(
        row["changes"].contains("display_name") || row["changes"].contains("displayName"),
        "{}",
        row["changes"]
    );
}

#[tokio::test]
async fn jsonl_export_lines_are_the_list_items() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    create_project(&app, &org, &org.owner.token, "Apollo").await;
    Scim::new(&app, &org.scim_token)
        .create_user("ada@example.com")
        .await;

    let export = download(&app, &org.owner.token, &org, &[("format", "jsonl")], None).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    assert_eq!(export.content_type, "application/x-ndjson");
    assert_eq!(
        export
            .disposition
            .as_deref()
            .map(|d| d.ends_with(".jsonl\"")),
        Some(true),
        "{:?}",
        export.disposition
    );
    assert!(export.body.ends_with('\n'));
    let lines: Vec<Value> = export
        .body
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let items = listed(&app, &org, &[]).await;
    assert!(items.len() >= 4, "{items:?}");
    assert_eq!(lines, items);
}

#[tokio::test]
async fn exports_apply_the_lists_filters() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let admin = app.with_member(&org, Role::Admin).await;
    let apollo = create_project(&app, &org, &org.owner.token, "Apollo").await;
    create_project(&app, &org, &admin.token, "Gemini").await;
    create_group(&app, &org, "Pilots").await;

    let admin_id = admin.account_id.to_string();
    let filters: [&[(&str, &str)]; 4] = [
        &[("action", "project.")],
        &[("action", "group.created")],
        &[("actor", admin_id.as_str())],
        &[("target", apollo.as_str())],
    ];
    for filter in filters {
        let expected = ids(&listed(&app, &org, filter).await);
        assert!(!expected.is_empty(), "{filter:?}");
        let all = ids(&listed(&app, &org, &[]).await);
        assert!(expected.len() < all.len(), "{filter:?} narrows");

        let mut query = filter.to_vec();
        query.push(("format", "jsonl"));
        let export = download(&app, &org.owner.token, &org, &query, None).await;
        assert_eq!(export.status, StatusCode::OK, "{}", export.body);
        let lines: Vec<String> = export
            .body
            .lines()
            .map(|line| {
                let item: Value = serde_json::from_str(line).expect("JSON");
                item["id"].as_str().expect("id").to_owned()
            })
            .collect();
        assert_eq!(lines, expected, "{filter:?}");

        let mut query = filter.to_vec();
        query.push(("format", "csv"));
        let export = download(&app, &org.owner.token, &org, &query, None).await;
        let rows: Vec<String> = csv_rows(&export.body)
            .into_iter()
            .map(|r| r["id"].clone())
            .collect();
        assert_eq!(rows, expected, "{filter:?}");
    }

    // A bad filter is refused before anything is sent.
    let export = download(
        &app,
        &org.owner.token,
        &org,
        &[("format", "csv"), ("action", "nope.")],
        None,
    )
    .await;
    assert_eq!(
        export.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        export.body
    );
}

#[tokio::test]
async fn accept_chooses_the_export_unless_format_says_otherwise() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let token = &org.owner.token;

    let csv = download(&app, token, &org, &[], Some("text/csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    assert!(csv.body.starts_with("id,at,actor_kind,"), "{}", csv.body);
    assert!(csv.disposition.is_some_and(|d| d.ends_with(".csv\"")));

    for accept in ["application/x-ndjson", "application/jsonl"] {
        let jsonl = download(&app, token, &org, &[], Some(accept)).await;
        assert_eq!(jsonl.content_type, "application/x-ndjson", "{accept}");
        let first: Value =
            serde_json::from_str(jsonl.body.lines().next().expect("a line")).expect("JSON");
        assert!(first["action"].is_string(), "{accept}: {first}");
    }

    // `format` wins over `Accept`; JSON pages stay the default.
    let page = download(&app, token, &org, &[("format", "json")], Some("text/csv")).await;
    assert!(
        page.content_type.starts_with("application/json"),
        "{}",
        page.content_type
    );
    assert!(page.disposition.is_none());
    let body: Value = serde_json::from_str(&page.body).expect("a page");
    assert!(body["items"].is_array());
    let jsonl = download(&app, token, &org, &[("format", "jsonl")], Some("text/csv")).await;
    assert_eq!(jsonl.content_type, "application/x-ndjson");
    let plain = download(&app, token, &org, &[], None).await;
    assert!(plain.content_type.starts_with("application/json"));
}

#[tokio::test]
async fn contributors_cannot_export_the_log() {
    let app = TestApp::spawn().await;
    let org = app.with_org_owner().await;
    let contributor = app.with_member(&org, Role::Contributor).await;
    for format in ["csv", "jsonl"] {
        let export = download(&app, &contributor.token, &org, &[("format", format)], None).await;
        assert_eq!(
            export.status,
            StatusCode::FORBIDDEN,
            "{format}: {}",
            export.body
        );
        assert!(export.disposition.is_none());
    }
    let export = download(&app, &contributor.token, &org, &[], Some("text/csv")).await;
    assert_eq!(export.status, StatusCode::FORBIDDEN);
}
