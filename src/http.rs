//! App assembly: routes, middleware (request id and tracing, rate limits,
//! body limits, error rendering per surface), health, and serving with
//! graceful shutdown.

use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use poem::http::StatusCode;
use poem::http::header::{AUTHORIZATION, CONTENT_LENGTH};
use poem::listener::Acceptor;
use poem::web::Json;
use poem::{
    Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Route, Server, get,
    handler,
};
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use crate::api;
use crate::auth::token::TokenHash;
use crate::config::RateLimitSettings;
use crate::error::AppError;
use crate::scim;
use crate::state::AppState;

/// The id of the request, on every log line and in `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Which API a path belongs to, which decides the error format and quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Api,
    Scim,
    /// The admin console's pages: errors are pages too.
    Console,
    Other,
}

impl Surface {
    pub fn of(path: &str) -> Surface {
        if path == "/scim/v2" || path.starts_with("/scim/") {
            Surface::Scim
        } else if path == "/api/v1" || path.starts_with("/api/") {
            Surface::Api
        } else if path == "/console" || path.starts_with("/console/") {
            Surface::Console
        } else {
            Surface::Other
        }
    }

    pub fn render(self, err: &AppError) -> Response {
        match self {
            Surface::Scim => err.scim_response(),
            Surface::Console => crate::console::problem_page(err),
            Surface::Api | Surface::Other => err.problem_response(),
        }
    }
}

#[poem::handler]
fn openapi_json() -> Response {
    Response::builder()
        .content_type("application/json; charset=utf-8")
        .body(api::spec_json())
}

/// Builds the whole application.
pub fn app(state: AppState) -> impl Endpoint<Output = Response> {
    let settings = state.settings().clone();
    let max_body_bytes = settings.http.max_body_bytes;
    let api_service = api::service();
    let swagger_ui = api_service.swagger_ui();
    let limiter = settings
        .rate_limit
        .enabled
        .then(|| Arc::new(RateLimits::new(&settings.rate_limit)));
    if let Some(limits) = &limiter {
        spawn_limiter_housekeeping(Arc::downgrade(limits));
    }
    let security_headers = Arc::new(crate::security_headers::SecurityHeaders::new(
        settings.public_url(),
    ));
    let trusted_proxies = Arc::new(settings.http.trusted_proxies.clone());
    crate::metrics_export::init();
    let mut routes = Route::new();
    // With a listener of its own, /metrics is not on the public address.
    if settings.metrics.addr.is_none() {
        routes = routes.at("/metrics", get(crate::metrics_export::scrape));
    }
    routes
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/openapi.json", get(openapi_json))
        .nest("/docs", swagger_ui)
        .nest("/api/v1", api_service)
        .nest("/scim/v2", scim::routes())
        .at(
            "/invite/:token",
            get(crate::invite_page::show).post(crate::invite_page::submit),
        )
        .at(
            "/invite/:token/sign-out",
            poem::post(crate::invite_page::sign_out),
        )
        .nest("/console", crate::console::routes())
        .data(state)
        .around(move |endpoint, request| limit_body(max_body_bytes, endpoint, request))
        .around(move |endpoint, request| {
            let limiter = limiter.clone();
            async move { rate_limit(limiter.as_deref(), endpoint.as_ref(), request).await }
        })
        // Before the rate limiter, which keys on the client's address.
        .around(move |endpoint, request| {
            crate::client_ip::around(trusted_proxies.clone(), endpoint, request)
        })
        .around(trace_request)
        .around(move |endpoint, request| {
            crate::security_headers::around(security_headers.clone(), endpoint, request)
        })
        .into_endpoint()
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish
/// for up to `grace`.
pub async fn serve<A: Acceptor + 'static>(
    acceptor: A,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let grace = Duration::from_secs(state.settings().http.shutdown_grace_seconds);
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state), shutdown, Some(grace))
        .await
}

/// What the `metrics.addr` listener serves: `/metrics` alone, under the
/// same token rule; anything else is 404.
pub fn metrics_app(state: AppState) -> impl Endpoint<Output = Response> {
    crate::metrics_export::init();
    Route::new()
        .at("/metrics", get(crate::metrics_export::scrape))
        .data(state)
        .into_endpoint()
}

/// Serves [`metrics_app`] until `shutdown` resolves, then gives a scrape
/// in flight (its database read is bounded at 2 s) a few seconds.
pub async fn serve_metrics<A: Acceptor + 'static>(
    acceptor: A,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(metrics_app(state), shutdown, Some(Duration::from_secs(5)))
        .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn incoming_request_id(req: &Request) -> Option<String> {
    let value = req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    sane.then(|| value.to_owned())
}

/// The path as logs may show it: an invitation link's secret is replaced,
/// since logs are read by more people than should join organizations.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/invite/") {
        Some(_) => "/invite/[redacted]".into(),
        None => path.into(),
    }
}

/// The route a path matched, as its template (`/api/v1/orgs/{org}`): what
/// logs and metrics group requests by, never the ids (or secrets) a raw
/// path holds. Paths that match no route are `other`.
pub fn route_template(path: &str) -> std::borrow::Cow<'static, str> {
    if let Some(template) = crate::api::route_template(path) {
        return template.into();
    }
    if let Some(rest) = path.strip_prefix("/scim/v2/") {
        let mut parts = rest.splitn(2, '/');
        return match (parts.next(), parts.next()) {
            (Some(resource @ ("Users" | "Groups" | "Schemas" | "ResourceTypes")), Some(_)) => {
                format!("/scim/v2/{resource}/{{id}}").into()
            }
            (Some(resource), None)
                if matches!(
                    resource,
                    "Users"
                        | "Groups"
                        | "Bulk"
                        | ".search"
                        | "ServiceProviderConfig"
                        | "Schemas"
                        | "ResourceTypes"
                ) =>
            {
                format!("/scim/v2/{resource}").into()
            }
            _ => "other".into(),
        };
    }
    if path.starts_with("/invite/") {
        return "/invite/{token}".into();
    }
    if let Some(rest) = path.strip_prefix("/console")
        && (rest.is_empty() || rest.starts_with('/'))
    {
        return crate::console::route_template(rest).map_or_else(|| "other".into(), Into::into);
    }
    match path {
        "/healthz" | "/readyz" | "/metrics" | "/docs" | "/openapi.json" | "/" => {
            path.to_owned().into()
        }
        _ if path.starts_with("/docs/") => "/docs/{asset}".into(),
        _ => "other".into(),
    }
}

/// Names the authenticated caller (and a token's organization) in the
/// request's log line.
pub fn log_caller(actor: &crate::domain::Actor, org_id: Option<&crate::domain::OrgId>) {
    use crate::domain::Actor;
    let named = match actor {
        Actor::Account(id) => format!("account:{id}"),
        Actor::ApiToken { token_id, .. } => format!("api_token:{token_id}"),
        Actor::ScimToken(id) => format!("scim_token:{id}"),
        Actor::System => "system".to_owned(),
    };
    let span = tracing::Span::current();
    span.record("actor", named.as_str());
    if let Some(org_id) = org_id {
        span.record("org_id", org_id.as_str());
    }
}

/// Names the organization a request acts in, in its log line.
pub fn log_org(org_id: &crate::domain::OrgId) {
    tracing::Span::current().record("org_id", org_id.as_str());
}

/// Outermost middleware: gives the request an id (or keeps a sane one from
/// a proxy), runs it inside a span that carries the id, renders any error
/// in the format of its surface, and logs the outcome.
async fn trace_request<E: Endpoint>(endpoint: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let surface = Surface::of(&path);
    let logged_path = loggable_path(&path);
    let route = route_template(&path);
    // The organization and the caller are filled in once known
    // (`log_caller`, `log_org`).
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        %method,
        path = %logged_path,
        %route,
        org_id = tracing::field::Empty,
        actor = tracing::field::Empty,
    );
    async move {
        let started = Instant::now();
        tracing::debug!("started");
        // A panic would otherwise drop the connection without an answer.
        let outcome = std::panic::AssertUnwindSafe(endpoint.call(req))
            .catch_unwind()
            .await;
        let mut response = match outcome {
            Ok(Ok(response)) => response.into_response(),
            Ok(Err(err)) => surface.render(&AppError::from_poem(err)),
            Err(panic) => surface.render(&AppError::internal(panic_message(panic.as_ref()))),
        };
        if let Ok(value) = id.parse() {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        // RFC 9110 §15.5.6: a 405 says which methods the resource has.
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && surface == Surface::Api
            && let Some(allow) = crate::api::allowed_methods(&path)
            && let Ok(value) = allow.parse()
        {
            response
                .headers_mut()
                .insert(poem::http::header::ALLOW, value);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        let micros = elapsed.as_micros() as u64;
        crate::metrics_export::record_request(
            &route,
            method.as_str(),
            status,
            elapsed.as_secs_f64(),
        );
        if response.status().is_server_error() {
            tracing::warn!(status, micros, "request failed");
        } else {
            tracing::info!(status, micros, "request");
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// What a panic said, for the log (never for the client).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("a handler panicked: {text}")
}

/// Refuses bodies over the limit with 413 before a handler reads them: by
/// `Content-Length` when there is one (hyper holds the body to it),
/// otherwise by reading at most one byte past the limit. "Otherwise" is not
/// only HTTP/1.1 chunked: an HTTP/2 request carries its length in neither
/// header, so the absence of `Content-Length` is what decides.
async fn limit_body<E: Endpoint>(
    max: usize,
    endpoint: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > max as u64 => return Err(AppError::PayloadTooLarge.into()),
        Some(_) => {}
        None => {
            let mut limited = req.take_body().into_async_read().take(max as u64 + 1);
            let mut buffer = Vec::new();
            limited.read_to_end(&mut buffer).await.map_err(|err| {
                AppError::BadRequest(format!("cannot read the request body: {err}"))
            })?;
            if buffer.len() > max {
                return Err(AppError::PayloadTooLarge.into());
            }
            req.set_body(buffer);
        }
    }
    endpoint.call(req).await.map(IntoResponse::into_response)
}

/// One keyed limiter per surface and one for sign-in, and the bearers that
/// have proven themselves.
struct RateLimits {
    api: DefaultKeyedRateLimiter<String>,
    scim: DefaultKeyedRateLimiter<String>,
    other: DefaultKeyedRateLimiter<String>,
    sign_in: DefaultKeyedRateLimiter<String>,
    proven: Arc<ProvenBearers>,
}

fn quota(per_second: u32, burst: u32) -> Quota {
    // Validated non-zero at start-up; 1 is only a fallback for the types.
    let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

fn quota_per_minute(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl RateLimits {
    fn new(settings: &RateLimitSettings) -> RateLimits {
        RateLimits {
            api: RateLimiter::keyed(quota(settings.api_per_second, settings.api_burst)),
            scim: RateLimiter::keyed(quota(settings.scim_per_second, settings.scim_burst)),
            other: RateLimiter::keyed(quota(settings.other_per_second, settings.other_burst)),
            sign_in: RateLimiter::keyed(quota_per_minute(
                settings.login_per_minute,
                settings.login_burst,
            )),
            proven: Arc::new(ProvenBearers::default()),
        }
    }

    fn for_surface(&self, surface: Surface) -> &DefaultKeyedRateLimiter<String> {
        match surface {
            Surface::Api => &self.api,
            Surface::Scim => &self.scim,
            // The console's pages share the quota of everything else.
            Surface::Console | Surface::Other => &self.other,
        }
    }

    fn forget_idle_keys(&self) {
        for limiter in [&self.api, &self.scim, &self.other, &self.sign_in] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.proven.forget_stale(Instant::now());
    }
}

/// How long a bearer that authenticated keeps a bucket of its own without
/// authenticating again. Each request that authenticates renews it; a token
/// revoked since keeps the one bucket it had until then, never a new one.
const PROVEN_FOR: Duration = Duration::from_secs(10 * 60);
/// Most bearers remembered as proven. Past it a new token is counted under
/// its client's IP until room frees up: stricter, never looser.
const MAX_PROVEN: usize = 100_000;

/// The hashes of bearer secrets that authenticated recently. Only these
/// are counted under their own key: a made-up bearer must not buy a fresh
/// bucket, so anything unproven shares its client IP's.
#[derive(Default)]
struct ProvenBearers {
    seen: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

impl ProvenBearers {
    fn is_proven(&self, hash: &str, now: Instant) -> bool {
        self.seen
            .lock()
            .is_ok_and(|seen| seen.get(hash).is_some_and(|at| now - *at < PROVEN_FOR))
    }

    fn prove(&self, hash: &str, now: Instant) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if let Some(at) = seen.get_mut(hash) {
            *at = now;
            return;
        }
        if seen.len() >= MAX_PROVEN {
            seen.retain(|_, at| now - *at < PROVEN_FOR);
            if seen.len() >= MAX_PROVEN {
                return;
            }
        }
        seen.insert(hash.to_owned(), now);
    }

    fn forget_stale(&self, now: Instant) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|_, at| now - *at < PROVEN_FOR);
            seen.shrink_to_fit();
        }
    }
}

/// Put on a request that carries a bearer; authentication calls
/// [`bearer_proven`] when that bearer turns out to be good.
#[derive(Clone)]
struct PresentedBearer {
    hash: String,
    proven: Arc<ProvenBearers>,
}

/// Tells the rate limiter that the request's bearer authenticated, so that
/// its next requests count under the token's own key instead of its
/// client IP's. Every face that authenticates a bearer calls it on success.
pub fn bearer_proven(req: &Request) {
    if let Some(bearer) = req.extensions().get::<PresentedBearer>() {
        bearer.proven.prove(&bearer.hash, Instant::now());
    }
}

/// Keys that have been quiet long enough to be back at full burst carry no
/// information; dropping them bounds memory however many clients come.
fn spawn_limiter_housekeeping(limits: std::sync::Weak<RateLimits>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match limits.upgrade() {
                Some(limits) => limits.forget_idle_keys(),
                None => break,
            }
        }
    });
}

/// Requests that check a password without a token: counted per client IP
/// under the sign-in quota, whatever bearer they carry.
fn is_sign_in(req: &Request) -> bool {
    let path = req.uri().path();
    req.method() == poem::http::Method::POST
        && (path == "/api/v1/auth/login"
            || path == "/api/v1/auth/login/mfa"
            || path == "/console/sign-in"
            || path == "/console/sign-in/mfa"
            || path.starts_with("/invite/"))
}

/// The client's address (`crate::client_ip`: behind a trusted proxy, the
/// address it forwards).
fn client_ip_key(req: &Request) -> String {
    let ip: Option<IpAddr> = crate::client_ip::of(req);
    format!(
        "ip:{}",
        ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    )
}

/// The hash of the request's bearer secret, if it has one (hashed, so the
/// limiter never holds secrets).
fn bearer_hash(req: &Request) -> Option<String> {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| crate::auth::bearer_secret(Some(value)).ok())
        .filter(|secret| !secret.is_empty())
        .map(|secret| TokenHash::of(secret).as_str().to_owned())
}

/// Charges the request to one bucket: sign-in to its client IP's sign-in
/// bucket; a bearer proven recently to the token's own bucket; anything
/// else (no bearer, or one not proven) to its client IP's bucket.
async fn rate_limit<E: Endpoint>(
    limits: Option<&RateLimits>,
    endpoint: &E,
    mut req: Request,
) -> poem::Result<Response> {
    if let Some(limits) = limits {
        let surface = Surface::of(req.uri().path());
        let bearer = bearer_hash(&req);
        let sign_in = is_sign_in(&req);
        let (limiter, key) = match &bearer {
            _ if sign_in => (&limits.sign_in, client_ip_key(&req)),
            Some(hash) if limits.proven.is_proven(hash, Instant::now()) => {
                (limits.for_surface(surface), format!("token:{hash}"))
            }
            _ => (limits.for_surface(surface), client_ip_key(&req)),
        };
        if let Err(not_until) = limiter.check_key(&key) {
            crate::metrics_export::record_rate_limited(match surface {
                _ if sign_in => "sign_in",
                Surface::Api => "api",
                Surface::Scim => "scim",
                Surface::Console | Surface::Other => "other",
            });
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Ok(surface.render(&AppError::TooManyRequests {
                retry_after_secs: retry_after_secs.max(1),
            }));
        }
        if let Some(hash) = bearer {
            req.extensions_mut().insert(PresentedBearer {
                hash,
                proven: limits.proven.clone(),
            });
        }
    }
    endpoint.call(req).await.map(IntoResponse::into_response)
}

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the database before calling it down.
const READY_PING_TIMEOUT: Duration = Duration::from_secs(2);

#[handler]
async fn readyz(state: poem::web::Data<&AppState>) -> Response {
    let reason = match tokio::time::timeout(READY_PING_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => {
            return Json(serde_json::json!({ "status": "ready" })).into_response();
        }
        Ok(Err(err)) => format!("MongoDB ping failed: {}", summarize_mongo_error(&err)),
        Err(_) => format!(
            "MongoDB did not answer a ping within {} s",
            READY_PING_TIMEOUT.as_secs()
        ),
    };
    let mut response = AppError::Unavailable(reason).problem_response();
    response.set_status(StatusCode::SERVICE_UNAVAILABLE);
    response
}

/// A reason an operator can act on, without credentials from the URI.
fn summarize_mongo_error(err: &mongodb::error::Error) -> String {
    use mongodb::error::ErrorKind;
    match err.kind.as_ref() {
        ErrorKind::ServerSelection { .. } => {
            "no reachable server (server selection timed out)".into()
        }
        ErrorKind::Io(io) => format!("I/O error: {}", io.kind()),
        ErrorKind::Authentication { .. } => "authentication failed".into(),
        ErrorKind::Command(command) => format!("command error {}", command.code_name),
        _ => "unexpected error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_lasts_while_it_is_renewed_and_lapses_without() {
        let proven = ProvenBearers::default();
        let start = Instant::now();
        assert!(!proven.is_proven("abc", start));
        proven.prove("abc", start);
        assert!(proven.is_proven("abc", start + PROVEN_FOR / 2));
        proven.prove("abc", start + PROVEN_FOR / 2);
        assert!(proven.is_proven("abc", start + PROVEN_FOR));
        assert!(!proven.is_proven("abc", start + PROVEN_FOR * 2));
        proven.forget_stale(start + PROVEN_FOR * 2);
        assert!(proven.seen.lock().expect("lock").is_empty());
    }

    #[test]
    fn sign_in_is_told_by_method_and_path() {
        let request = |method: poem::http::Method, path: &str| {
            Request::builder().method(method).uri_str(path).finish()
        };
        assert!(is_sign_in(&request(
            poem::http::Method::POST,
            "/api/v1/auth/login"
        )));
        assert!(is_sign_in(&request(
            poem::http::Method::POST,
            "/invite/mst_inv_x"
        )));
        assert!(!is_sign_in(&request(
            poem::http::Method::GET,
            "/invite/mst_inv_x"
        )));
        assert!(!is_sign_in(&request(
            poem::http::Method::POST,
            "/api/v1/auth/logout"
        )));
        assert!(is_sign_in(&request(
            poem::http::Method::POST,
            "/console/sign-in/mfa"
        )));
        assert!(!is_sign_in(&request(
            poem::http::Method::POST,
            "/console/sign-out"
        )));
    }

    #[test]
    fn console_routes_have_templates_without_ids() {
        assert_eq!(
            route_template("/console/orgs/org_0123/members"),
            "/console/orgs/{org}/members"
        );
        assert_eq!(route_template("/console/sign-in"), "/console/sign-in");
        assert_eq!(route_template("/console/orgs/a/b/members"), "other");
        assert_eq!(route_template("/console/x"), "other");
    }

    #[test]
    fn invitation_secrets_stay_out_of_logs() {
        assert_eq!(
            super::loggable_path("/invite/mst_inv_0123abcd"),
            "/invite/[redacted]"
        );
        assert_eq!(super::loggable_path("/api/v1/me"), "/api/v1/me");
    }
}
