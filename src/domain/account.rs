//! Accounts: one global login per email address.

use std::fmt;

use chrono::{DateTime, Utc};

use super::ids::AccountId;

/// A person's given and family names, as identity providers import users
/// (Okta requires both `name.givenName` and `name.familyName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    given: String,
    family: String,
}

/// The longest given or family name, in characters.
pub const MAX_NAME_PART_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPersonName {
    #[error("enter both a given name and a family name")]
    Missing,
    #[error("a name must be at most {MAX_NAME_PART_CHARS} characters")]
    TooLong,
    #[error("a name must not contain control characters")]
    ControlCharacters,
    #[error("enter a given and a family name separated by a space, such as \"Ada Lovelace\"")]
    NotSplittable,
}

impl PersonName {
    /// Both parts, trimmed; each 1 to 100 characters without control
    /// characters.
    pub fn new(given: &str, family: &str) -> Result<PersonName, InvalidPersonName> {
        let part = |raw: &str| {
            let part = raw.trim();
            if part.is_empty() {
                Err(InvalidPersonName::Missing)
            } else if part.chars().count() > MAX_NAME_PART_CHARS {
                Err(InvalidPersonName::TooLong)
            } else if part.chars().any(char::is_control) {
                Err(InvalidPersonName::ControlCharacters)
            } else {
                Ok(part.to_owned())
            }
        };
        Ok(PersonName {
            given: part(given)?,
            family: part(family)?,
        })
    }

    /// A full name as one string: the first word is the given name, the
    /// rest the family name ("Ludwig van Beethoven": Ludwig, van
    /// Beethoven).
    pub fn from_full(full: &str) -> Result<PersonName, InvalidPersonName> {
        let (given, family) = full
            .trim()
            .split_once(char::is_whitespace)
            .ok_or(InvalidPersonName::NotSplittable)?;
        PersonName::new(given, family)
    }

    pub fn given(&self) -> &str {
        &self.given
    }

    pub fn family(&self) -> &str {
        &self.family
    }

    /// "Given Family", as a display name.
    pub fn formatted(&self) -> String {
        format!("{} {}", self.given, self.family)
    }
}

/// A normalized email address: trimmed and lower-cased, so that one person
/// has one login whatever case their identity provider sends.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid email address")]
pub struct InvalidEmail(pub String);

impl Email {
    /// Deliberately simple: one `@`, a non-empty local part, a domain with
    /// a dot and no empty labels, no white space, at most 254 characters.
    /// Anything stricter rejects real addresses; delivery is the real test.
    pub fn parse(raw: &str) -> Result<Email, InvalidEmail> {
        let trimmed = raw.trim();
        let invalid = || InvalidEmail(trimmed.chars().take(254).collect());
        if trimmed.is_empty() || trimmed.len() > 254 {
            return Err(invalid());
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = trimmed.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.contains('@')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Email(trimmed.to_lowercase()))
    }

    pub fn from_stored(normalized: String) -> Email {
        Email(normalized)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub email: Email,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDisplayName {
    #[error("the display name must not be empty; send null to clear it")]
    Empty,
    #[error("the display name must be at most {MAX_DISPLAY_NAME_CHARS} characters")]
    TooLong,
    #[error("the display name must not contain control characters")]
    ControlCharacters,
}

/// A display name as a person typed it, trimmed.
pub fn display_name(raw: &str) -> Result<String, InvalidDisplayName> {
    let name = raw.trim();
    if name.is_empty() {
        Err(InvalidDisplayName::Empty)
    } else if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        Err(InvalidDisplayName::TooLong)
    } else if name.chars().any(char::is_control) {
        Err(InvalidDisplayName::ControlCharacters)
    } else {
        Ok(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").expect("valid");
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
        assert_eq!(email.domain(), "example.com");
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(display_name("  Ada  "), Ok("Ada".to_owned()));
        assert_eq!(display_name(" "), Err(InvalidDisplayName::Empty));
        assert_eq!(
            display_name(&"a".repeat(MAX_DISPLAY_NAME_CHARS + 1)),
            Err(InvalidDisplayName::TooLong)
        );
        assert_eq!(
            display_name("Ada\u{7}"),
            Err(InvalidDisplayName::ControlCharacters)
        );
    }

    #[test]
    fn invalid_emails_are_rejected() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada lovelace@example.com",
            "ada@exa mple.com",
            "ada@example..com",
            "ada@-example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
    }

    #[test]
    fn plus_addresses_and_idn_domains_are_fine() {
        assert!(Email::parse("ada+scim@example.com").is_ok());
        assert!(Email::parse("ada@bücher.example").is_ok());
    }

    #[test]
    fn person_names_split_at_the_first_space() {
        let name = PersonName::from_full("  Ludwig van Beethoven ").expect("a name");
        assert_eq!(name.given(), "Ludwig");
        assert_eq!(name.family(), "van Beethoven");
        assert_eq!(name.formatted(), "Ludwig van Beethoven");
        assert_eq!(
            PersonName::from_full("Cher"),
            Err(InvalidPersonName::NotSplittable)
        );
        assert_eq!(
            PersonName::new(" ", "Lovelace"),
            Err(InvalidPersonName::Missing)
        );
        assert_eq!(
            PersonName::new("Ada", &"x".repeat(101)),
            Err(InvalidPersonName::TooLong)
        );
        assert_eq!(
            PersonName::new("Ada\n", "Love\u{7}lace"),
            Err(InvalidPersonName::ControlCharacters)
        );
    }
}

/// Why an account cannot be deleted now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountDeletionError {
    /// Deleting it would leave these organizations (by name) without an
    /// active owner.
    #[error(
        "this account is the last owner of {}: make another member an owner there, or delete the organization, first",
        .0.join(", ")
    )]
    LastOwnerOf(Vec<String>),
}
