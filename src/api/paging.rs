//! Cursor pagination shared by every list: `?cursor=&limit=` in,
//! `{items, next_cursor}` out. `limit` is 1 to 200, bounds the routes
//! declare as validators so that the spec shows them. A cursor is the id of the previous page's
//! last item; ids are UUIDv7, so id order is creation order.

use crate::domain::InvalidId;
use crate::error::AppError;

/// Items per page when `limit` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

pub fn default_limit() -> u32 {
    DEFAULT_PAGE_SIZE
}

/// The id a `cursor` parameter names (422 naming `cursor` if it is not
/// one this API handed out).
pub fn cursor<T>(
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, InvalidId>,
) -> Result<Option<T>, AppError> {
    raw.map(|raw| {
        parse(raw).map_err(|_| {
            AppError::invalid(
                "cursor",
                "not a cursor: pass the `next_cursor` of the previous page",
            )
        })
    })
    .transpose()
}
