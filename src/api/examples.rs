//! Shared values for the examples in the spec, so that the ids and times
//! one schema shows agree with those of another.

use chrono::{DateTime, Utc};

/// The example organization ("Acme Corp").
pub const ORG_ID: &str = "0192f0c4-6a1b-7cc2-9d3e-4f5a6b7c8d9e";
/// The signed-in account (Grace Hopper, the organization's owner).
pub const ACCOUNT_ID: &str = "0192f0c0-7e00-70bd-9916-06f117e47c26";
/// Another member of the organization (Ada Lovelace).
pub const MEMBER_ID: &str = "01933ebb-90e0-7b10-bc0d-40343b78f270";
/// The example project ("Website").
pub const PROJECT_ID: &str = "0192fb98-5f00-7a50-94ed-b685f1268c70";
/// The example group ("Engineering").
pub const GROUP_ID: &str = "019320ac-8f00-7716-a42c-dc882f2cbdb6";

/// A fixed example time; the epoch if `rfc3339` does not parse.
pub fn example_time(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_default()
}
