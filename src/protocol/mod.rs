//! The SCIM 2.0 protocol core (RFC 7643/7644): filters and attribute
//! paths, the schemas, PATCH, and the User resource a member is shown as.
//! Pure: no HTTP, no store, no edge error type; the store receives typed
//! queries built from these types, and the SCIM face maps [`ScimError`] to
//! its responses.

pub mod filter;
pub mod patch;
pub mod schema;
pub mod user;

/// RFC 7644 §3.12 `scimType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

/// A request the protocol refuses: its `scimType` and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    pub scim_type: ScimType,
    pub detail: String,
}

impl ScimError {
    pub fn new(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
        ScimError {
            scim_type,
            detail: detail.into(),
        }
    }
}
