//! Document shapes as stored, and their conversions to domain types. Kept
//! apart from the domain so that the domain knows nothing of BSON and a
//! stored field can be renamed without touching a rule.

use bson::{DateTime as BsonDateTime, Document};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::member::ProjectGrant;
use crate::domain::{
    Account, AccountId, Email, Member, MemberId, MemberStatus, OrgId, OrgSettings, Organization,
    Role,
};
use crate::protocol::schema::{ENTERPRISE_USER_SCHEMA, MUSTER_GROUP_SCHEMA};
use crate::protocol::user::{UserProfile, UserRecord};

pub fn bson_time(at: DateTime<Utc>) -> BsonDateTime {
    BsonDateTime::from_chrono(at)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub slug: String,
    pub settings: OrgSettingsDoc,
    pub created_at: BsonDateTime,
    pub updated_at: BsonDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgSettingsDoc {
    pub invitation_ttl_days: u32,
    pub audit_retention_days: u32,
    pub allowed_email_domains: Vec<String>,
    pub scim_activation_emails: bool,
    pub mfa_required: bool,
}

impl From<&Organization> for OrgDoc {
    fn from(org: &Organization) -> Self {
        let s = &org.settings;
        OrgDoc {
            id: org.id.to_string(),
            name: org.name.clone(),
            slug: org.slug.clone(),
            settings: OrgSettingsDoc {
                invitation_ttl_days: s.invitation_ttl_days,
                audit_retention_days: s.audit_retention_days,
                allowed_email_domains: s.allowed_email_domains.clone(),
                scim_activation_emails: s.scim_activation_emails,
                mfa_required: s.mfa_required,
            },
            created_at: bson_time(org.created_at),
            updated_at: bson_time(org.updated_at),
        }
    }
}

impl From<OrgDoc> for Organization {
    fn from(doc: OrgDoc) -> Self {
        let s = doc.settings;
        Organization {
            id: OrgId::from_stored(doc.id),
            name: doc.name,
            slug: doc.slug,
            settings: OrgSettings {
                invitation_ttl_days: s.invitation_ttl_days,
                audit_retention_days: s.audit_retention_days,
                allowed_email_domains: s.allowed_email_domains,
                scim_activation_emails: s.scim_activation_emails,
                mfa_required: s.mfa_required,
            },
            created_at: doc.created_at.to_chrono(),
            updated_at: doc.updated_at.to_chrono(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountDoc {
    #[serde(rename = "_id")]
    pub id: String,
    /// Normalized (lower case); unique.
    pub email: String,
    pub display_name: Option<String>,
    /// argon2id PHC string; absent until the person sets a password.
    pub password_hash: Option<String>,
    pub created_at: BsonDateTime,
    pub updated_at: BsonDateTime,
    /// When the person last proved control of `email` (accepting an
    /// emailed invitation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified_at: Option<BsonDateTime>,
    /// The second factor, from the start of its enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<MfaDoc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MfaDoc {
    /// Sealed with `auth.mfa_key` (`auth::mfa_key`), never in the clear.
    pub secret: String,
    pub started_at: BsonDateTime,
    pub enabled_at: Option<BsonDateTime>,
    /// An i64 because BSON has no unsigned integers.
    pub last_step: Option<i64>,
    #[serde(default)]
    pub recovery_codes: Vec<String>,
    #[serde(default)]
    pub failures: u32,
    pub locked_until: Option<BsonDateTime>,
}

impl MfaDoc {
    pub fn to_state(&self) -> crate::domain::mfa::MfaState {
        crate::domain::mfa::MfaState {
            sealed_secret: self.secret.clone(),
            started_at: self.started_at.to_chrono(),
            enabled_at: self.enabled_at.map(BsonDateTime::to_chrono),
            last_step: self.last_step.and_then(|step| u64::try_from(step).ok()),
            recovery_codes: self.recovery_codes.clone(),
            failures: self.failures,
            locked_until: self.locked_until.map(BsonDateTime::to_chrono),
        }
    }
}

impl AccountDoc {
    pub fn new(account: &Account, password_hash: Option<String>) -> Self {
        AccountDoc {
            id: account.id.to_string(),
            email: account.email.to_string(),
            display_name: account.display_name.clone(),
            password_hash,
            created_at: bson_time(account.created_at),
            updated_at: bson_time(account.updated_at),
            email_verified_at: None,
            mfa: None,
        }
    }

    pub fn to_account(&self) -> Account {
        Account {
            id: AccountId::from_stored(self.id.clone()),
            email: Email::from_stored(self.email.clone()),
            display_name: self.display_name.clone(),
            created_at: self.created_at.to_chrono(),
            updated_at: self.updated_at.to_chrono(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub org_id: String,
    pub account_id: Option<String>,
    pub role: Role,
    pub status: MemberStatus,
    pub suspended_until: Option<BsonDateTime>,
    pub project_rights: Vec<ProjectGrant>,
    pub created_at: BsonDateTime,
    pub updated_at: BsonDateTime,
    /// Set by every sign-in of the account; not part of the SCIM resource,
    /// so it moves neither `version` nor `updated_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<BsonDateTime>,
    /// The SCIM profile. `user_name_lc`, `display_name_lc` and `emails_lc`
    /// are lower-cased shadows so that case-insensitive filters use indexes.
    pub user_name: String,
    pub user_name_lc: String,
    pub external_id: Option<String>,
    pub display_name_lc: Option<String>,
    pub emails_lc: Vec<String>,
    /// The other SCIM attributes; extensions under short keys (see
    /// `EXTENSION_KEYS`), because schema URNs contain dots.
    pub scim: Document,
    /// Bumped by every write; the SCIM ETag.
    pub version: i64,
    /// Whether SCIM shows `active` (see `UserProfile::active_assigned`).
    #[serde(default = "assigned")]
    pub active_assigned: bool,
}

fn assigned() -> bool {
    true
}

/// Schema URNs as stored: MongoDB paths cannot address keys with dots.
pub const EXTENSION_KEYS: [(&str, &str); 2] = [
    (ENTERPRISE_USER_SCHEMA, "enterprise"),
    (MUSTER_GROUP_SCHEMA, "muster"),
];

pub fn stored_key(name: &str) -> &str {
    EXTENSION_KEYS
        .iter()
        .find(|(urn, _)| *urn == name)
        .map_or(name, |(_, key)| key)
}

fn attribute_key(stored: &str) -> &str {
    EXTENSION_KEYS
        .iter()
        .find(|(_, key)| *key == stored)
        .map_or(stored, |(urn, _)| urn)
}

/// SCIM attributes (JSON) as a stored document.
pub fn encode_attributes(attributes: &Map<String, Value>) -> Result<Document, bson::ser::Error> {
    let mut doc = Document::new();
    for (name, value) in attributes {
        doc.insert(stored_key(name), bson::to_bson(value)?);
    }
    Ok(doc)
}

pub fn decode_attributes(doc: Document) -> Map<String, Value> {
    doc.into_iter()
        .map(|(key, value)| (attribute_key(&key).to_owned(), value.into_relaxed_extjson()))
        .collect()
}

impl MemberDoc {
    pub fn new(
        member: &Member,
        profile: &UserProfile,
        version: i64,
    ) -> Result<Self, bson::ser::Error> {
        Ok(MemberDoc {
            id: member.id.to_string(),
            org_id: member.org_id.to_string(),
            account_id: member.account_id.as_ref().map(ToString::to_string),
            role: member.role,
            status: member.status,
            suspended_until: member.suspended_until.map(bson_time),
            project_rights: member.project_rights.clone(),
            created_at: bson_time(member.created_at),
            updated_at: bson_time(member.updated_at),
            last_sign_in_at: member.last_sign_in_at.map(bson_time),
            user_name: profile.user_name.clone(),
            user_name_lc: profile.user_name.to_lowercase(),
            external_id: profile.external_id.clone(),
            display_name_lc: profile.display_name().map(str::to_lowercase),
            emails_lc: profile
                .emails()
                .into_iter()
                .map(str::to_lowercase)
                .collect(),
            scim: encode_attributes(&profile.attributes)?,
            version,
            active_assigned: profile.active_assigned,
        })
    }

    pub fn into_record(self) -> UserRecord {
        let profile = UserProfile {
            user_name: self.user_name.clone(),
            external_id: self.external_id.clone(),
            attributes: decode_attributes(self.scim.clone()),
            active_assigned: self.active_assigned,
        };
        let version = self.version;
        UserRecord {
            member: Member::from(self),
            profile,
            version,
        }
    }
}

impl From<MemberDoc> for Member {
    fn from(doc: MemberDoc) -> Self {
        Member {
            id: MemberId::from_stored(doc.id),
            org_id: OrgId::from_stored(doc.org_id),
            account_id: doc.account_id.map(AccountId::from_stored),
            role: doc.role,
            status: doc.status,
            suspended_until: doc.suspended_until.map(BsonDateTime::to_chrono),
            project_rights: doc.project_rights,
            created_at: doc.created_at.to_chrono(),
            updated_at: doc.updated_at.to_chrono(),
            last_sign_in_at: doc.last_sign_in_at.map(BsonDateTime::to_chrono),
        }
    }
}
