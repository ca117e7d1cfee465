//! What each fuzz target does with its input. Kept apart from the targets
//! so that the integration tests run the very same checks over the inputs
//! checked in under `fuzz/regressions/` (see `tests/fuzz_regressions.rs`,
//! which includes this file): a finding fixed once stays fixed in CI,
//! where no fuzzer runs.
//!
//! Every function takes raw bytes, as the network delivers them, and
//! panics only when Muster misbehaves: a crash in the code under test, or
//! a broken property the code promises (stated next to each assertion).
//! Errors for bad input are the expected outcome, not findings.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use muster::config::ScimSettings;
use muster::domain::{Member, MemberId, MemberStatus, OrgId, Role};
use muster::protocol::filter::{MAX_FILTER_BYTES, matches, parse_filter, parse_patch_path};
use muster::protocol::patch;
use muster::protocol::schema::{Projection, ResourceKind, normalize_resource, project};
use muster::protocol::user::{UserProfile, UserRecord, user_resource};
use muster::scim::{bulk, groups, params, users};
use muster::store::groups::Group;
use muster::store::scim_query;
use serde_json::{Value, json};

/// What a fuzz target checks one input with.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name: `fuzz/fuzz_targets/<name>.rs` calls the
/// function, `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/` hold its
/// inputs.
pub const TARGETS: &[(&str, Check)] = &[
    ("filter", filter),
    ("patch", patch),
    ("resource", resource),
    ("bulk", bulk),
];

const BASE_URL: &str = "https://muster.example/scim/v2";
const KINDS: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

/// A `filter` query parameter (or `/.search` `filter`), and the same text
/// as an `attributes` list: parsed, evaluated in memory against a user and
/// a group, and compiled to a database query for both.
pub fn filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = params::parse_attribute_list(text);
    let Ok(filter) = parse_filter(text) else {
        return;
    };
    // filter.rs promises that Display writes the canonical syntax, which
    // parses back to the same tree; lists and logs rely on it.
    let shown = filter.to_string();
    if shown.len() <= MAX_FILTER_BYTES {
        match parse_filter(&shown) {
            Ok(again) => assert_eq!(again, filter, "{text:?} is shown as {shown:?}"),
            Err(err) => panic!("{text:?} is shown as {shown:?}, which does not parse: {err}"),
        }
    }
    let user = user_fixture();
    let group = group_fixture(true);
    for (kind, resource) in [(ResourceKind::User, &user), (ResourceKind::Group, &group)] {
        let _ = matches(&filter, resource, kind);
        let _ = scim_query::compile(kind, &filter);
    }
}

/// A PATCH body, applied as `/Users/{id}` and `/Groups/{id}` apply it: to
/// the resource the stored user or group is shown as, then decoded as a
/// PUT body would be. Input that is not JSON is taken as a bare PATCH
/// `path`, so the path grammar is also fuzzed on its own.
pub fn patch(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        if let Ok(text) = std::str::from_utf8(data)
            && let Ok(path) = parse_patch_path(text)
        {
            let shown = path.to_string();
            if shown.len() <= MAX_FILTER_BYTES {
                match parse_patch_path(&shown) {
                    Ok(again) => assert_eq!(again, path, "{text:?} is shown as {shown:?}"),
                    Err(err) => {
                        panic!("{text:?} is shown as {shown:?}, which does not parse: {err}")
                    }
                }
            }
        }
        return;
    };
    let Ok(operations) = patch::parse_request(&body) else {
        return;
    };
    let _ = patch::new_password(&operations);

    let user = user_fixture();
    if let Ok(patched) = patch::apply(ResourceKind::User, &user, &operations) {
        let _ = users::user_input(&patched);
    }

    if let Ok((_changes, others)) = groups::split_operations(operations)
        && !others.is_empty()
    {
        // The handler applies the rest to the group shown without members.
        let group = group_fixture(false);
        if let Ok(patched) = patch::apply(ResourceKind::Group, &group, &others) {
            let _ = groups::group_input(&patched);
        }
    }
}

/// A User or Group body of a POST or PUT, and a `/.search` body: decoded
/// as the handlers decode them. What a body is stored as must be shown as
/// a resource that decodes to the same thing, or a PATCH, which applies
/// to the shown resource, would change what it does not name.
pub fn resource(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = params::from_search(&body);
    for kind in KINDS {
        if let Ok((attributes, _password)) = normalize_resource(kind, &body) {
            let _ = project(kind, &Value::Object(attributes), &Projection::default());
        }
    }

    if let Ok(input) = users::user_input(&body) {
        let record = UserRecord {
            member: member(match input.active {
                Some(false) => MemberStatus::Inactive,
                _ => MemberStatus::Active,
            }),
            profile: input.profile.clone(),
            version: 1,
        };
        let shown = user_resource(&record, &[], BASE_URL);
        match users::user_input(&shown) {
            Ok(again) => {
                assert_eq!(again.profile, input.profile, "{shown}");
                assert_eq!(again.password, None, "{shown}");
            }
            Err(err) => panic!("the user shown as {shown} does not decode: {err:?}"),
        }
    }

    if let Ok(input) = groups::group_input(&body) {
        let group = Group {
            id: "0190f5a4-8c2e-7d3b-9a41-2f6b1c0d9e11".into(),
            org_id: org_id(),
            display_name: input.display_name.clone(),
            external_id: input.external_id.clone(),
            role_mapping: None,
            extension_assigned: input.extension_assigned,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 1,
        };
        let shown = groups::group_resource(&group, Some(input.members.as_slice()), BASE_URL);
        match groups::group_input(&shown) {
            Ok(again) => {
                assert_eq!(again.display_name, input.display_name, "{shown}");
                assert_eq!(again.external_id, input.external_id, "{shown}");
                assert_eq!(again.members, input.members, "{shown}");
                assert_eq!(
                    again.extension_assigned, input.extension_assigned,
                    "{shown}"
                );
            }
            Err(err) => panic!("the group shown as {shown} does not decode: {err:?}"),
        }
    }
}

/// A `/Bulk` body: parsed and checked, then each operation's bulkId
/// references resolved as the handler resolves them before it dispatches
/// the operation as a sub-request.
pub fn bulk(data: &[u8]) {
    let settings = ScimSettings::default();
    let Ok(request) = bulk::parse_request(data, &settings) else {
        return;
    };
    // Every operation that defines a bulkId is taken to have created a
    // resource; ids never start with `bulkId:`, so none is resolved twice.
    let resolved: HashMap<String, String> = request
        .operations
        .iter()
        .enumerate()
        .filter_map(|(index, operation)| {
            let bulk_id = operation.bulk_id.clone()?;
            Some((bulk_id, format!("id{index}")))
        })
        .collect();
    for operation in &request.operations {
        let _ = operation.references();
        // A path segment `bulkId:x` stands for the id of the resource the
        // operation with bulkId `x` created, and nothing else changes.
        let path = operation.resolved_path(&resolved);
        let expected: Vec<String> = operation
            .path
            .split('/')
            .map(|segment| {
                segment
                    .strip_prefix("bulkId:")
                    .and_then(|bulk_id| resolved.get(bulk_id))
                    .map_or_else(|| segment.to_owned(), String::clone)
            })
            .collect();
        assert_eq!(
            path,
            expected.join("/"),
            "{:?} resolved with {resolved:?}",
            operation.path
        );
        let _ = bulk::resource_uri(&operation.method, &path);
        let _ = operation.resolved_data(&resolved);
    }
}

fn org_id() -> OrgId {
    OrgId::parse("0190f5a4-8c2e-7d3b-9a41-2f6b1c0d9e00").unwrap_or_else(|_| OrgId::new())
}

fn member(status: MemberStatus) -> Member {
    Member {
        id: MemberId::parse("0190f5a4-8c2e-7d3b-9a41-2f6b1c0d9e01")
            .unwrap_or_else(|_| MemberId::new()),
        org_id: org_id(),
        account_id: None,
        role: Role::Viewer,
        status,
        suspended_until: None,
        project_rights: Vec::new(),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        updated_at: DateTime::<Utc>::UNIX_EPOCH,
        last_sign_in_at: None,
    }
}

/// A user as an identity provider provisions one, shown as Muster shows
/// it (enterprise extension, several emails, a manager).
fn user_fixture() -> Value {
    let mut profile = UserProfile {
        user_name: "bjensen@example.com".into(),
        external_id: Some("00ujl29u0le5T6Aj10h7".into()),
        active_assigned: true,
        ..UserProfile::default()
    };
    let attributes = json!({
        "name": { "givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen" },
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "emails": [
            { "value": "bjensen@example.com", "type": "work", "primary": true },
            { "value": "babs@jensen.org", "type": "home" }
        ],
        "phoneNumbers": [{ "value": "+1 555 0100", "type": "mobile" }],
        "addresses": [{ "type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood" }],
        "roles": [{ "value": "guide", "primary": true }],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": { "value": "26118915-6090-4610-87e4-49d8ca9f808d" }
        }
    });
    if let Value::Object(attributes) = attributes {
        profile.attributes = attributes;
    }
    let record = UserRecord {
        member: member(MemberStatus::Active),
        profile,
        version: 3,
    };
    user_resource(&record, &[], BASE_URL)
}

fn group_fixture(with_members: bool) -> Value {
    let group = Group {
        id: "0190f5a4-8c2e-7d3b-9a41-2f6b1c0d9e11".into(),
        org_id: org_id(),
        display_name: "Tour Guides".into(),
        external_id: Some("okta-group-1".into()),
        role_mapping: None,
        extension_assigned: false,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        updated_at: DateTime::<Utc>::UNIX_EPOCH,
        version: 2,
    };
    let members = [
        "0190f5a4-8c2e-7d3b-9a41-2f6b1c0d9e01".to_owned(),
        "0190f5a4-8c2e-7d3b-9a41-2f6b1c0d9e02".to_owned(),
    ];
    groups::group_resource(&group, with_members.then_some(&members[..]), BASE_URL)
}
