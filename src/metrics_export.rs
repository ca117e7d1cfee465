//! `/metrics`: Prometheus text, through the `metrics` facade and its
//! Prometheus exporter. Counters and histograms are recorded where things
//! happen and count this process's work (Prometheus sums them across
//! processes); figures of shared state are read when scraped, so every
//! process tells the same truth about them.
//!
//! Recorded as they happen:
//!
//! - `muster_http_requests_total{route,method,status}` and
//!   `muster_http_request_duration_seconds{route,method}` (histogram):
//!   every request, by route template (never a raw path, which holds ids
//!   and secrets); the request middleware.
//! - `muster_scim_operations_total{resource,method}`: SCIM requests by
//!   resource (`Users`, `Groups`, `Bulk`, …).
//! - `muster_rate_limited_total{surface}`: requests turned away with 429
//!   (`api`, `scim`, `sign_in`, `other`).
//! - `muster_auth_failures_total{kind}`: bearer authentications refused
//!   (`missing`, `invalid`, `expired`, `member_not_active`, `store`).
//! - `muster_mongodb_transactions_total{outcome}`: transactions by how
//!   they ended: `committed`, `aborted` (the use case refused: nothing
//!   written, as intended), `failed` (a database error, or contention past
//!   the retry budget). `in_transaction!`, in `store`.
//! - `muster_mongodb_transaction_retries_total{reason}`: `transient`
//!   (write conflict, election: the whole body ran again) and
//!   `unknown_commit` (the commit alone was sent again).
//! - `muster_invitations_total{outcome}`: `created` (invitations and SCIM
//!   activations), `resent`, `accepted`, `revoked`, `expired`; counted as
//!   their audit events commit, so every face is counted once.
//! - `muster_mails_total{transport,outcome}`: each send, by transport
//!   (`smtp`, `outbox`) and outcome (`sent`, `failed_transient`,
//!   `failed_permanent`); the mailer.
//! - `muster_jobs_total{queue,outcome}`: job attempts as the worker
//!   recorded them: `succeeded`, `retried` (failed, attempts left),
//!   `lease_expired` (its worker died; it runs again), `dead`.
//! - `muster_scheduled_jobs_total{job,outcome}`: runs of the scheduled
//!   jobs (`expire_invitations`, `seal_audit`, `purge_audit`), `succeeded`
//!   or `failed`.
//!
//! Read when scraped:
//!
//! - `muster_job_queue_depth{queue,state}`: each queue's jobs by state:
//!   `due` (waiting for a worker), `scheduled` (not due yet: retries in
//!   their backoff, mails held by the hourly cap), `running`, `dead`
//!   (kept until deleted). One aggregation per queue over its index.
//! - `muster_job_queue_oldest_due_seconds{queue}`: how long the oldest due
//!   job has waited for a worker; 0 when none is due.
//!   Both are left out, and a warning logged, when the database does not
//!   answer within two seconds: an absent series, never a stale one.
//! - `muster_process_resident_memory_bytes`,
//!   `muster_process_cpu_seconds_total`: from `/proc/self`.
//!
//! Counters with known labels are on the page at zero from the start
//! (`measure::register`), so `rate()` and `absent()` work before the
//! first event.
//!
//! `/metrics` is served on `http.addr`, or, with `metrics.addr` set, only
//! on that listener of its own (the main address then answers 404), which
//! `muster worker` serves too. With `metrics.token` set, a scrape must
//! send it as a bearer token, on either: series name routes and
//! organizations' traffic, which is nobody's business on an open port.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// Request durations' buckets, in seconds: a millisecond to ten seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder: one per process (the `metrics` facade holds a
/// single global one), installed by the first server that starts.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "muster_http_request_duration_seconds".into(),
                    ),
                    DURATION_BUCKETS,
                )
                .and_then(|builder| builder.install_recorder());
            match built {
                Ok(handle) => {
                    describe();
                    crate::measure::register();
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "metrics are not recorded");
                    None
                }
            }
        })
        .as_ref()
}

/// Installs the recorder, so that series count from the process's start.
/// Call it before anything records: before the worker starts, too.
pub fn init() {
    let _ = handle();
}

/// The help texts of the series recorded in the faces (those below are
/// described by `measure::register`).
fn describe() {
    metrics::describe_counter!(
        "muster_http_requests_total",
        "HTTP requests by route template, method and status"
    );
    metrics::describe_histogram!(
        "muster_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request durations by route template and method"
    );
    metrics::describe_counter!(
        "muster_scim_operations_total",
        "SCIM requests by resource and method"
    );
    metrics::describe_counter!(
        "muster_rate_limited_total",
        "Requests answered 429 by the rate limiter, by surface"
    );
    metrics::describe_counter!(
        "muster_auth_failures_total",
        "Bearer authentications refused, by kind"
    );
    metrics::describe_gauge!(
        "muster_process_resident_memory_bytes",
        metrics::Unit::Bytes,
        "Resident memory of this process"
    );
    metrics::describe_gauge!(
        "muster_process_cpu_seconds_total",
        metrics::Unit::Seconds,
        "CPU time (user and system) this process has used"
    );
}

/// How long a scrape waits for the job queues' figures.
const QUEUE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The job queues' gauges, read from the database now; nothing (and a
/// warning) when it does not answer in time, so that a stale figure is
/// never served.
async fn queue_gauges(state: &AppState) -> String {
    let now = state.clock().now();
    let read = crate::app::jobs::queue_stats(state.store(), now);
    match tokio::time::timeout(QUEUE_READ_TIMEOUT, read).await {
        Ok(Ok(stats)) => format_queue_gauges(&stats, now),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "/metrics: cannot read the job queues");
            String::new()
        }
        Err(_) => {
            tracing::warn!(
                "/metrics: the job queues were not read within {} s",
                QUEUE_READ_TIMEOUT.as_secs()
            );
            String::new()
        }
    }
}

fn format_queue_gauges(stats: &[(&str, muster_worker::QueueStats)], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    out.push_str(
        "# HELP muster_job_queue_depth Jobs in each queue by state: due (waiting for a worker), \
         scheduled (not due yet), running, dead (kept until deleted)\n\
         # TYPE muster_job_queue_depth gauge\n",
    );
    for (queue, stats) in stats {
        for (state, count) in [
            ("due", stats.due),
            ("scheduled", stats.scheduled),
            ("running", stats.running),
            ("dead", stats.dead),
        ] {
            let _ = writeln!(
                out,
                "muster_job_queue_depth{{queue=\"{}\",state=\"{state}\"}} {count}",
                label_value(queue)
            );
        }
    }
    out.push_str(
        "# HELP muster_job_queue_oldest_due_seconds How long the oldest due job of each queue \
         has waited for a worker (0 when none is due)\n\
         # TYPE muster_job_queue_oldest_due_seconds gauge\n",
    );
    for (queue, stats) in stats {
        let waited = stats
            .oldest_due
            .map(|due| (now - due).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        let _ = writeln!(
            out,
            "muster_job_queue_oldest_due_seconds{{queue=\"{}\"}} {waited}",
            label_value(queue)
        );
    }
    out
}

/// A label value as the text format wants it.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A request's outcome, by route template (never the raw path), method
/// and status; SCIM's also by resource.
pub fn record_request(route: &str, method: &str, status: u16, seconds: f64) {
    let route = route.to_owned();
    let method = method.to_owned();
    metrics::counter!(
        "muster_http_requests_total",
        "route" => route.clone(),
        "method" => method.clone(),
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!(
        "muster_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method.clone(),
    )
    .record(seconds);
    if let Some(resource) = route
        .strip_prefix("/scim/v2/")
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
    {
        metrics::counter!(
            "muster_scim_operations_total",
            "resource" => resource,
            "method" => method,
        )
        .increment(1);
    }
}

/// A request the rate limiter turned away, by surface (`api`, `scim`,
/// `sign_in`, `other`).
pub fn record_rate_limited(surface: &'static str) {
    metrics::counter!("muster_rate_limited_total", "surface" => surface).increment(1);
}

/// Process memory and CPU, as `/proc/self` says at scrape time.
fn record_process() {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(kib) = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
    {
        metrics::gauge!("muster_process_resident_memory_bytes").set(kib * 1024.0);
    }
    // Fields 14 and 15 of /proc/self/stat, after the command in
    // parentheses: user and system time in clock ticks (100 a second on
    // Linux).
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some((_, rest)) = stat.rsplit_once(')')
    {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
            metrics::gauge!("muster_process_cpu_seconds_total").set((user + system) / 100.0);
        }
    }
}

/// `GET /metrics`.
#[handler]
pub async fn scrape(state: Data<&AppState>, req: &Request) -> Response {
    if let Some(expected) = state.settings().metrics.token.as_deref() {
        let presented = req
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| crate::auth::bearer_secret(Some(value)).ok())
            .unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("WWW-Authenticate", "Bearer")
                .content_type("text/plain; charset=utf-8")
                .body("send metrics.token as a bearer token\n");
        }
    }
    record_process();
    let mut body = handle().map(PrometheusHandle::render).unwrap_or_default();
    body.push_str(&queue_gauges(&state).await);
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
