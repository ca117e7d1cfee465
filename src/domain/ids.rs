//! Identifier newtypes. Ids are UUIDv7 strings: opaque to clients, unique
//! without coordination, and sortable by creation time, which gives list
//! endpoints a stable order for cursors.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id")]
pub struct InvalidId(pub String);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::now_v7().to_string())
            }

            /// Parses an id that came from outside (a path, a body). Only
            /// canonical UUIDs are ids, so anything else cannot name a
            /// resource and is rejected before it reaches the database.
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                match Uuid::try_parse(raw) {
                    Ok(uuid) if uuid.to_string() == raw => Ok(Self(raw.to_owned())),
                    _ => Err(InvalidId(raw.chars().take(64).collect())),
                }
            }

            /// Wraps an id read back from storage, where it was written by
            /// `new`.
            pub fn from_stored(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// An organization (tenant).
    OrgId
);
id_type!(
    /// A login, global across organizations.
    AccountId
);
id_type!(
    /// An account's membership in one organization (a SCIM User).
    MemberId
);
id_type!(
    /// A project inside an organization.
    ProjectId
);
id_type!(
    /// A group inside an organization (a SCIM Group).
    GroupId
);
id_type!(
    /// A personal API token, SCIM token or session.
    TokenId
);
id_type!(
    /// An invitation to join an organization.
    InvitationId
);
id_type!(
    /// An audit event; its UUIDv7 order is the log's order.
    AuditEventId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_parse_back() {
        let id = OrgId::new();
        assert_eq!(OrgId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn non_canonical_ids_are_rejected() {
        assert!(OrgId::parse("").is_err());
        assert!(OrgId::parse("not-an-id").is_err());
        // Upper case would alias a stored id without being equal to it.
        let upper = OrgId::new().as_str().to_uppercase();
        assert!(OrgId::parse(&upper).is_err());
        assert!(OrgId::parse("{00000000-0000-0000-0000-000000000000}").is_err());
    }

    #[test]
    fn ids_sort_by_creation() {
        let first = MemberId::new();
        let second = MemberId::new();
        assert!(first < second);
    }
}
