//! Members, whichever face acts: an admin's change (API), an identity
//! provider's create, replace and patch (SCIM and `/Bulk`), removal (API
//! and SCIM) and leaving. Every rule about who may change whom is weighed
//! here, against the target's *effective* role, read in the write's
//! transaction.

use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use serde_json::{Value, json};

use super::{Acting, VersionCheck};
use crate::domain::member::{ProjectGrant, status_for_idp_active};
use crate::domain::policy::{
    MemberChange, ensure_may_change_member, ensure_may_leave, plan_member_change,
};
use crate::domain::role::effective_role;
use crate::domain::{Member, MemberId, MemberStatus, OrgId, Permission, Role, Standing};
use crate::error::{AppError, ScimType};
use crate::in_transaction;
use crate::protocol::user::{UserProfile, UserRecord};
use crate::store::{self, InsertedAll, Store};

fn not_found() -> AppError {
    AppError::NotFound("member")
}

fn standing(member: &Member) -> Standing {
    Standing {
        role: member.role,
        status: member.status,
    }
}

/// What the audit log keeps of a member, the same for every face: enough
/// to see what changed, never a secret.
pub fn snapshot(record: &UserRecord) -> Value {
    let member = &record.member;
    json!({
        "userName": record.profile.user_name,
        "externalId": record.profile.external_id,
        "role": member.role,
        "status": member.status,
        "suspended_until": member.suspended_until,
        "project_rights": member.project_rights,
        "attributes": Value::Object(record.profile.attributes.clone()),
    })
}

/// The member's effective role, read in the transaction that changes them.
async fn effective_role_in(
    store: &Store,
    session: &mut ClientSession,
    member: &Member,
) -> Result<Role, AppError> {
    let group_roles = store::groups::mapped_roles_in(store, session, member.id.as_str()).await?;
    Ok(effective_role(member.role, group_roles))
}

/// Refuses a change of someone who holds the owner role (directly or
/// through a group) unless the actor may change owners.
async fn ensure_may_change(
    store: &Store,
    session: &mut ClientSession,
    acting: &Acting,
    member: &Member,
) -> Result<(), AppError> {
    let target = effective_role_in(store, session, member).await?;
    ensure_may_change_member(acting.role, target).map_err(|err| acting.refused(err))
}

/// Grants may only name projects of the organization (checked in the
/// grant's transaction).
pub async fn ensure_projects_exist(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    grants: &[ProjectGrant],
) -> Result<(), AppError> {
    let ids = grants.iter().map(|grant| &grant.project_id);
    match store::projects::first_missing(store, session, org_id, ids).await? {
        None => Ok(()),
        Some(missing) => {
            let i = grants
                .iter()
                .position(|grant| grant.project_id == missing)
                .unwrap_or_default();
            Err(AppError::invalid(
                format!("project_rights[{i}].project_id"),
                format!("no project {missing} in this organization"),
            ))
        }
    }
}

/// An admin changes a member's role, status, end of suspension or project
/// rights (`rights` replaces them when given).
pub async fn update(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &MemberId,
    change: &MemberChange,
    rights: Option<&[ProjectGrant]>,
) -> Result<UserRecord, AppError> {
    acting.require(Permission::ManageNonOwnerMembers)?;
    in_transaction!(store, |session| -> Result<UserRecord, AppError> {
        let mut record = store::members::get_user(store, Some(&mut *session), &acting.org_id, id)
            .await?
            .ok_or_else(not_found)?;
        let before = record.clone();
        let target = effective_role_in(store, session, &record.member).await?;
        let (after, until) = plan_member_change(
            acting.role,
            standing(&before.member),
            target,
            before.member.suspended_until,
            change,
            now,
        )?;
        if let Some(rights) = rights {
            ensure_projects_exist(store, session, &acting.org_id, rights).await?;
        }
        store::members::ensure_an_owner_remains(
            store,
            session,
            &acting.org_id,
            standing(&before.member),
            Some(after),
        )
        .await??;
        let member = &mut record.member;
        member.role = after.role;
        member.status = after.status;
        member.suspended_until = until;
        if let Some(rights) = rights {
            member.project_rights = rights.to_vec();
        }
        member.updated_at = now;
        if !store::members::update_membership(store, session, member, record.version).await? {
            return Err(not_found());
        }
        record.version += 1;
        let event = acting.event(
            now,
            "member.updated",
            ("member", id.as_str()),
            Some(snapshot(&before)),
            Some(snapshot(&record)),
        );
        store::audit::record(store, session, &event).await?;
        Ok(record)
    })
}

/// Which unique attribute another member holds, as the SCIM error says it.
fn taken(taken: store::members::Taken, profile: &UserProfile) -> AppError {
    let detail = match taken {
        store::members::Taken::UserName => format!(
            "userName `{}` is already taken in this organization (userName is case-insensitive)",
            profile.user_name
        ),
        store::members::Taken::ExternalId => format!(
            "externalId `{}` is already taken in this organization",
            profile.external_id.as_deref().unwrap_or_default()
        ),
    };
    AppError::scim(ScimType::Uniqueness, detail)
}

/// What an identity provider sends for one of its users.
pub struct Provisioned {
    pub profile: UserProfile,
    /// The `active` flag, when sent.
    pub active: Option<bool>,
    /// The argon2id hash of a password it sent; it signs no one in.
    pub password_hash: Option<String>,
}

/// An identity provider creates a member. The member is never linked to an
/// existing account here, even one with the same email: no tenant can make
/// a person a member of its organization, or learn that their account
/// exists. The person joins by accepting the activation invitation while
/// signed in as that account; past the organization's `hourly_cap` of
/// invitation mails, that mail waits for the next window.
pub async fn provision(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    input: &Provisioned,
    hourly_cap: u32,
) -> Result<UserRecord, AppError> {
    acting.require(Permission::ManageNonOwnerMembers)?;
    let profile = &input.profile;
    let login_email = profile.login_email();
    let status = match input.active {
        Some(false) => MemberStatus::Inactive,
        _ => MemberStatus::Pending,
    };
    let org_id = &acting.org_id;
    in_transaction!(store, |session| -> Result<UserRecord, AppError> {
        let member = Member {
            id: MemberId::new(),
            org_id: org_id.clone(),
            account_id: None,
            role: Role::Viewer,
            status,
            suspended_until: None,
            project_rights: Vec::new(),
            created_at: now,
            updated_at: now,
            last_sign_in_at: None,
        };
        let record = UserRecord {
            member,
            profile: profile.clone(),
            version: 1,
        };
        let mut events = vec![acting.event(
            now,
            "member.created",
            ("member", record.member.id.as_str()),
            None,
            Some(snapshot(&record)),
        )];
        // What the activation needs is read first; then the member, its
        // activation invitation and mail job, and the events go in one
        // round trip.
        let mut inserts = vec![store::members::insert_model(
            store,
            &record.member,
            profile,
        )?];
        if let Some(email) = &login_email {
            let (activation, activation_inserts) = super::invitations::scim_activation(
                store,
                session,
                &record.member,
                email,
                now,
                hourly_cap,
            )
            .await?;
            inserts.extend(activation_inserts);
            if let Some((action, (kind, id), after)) = activation.audit(&record.member.id) {
                events.push(acting.event(now, action, (kind, &id), None, Some(after)));
            }
        }
        inserts.extend(store::audit::insert_models(store, &events)?);
        match store::insert_all(store, session, inserts).await? {
            InsertedAll::Yes => {}
            // The unique indexes decide. The refusal ends the transaction,
            // so which attribute is taken is read outside it, only on this
            // path.
            InsertedAll::AlreadyExists { at: 0 } => {
                return Err(
                    match store::members::find_taken(store, None, org_id, profile, None).await? {
                        Some(which) => taken(which, profile),
                        None => AppError::scim(
                            ScimType::Uniqueness,
                            "the userName or externalId was taken concurrently; look the user up and retry",
                        ),
                    },
                );
            }
            // The activation invitation: the address was invited meanwhile.
            InsertedAll::AlreadyExists { .. } => {
                return Err(super::invitations::concurrent_invitation());
            }
        }
        if let Some(hash) = &input.password_hash {
            store::members::set_idp_password_hash(store, session, &record.member.id, hash).await?;
        }
        Ok(record)
    })
}

/// An identity provider replaces (PUT) or patches its user: `change` turns
/// the current record into what the provider sends. Deactivating someone
/// who holds the owner role needs authority over owners; the last-owner
/// rule holds.
pub async fn reprovision(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &MemberId,
    check_version: VersionCheck<'_>,
    change: impl Fn(&UserRecord) -> Result<Provisioned, AppError>,
) -> Result<UserRecord, AppError> {
    acting.require(Permission::ManageNonOwnerMembers)?;
    let org_id = &acting.org_id;
    in_transaction!(store, |session| -> Result<UserRecord, AppError> {
        let current = store::members::get_user(store, Some(&mut *session), org_id, id)
            .await?
            .ok_or_else(not_found)?;
        check_version(current.version)?;
        let Provisioned {
            profile,
            active,
            password_hash,
        } = change(&current)?;
        // The unique indexes keep unchanged attributes unique: only a new
        // userName or externalId needs looking up.
        let renamed = profile.user_name.to_lowercase() != current.profile.user_name.to_lowercase()
            || profile.external_id != current.profile.external_id;
        if renamed
            && let Some(which) =
                store::members::find_taken(store, Some(&mut *session), org_id, &profile, Some(id))
                    .await?
        {
            return Err(taken(which, &profile));
        }
        let mut member = current.member.clone();
        if let Some(active) = active {
            member.status =
                status_for_idp_active(member.status, active, member.account_id.is_some());
        }
        member.status = current.member.status.transition(member.status)?;
        if member.status != current.member.status {
            ensure_may_change(store, session, acting, &current.member).await?;
        }
        store::members::ensure_an_owner_remains(
            store,
            session,
            org_id,
            standing(&current.member),
            Some(standing(&member)),
        )
        .await??;
        member.updated_at = now;
        if !store::members::replace_user(store, session, &member, &profile, current.version).await?
        {
            return Err(not_found());
        }
        if let Some(hash) = &password_hash {
            store::members::set_idp_password_hash(store, session, id, hash).await?;
        }
        if member.status == MemberStatus::Inactive {
            revoke_activation(store, session, acting, id, now).await?;
        }
        let record = UserRecord {
            member,
            profile,
            version: current.version + 1,
        };
        let event = acting.event(
            now,
            "member.updated",
            ("member", id.as_str()),
            Some(snapshot(&current)),
            Some(snapshot(&record)),
        );
        store::audit::record(store, session, &event).await?;
        Ok(record)
    })
}

/// Removes a member (an admin through the API, an identity provider
/// through SCIM). Only an owner, or a SCIM token an owner gave authority
/// over owners, removes someone who holds the owner role.
pub async fn remove(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &MemberId,
    check_version: VersionCheck<'_>,
) -> Result<(), AppError> {
    acting.require(Permission::RemoveNonOwnerMembers)?;
    in_transaction!(store, |session| -> Result<(), AppError> {
        let record = store::members::get_user(store, Some(&mut *session), &acting.org_id, id)
            .await?
            .ok_or_else(not_found)?;
        check_version(record.version)?;
        ensure_may_change(store, session, acting, &record.member).await?;
        delete_membership(store, session, acting, &record, now, "member.removed").await
    })
}

/// A member leaves on their own (owners and admins only, by their
/// effective role; never the last active owner).
pub async fn leave(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &MemberId,
) -> Result<(), AppError> {
    ensure_may_leave(acting.role)?;
    in_transaction!(store, |session| -> Result<(), AppError> {
        let record = store::members::get_user(store, Some(&mut *session), &acting.org_id, id)
            .await?
            .ok_or_else(not_found)?;
        delete_membership(store, session, acting, &record, now, "member.left").await
    })
}

/// The memberships of an account being deleted (`accounts::delete`),
/// inside its transaction: each organization gets its `member.left`, and
/// the names of the organizations the account is the last owner of come
/// back instead of any change.
pub(crate) async fn leave_everywhere(
    store: &Store,
    session: &mut ClientSession,
    caller: &super::accounts::AccountActing,
    now: DateTime<Utc>,
) -> Result<Result<usize, Vec<OrgId>>, AppError> {
    let records = store::members::records_for_account(store, session, &caller.account_id).await?;
    let mut last_owner_of = Vec::new();
    for record in &records {
        let kept = store::members::ensure_an_owner_remains(
            store,
            session,
            &record.member.org_id,
            standing(&record.member),
            None,
        )
        .await?;
        if kept.is_err() {
            last_owner_of.push(record.member.org_id.clone());
        }
    }
    if !last_owner_of.is_empty() {
        return Ok(Err(last_owner_of));
    }
    for record in &records {
        let acting = Acting {
            org_id: record.member.org_id.clone(),
            actor: caller.actor.clone(),
            actor_label: None,
            role: record.member.role,
            origin: caller.origin.clone(),
        };
        delete_membership(store, session, &acting, record, now, "member.left").await?;
    }
    Ok(Ok(records.len()))
}

/// Deletes a membership under the last-owner rule, with everything that
/// belongs to it: group memberships, the activation invitation waiting for
/// it, and the personal tokens that acted for it.
async fn delete_membership(
    store: &Store,
    session: &mut ClientSession,
    acting: &Acting,
    record: &UserRecord,
    now: DateTime<Utc>,
    action: &'static str,
) -> Result<(), AppError> {
    let member = &record.member;
    store::members::ensure_an_owner_remains(store, session, &acting.org_id, standing(member), None)
        .await??;
    if !store::members::delete(store, session, &acting.org_id, &member.id).await? {
        return Err(not_found());
    }
    store::groups::forget_member(store, session, member.id.as_str()).await?;
    revoke_activation(store, session, acting, &member.id, now).await?;
    if let Some(account_id) = &member.account_id {
        store::tokens::delete_personal_for_member(store, session, &acting.org_id, account_id)
            .await?;
    }
    let event = acting.event(
        now,
        action,
        ("member", member.id.as_str()),
        Some(snapshot(record)),
        None,
    );
    store::audit::record(store, session, &event).await?;
    Ok(())
}

/// A member who was deactivated or removed will not be activated: the
/// activation invitation waiting for them is revoked, with its event.
async fn revoke_activation(
    store: &Store,
    session: &mut ClientSession,
    acting: &Acting,
    member_id: &MemberId,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if let Some(invitation) =
        super::invitations::revoke_scim_activation(store, session, member_id, now).await?
    {
        let revoked = acting.event(
            now,
            "invitation.revoked",
            ("invitation", invitation.id.as_str()),
            Some(json!({ "status": "pending" })),
            Some(json!({ "status": "revoked", "member_id": member_id.as_str() })),
        );
        store::audit::record(store, session, &revoked).await?;
    }
    Ok(())
}
