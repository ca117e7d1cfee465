//! `GET /orgs/{org}/audit-events/verify`: whether the organization's audit
//! log is still what the sealer sealed.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object, OpenApi};

use super::access::OrgAccess;
use super::{ApiTags, BearerAuth};
use crate::app::audit_seals::{self, Difference, DifferenceKind, Verification};
use crate::domain::Permission;
use crate::error::AppError;
use crate::state::AppState;

pub struct AuditVerifyApi;

#[derive(Debug, Object)]
#[oai(example)]
pub struct AuditVerification {
    /// Whether every seal chains to the one before it and every sealed
    /// event is stored exactly as sealed.
    pub intact: bool,
    /// Seals checked (up to the first difference).
    pub seals: u64,
    /// Events covered by the seals checked and still stored (events purged
    /// past retention are not counted).
    pub sealed_events: u64,
    /// Events after the last seal: the most recent ones, sealed within a
    /// few minutes.
    pub unsealed_events: u64,
    /// The first event or seal, in chain order, that differs; null when
    /// intact.
    #[oai(nullable)]
    pub first_difference: Option<AuditDifference>,
    /// The last seal's digest when intact: keep it outside Muster to prove
    /// later that the chain up to it was not rewritten as a whole.
    #[oai(nullable)]
    pub head_digest: Option<String>,
}

/// What differs: an event, or a seal of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum AuditDifferenceKind {
    Event,
    Seal,
}

#[derive(Debug, Object)]
pub struct AuditDifference {
    pub kind: AuditDifferenceKind,
    /// The event's id or the seal's.
    pub id: String,
    pub reason: String,
}

impl From<Difference> for AuditDifference {
    fn from(difference: Difference) -> Self {
        AuditDifference {
            kind: match difference.kind {
                DifferenceKind::Event => AuditDifferenceKind::Event,
                DifferenceKind::Seal => AuditDifferenceKind::Seal,
            },
            id: difference.id,
            reason: difference.reason,
        }
    }
}

impl From<Verification> for AuditVerification {
    fn from(verification: Verification) -> Self {
        AuditVerification {
            intact: verification.intact(),
            seals: verification.seals,
            sealed_events: verification.sealed_events,
            unsealed_events: verification.unsealed_events,
            first_difference: verification.first_difference.map(Into::into),
            head_digest: verification.head_digest,
        }
    }
}

impl Example for AuditVerification {
    fn example() -> Self {
        AuditVerification {
            intact: false,
            seals: 42,
            sealed_events: 1530,
            unsealed_events: 3,
            first_difference: Some(AuditDifference {
                kind: AuditDifferenceKind::Event,
                id: "0192f0c4-6a1b-7660-b54f-47527a37e5d3".to_owned(),
                reason: "altered after it was sealed: its stored fields no longer match the \
                         sealed hash"
                    .to_owned(),
            }),
            head_digest: None,
        }
    }
}

#[OpenApi(tag = "ApiTags::Organizations")]
impl AuditVerifyApi {
    /// Verify the audit log's seals
    ///
    /// Owners and admins. Every minute a sealer hashes each organization's
    /// new events into a seal chained to the previous one. This recomputes
    /// the chain from the stored seals and events and names the first
    /// event or seal that differs: an event altered, deleted, or inserted
    /// into a sealed range directly in the database. Events newer than the
    /// last seal are counted in `unsealed_events`; they cannot be vouched
    /// for yet.
    #[oai(path = "/orgs/:org/audit-events/verify", method = "get")]
    async fn verify(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
    ) -> Result<Json<AuditVerification>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        access.require(Permission::ViewAuditLog)?;
        let verification = audit_seals::verify(state.store(), access.org_id()).await?;
        Ok(Json(verification.into()))
    }
}
