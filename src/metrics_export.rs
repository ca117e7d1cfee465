//! `/metrics`: Prometheus text, through the `metrics` facade and its
//! Prometheus exporter. Series are recorded where things happen (the
//! request middleware, the rate limiter, authentication); process
//! figures are read from `/proc` when scraped.
//!
//! With `metrics.token` set, a scrape must send it as a bearer token:
//! series name routes and organizations' traffic, which is nobody's
//! business on an open port.

use std::sync::OnceLock;

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
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics are not recorded");
                    None
                }
            }
        })
        .as_ref()
}

/// Installs the recorder, so that series count from the server's start.
pub fn init() {
    let _ = handle();
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
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
