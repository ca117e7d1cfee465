//! Document shapes as stored, and their conversions to domain types. Kept
//! apart from the domain so that the domain knows nothing of BSON and a
//! stored field can be renamed without touching a rule.

use bson::DateTime as BsonDateTime;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::member::ProjectGrant;
use crate::domain::{
    Account, AccountId, Email, Member, MemberId, MemberStatus, OrgId, OrgSettings, Organization,
    Role,
};

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
    pub account_id: String,
    pub role: Role,
    pub status: MemberStatus,
    pub suspended_until: Option<BsonDateTime>,
    pub project_rights: Vec<ProjectGrant>,
    pub created_at: BsonDateTime,
    pub updated_at: BsonDateTime,
}

impl From<&Member> for MemberDoc {
    fn from(member: &Member) -> Self {
        MemberDoc {
            id: member.id.to_string(),
            org_id: member.org_id.to_string(),
            account_id: member.account_id.to_string(),
            role: member.role,
            status: member.status,
            suspended_until: member.suspended_until.map(bson_time),
            project_rights: member.project_rights.clone(),
            created_at: bson_time(member.created_at),
            updated_at: bson_time(member.updated_at),
        }
    }
}

impl From<MemberDoc> for Member {
    fn from(doc: MemberDoc) -> Self {
        Member {
            id: MemberId::from_stored(doc.id),
            org_id: OrgId::from_stored(doc.org_id),
            account_id: AccountId::from_stored(doc.account_id),
            role: doc.role,
            status: doc.status,
            suspended_until: doc.suspended_until.map(BsonDateTime::to_chrono),
            project_rights: doc.project_rights,
            created_at: doc.created_at.to_chrono(),
            updated_at: doc.updated_at.to_chrono(),
        }
    }
}
