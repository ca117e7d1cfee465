//! Group commit: jobs that run at the same time hand their writes to one
//! writer, which makes them in one round trip. The worker claims up to
//! `jobs.concurrency` announced jobs at once, so their mails are taken
//! and recorded together; one write per job was most of a mail's database
//! operations (docs/benchmarks.md).
//!
//! No timer: the first job to arrive writes once the jobs ready with it
//! have queued (it yields to them once), and whatever arrives while its
//! write is in flight goes out with the next one. A lone job waits for
//! nothing.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// Writes of type `T` made together, each answered with its own `R`.
pub struct GroupCommit<T, R> {
    queued: Mutex<Vec<(T, oneshot::Sender<R>)>>,
    writer: tokio::sync::Mutex<()>,
}

/// The write that carried an item was abandoned (its writer was dropped
/// mid-way, as on shutdown): whether it was made is unknown.
#[derive(Debug, thiserror::Error)]
#[error("the group write that carried this item was abandoned")]
pub struct Abandoned;

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        GroupCommit {
            queued: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T, R> GroupCommit<T, R> {
    /// Queues `item` and answers its result. When no write is in flight,
    /// this caller writes everything queued with `write`, which must
    /// answer one result per item, in order; otherwise the next free
    /// caller does, and `write` goes unused.
    pub async fn submit<F, Fut>(&self, item: T, write: F) -> Result<R, Abandoned>
    where
        F: FnOnce(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let (reply, mut answer) = oneshot::channel();
        self.queued().push((item, reply));
        // Jobs claimed together start together: let the others that are
        // ready queue their items before a write takes the queue.
        tokio::task::yield_now().await;
        let writer = tokio::select! {
            biased;
            // Another caller's write carried this item.
            answer = &mut answer => return answer.map_err(|_| Abandoned),
            writer = self.writer.lock() => writer,
        };
        let batch = std::mem::take(&mut *self.queued());
        if !batch.is_empty() {
            let (items, replies): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            let results = write(items).await;
            debug_assert_eq!(results.len(), replies.len(), "one result per item");
            // An item without a result has its sender dropped: Abandoned.
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        drop(writer);
        answer.await.map_err(|_| Abandoned)
    }

    fn queued(&self) -> MutexGuard<'_, Vec<(T, oneshot::Sender<R>)>> {
        // Nothing panics while holding the lock; if it did, the queue is
        // still a valid list.
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    type Group = Arc<GroupCommit<u32, u32>>;

    #[tokio::test]
    async fn a_lone_item_is_written_at_once() {
        let group = GroupCommit::<u32, u32>::default();
        let answer = group
            .submit(
                7,
                |items| async move { items.iter().map(|i| i * 2).collect() },
            )
            .await;
        assert_eq!(answer.ok(), Some(14));
    }

    #[tokio::test]
    async fn items_queued_during_a_write_go_out_together_each_with_its_answer() {
        let group = Group::default();
        let writes = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let (open, gate) = tokio::sync::watch::channel(false);
        // Every write waits at the gate, so the first is in flight while
        // the others queue.
        let submit = |item: u32| {
            let (group, writes, mut gate) = (group.clone(), writes.clone(), gate.clone());
            tokio::spawn(async move {
                group
                    .submit(item, |items| async move {
                        writes.lock().expect("lock").push(items.clone());
                        let _ = gate.wait_for(|open| *open).await;
                        items.iter().map(|i| i + 100).collect()
                    })
                    .await
            })
        };
        let first = submit(0);
        wait_until(|| writes.lock().expect("lock").len() == 1).await;
        let others: Vec<_> = (1..=5).map(submit).collect();
        wait_until(|| group.queued().len() == 5).await;
        open.send(true).expect("open the gate");
        assert_eq!(first.await.expect("task").ok(), Some(100));
        for (item, other) in (1..=5).zip(others) {
            assert_eq!(other.await.expect("task").ok(), Some(item + 100));
        }
        let mut writes = writes.lock().expect("lock").clone();
        writes[1].sort_unstable();
        assert_eq!(writes, [vec![0], vec![1, 2, 3, 4, 5]]);
    }

    #[tokio::test]
    async fn the_items_of_an_abandoned_write_are_answered_abandoned() {
        let group = Group::default();
        // Item 0's write waits at the gate; the next write never ends.
        let (open, gate) = tokio::sync::watch::channel(false);
        let writing = Arc::new(AtomicU32::new(u32::MAX));
        let submit = |item: u32| {
            let (group, writing, mut gate) = (group.clone(), writing.clone(), gate.clone());
            tokio::spawn(async move {
                group
                    .submit(item, |items| async move {
                        writing.store(item, Ordering::SeqCst);
                        if item == 0 {
                            let _ = gate.wait_for(|open| *open).await;
                            return items;
                        }
                        std::future::pending().await
                    })
                    .await
            })
        };
        let first = submit(0);
        wait_until(|| writing.load(Ordering::SeqCst) == 0).await;
        let mut others = [(1, submit(1)), (2, submit(2))];
        wait_until(|| group.queued().len() == 2).await;
        open.send(true).expect("open the gate");
        assert_eq!(first.await.expect("task").ok(), Some(0));
        // One of the two writes both items, and is dropped mid-way.
        wait_until(|| writing.load(Ordering::SeqCst) != 0).await;
        let leader = writing.load(Ordering::SeqCst);
        others.sort_by_key(|(item, _)| *item != leader);
        let [(_, leader), (_, follower)] = others;
        leader.abort();
        assert!(matches!(follower.await.expect("task"), Err(Abandoned)));
        assert!(leader.await.is_err_and(|err| err.is_cancelled()));
    }

    async fn wait_until(condition: impl Fn() -> bool) {
        while !condition() {
            tokio::task::yield_now().await;
        }
    }
}
