//! Who a bearer secret belongs to, kept in memory so that a request needs
//! no database read to know its caller, and forgotten at once when that
//! changes.
//!
//! The rules (the performance issue's, which every cached read must keep):
//!
//! - **This process forgets synchronously.** Every store function that
//!   deletes a token or session, or changes a membership, calls
//!   [`TokenCache::forget`] before its transaction commits. Forgetting
//!   also leaves a *tombstone* on the key for [`TOMBSTONE`], so a request
//!   that read the old state before the commit cannot put it back: the
//!   next one reads the database again, after the commit.
//! - **Other processes** learn it from a change stream on the token,
//!   session and member collections ([`watch`]), within a second.
//! - **Without the change stream**, every entry expires after
//!   `auth.cache_ttl_ms` (1 s by default; 0 turns the cache off), and a
//!   watcher that loses its stream forgets everything.
//! - Memory is bounded: at most `auth.cache_size` entries, least recently
//!   used first out.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use lru::LruCache;

use super::Store;
use crate::auth::token::TokenRecord;
use crate::domain::{MemberId, MemberStatus};

/// How long a forgotten key stays unfillable: longer than any transaction
/// that forgot it runs before its commit (their retries give up after
/// 10 s).
const TOMBSTONE: Duration = Duration::from_secs(15);

/// A token as its caller's authentication needs it: the record, and for a
/// personal token the membership whose standing it depends on.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub record: TokenRecord,
    pub member: Option<CachedMember>,
}

/// What a personal token's authentication weighs of its membership.
#[derive(Debug, Clone)]
pub struct CachedMember {
    pub id: MemberId,
    pub status: MemberStatus,
    pub suspended_until: Option<DateTime<Utc>>,
}

/// What forgetting is keyed by: everything a cached token depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    Token(String),
    Member(String),
    Account(String),
    Org(String),
}

impl CachedToken {
    fn keys(&self) -> Vec<CacheKey> {
        let record = &self.record;
        let mut keys = vec![CacheKey::Token(record.id.to_string())];
        if let Some(account) = &record.account_id {
            keys.push(CacheKey::Account(account.to_string()));
        }
        if let Some(org) = &record.org_id {
            keys.push(CacheKey::Org(org.to_string()));
        }
        if let Some(member) = &self.member {
            keys.push(CacheKey::Member(member.id.to_string()));
        }
        keys
    }
}

struct Entry {
    token: CachedToken,
    keys: Vec<CacheKey>,
    fetched: Instant,
}

struct State {
    ttl: Duration,
    entries: LruCache<String, Entry>,
    tombstones: HashMap<CacheKey, Instant>,
}

pub struct TokenCache {
    state: Mutex<State>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache")
    }
}

impl Default for TokenCache {
    /// Off until [`TokenCache::configure`] turns it on.
    fn default() -> Self {
        TokenCache {
            state: Mutex::new(State {
                ttl: Duration::ZERO,
                entries: LruCache::new(NonZeroUsize::MIN),
                tombstones: HashMap::new(),
            }),
        }
    }
}

impl TokenCache {
    /// Sets how long entries live (zero turns the cache off) and how many
    /// it holds; forgets everything.
    pub fn configure(&self, ttl: Duration, capacity: usize) {
        let mut state = self.lock();
        state.ttl = ttl;
        state.entries = LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN));
        state.tombstones.clear();
    }

    /// The token of `hash`, if cached and fresh.
    pub fn get(&self, hash: &str) -> Option<CachedToken> {
        let mut state = self.lock();
        let ttl = state.ttl;
        let fresh = match state.entries.get(hash) {
            None => return None,
            Some(entry) => entry.fetched.elapsed() < ttl,
        };
        if !fresh {
            state.entries.pop(hash);
            return None;
        }
        state.entries.get(hash).map(|entry| entry.token.clone())
    }

    /// Keeps `token`, read from the database at `read_at`, unless the
    /// cache is off or something it depends on was forgotten since a
    /// moment before that read began.
    pub fn put(&self, hash: &str, token: CachedToken, read_at: Instant) {
        let mut state = self.lock();
        if state.ttl.is_zero() {
            return;
        }
        let keys = token.keys();
        let now = Instant::now();
        state
            .tombstones
            .retain(|_, at| now.duration_since(*at) < TOMBSTONE);
        // A key forgotten after the read began may have been read in its
        // old state.
        let stale = keys.iter().any(|key| {
            state
                .tombstones
                .get(key)
                .is_some_and(|forgotten| *forgotten + TOMBSTONE > read_at)
        });
        if stale {
            return;
        }
        state.entries.put(
            hash.to_owned(),
            Entry {
                token,
                keys,
                fetched: read_at,
            },
        );
    }

    /// Updates when a cached token was last used, as the database now has
    /// it.
    pub fn touched(&self, hash: &str, at: DateTime<Utc>) {
        if let Some(entry) = self.lock().entries.peek_mut(hash) {
            entry.token.record.last_used_at = Some(at);
        }
    }

    /// Drops every entry that depends on `key`, and keeps it from being
    /// cached again for a while (see the module's rules).
    pub fn forget(&self, key: CacheKey) {
        let mut state = self.lock();
        if state.ttl.is_zero() {
            return;
        }
        let doomed: Vec<String> = state
            .entries
            .iter()
            .filter(|(_, entry)| entry.keys.contains(&key))
            .map(|(hash, _)| hash.clone())
            .collect();
        for hash in doomed {
            state.entries.pop(&hash);
        }
        state.tombstones.insert(key, Instant::now());
    }

    /// Drops every entry (a watcher lost its stream).
    pub fn forget_all(&self) {
        self.lock().entries.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a cache that is still
        // consistent (each method's changes are whole), so carry on.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The collections whose changes a cached token depends on, and the key
/// a changed document's `_id` forgets.
fn key_of(collection: &str, id: String) -> Option<CacheKey> {
    match collection {
        "api_tokens" | "scim_tokens" | "sessions" => Some(CacheKey::Token(id)),
        "members" => Some(CacheKey::Member(id)),
        _ => None,
    }
}

/// Follows the database's changes to tokens, sessions and members,
/// forgetting what they touch, until `stop` resolves. (Deleting an account
/// or an organization deletes its tokens and memberships, which is what
/// the stream sees.)
/// Other processes' revocations reach this one this way. When the stream
/// fails, everything is forgotten (changes may have been missed) and it
/// is opened again after a second; meanwhile entries expire on their own.
pub async fn watch(store: Store, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            ended = follow(&store) => {
                store.token_cache().forget_all();
                if let Err(err) = ended {
                    tracing::warn!(error = %err, "the token cache's change stream failed; reopening it");
                }
            }
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn follow(store: &Store) -> Result<(), mongodb::error::Error> {
    let pipeline = [
        doc! { "$match": {
            "ns.coll": { "$in": ["api_tokens", "scim_tokens", "sessions", "members"] },
            "operationType": { "$in": ["update", "replace", "delete"] },
            // Recording a token's use (at most once a minute) changes nothing
            // about who it is.
            "updateDescription.updatedFields.last_used_at": { "$exists": false },
        } },
        doc! {
            // Which document changed is all it needs: a member's update
            // would otherwise bring its whole profile to decode.
            "$project": { "_id": 1, "operationType": 1, "ns": 1, "documentKey": 1 },
        },
    ];
    let mut stream = store.database().watch().pipeline(pipeline).await?;
    // Whatever changed before the stream opened is not in it.
    store.token_cache().forget_all();
    tracing::info!("the token cache follows the database's changes");
    while let Some(event) = muster_worker::next_change(&mut stream).await? {
        let collection = event.ns.and_then(|ns| ns.coll);
        let id = event
            .document_key
            .as_ref()
            .and_then(|key: &Document| key.get("_id"))
            .and_then(Bson::as_str)
            .map(str::to_owned);
        match (collection, id) {
            (Some(collection), Some(id)) => {
                if let Some(key) = key_of(&collection, id) {
                    store.token_cache().forget(key);
                }
            }
            // A change it cannot place: forget everything rather than
            // guess.
            _ => store.token_cache().forget_all(),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::{IssuedToken, TokenKind};
    use crate::domain::{AccountId, OrgId};

    fn token() -> (String, CachedToken) {
        let issued = IssuedToken::generate(TokenKind::Personal);
        let record = TokenRecord::new(
            &issued,
            None,
            Some(AccountId::new()),
            Some(OrgId::new()),
            Utc::now(),
            None,
        );
        let member = CachedMember {
            id: MemberId::new(),
            status: MemberStatus::Active,
            suspended_until: None,
        };
        (
            issued.hash.as_str().to_owned(),
            CachedToken {
                record,
                member: Some(member),
            },
        )
    }

    fn cache(ttl: Duration) -> TokenCache {
        let cache = TokenCache::default();
        cache.configure(ttl, 2);
        cache
    }

    #[test]
    fn entries_live_until_their_ttl_and_an_off_cache_keeps_nothing() {
        let (hash, token) = token();
        let off = cache(Duration::ZERO);
        off.put(&hash, token.clone(), Instant::now());
        assert!(off.get(&hash).is_none());

        let on = cache(Duration::from_secs(60));
        on.put(&hash, token.clone(), Instant::now());
        assert!(on.get(&hash).is_some());
        let long_ago = Instant::now() - Duration::from_secs(61);
        on.put(&hash, token, long_ago);
        assert!(on.get(&hash).is_none(), "read a minute ago: expired");
    }

    #[test]
    fn forgetting_any_key_an_entry_depends_on_drops_it() {
        let on = cache(Duration::from_secs(60));
        let (hash, token) = token();
        let member = token.member.clone().map(|m| m.id.to_string());
        let keys = [
            CacheKey::Token(token.record.id.to_string()),
            CacheKey::Member(member.unwrap_or_default()),
            CacheKey::Account(
                token
                    .record
                    .account_id
                    .clone()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            ),
            CacheKey::Org(
                token
                    .record
                    .org_id
                    .clone()
                    .map(|o| o.to_string())
                    .unwrap_or_default(),
            ),
        ];
        for key in keys {
            on.forget_all();
            // Read before the forgetting: refused, as a read racing a
            // commit may hold the old state.
            let read_at = Instant::now();
            on.forget(key.clone());
            on.put(&hash, token.clone(), read_at);
            assert!(
                on.get(&hash).is_none(),
                "{key:?}: not refilled by an older read"
            );
            // Cached, then forgotten.
            on.lock().tombstones.clear();
            on.put(&hash, token.clone(), Instant::now());
            assert!(on.get(&hash).is_some());
            on.forget(key.clone());
            assert!(on.get(&hash).is_none(), "{key:?}: forgotten");
        }
        let (other, unrelated) = self::token();
        on.lock().tombstones.clear();
        on.put(&other, unrelated, Instant::now());
        on.forget(CacheKey::Token("someone else's".into()));
        assert!(on.get(&other).is_some());
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let on = cache(Duration::from_secs(60));
        let (a, token_a) = token();
        let (b, token_b) = token();
        let (c, token_c) = token();
        on.put(&a, token_a, Instant::now());
        on.put(&b, token_b, Instant::now());
        assert!(on.get(&a).is_some());
        on.put(&c, token_c, Instant::now());
        assert_eq!(on.len(), 2);
        assert!(on.get(&b).is_none(), "b was least recently used");
        assert!(on.get(&a).is_some() && on.get(&c).is_some());
    }
}
