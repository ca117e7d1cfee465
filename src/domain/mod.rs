//! Pure rules of the domain: no I/O, no HTTP, no BSON. Everything here is
//! testable with plain values, and every invariant lives in exactly one
//! function that the API, SCIM and the CLI all call.

pub mod account;
pub mod audit;
pub mod clock;
pub mod ids;
pub mod invitation;
pub mod member;
pub mod mfa;
pub mod org;
pub mod policy;
pub mod role;

pub use account::{Account, Email, InvalidEmail, InvalidPersonName, PersonName};
pub use audit::{Actor, AuditEvent, RequestOrigin, Target};
pub use clock::{Clock, FixedClock, SystemClock};
pub use ids::{
    AccountId, AuditEventId, GroupId, InvalidId, InvitationId, MemberId, OrgId, ProjectId, TokenId,
};
pub use member::{Member, MemberStatus, StatusTransitionError};
pub use org::{InvalidOrgName, OrgSettings, Organization, Project, org_name_and_slug};
pub use policy::{LastOwner, OwnerGrantError, Standing};
pub use role::{Permission, ProjectRight, Role};
