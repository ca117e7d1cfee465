//! The counters recorded below the faces, through the `metrics` facade:
//! MongoDB transactions (the store), invitations (the use cases, as their
//! audit events commit), mails (the mailer) and jobs (the worker). Their
//! names and labels live here, once; `metrics_export` documents every
//! series and serves them. No I/O: without an installed recorder (a CLI
//! command, a process that serves no `/metrics`) each call is a no-op.

use muster_worker::Settled;

/// Puts every series with known labels on the page at zero, so a counter
/// exists before its first event (`rate()` and `absent()` need that), and
/// gives each series its help text. Called once the recorder is installed.
/// Registering is `increment(0)`, never a reset: another server or worker
/// in the same process may have counted already.
pub fn register() {
    metrics::describe_counter!(
        TRANSACTIONS,
        "MongoDB transactions by how they ended: committed, aborted by the use case, or failed with a database error"
    );
    metrics::describe_counter!(
        TRANSACTION_RETRIES,
        "MongoDB transaction retries: the whole body after a transient error, or the commit alone after an unknown commit result"
    );
    metrics::describe_counter!(
        INVITATIONS,
        "Invitations by what happened to them, counted as their audit events commit"
    );
    metrics::describe_counter!(
        MAILS,
        "Mails handed to the SMTP server (or written to the outbox), and failed sends by kind"
    );
    metrics::describe_counter!(JOBS, "Job attempts by how the worker recorded them");
    metrics::describe_counter!(
        SCHEDULED_JOBS,
        "Runs of the scheduled jobs (expiry, sealing, purge) by outcome"
    );
    for outcome in TransactionOutcome::ALL {
        metrics::counter!(TRANSACTIONS, "outcome" => outcome.as_str()).increment(0);
    }
    for reason in TransactionRetry::ALL {
        metrics::counter!(TRANSACTION_RETRIES, "reason" => reason.as_str()).increment(0);
    }
    for outcome in INVITATION_OUTCOMES {
        metrics::counter!(INVITATIONS, "outcome" => outcome).increment(0);
    }
}

const TRANSACTIONS: &str = "muster_mongodb_transactions_total";
const TRANSACTION_RETRIES: &str = "muster_mongodb_transaction_retries_total";
const INVITATIONS: &str = "muster_invitations_total";
const MAILS: &str = "muster_mails_total";
const JOBS: &str = "muster_jobs_total";
const SCHEDULED_JOBS: &str = "muster_scheduled_jobs_total";

/// How a transaction (all its attempts) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionOutcome {
    Committed,
    /// The body returned an error of the use case (a conflict, a refusal):
    /// nothing was written, as intended.
    Aborted,
    /// A database error ended it: not transient, or transient past the
    /// retry budget, or the database unreachable.
    Failed,
}

impl TransactionOutcome {
    const ALL: [TransactionOutcome; 3] = [
        TransactionOutcome::Committed,
        TransactionOutcome::Aborted,
        TransactionOutcome::Failed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            TransactionOutcome::Committed => "committed",
            TransactionOutcome::Aborted => "aborted",
            TransactionOutcome::Failed => "failed",
        }
    }
}

pub fn transaction(outcome: TransactionOutcome) {
    metrics::counter!(TRANSACTIONS, "outcome" => outcome.as_str()).increment(1);
}

/// Why a transaction tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionRetry {
    /// `TransientTransactionError` (a write conflict, an election): the
    /// whole body runs again.
    Transient,
    /// `UnknownTransactionCommitResult`: the commit alone is sent again.
    UnknownCommit,
}

impl TransactionRetry {
    const ALL: [TransactionRetry; 2] =
        [TransactionRetry::Transient, TransactionRetry::UnknownCommit];

    fn as_str(self) -> &'static str {
        match self {
            TransactionRetry::Transient => "transient",
            TransactionRetry::UnknownCommit => "unknown_commit",
        }
    }
}

pub fn transaction_retry(reason: TransactionRetry) {
    metrics::counter!(TRANSACTION_RETRIES, "reason" => reason.as_str()).increment(1);
}

/// The invitation outcomes, as the suffixes of their audit actions.
const INVITATION_OUTCOMES: [&str; 5] = ["created", "resent", "accepted", "revoked", "expired"];

/// An audit event that committed: an invitation's counts by what became
/// of it. Every face's change to an invitation writes exactly one event
/// (`invitation.created`, `.resent`, `.accepted`, `.revoked`,
/// `.expired`), so counting them at commit counts each change once,
/// whichever face made it, and never a rolled-back attempt. Other actions
/// (the mails' `invitation.mailed` included, counted by the mailer) are
/// not counted here; an organization's deletion revokes its invitations
/// under one event and counts them itself ([`invitations_revoked`]).
pub fn audit_committed(action: &str) {
    if let Some(outcome) = action
        .strip_prefix("invitation.")
        .and_then(|suffix| INVITATION_OUTCOMES.into_iter().find(|o| *o == suffix))
    {
        metrics::counter!(INVITATIONS, "outcome" => outcome).increment(1);
    }
}

/// Invitations revoked without an event of their own (with their
/// organization), once that has committed.
pub fn invitations_revoked(count: u64) {
    metrics::counter!(INVITATIONS, "outcome" => "revoked").increment(count);
}

/// How one send of a mail went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// The SMTP server accepted it (or the outbox file was written).
    Sent,
    /// Worth retrying: unreachable, slow, 4xx, outbox unwritable.
    FailedTransient,
    /// Will fail again: a bad address, a 5xx, a message that cannot be
    /// built.
    FailedPermanent,
}

impl MailOutcome {
    fn as_str(self) -> &'static str {
        match self {
            MailOutcome::Sent => "sent",
            MailOutcome::FailedTransient => "failed_transient",
            MailOutcome::FailedPermanent => "failed_permanent",
        }
    }
}

/// `transport` is `smtp` or `outbox`: mails "sent" to the outbox in
/// production mean `smtp.url` is not set.
pub fn mail(transport: &'static str, outcome: MailOutcome) {
    metrics::counter!(MAILS, "transport" => transport, "outcome" => outcome.as_str()).increment(1);
}

/// Puts a mail transport's series on the page at zero (the mailer does
/// when it is built).
pub fn register_mail_transport(transport: &'static str) {
    for outcome in [
        MailOutcome::Sent,
        MailOutcome::FailedTransient,
        MailOutcome::FailedPermanent,
    ] {
        metrics::counter!(MAILS, "transport" => transport, "outcome" => outcome.as_str())
            .increment(0);
    }
}

/// An attempt of a job of `queue`, as the worker recorded it.
pub fn job(queue: &str, settled: Settled) {
    metrics::counter!(JOBS, "queue" => queue.to_owned(), "outcome" => settled.as_str())
        .increment(1);
}

/// Puts a queue's job series on the page at zero (a worker does when it
/// starts serving the queue).
pub fn register_queue(queue: &str) {
    for settled in [
        Settled::Succeeded,
        Settled::Retried,
        Settled::LeaseExpired,
        Settled::Dead,
    ] {
        metrics::counter!(JOBS, "queue" => queue.to_owned(), "outcome" => settled.as_str())
            .increment(0);
    }
}

/// A run of a scheduled job (`expire_invitations`, `seal_audit`,
/// `purge_audit`).
pub fn scheduled_job(job: &'static str, succeeded: bool) {
    let outcome = if succeeded { "succeeded" } else { "failed" };
    metrics::counter!(SCHEDULED_JOBS, "job" => job, "outcome" => outcome).increment(1);
}

/// Puts a scheduled job's series on the page at zero.
pub fn register_scheduled_job(job: &'static str) {
    for outcome in ["succeeded", "failed"] {
        metrics::counter!(SCHEDULED_JOBS, "job" => job, "outcome" => outcome).increment(0);
    }
}
