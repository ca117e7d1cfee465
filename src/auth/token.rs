//! Bearer secrets: 256 random bits behind a prefix that says what they are
//! (so leaked tokens are recognisable to secret scanners and to us), stored
//! only as SHA-256, shown once.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{AccountId, OrgId, TokenId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A personal API token: one account, one organization.
    Personal,
    /// An identity provider's token for one organization's SCIM endpoint.
    Scim,
    /// A login session.
    Session,
}

impl TokenKind {
    pub const ALL: [TokenKind; 3] = [TokenKind::Personal, TokenKind::Scim, TokenKind::Session];

    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Personal => "mst_pat_",
            TokenKind::Scim => "mst_scim_",
            TokenKind::Session => "mst_ses_",
        }
    }

    /// The kind a presented secret claims to be, if any.
    pub fn of(secret: &str) -> Option<TokenKind> {
        TokenKind::ALL
            .into_iter()
            .find(|kind| secret.starts_with(kind.prefix()))
    }
}

const SECRET_BYTES: usize = 32;

/// A secret in the clear. Exists only between generation and the response
/// that shows it once, or between the request header and hashing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The SHA-256 of a secret, hex-encoded: what the database stores and
/// looks tokens up by. A fast hash is right here (unlike passwords): the
/// secret has 256 bits of entropy, so there is nothing to brute-force.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(secret: &str) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    pub fn from_stored(hex: String) -> TokenHash {
        TokenHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison, for when a stored hash is checked against
    /// a presented one outside an index lookup.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not a secret, but a short form is all a log needs.
        write!(f, "TokenHash({}…)", &self.0[..self.0.len().min(8)])
    }
}

/// A freshly generated token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub kind: TokenKind,
    pub secret: Secret,
    pub hash: TokenHash,
}

impl IssuedToken {
    pub fn generate(kind: TokenKind) -> IssuedToken {
        let (secret, hash) = random_secret(kind.prefix());
        IssuedToken { kind, secret, hash }
    }

    /// What lists show so a person can tell tokens apart: the prefix and
    /// the first four characters of the random part.
    pub fn display_prefix(&self) -> String {
        let secret = self.secret.expose();
        secret[..(self.kind.prefix().len() + 4).min(secret.len())].to_owned()
    }
}

/// A prefix and 256 random bits in hex, with its hash.
fn random_secret(prefix: &str) -> (Secret, TokenHash) {
    let mut bytes = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    let secret = format!("{prefix}{}", hex::encode(bytes));
    let hash = TokenHash::of(&secret);
    (Secret(secret), hash)
}

/// Invitation links carry these: single-use, never a bearer token.
pub const INVITATION_PREFIX: &str = "mst_inv_";

/// A fresh invitation secret and its hash (only the hash is stored).
pub fn generate_invitation_secret() -> (Secret, TokenHash) {
    random_secret(INVITATION_PREFIX)
}

/// Whether a presented string can be an invitation secret.
pub fn is_well_formed_invitation(secret: &str) -> bool {
    has_random_part(secret, INVITATION_PREFIX)
}

/// The password step of a sign-in with two-factor authentication answers
/// these: good for one code, never a bearer token.
pub const MFA_CHALLENGE_PREFIX: &str = "mst_mfa_";

/// A fresh sign-in challenge and its hash (only the hash is stored).
pub fn generate_mfa_challenge() -> (Secret, TokenHash) {
    random_secret(MFA_CHALLENGE_PREFIX)
}

/// Whether a presented string can be a sign-in challenge.
pub fn is_well_formed_mfa_challenge(secret: &str) -> bool {
    has_random_part(secret, MFA_CHALLENGE_PREFIX)
}

fn has_random_part(secret: &str, prefix: &str) -> bool {
    secret.strip_prefix(prefix).is_some_and(|random| {
        random.len() == SECRET_BYTES * 2 && random.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether a presented string can be a token at all: the right prefix and
/// 64 hex digits. Checked before any database work.
pub fn is_well_formed(secret: &str) -> bool {
    TokenKind::of(secret).is_some_and(|kind| {
        let random = &secret[kind.prefix().len()..];
        random.len() == SECRET_BYTES * 2 && random.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A stored token: what the database knows of a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub kind: TokenKind,
    pub hash: TokenHash,
    /// The first characters of the secret, to tell tokens apart in lists.
    pub display_prefix: String,
    pub name: Option<String>,
    /// Personal tokens and sessions belong to an account.
    pub account_id: Option<AccountId>,
    /// Personal and SCIM tokens work in one organization.
    pub org_id: Option<OrgId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// SCIM tokens only: whether the identity provider may add or remove
    /// owners (members of groups mapped to owner, members who are owners).
    /// Only an owner can create such a token.
    pub allow_owner_changes: bool,
    /// Sessions: the client address and user agent of the sign-in, so
    /// that a person can tell their sessions apart. `None` on other kinds
    /// and on sessions opened before they were recorded.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl TokenRecord {
    pub fn new(
        issued: &IssuedToken,
        name: Option<String>,
        account_id: Option<AccountId>,
        org_id: Option<OrgId>,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> TokenRecord {
        TokenRecord {
            id: TokenId::new(),
            kind: issued.kind,
            hash: issued.hash.clone(),
            display_prefix: issued.display_prefix(),
            name,
            account_id,
            org_id,
            created_at: now,
            expires_at,
            last_used_at: None,
            allow_owner_changes: false,
            ip: None,
            user_agent: None,
        }
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_prefix_and_256_bits() {
        for kind in TokenKind::ALL {
            let token = IssuedToken::generate(kind);
            let secret = token.secret.expose();
            assert!(secret.starts_with(kind.prefix()));
            assert_eq!(secret.len(), kind.prefix().len() + 64);
            assert!(is_well_formed(secret));
            assert_eq!(TokenKind::of(secret), Some(kind));
            assert_eq!(token.hash, TokenHash::of(secret));
        }
    }

    #[test]
    fn tokens_differ() {
        let a = IssuedToken::generate(TokenKind::Personal);
        let b = IssuedToken::generate(TokenKind::Personal);
        assert_ne!(a.secret, b.secret);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let token = IssuedToken::generate(TokenKind::Scim);
        let debug = format!("{token:?}");
        assert!(!debug.contains(token.secret.expose()));
        assert!(!debug.contains(&token.secret.expose()[9..]));
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("mst_pat_"));
        assert!(!is_well_formed(&format!("mst_pat_{}", "g".repeat(64))));
        assert!(!is_well_formed(&format!("ghp_{}", "a".repeat(64))));
        assert!(!is_well_formed(&format!("mst_pat_{}", "a".repeat(65))));
    }

    #[test]
    fn hash_comparison() {
        let a = TokenHash::of("x");
        assert!(a.matches(&TokenHash::of("x")));
        assert!(!a.matches(&TokenHash::of("y")));
    }

    #[test]
    fn display_prefix_reveals_little() {
        let token = IssuedToken::generate(TokenKind::Personal);
        assert_eq!(token.display_prefix().len(), "mst_pat_".len() + 4);
    }
}
