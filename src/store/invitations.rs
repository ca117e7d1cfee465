//! Invitations. At most one pending invitation per address and
//! organization (a partial unique index); the link's secret is stored only
//! as its hash.

use std::collections::{BTreeMap, HashMap, HashSet};

use bson::{DateTime as BsonDateTime, Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::error::Error as MongoError;
use mongodb::options::{IndexOptions, InsertOneModel};
use mongodb::{ClientSession, Collection, IndexModel};
use serde::{Deserialize, Serialize};

use super::docs::bson_time;
use super::{Inserted, Store, index, inserted, with_session};
use crate::auth::token::TokenHash;
use crate::domain::invitation::{Delivery, Invitation, InvitationKind, InvitationStatus};
use crate::domain::member::ProjectGrant;
use crate::domain::{AccountId, Email, InvitationId, MemberId, OrgId, Role};

const COLLECTION: &str = "invitations";

fn collection(store: &Store) -> Collection<InvitationDoc> {
    store.database().collection(COLLECTION)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeliveryDoc {
    sends: u32,
    #[serde(default)]
    sent_send: u32,
    attempts: u32,
    sent_at: Option<BsonDateTime>,
    last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InvitationDoc {
    #[serde(rename = "_id")]
    id: String,
    org_id: String,
    email: String,
    role: Role,
    project_rights: Vec<ProjectGrant>,
    message: Option<String>,
    kind: InvitationKind,
    invited_by: Option<String>,
    member_id: Option<String>,
    status: InvitationStatus,
    token_hash: String,
    created_at: BsonDateTime,
    expires_at: BsonDateTime,
    updated_at: BsonDateTime,
    accepted_at: Option<BsonDateTime>,
    /// When the first mail is due: at creation, or later for a SCIM
    /// activation over the hourly cap. The cap's window counts these.
    #[serde(default)]
    mail_at: Option<BsonDateTime>,
    delivery: DeliveryDoc,
}

impl InvitationDoc {
    fn new(invitation: &Invitation, token_hash: &TokenHash) -> InvitationDoc {
        let d = &invitation.delivery;
        InvitationDoc {
            id: invitation.id.to_string(),
            org_id: invitation.org_id.to_string(),
            email: invitation.email.to_string(),
            role: invitation.role,
            project_rights: invitation.project_rights.clone(),
            message: invitation.message.clone(),
            kind: invitation.kind,
            invited_by: invitation.invited_by.as_ref().map(ToString::to_string),
            member_id: invitation.member_id.as_ref().map(ToString::to_string),
            status: invitation.status,
            token_hash: token_hash.as_str().to_owned(),
            created_at: bson_time(invitation.created_at),
            expires_at: bson_time(invitation.expires_at),
            updated_at: bson_time(invitation.updated_at),
            accepted_at: invitation.accepted_at.map(bson_time),
            mail_at: Some(bson_time(invitation.created_at)),
            delivery: DeliveryDoc {
                sends: d.sends,
                sent_send: d.sent_send,
                attempts: d.attempts,
                sent_at: d.sent_at.map(bson_time),
                last_error: d.last_error.clone(),
            },
        }
    }

    fn into_invitation(self) -> Invitation {
        Invitation {
            id: InvitationId::from_stored(self.id),
            org_id: OrgId::from_stored(self.org_id),
            email: Email::from_stored(self.email),
            role: self.role,
            project_rights: self.project_rights,
            message: self.message,
            kind: self.kind,
            invited_by: self.invited_by.map(AccountId::from_stored),
            member_id: self.member_id.map(MemberId::from_stored),
            status: self.status,
            created_at: self.created_at.to_chrono(),
            expires_at: self.expires_at.to_chrono(),
            updated_at: self.updated_at.to_chrono(),
            accepted_at: self.accepted_at.map(BsonDateTime::to_chrono),
            delivery: Delivery {
                sends: self.delivery.sends,
                sent_send: self.delivery.sent_send,
                attempts: self.delivery.attempts,
                sent_at: self.delivery.sent_at.map(BsonDateTime::to_chrono),
                last_error: self.delivery.last_error,
            },
        }
    }
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    let invitations = collection(store);
    for model in [
        index(doc! { "token_hash": 1 }, true),
        IndexModel::builder()
            .keys(doc! { "org_id": 1, "email": 1 })
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .name("one_pending_per_address".to_owned())
                    .partial_filter_expression(doc! { "status": "pending" })
                    .build(),
            )
            .build(),
        // Lookups beside the partial unique index (see members.rs).
        index(doc! { "org_id": 1, "email": 1, "status": 1 }, false),
        index(doc! { "org_id": 1, "status": 1, "_id": 1 }, false),
        index(doc! { "org_id": 1, "created_at": 1 }, false),
        index(doc! { "org_id": 1, "mail_at": -1 }, false),
        index(doc! { "status": 1, "expires_at": 1 }, false),
        index(doc! { "member_id": 1 }, false),
    ] {
        invitations.create_index(model).await?;
    }
    Ok(())
}

/// The insert of a new invitation whose first mail is due at `mail_at`,
/// to make with the other inserts of its transaction
/// (`store::insert_all`). The pending-address index refuses it when the
/// address has a pending invitation already.
pub fn insert_mailed_at_model(
    store: &Store,
    invitation: &Invitation,
    token_hash: &TokenHash,
    mail_at: DateTime<Utc>,
) -> Result<InsertOneModel, MongoError> {
    let mut doc = InvitationDoc::new(invitation, token_hash);
    doc.mail_at = Some(bson_time(mail_at));
    collection(store).insert_one_model(doc)
}

/// What an identity provider's new user needs for its activation mail,
/// read in one round trip with the organization.
pub struct ActivationContext {
    pub org: crate::domain::Organization,
    /// An invitation to the address is pending already.
    pub email_pending: bool,
    /// The `nth` latest mail time after `since`: the hourly cap's clock.
    pub cap_th_latest: Option<DateTime<Utc>>,
}

/// The organization with what `ActivationContext` says about `email`: one
/// aggregation, each question a sub-pipeline on the invitations' indexes
/// (the pending address as in `pending_emails`; the cap's clock is the
/// `nth` latest first mail due after `since`, 1 being the latest). `None`
/// when the organization is gone.
pub async fn activation_context(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    email: &Email,
    since: DateTime<Utc>,
    nth: u32,
) -> Result<Option<ActivationContext>, MongoError> {
    let pipeline = vec![
        doc! { "$match": { "_id": org_id.as_str() } },
        doc! { "$lookup": {
            "from": COLLECTION,
            "pipeline": [
                { "$match": { "org_id": org_id.as_str(), "email": email.as_str(), "status": "pending" } },
                { "$limit": 1 },
                { "$project": { "_id": 1 } },
            ],
            "as": "_pending",
        } },
        doc! { "$lookup": {
            "from": COLLECTION,
            "pipeline": [
                { "$match": { "org_id": org_id.as_str(), "mail_at": { "$gt": bson_time(since) } } },
                { "$sort": { "mail_at": -1 } },
                { "$skip": i64::from(nth.saturating_sub(1)) },
                { "$limit": 1 },
                { "$project": { "_id": 0, "mail_at": 1 } },
            ],
            "as": "_nth",
        } },
    ];
    let mut cursor = store
        .database()
        .collection::<super::docs::OrgDoc>(super::orgs::COLLECTION)
        .aggregate(pipeline)
        .with_type::<bson::RawDocumentBuf>()
        .session(&mut *session)
        .await?;
    let Some(raw) = cursor.next(&mut *session).await.transpose()? else {
        return Ok(None);
    };
    let org =
        bson::from_slice::<super::docs::OrgDoc>(raw.as_bytes()).map_err(MongoError::custom)?;
    let email_pending = raw
        .get_array("_pending")
        .is_ok_and(|found| found.into_iter().next().is_some());
    let cap_th_latest = raw
        .get_array("_nth")
        .ok()
        .and_then(|found| {
            found
                .into_iter()
                .next()?
                .ok()?
                .as_document()?
                .get_datetime("mail_at")
                .ok()
        })
        .map(|at| at.to_chrono());
    Ok(Some(ActivationContext {
        org: org.into(),
        email_pending,
        cap_th_latest,
    }))
}

/// Inserts new invitations, each with its link's hash, in one round trip;
/// `AlreadyExists` (and nothing kept, the transaction being aborted) when
/// one of them is pending already.
pub async fn insert_many<'a>(
    store: &Store,
    session: &mut ClientSession,
    invitations: impl IntoIterator<Item = (&'a Invitation, TokenHash)>,
) -> Result<Inserted, MongoError> {
    let docs: Vec<InvitationDoc> = invitations
        .into_iter()
        .map(|(invitation, hash)| InvitationDoc::new(invitation, &hash))
        .collect();
    if docs.is_empty() {
        return Ok(Inserted::Yes);
    }
    inserted(collection(store).insert_many(docs).session(session).await)
}

/// Which of `emails` have a pending invitation in the organization.
pub async fn pending_emails(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    emails: &[&str],
) -> Result<HashSet<String>, MongoError> {
    let mut found = HashSet::new();
    if emails.is_empty() {
        return Ok(found);
    }
    let mut cursor = collection(store)
        .find(doc! { "org_id": org_id.as_str(), "email": { "$in": emails }, "status": "pending" })
        .session(&mut *session)
        .await?;
    while let Some(doc) = cursor.next(&mut *session).await.transpose()? {
        found.insert(doc.email);
    }
    Ok(found)
}

/// Invitations of the organization created since `since`, or whose first
/// mail is due after it (SCIM activations deferred by the cap), for the
/// hourly cap.
pub async fn count_created_since(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    since: DateTime<Utc>,
) -> Result<u64, MongoError> {
    let since = bson_time(since);
    collection(store)
        .count_documents(doc! {
            "org_id": org_id.as_str(),
            "$or": [
                { "created_at": { "$gte": since } },
                { "mail_at": { "$gte": since } },
            ],
        })
        .session(session)
        .await
}

pub async fn get(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    id: &InvitationId,
) -> Result<Option<Invitation>, MongoError> {
    let found = with_session!(
        collection(store).find_one(doc! { "_id": id.as_str(), "org_id": org_id.as_str() }),
        session
    )?;
    Ok(found.map(InvitationDoc::into_invitation))
}

/// An invitation by id alone, whatever its organization (for tools).
pub async fn get_any(store: &Store, id: &InvitationId) -> Result<Option<Invitation>, MongoError> {
    let found = collection(store)
        .find_one(doc! { "_id": id.as_str() })
        .await?;
    Ok(found.map(InvitationDoc::into_invitation))
}

/// One send of an invitation to take for mailing, with the hash of the
/// link its mail will carry.
#[derive(Clone)]
pub struct SendToTake {
    pub id: InvitationId,
    pub send: u32,
    pub token_hash: TokenHash,
}

/// Takes send number `send` of an invitation for mailing: gives it the
/// link whose secret only the mail will carry, and answers the invitation.
/// `None` when that send is not to be mailed: the invitation is gone, no
/// longer pending or past its expiry, a later send superseded this one, or
/// this one was mailed already.
pub async fn take_send(
    store: &Store,
    id: &InvitationId,
    send: u32,
    now: DateTime<Utc>,
    token_hash: &TokenHash,
) -> Result<Option<Invitation>, MongoError> {
    let take = SendToTake {
        id: id.clone(),
        send,
        token_hash: token_hash.clone(),
    };
    Ok(take_sends(store, now, std::slice::from_ref(&take))
        .await?
        .pop()
        .flatten())
}

/// [`take_send`] for many sends, in two round trips whatever their number:
/// one `update` command with a statement per send, then one read by id,
/// in which a send was taken if its invitation carries its link's hash. Of
/// a send named twice, one is taken.
pub async fn take_sends(
    store: &Store,
    now: DateTime<Utc>,
    takes: &[SendToTake],
) -> Result<Vec<Option<Invitation>>, MongoError> {
    if takes.is_empty() {
        return Ok(Vec::new());
    }
    // Updates and a read by id rather than findAndModify, which the
    // development database answers by reading the whole collection
    // (docs/benchmarks.md); by id, both are cheap on any server.
    let now = bson_time(now);
    let updates: Vec<Document> = takes
        .iter()
        .map(|take| {
            doc! {
                "q": {
                    "_id": take.id.as_str(),
                    "status": "pending",
                    "expires_at": { "$gt": now },
                    "delivery.sends": take.send,
                    "delivery.sent_send": { "$lt": take.send },
                },
                "u": { "$set": { "token_hash": take.token_hash.as_str() } },
            }
        })
        .collect();
    // A command sent as is carries no write concern of the client's: the
    // store's (majority) is named.
    let reply = store
        .database()
        .run_command(doc! {
            "update": COLLECTION,
            "updates": updates,
            "ordered": false,
            "writeConcern": { "w": "majority" },
        })
        .await?;
    super::write_command_outcome(&reply)?;
    let ids: Vec<&str> = takes.iter().map(|take| take.id.as_str()).collect();
    let found: HashMap<String, InvitationDoc> = collection(store)
        .find(doc! { "_id": { "$in": ids } })
        .await?
        .map_ok(|found| (found.id.clone(), found))
        .try_collect()
        .await?;
    Ok(takes
        .iter()
        .map(|take| {
            found
                .get(take.id.as_str())
                .filter(|found| found.token_hash == take.token_hash.as_str())
                .cloned()
                .map(InvitationDoc::into_invitation)
        })
        .collect())
}

/// The invitation a link's secret belongs to.
pub async fn find_by_token(
    store: &Store,
    session: Option<&mut ClientSession>,
    token_hash: &TokenHash,
) -> Result<Option<Invitation>, MongoError> {
    let found = with_session!(
        collection(store).find_one(doc! { "token_hash": token_hash.as_str() }),
        session
    )?;
    Ok(found.map(InvitationDoc::into_invitation))
}

/// The pending invitation that activates a member created over SCIM.
pub async fn pending_for_member(
    store: &Store,
    session: &mut ClientSession,
    member_id: &MemberId,
) -> Result<Option<Invitation>, MongoError> {
    let found = collection(store)
        .find_one(doc! { "member_id": member_id.as_str(), "status": "pending" })
        .session(session)
        .await?;
    Ok(found.map(InvitationDoc::into_invitation))
}

/// One page of an organization's invitations with `status`, in id order.
pub async fn list_page(
    store: &Store,
    org_id: &OrgId,
    status: InvitationStatus,
    after: Option<&InvitationId>,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<(Vec<Invitation>, bool), MongoError> {
    let mut filter = doc! { "org_id": org_id.as_str() };
    // An invitation past its expiry counts as expired before the sweep
    // marks it.
    match status {
        InvitationStatus::Pending => {
            filter.insert("status", "pending");
            filter.insert("expires_at", doc! { "$gt": bson_time(now) });
        }
        InvitationStatus::Expired => {
            filter.insert(
                "$or",
                vec![
                    doc! { "status": "expired" },
                    doc! { "status": "pending", "expires_at": { "$lte": bson_time(now) } },
                ],
            );
        }
        other => {
            filter.insert("status", other.as_str());
        }
    }
    let (docs, more) = super::cursor_page(
        &collection(store),
        filter,
        after.map(InvitationId::as_str),
        limit,
    )
    .await?;
    Ok((
        docs.into_iter()
            .map(InvitationDoc::into_invitation)
            .collect(),
        more,
    ))
}

/// A new link for a pending invitation: the old secret stops working, the
/// expiry moves, one more send is asked for. False when it is no longer
/// pending.
pub async fn rotate(
    store: &Store,
    session: &mut ClientSession,
    invitation: &Invitation,
    token_hash: &TokenHash,
) -> Result<bool, MongoError> {
    let result = collection(store)
        .update_one(
            doc! { "_id": invitation.id.as_str(), "status": "pending" },
            doc! { "$set": {
                "token_hash": token_hash.as_str(),
                "expires_at": bson_time(invitation.expires_at),
                "updated_at": bson_time(invitation.updated_at),
                "delivery.sends": invitation.delivery.sends,
            } },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// Moves a pending invitation to `to`; false when it was not pending.
pub async fn finish(
    store: &Store,
    session: &mut ClientSession,
    id: &InvitationId,
    to: InvitationStatus,
    now: DateTime<Utc>,
) -> Result<bool, MongoError> {
    let mut set = doc! { "status": to.as_str(), "updated_at": bson_time(now) };
    if to == InvitationStatus::Accepted {
        set.insert("accepted_at", bson_time(now));
    }
    let result = collection(store)
        .update_one(
            doc! { "_id": id.as_str(), "status": "pending" },
            doc! { "$set": set },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// Revokes every pending invitation of an organization (it is being
/// deleted); answers their ids, so their mail jobs can go too.
pub async fn revoke_pending_for_org(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    now: DateTime<Utc>,
) -> Result<Vec<InvitationId>, MongoError> {
    let filter = doc! { "org_id": org_id.as_str(), "status": "pending" };
    let mut ids = Vec::new();
    let mut cursor = collection(store)
        .clone_with_type::<Document>()
        .find(filter.clone())
        .projection(doc! { "_id": 1 })
        .session(&mut *session)
        .await?;
    while let Some(found) = cursor.next(&mut *session).await.transpose()? {
        if let Ok(id) = found.get_str("_id") {
            ids.push(InvitationId::from_stored(id.to_owned()));
        }
    }
    if !ids.is_empty() {
        collection(store)
            .update_many(
                filter,
                doc! { "$set": { "status": "revoked", "updated_at": bson_time(now) } },
            )
            .session(&mut *session)
            .await?;
    }
    Ok(ids)
}

/// Pending invitations whose expiry has passed, oldest first, at most
/// `limit`: the expiry sweep marks them one transaction each.
pub async fn due_for_expiry(
    store: &Store,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Invitation>, MongoError> {
    let docs: Vec<InvitationDoc> = collection(store)
        .find(doc! { "status": "pending", "expires_at": { "$lte": bson_time(now) } })
        .sort(doc! { "expires_at": 1 })
        .limit(limit)
        .await?
        .try_collect()
        .await?;
    Ok(docs
        .into_iter()
        .map(InvitationDoc::into_invitation)
        .collect())
}

/// Records that these sends were mailed at `sent_at`; per send, whether it
/// was recorded (`false`: a resend superseded it, and nothing is written).
/// One update per distinct send number (nearly always one for a batch),
/// and a read only when some were superseded. A later send's record is
/// not overwritten by an earlier one's.
pub async fn record_mailed(
    store: &Store,
    session: &mut ClientSession,
    sent_at: DateTime<Utc>,
    sends: &[(InvitationId, u32)],
) -> Result<Vec<bool>, MongoError> {
    let mut by_send: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for (id, send) in sends {
        by_send.entry(*send).or_default().push(id.as_str());
    }
    let mut recorded: HashSet<(String, u32)> = HashSet::new();
    for (send, mut ids) in by_send {
        ids.sort_unstable();
        ids.dedup();
        let filter = doc! { "_id": { "$in": ids.clone() }, "delivery.sends": send };
        let matched = collection(store)
            .update_many(
                filter.clone(),
                doc! {
                    "$set": {
                        "delivery.sent_at": bson_time(sent_at),
                        "delivery.sent_send": send,
                        "delivery.last_error": bson::Bson::Null,
                    },
                    "$inc": { "delivery.attempts": 1 },
                },
            )
            .session(&mut *session)
            .await?
            .matched_count;
        if matched == ids.len() as u64 {
            recorded.extend(ids.into_iter().map(|id| (id.to_owned(), send)));
            continue;
        }
        // Those still at this send are the ones just updated.
        let mut cursor = collection(store)
            .clone_with_type::<Document>()
            .find(filter)
            .projection(doc! { "_id": 1 })
            .session(&mut *session)
            .await?;
        while let Some(found) = cursor.next(&mut *session).await.transpose()? {
            if let Ok(id) = found.get_str("_id") {
                recorded.insert((id.to_owned(), send));
            }
        }
    }
    Ok(sends
        .iter()
        .map(|(id, send)| recorded.contains(&(id.as_str().to_owned(), *send)))
        .collect())
}

/// Records a failed attempt to send send number `send`; `false` when a
/// resend superseded it, and nothing is written.
pub async fn record_failed(
    store: &Store,
    session: &mut ClientSession,
    id: &InvitationId,
    send: u32,
    error: &str,
) -> Result<bool, MongoError> {
    let result = collection(store)
        .update_one(
            doc! { "_id": id.as_str(), "delivery.sends": send },
            doc! {
                "$set": { "delivery.last_error": error },
                "$inc": { "delivery.attempts": 1 },
            },
        )
        .session(session)
        .await?;
    Ok(result.matched_count > 0)
}
