//! SCIM Users: a member of the token's organization, as its identity
//! provider sees it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::schema::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
use crate::domain::{Email, Member, MemberStatus};

/// The SCIM attributes Muster keeps for a member besides the membership.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserProfile {
    pub user_name: String,
    pub external_id: Option<String>,
    /// Every other client-writable attribute in canonical form, extensions
    /// under their schema URN, as `schema::normalize_resource` returns
    /// them; never `userName`, `externalId`, `active` or `password`.
    pub attributes: Map<String, Value>,
    /// Whether `active` is shown. It mirrors the member's status, but an
    /// identity provider may leave it unassigned (omit it, or remove it),
    /// and then it is left out of the resource as RFC 7644 §3.5.2.2 asks.
    pub active_assigned: bool,
}

impl UserProfile {
    /// The profile of a member who joined without an identity provider:
    /// their login email is their userName and work email.
    pub fn for_email(email: &Email) -> UserProfile {
        let mut attributes = Map::new();
        attributes.insert(
            "emails".into(),
            json!([{ "value": email.as_str(), "type": "work", "primary": true }]),
        );
        UserProfile {
            user_name: email.to_string(),
            external_id: None,
            attributes,
            active_assigned: true,
        }
    }

    /// This profile with `name` (given, family, formatted) and
    /// `displayName`, as an identity provider would send them: members
    /// who joined without one still have the names IdPs require on import.
    pub fn with_name(mut self, name: &crate::domain::PersonName) -> UserProfile {
        self.attributes.insert(
            "name".into(),
            json!({
                "givenName": name.given(),
                "familyName": name.family(),
                "formatted": name.formatted(),
            }),
        );
        self.attributes
            .insert("displayName".into(), Value::from(name.formatted()));
        self
    }

    pub fn display_name(&self) -> Option<&str> {
        self.attributes.get("displayName").and_then(Value::as_str)
    }

    /// Email values, primary first, for matching accounts and shadow
    /// fields.
    pub fn emails(&self) -> Vec<&str> {
        let Some(Value::Array(emails)) = self.attributes.get("emails") else {
            return Vec::new();
        };
        let mut values: Vec<(bool, &str)> = emails
            .iter()
            .filter_map(|email| {
                let value = email.get("value")?.as_str()?;
                let primary = email
                    .get("primary")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                Some((!primary, value))
            })
            .collect();
        values.sort_by_key(|(not_primary, _)| *not_primary);
        values.into_iter().map(|(_, value)| value).collect()
    }

    /// The address a login would use: the primary (or first) email, else
    /// the userName when it is an address.
    pub fn login_email(&self) -> Option<Email> {
        self.emails()
            .into_iter()
            .find_map(|value| Email::parse(value).ok())
            .or_else(|| Email::parse(&self.user_name).ok())
    }
}

/// A member read for SCIM, with what its resource needs.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub member: Member,
    pub profile: UserProfile,
    pub version: i64,
}

/// A group the user belongs to, for the read-only `groups` attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRef {
    pub id: String,
    pub display_name: String,
}

pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// SCIM's `active` is the identity provider's switch: only deprovisioned
/// members are inactive. A suspension is Muster's own and does not show,
/// so that an IdP re-asserting `active: true` does not lift it.
pub fn is_active(status: MemberStatus) -> bool {
    status != MemberStatus::Inactive
}

/// The full resource, before projection.
pub fn user_resource(record: &UserRecord, groups: &[GroupRef], base_url: &str) -> Value {
    let id = record.member.id.as_str();
    let mut resource = Map::new();
    let mut schemas = vec![Value::from(USER_SCHEMA)];
    if record
        .profile
        .attributes
        .contains_key(ENTERPRISE_USER_SCHEMA)
    {
        schemas.push(Value::from(ENTERPRISE_USER_SCHEMA));
    }
    resource.insert("schemas".into(), Value::Array(schemas));
    resource.insert("id".into(), Value::from(id));
    if let Some(external_id) = &record.profile.external_id {
        resource.insert("externalId".into(), Value::from(external_id.as_str()));
    }
    resource.insert(
        "userName".into(),
        Value::from(record.profile.user_name.as_str()),
    );
    for (name, value) in &record.profile.attributes {
        resource.insert(name.clone(), value.clone());
    }
    if record.profile.active_assigned {
        resource.insert(
            "active".into(),
            Value::from(is_active(record.member.status)),
        );
    }
    if !groups.is_empty() {
        let groups: Vec<Value> = groups
            .iter()
            .map(|group| {
                json!({
                    "value": group.id,
                    "$ref": format!("{base_url}/Groups/{}", group.id),
                    "display": group.display_name,
                    "type": "direct",
                })
            })
            .collect();
        resource.insert("groups".into(), Value::Array(groups));
    }
    resource.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": format_time(record.member.created_at),
            "lastModified": format_time(record.member.updated_at),
            "location": format!("{base_url}/Users/{id}"),
            "version": etag(record.version),
        }),
    );
    Value::Object(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_email_prefers_the_primary_email() {
        let mut profile = UserProfile {
            user_name: "bjensen".into(),
            ..UserProfile::default()
        };
        profile.attributes.insert(
            "emails".into(),
            json!([
                { "value": "home@example.com", "type": "home" },
                { "value": "Work@Example.com", "type": "work", "primary": true },
            ]),
        );
        assert_eq!(
            profile.login_email().map(|e| e.to_string()),
            Some("work@example.com".to_owned())
        );
    }

    #[test]
    fn login_email_falls_back_to_an_email_shaped_user_name() {
        let profile = UserProfile {
            user_name: "ada@example.com".into(),
            ..UserProfile::default()
        };
        assert_eq!(
            profile.login_email().map(|e| e.to_string()),
            Some("ada@example.com".to_owned())
        );
        let profile = UserProfile {
            user_name: "ada".into(),
            ..UserProfile::default()
        };
        assert_eq!(profile.login_email(), None);
    }

    #[test]
    fn suspension_does_not_show_as_inactive() {
        assert!(is_active(MemberStatus::Suspended));
        assert!(is_active(MemberStatus::Pending));
        assert!(!is_active(MemberStatus::Inactive));
    }
}
