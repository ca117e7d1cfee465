//! Accounts: one global login per email address.

use std::fmt;

use chrono::{DateTime, Utc};

use super::ids::AccountId;

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
}
