//! Organizations (tenants) and their projects.

use chrono::{DateTime, Utc};

use super::ids::{OrgId, ProjectId};

#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    /// Unique across the service; derived from the name.
    pub slug: String,
    pub settings: OrgSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSettings {
    pub invitation_ttl_days: u32,
    pub audit_retention_days: u32,
    /// Empty means any domain may be invited.
    pub allowed_email_domains: Vec<String>,
    /// Whether members created over SCIM get an activation email.
    pub scim_activation_emails: bool,
    pub mfa_required: bool,
}

impl Default for OrgSettings {
    fn default() -> Self {
        Self {
            invitation_ttl_days: 7,
            audit_retention_days: 365,
            allowed_email_domains: Vec::new(),
            scim_activation_emails: true,
            mfa_required: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOrgName {
    #[error("the organization name must not be empty")]
    Empty,
    #[error("the organization name must be at most {max} characters")]
    TooLong { max: usize },
    #[error("the organization name must contain at least one letter or digit")]
    NoLettersOrDigits,
}

pub const MAX_ORG_NAME_CHARS: usize = 100;

/// Validates a display name and derives the slug that makes it unique:
/// lower-case letters and digits, runs of anything else become one `-`.
/// "Acme Corp" and "acme corp" share a slug, so they cannot both exist.
pub fn org_name_and_slug(raw: &str) -> Result<(String, String), InvalidOrgName> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(InvalidOrgName::Empty);
    }
    if name.chars().count() > MAX_ORG_NAME_CHARS {
        return Err(InvalidOrgName::TooLong {
            max: MAX_ORG_NAME_CHARS,
        });
    }
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        return Err(InvalidOrgName::NoLettersOrDigits);
    }
    Ok((name.to_owned(), slug))
}

/// An entry of `allowed_email_domains` that is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an email domain such as example.com")]
pub struct InvalidEmailDomain(pub String);

/// The domains an organization lets members be invited from: lower-cased,
/// each a host name, duplicates dropped.
pub fn allowed_email_domains<S: AsRef<str>>(
    raw: impl IntoIterator<Item = S>,
) -> Result<Vec<String>, InvalidEmailDomain> {
    let mut domains: Vec<String> = Vec::new();
    for domain in raw {
        let domain = domain.as_ref().trim().to_ascii_lowercase();
        let valid = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return Err(InvalidEmailDomain(domain.chars().take(64).collect()));
        }
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    Ok(domains)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: ProjectId,
    pub org_id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidProjectName {
    #[error("the project name must not be empty")]
    Empty,
    #[error("the project name must be at most {max} characters")]
    TooLong { max: usize },
    #[error("the project name must not contain control characters")]
    ControlCharacters,
}

pub const MAX_PROJECT_NAME_CHARS: usize = 100;

/// Validates a project name: trimmed, 1 to 100 characters, no control
/// characters. Uniqueness (ignoring case, per organization) is the store's.
pub fn project_name(raw: &str) -> Result<String, InvalidProjectName> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(InvalidProjectName::Empty);
    }
    if name.chars().count() > MAX_PROJECT_NAME_CHARS {
        return Err(InvalidProjectName::TooLong {
            max: MAX_PROJECT_NAME_CHARS,
        });
    }
    if name.chars().any(char::is_control) {
        return Err(InvalidProjectName::ControlCharacters);
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(
            org_name_and_slug("  Acme Corp. "),
            Ok(("Acme Corp.".to_owned(), "acme-corp".to_owned()))
        );
        assert_eq!(
            org_name_and_slug("ACME   corp").map(|(_, s)| s),
            Ok("acme-corp".to_owned())
        );
        assert_eq!(
            org_name_and_slug("Ölwerk GmbH").map(|(_, s)| s),
            Ok("ölwerk-gmbh".to_owned())
        );
    }

    #[test]
    fn bad_names() {
        assert_eq!(org_name_and_slug("   "), Err(InvalidOrgName::Empty));
        assert_eq!(
            org_name_and_slug("!!!"),
            Err(InvalidOrgName::NoLettersOrDigits)
        );
        assert_eq!(
            org_name_and_slug(&"x".repeat(101)),
            Err(InvalidOrgName::TooLong { max: 100 })
        );
    }

    #[test]
    fn email_domains() {
        assert_eq!(
            allowed_email_domains([" Example.COM ", "example.com", "a-b.example"]),
            Ok(vec!["example.com".to_owned(), "a-b.example".to_owned()])
        );
        for bad in [
            "localhost",
            "-a.example",
            "a..example",
            "a_b.example",
            "@x.example",
        ] {
            assert_eq!(
                allowed_email_domains([bad]),
                Err(InvalidEmailDomain(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn project_names() {
        assert_eq!(project_name("  Website  "), Ok("Website".to_owned()));
        assert_eq!(project_name(" \t "), Err(InvalidProjectName::Empty));
        assert_eq!(
            project_name(&"p".repeat(101)),
            Err(InvalidProjectName::TooLong { max: 100 })
        );
        assert_eq!(
            project_name(&"é".repeat(100)).map(|n| n.chars().count()),
            Ok(100)
        );
        assert_eq!(
            project_name("a\u{0}b"),
            Err(InvalidProjectName::ControlCharacters)
        );
    }
}
