//! Audit events: who did what to what, with the state before and after.

use chrono::{DateTime, Utc};

use super::ids::{AccountId, OrgId, TokenId};

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in account (session).
    Account(AccountId),
    /// An account acting through one of its personal API tokens.
    ApiToken {
        account_id: AccountId,
        token_id: TokenId,
    },
    /// An identity provider through a SCIM token.
    ScimToken(TokenId),
    /// Muster itself: the CLI, the worker, expiry sweeps.
    System,
}

/// What was acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub id: String,
}

/// Where the request came from, for events written by requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// The organization the change happened in; `None` for a change to an
    /// account itself (its sign-ins, its name or password), which belongs
    /// to no organization.
    pub org_id: Option<OrgId>,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// How the actor was known when it acted (a SCIM token's name, an
    /// account's email), where the writer knew it: the log stays readable
    /// after the token is deleted or the email changes.
    pub actor_label: Option<String>,
    /// `subject.verb`, e.g. `member.role_changed`.
    pub action: &'static str,
    pub target: Target,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub origin: RequestOrigin,
}

impl AuditEvent {
    /// An event about an account itself, outside any organization.
    pub fn of_account(
        actor: Actor,
        account_id: &AccountId,
        at: DateTime<Utc>,
        action: &'static str,
        after: Option<serde_json::Value>,
        origin: RequestOrigin,
    ) -> AuditEvent {
        AuditEvent {
            org_id: None,
            at,
            actor,
            actor_label: None,
            action,
            target: Target {
                kind: "account",
                id: account_id.to_string(),
            },
            before: None,
            after,
            origin,
        }
    }

    /// This event, with the name its actor went by.
    pub fn labelled(mut self, label: impl Into<String>) -> AuditEvent {
        self.actor_label = Some(label.into());
        self
    }
}

/// Every action an event may record: the published catalogue (the docs'
/// table and the `AuditAction` enum of the OpenAPI spec are this list).
/// A unit test fails when `src/` writes an action missing here.
pub const ACTIONS: &[&str] = &[
    "organization.bootstrapped",
    "organization.created",
    "organization.updated",
    "organization.deleted",
    "member.created",
    "member.updated",
    "member.removed",
    "member.left",
    "member.activation_withheld",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.role_mapped",
    "project.created",
    "project.updated",
    "project.deleted",
    "invitation.created",
    "invitation.resent",
    "invitation.revoked",
    "invitation.accepted",
    "invitation.expired",
    "invitation.mailed",
    "invitation.delivery_failed",
    "scim_token.created",
    "scim_token.deleted",
    "personal_token.created",
    "personal_token.deleted",
    "account.signed_in",
    "account.signed_out",
    "account.signed_out_elsewhere",
    "account.updated",
    "account.sign_in_failed",
    "account.mfa_enrolment_started",
    "account.mfa_enabled",
    "account.mfa_disabled",
    "account.mfa_recovery_codes_regenerated",
    "account.mfa_failed",
    "account.deleted",
    "audit.purged",
];

/// Why a filter of the audit log is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditFilterError {
    #[error(
        "`{0}` is neither an action of the catalogue nor a prefix of one ending in `.` \
         (such as `member.`)"
    )]
    UnknownAction(String),
    #[error("`since` must not be after `until`")]
    ReversedRange,
}

/// Which actions a reader asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionFilter {
    Exact(&'static str),
    /// Ends in `.`: every action of one subject.
    Prefix(String),
}

impl ActionFilter {
    /// An action of the catalogue, or a prefix ending in `.` that at least
    /// one action starts with: a typo answers 422 rather than an empty page.
    pub fn parse(raw: &str) -> Result<ActionFilter, AuditFilterError> {
        if let Some(action) = ACTIONS.iter().find(|action| **action == raw) {
            return Ok(ActionFilter::Exact(action));
        }
        if raw.ends_with('.') && ACTIONS.iter().any(|action| action.starts_with(raw)) {
            return Ok(ActionFilter::Prefix(raw.to_owned()));
        }
        Err(AuditFilterError::UnknownAction(
            raw.chars().take(100).collect(),
        ))
    }
    /// The catalogue's actions the filter asks for: a prefix is read as
    /// the list of its actions, which the `{org_id, action, _id}` index
    /// serves in `_id` order without sorting.
    pub fn actions(&self) -> Vec<&'static str> {
        match self {
            ActionFilter::Exact(action) => vec![action],
            ActionFilter::Prefix(prefix) => ACTIONS
                .iter()
                .copied()
                .filter(|action| action.starts_with(prefix.as_str()))
                .collect(),
        }
    }
}

/// `since` and `until`, either open.
pub type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The time range of a read, both ends inclusive.
pub fn time_range(
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<TimeRange, AuditFilterError> {
    match (since, until) {
        (Some(since), Some(until)) if since > until => Err(AuditFilterError::ReversedRange),
        range => Ok(range),
    }
}

/// One changed field of an event, for people reading the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// A top-level field of the snapshot; `value` when the snapshot is not
    /// an object.
    pub field: String,
    /// `None`: the field was absent (or there was no snapshot).
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// The top-level fields that differ between two snapshots, in the order of
/// `before`'s fields then the fields only `after` has. A missing snapshot
/// (a creation, a removal) counts as an object without fields.
pub fn changes(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Vec<Change> {
    use serde_json::{Map, Value};
    fn fields(snapshot: Option<&Value>) -> Option<Map<String, Value>> {
        match snapshot {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(map)) => Some(map.clone()),
            Some(_) => None,
        }
    }
    let (Some(old), Some(new)) = (fields(before), fields(after)) else {
        return if before == after {
            Vec::new()
        } else {
            vec![Change {
                field: "value".to_owned(),
                before: before.cloned(),
                after: after.cloned(),
            }]
        };
    };
    let mut list: Vec<Change> = old
        .iter()
        .filter(|(field, value)| new.get(*field) != Some(value))
        .map(|(field, value)| Change {
            field: field.clone(),
            before: Some(value.clone()),
            after: new.get(field).cloned(),
        })
        .collect();
    list.extend(
        new.iter()
            .filter(|(field, _)| !old.contains_key(*field))
            .map(|(field, value)| Change {
                field: field.clone(),
                before: None,
                after: Some(value.clone()),
            }),
    );
    list
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changes_list_the_fields_that_differ() {
        let before = json!({ "role": "viewer", "status": "active", "name": "Ann" });
        let after = json!({ "role": "admin", "status": "active", "email": "a@x.io" });
        assert_eq!(
            changes(Some(&before), Some(&after)),
            vec![
                Change {
                    field: "role".into(),
                    before: Some(json!("viewer")),
                    after: Some(json!("admin"))
                },
                Change {
                    field: "name".into(),
                    before: Some(json!("Ann")),
                    after: None
                },
                Change {
                    field: "email".into(),
                    before: None,
                    after: Some(json!("a@x.io"))
                },
            ]
        );
    }

    #[test]
    fn a_creation_lists_every_field_and_a_removal_too() {
        let snapshot = json!({ "name": "Apollo" });
        let created = changes(None, Some(&snapshot));
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].before, None);
        assert_eq!(created[0].after, Some(json!("Apollo")));
        let removed = changes(Some(&snapshot), None);
        assert_eq!(removed[0].before, Some(json!("Apollo")));
        assert_eq!(removed[0].after, None);
        assert!(changes(None, None).is_empty());
        assert!(changes(Some(&snapshot), Some(&snapshot)).is_empty());
    }

    #[test]
    fn snapshots_that_are_not_objects_change_as_a_whole() {
        assert_eq!(
            changes(Some(&json!("a")), Some(&json!(["b"]))),
            vec![Change {
                field: "value".into(),
                before: Some(json!("a")),
                after: Some(json!(["b"]))
            }]
        );
        assert!(changes(Some(&json!(3)), Some(&json!(3))).is_empty());
    }

    #[test]
    fn action_filters_are_catalogue_actions_or_their_prefixes() {
        assert_eq!(
            ActionFilter::parse("member.updated"),
            Ok(ActionFilter::Exact("member.updated"))
        );
        assert_eq!(
            ActionFilter::parse("member."),
            Ok(ActionFilter::Prefix("member.".into()))
        );
        assert_eq!(
            ActionFilter::parse("project.").map(|f| f.actions()),
            Ok(vec![
                "project.created",
                "project.updated",
                "project.deleted"
            ])
        );
        assert_eq!(
            ActionFilter::parse("member.left").map(|f| f.actions()),
            Ok(vec!["member.left"])
        );
        for wrong in ["member", "membr.", "member.updatd", "", "."] {
            assert!(ActionFilter::parse(wrong).is_err(), "{wrong}");
        }
        assert!(
            time_range(
                Some(Utc::now()),
                Some(Utc::now() - chrono::Duration::seconds(1))
            )
            .is_err()
        );
    }

    /// Every `"subject.verb"` literal under `src/` whose subject is one the
    /// log uses (or that is passed where an event's action goes) must be
    /// in [`ACTIONS`], so the published catalogue cannot fall behind.
    #[test]
    fn every_action_written_in_src_is_in_the_catalogue() {
        fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("src is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    rust_files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let subjects: std::collections::BTreeSet<&str> = ACTIONS
            .iter()
            .filter_map(|action| action.split_once('.').map(|(subject, _)| subject))
            .collect();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut missing = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for file in files {
            // The store's field paths (`group.display_name`) are not actions.
            if file.ends_with("domain/audit.rs") || file.starts_with(src.join("store")) {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("a source file");
            // Every stretch between two quotes, not only every other one,
            // so that an escaped quote cannot shift the scan.
            for literal in text.split('"') {
                let Some((subject, verb)) = literal.split_once('.') else {
                    continue;
                };
                let word = |s: &str| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                };
                if !(word(subject) && word(verb) && subjects.contains(subject)) {
                    continue;
                }
                seen.insert(literal.to_owned());
                if !ACTIONS.contains(&literal) {
                    missing.push(format!("{}: {literal}", file.display()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "actions missing from ACTIONS: {missing:?}"
        );
        let unused: Vec<_> = ACTIONS.iter().filter(|a| !seen.contains(**a)).collect();
        assert!(
            unused.is_empty(),
            "catalogue actions no code writes: {unused:?}"
        );
    }
}
