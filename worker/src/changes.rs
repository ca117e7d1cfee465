//! Reading a change stream without asking the server once per write.

use std::time::{Duration, Instant};

use mongodb::change_stream::ChangeStream;
use serde::de::DeserializeOwned;

/// The shortest time between two `getMore`s of a change stream when the
/// first came back empty. MongoDB holds an empty `getMore` for its await
/// time (a second by default), so this adds nothing there. The
/// development database (SecantusDB) answers it at once, empty, whenever
/// anything is written anywhere: read with `next()`, each stream made a
/// round trip for every write of the whole database, more than half of
/// the worker's operations per mail (docs/benchmarks.md). Changes that
/// come meanwhile wait at most this long, and arrive in one batch.
pub const EMPTY_BATCH_PAUSE: Duration = Duration::from_millis(200);

/// The next change of `stream`; `None` once the stream has ended (its
/// cursor closed, as after an `invalidate`).
pub async fn next_change<T: DeserializeOwned>(
    stream: &mut ChangeStream<T>,
) -> mongodb::error::Result<Option<T>> {
    loop {
        let asked = Instant::now();
        if let Some(change) = stream.next_if_any().await? {
            return Ok(Some(change));
        }
        if !stream.is_alive() {
            return Ok(None);
        }
        if let Some(rest) = EMPTY_BATCH_PAUSE.checked_sub(asked.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
}
