//! Configuration: built-in defaults < `muster.toml` (or `--config`) <
//! `MUSTER_*` environment variables, with `__` separating nested keys
//! (`MUSTER_HTTP__ADDR` sets `http.addr`). Any key can also be read from a
//! file named by `MUSTER_<KEY>_FILE`, which is how container secrets are
//! mounted. An unknown or invalid key stops start-up with its name.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const ENV_PREFIX: &str = "MUSTER_";
/// Names the configuration file; not a key of its own.
pub const CONFIG_PATH_ENV: &str = "MUSTER_CONFIG";
pub const DEFAULT_CONFIG_PATH: &str = "muster.toml";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub mongodb: MongoSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub rate_limit: RateLimitSettings,
    pub auth: AuthSettings,
    pub scim: ScimSettings,
    pub smtp: SmtpSettings,
    pub invitations: InvitationSettings,
    pub jobs: JobSettings,
    pub metrics: MetricsSettings,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// When set, `/metrics` answers only a request bearing this token. A
    /// secret, so `Debug` redacts it (and `MUSTER_METRICS__TOKEN_FILE`
    /// reads it from a file).
    pub token: Option<String>,
    /// When set, `/metrics` is served on this address only (by `muster
    /// serve` and `muster worker` alike), and `http.addr` answers 404 for
    /// it: a port the scraper reaches and the public does not. An empty
    /// value means unset.
    #[serde(deserialize_with = "optional_socket_addr")]
    pub addr: Option<SocketAddr>,
}

impl fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("addr", &self.addr)
            .finish()
    }
}

/// An address and port (`127.0.0.1:9090`, `[::1]:9090`), or nothing when
/// absent or blank: a compose file's `MUSTER_METRICS__ADDR=` means unset.
fn optional_socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    let expected = "must be an address and port such as 127.0.0.1:9090, 0.0.0.0:9090 or [::]:9090";
    match Option::<Written>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Written::Text(text)) if text.trim().is_empty() => Ok(None),
        Some(Written::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{text}` {expected}"))),
        Some(Written::Other(_)) => Err(serde::de::Error::custom(expected)),
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MongoSettings {
    /// May carry credentials, so `Debug` redacts it.
    pub uri: String,
    pub database: String,
    /// How long an operation waits for a usable server before failing.
    pub server_selection_timeout_ms: u64,
    /// How often the driver checks each server; after an outage, how soon
    /// it notices the server is back (the driver's minimum is 500).
    pub heartbeat_ms: u64,
    /// Whether `muster serve` creates missing indexes at start.
    pub migrate_on_start: bool,
}

impl Default for MongoSettings {
    fn default() -> Self {
        Self {
            uri: "mongodb://127.0.0.1:27017/?directConnection=true".into(),
            database: "muster".into(),
            // Short: during an outage a request answers 503 within this,
            // instead of hanging.
            server_selection_timeout_ms: 2_000,
            heartbeat_ms: 1_000,
            migrate_on_start: true,
        }
    }
}

impl fmt::Debug for MongoSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoSettings")
            .field("uri", &"<redacted>")
            .field("database", &self.database)
            .field(
                "server_selection_timeout_ms",
                &self.server_selection_timeout_ms,
            )
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    /// The base of links in mails and of SCIM `meta.location`.
    pub public_url: String,
    /// Requests with larger bodies are answered 413.
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers say
    /// who the client is. Empty: every client is its TCP peer.
    pub trusted_proxies: TrustedProxies,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            shutdown_grace_seconds: 30,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// Address ranges of the reverse proxies in front of Muster (CIDRs such as
/// `10.0.0.0/8`, or single addresses). A request whose TCP peer is in one
/// of them may name its client in a forwarding header; anyone else could
/// write any address there, so nobody else's headers are read.
///
/// Written as a list (`["10.0.0.0/8", "::1/128"]` in the file) or as one
/// comma-separated string, which is how the environment gives it:
/// `MUSTER_HTTP__TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1/32`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Ranges from their written forms; the error names the first entry
    /// that is not a range or an address. Blank entries are skipped, so a
    /// trailing comma or an empty variable means none.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for entry in entries.into_iter().map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let range = match entry.parse::<IpNet>() {
                Ok(range) => range.trunc(),
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(address) => IpNet::from(address),
                    Err(_) => {
                        return Err(format!(
                            "`{entry}` is neither an address range such as 10.0.0.0/8 or \
                             fd00::/8 nor an address such as 127.0.0.1"
                        ));
                    }
                },
            };
            ranges.push(canonical_range(range));
        }
        Ok(TrustedProxies(ranges))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the proxies. An IPv4 address written as
    /// IPv6 (`::ffff:10.0.0.1`, what a dual-stack socket reports) is the
    /// same host as `10.0.0.1` and matches either way it is written.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|range| range.contains(&ip))
    }
}

/// An IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) as the IPv4 range it
/// maps (`10.0.0.0/8`), since addresses are compared in their IPv4 form.
fn canonical_range(range: IpNet) -> IpNet {
    if let IpNet::V6(v6) = range
        && v6.prefix_len() >= 96
        && let IpAddr::V4(network) = IpAddr::V6(v6.network()).to_canonical()
        && let Ok(v4) = ipnet::Ipv4Net::new(network, v6.prefix_len() - 96)
    {
        return IpNet::V4(v4);
    }
    range
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            List(Vec<String>),
            Joined(String),
        }
        let written = Written::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "must be a list of address ranges such as [\"10.0.0.0/8\", \"::1/128\"] \
                 or one comma-separated string such as 10.0.0.0/8,::1/128",
            )
        })?;
        match &written {
            Written::List(entries) => TrustedProxies::parse(entries.iter().map(String::as_str)),
            Written::Joined(joined) => TrustedProxies::parse(joined.split(',')),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `muster=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Management API: sustained requests per second per token that has
    /// authenticated (per client IP for anything else), and the burst
    /// above it.
    pub api_per_second: u32,
    pub api_burst: u32,
    /// SCIM: identity providers push in bursts (Entra ID needs 25/s).
    pub scim_per_second: u32,
    pub scim_burst: u32,
    /// Everything else (health, docs, pages), per client IP.
    pub other_per_second: u32,
    pub other_burst: u32,
    /// Sign-in (`POST /api/v1/auth/login`, the invitation page's form):
    /// per client IP whatever bearer is sent, per minute.
    pub login_per_minute: u32,
    pub login_burst: u32,
    /// Failed sign-ins for one account (the email asked for, known or not)
    /// or from one client IP within the window, after which attempts are
    /// refused for a lockout that doubles with each further failure.
    pub login_failures_per_account: u32,
    pub login_failures_per_ip: u32,
    pub login_failure_window_seconds: u64,
    pub login_lockout_seconds: u64,
    pub login_lockout_max_seconds: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            api_per_second: 50,
            api_burst: 100,
            scim_per_second: 50,
            scim_burst: 200,
            other_per_second: 20,
            other_burst: 50,
            login_per_minute: 30,
            login_burst: 10,
            login_failures_per_account: 5,
            login_failures_per_ip: 50,
            login_failure_window_seconds: 15 * 60,
            login_lockout_seconds: 30,
            login_lockout_max_seconds: 15 * 60,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub session_ttl_hours: u32,
    /// argon2 hashes and verifications that may run at once (each holds
    /// about 19 MiB); 0 means one per core.
    pub password_hash_permits: usize,
    /// How long a request waits for a free permit before it is answered
    /// 503 with `Retry-After`.
    pub password_hash_wait_ms: u64,
    /// The key TOTP secrets are sealed with: 32 bytes in base64. Without
    /// it nobody can turn two-factor authentication on, and the server
    /// refuses to start once any account has. A secret, so `Debug`
    /// redacts it (and `MUSTER_AUTH__MFA_KEY_FILE` reads it from a file).
    pub mfa_key: Option<String>,
    /// How long a bearer token's caller stays cached in memory when no
    /// change says otherwise (this process forgets at once on a change,
    /// others through a change stream); 0 turns the cache off.
    pub cache_ttl_ms: u64,
    /// At most this many cached callers, least recently used out first.
    pub cache_size: usize,
}

impl AuthSettings {
    /// The parsed `mfa_key`, if one is set (checked at load).
    pub fn mfa_key(&self) -> Option<crate::auth::mfa_key::MfaKey> {
        self.mfa_key
            .as_deref()
            .and_then(|key| crate::auth::mfa_key::MfaKey::parse(key).ok())
    }
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("session_ttl_hours", &self.session_ttl_hours)
            .field("password_hash_permits", &self.password_hash_permits)
            .field("password_hash_wait_ms", &self.password_hash_wait_ms)
            .field("mfa_key", &self.mfa_key.as_ref().map(|_| "<redacted>"))
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .field("cache_size", &self.cache_size)
            .finish()
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_ttl_hours: 12,
            password_hash_permits: 0,
            password_hash_wait_ms: 1_000,
            mfa_key: None,
            cache_ttl_ms: 1_000,
            cache_size: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScimSettings {
    /// Most resources one list or search answers; larger `count`s are
    /// clamped to it (advertised as `filter.maxResults`).
    pub max_results: usize,
    /// Most operations in one `/Bulk` request (`bulk.maxOperations`).
    pub bulk_max_operations: usize,
    /// Largest `/Bulk` body in bytes (`bulk.maxPayloadSize`).
    pub bulk_max_payload_bytes: usize,
}

impl Default for ScimSettings {
    fn default() -> Self {
        Self {
            max_results: 1000,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 1024 * 1024,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// The SMTP server as a URL: `smtp://host:port` (plain),
    /// `smtp://host:port?tls=required` (STARTTLS), `smtps://host:port`
    /// (implicit TLS), with credentials as `smtp://user:pass@host:port`.
    /// Unset (or empty): mails are written to `outbox_dir` instead. May
    /// carry a password, so `Debug` redacts it.
    pub url: Option<String>,
    /// The `From` mailbox, e.g. `Muster <muster@example.com>`.
    pub from: String,
    /// Where mails go as `.eml` files when `url` is unset (development).
    pub outbox_dir: String,
    /// Most SMTP connections kept open for reuse.
    pub pool_max_size: u32,
    /// How long connecting, and each reply of the server, may take.
    pub timeout_seconds: u64,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            url: None,
            from: "Muster <muster@localhost>".into(),
            outbox_dir: ".dev/outbox".into(),
            pool_max_size: 4,
            timeout_seconds: 10,
        }
    }
}

impl SmtpSettings {
    /// The SMTP URL, if one is set; an empty or blank value counts as
    /// unset, so `MUSTER_SMTP__URL=` in a compose file selects the outbox.
    pub fn url(&self) -> Option<&str> {
        self.url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("outbox_dir", &self.outbox_dir)
            .field("pool_max_size", &self.pool_max_size)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvitationSettings {
    /// Most invitations one organization may send in any hour.
    pub max_per_org_per_hour: u32,
}

impl Default for InvitationSettings {
    fn default() -> Self {
        Self {
            max_per_org_per_hour: 500,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// Invitation mails one worker process sends at a time.
    pub concurrency: u32,
    /// How long a claimed job belongs to its worker without a heartbeat:
    /// after a worker crashes, the wait before another one takes its jobs
    /// over. Heartbeats come every third of it.
    pub lease_seconds: u64,
    /// How often an idle worker looks for due jobs when no change stream
    /// wakes it (and for retries whose backoff has passed).
    pub poll_interval_seconds: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            lease_seconds: 60,
            poll_interval_seconds: 5,
        }
    }
}

/// A configuration that cannot be used, with the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Figment(String),
    #[error("invalid configuration: key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("invalid configuration: cannot read `{var}` ({path}): {reason}")]
    SecretFile {
        var: String,
        path: String,
        reason: String,
    },
    #[error("invalid configuration: cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
}

impl Settings {
    /// Loads the layers from the process environment. `config_path` is the
    /// `--config` flag; without it `MUSTER_CONFIG` or `./muster.toml` is
    /// used if present. A file named explicitly must exist.
    pub fn load(config_path: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(config_path, std::env::vars())
    }

    /// Like `load`, with the environment given (for tests and tools).
    pub fn load_from(
        config_path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        let explicit = config_path.map(Path::to_path_buf).or_else(|| {
            env.iter()
                .find(|(name, _)| name == CONFIG_PATH_ENV)
                .map(|(_, value)| PathBuf::from(value))
        });
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match explicit {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::File {
                        path: path.display().to_string(),
                        reason: "no such file".into(),
                    });
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_PATH));
            }
            None => {}
        }
        figment = figment.merge(EnvLayer::from_vars(&env)?);
        let settings: Settings = figment.extract().map_err(describe_figment_error)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        if !(self.mongodb.uri.starts_with("mongodb://")
            || self.mongodb.uri.starts_with("mongodb+srv://"))
        {
            return Err(invalid(
                "mongodb.uri",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        if self.mongodb.database.is_empty()
            || self.mongodb.database.len() > 63
            || self
                .mongodb
                .database
                .chars()
                .any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'))
        {
            return Err(invalid(
                "mongodb.database",
                "must be 1 to 63 characters without / \\ . space \" $",
            ));
        }
        if self
            .metrics
            .token
            .as_deref()
            .is_some_and(|token| token.trim().is_empty())
        {
            return Err(invalid(
                "metrics.token",
                "must not be empty (leave it unset to serve /metrics without a token)",
            ));
        }
        if self.metrics.addr.is_some_and(|addr| addr == self.http.addr) {
            return Err(invalid(
                "metrics.addr",
                "must differ from http.addr (leave it unset to serve /metrics on http.addr)",
            ));
        }
        if self.auth.cache_size == 0 || self.auth.cache_size > 1_000_000 {
            return Err(invalid("auth.cache_size", "must be 1 to 1000000"));
        }
        if self.auth.cache_ttl_ms > 60_000 {
            return Err(invalid(
                "auth.cache_ttl_ms",
                "must be at most 60000 (0 turns the cache off)",
            ));
        }
        if let Some(key) = &self.auth.mfa_key
            && let Err(err) = crate::auth::mfa_key::MfaKey::parse(key)
        {
            return Err(invalid("auth.mfa_key", &err.to_string()));
        }
        if self.mongodb.heartbeat_ms < 500 {
            return Err(invalid(
                "mongodb.heartbeat_ms",
                "must be at least 500 (the MongoDB driver's minimum)",
            ));
        }
        if self.mongodb.server_selection_timeout_ms == 0 {
            return Err(invalid(
                "mongodb.server_selection_timeout_ms",
                "must be at least 1",
            ));
        }
        let public_url = &self.http.public_url;
        let rest = public_url
            .strip_prefix("http://")
            .or_else(|| public_url.strip_prefix("https://"));
        if !rest.is_some_and(|host| !host.is_empty() && !host.contains(char::is_whitespace)) {
            return Err(invalid(
                "http.public_url",
                "must be an absolute http:// or https:// URL such as https://muster.example.com",
            ));
        }
        if self.http.max_body_bytes < 1024 {
            return Err(invalid("http.max_body_bytes", "must be at least 1024"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                "is not a valid filter such as `info` or `muster=debug`",
            ));
        }
        let limits = &self.rate_limit;
        for (key, value) in [
            ("rate_limit.api_per_second", limits.api_per_second),
            ("rate_limit.api_burst", limits.api_burst),
            ("rate_limit.scim_per_second", limits.scim_per_second),
            ("rate_limit.scim_burst", limits.scim_burst),
            ("rate_limit.other_per_second", limits.other_per_second),
            ("rate_limit.other_burst", limits.other_burst),
            ("rate_limit.login_per_minute", limits.login_per_minute),
            ("rate_limit.login_burst", limits.login_burst),
            (
                "rate_limit.login_failures_per_account",
                limits.login_failures_per_account,
            ),
            (
                "rate_limit.login_failures_per_ip",
                limits.login_failures_per_ip,
            ),
        ] {
            if value == 0 {
                return Err(invalid(
                    key,
                    "must be at least 1 (set rate_limit.enabled = false to turn limits off)",
                ));
            }
        }
        for (key, value) in [
            (
                "rate_limit.login_failure_window_seconds",
                limits.login_failure_window_seconds,
            ),
            (
                "rate_limit.login_lockout_seconds",
                limits.login_lockout_seconds,
            ),
            (
                "rate_limit.login_lockout_max_seconds",
                limits.login_lockout_max_seconds,
            ),
        ] {
            if !(1..=86_400 * 7).contains(&value) {
                return Err(invalid(key, "must be between 1 and 604800 (a week)"));
            }
        }
        if limits.login_lockout_max_seconds < limits.login_lockout_seconds {
            return Err(invalid(
                "rate_limit.login_lockout_max_seconds",
                "must be at least rate_limit.login_lockout_seconds",
            ));
        }
        if self.scim.max_results == 0 {
            return Err(invalid("scim.max_results", "must be at least 1"));
        }
        if self.scim.bulk_max_operations == 0 {
            return Err(invalid("scim.bulk_max_operations", "must be at least 1"));
        }
        if self.scim.bulk_max_payload_bytes > self.http.max_body_bytes {
            return Err(invalid(
                "scim.bulk_max_payload_bytes",
                "must not exceed http.max_body_bytes, which every request is held to",
            ));
        }
        if self.auth.session_ttl_hours == 0 {
            return Err(invalid("auth.session_ttl_hours", "must be at least 1"));
        }
        if self.auth.password_hash_permits > 1024 {
            return Err(invalid(
                "auth.password_hash_permits",
                "must be between 0 (one per core) and 1024",
            ));
        }
        if self.auth.password_hash_wait_ms > 60_000 {
            return Err(invalid(
                "auth.password_hash_wait_ms",
                "must be at most 60000",
            ));
        }
        if let Some(url) = self.smtp.url() {
            // The transport's own parser, so what passes here is what the
            // mailer accepts. Its message never quotes the URL (no password
            // leaks into the error), only the part it could not use.
            if let Err(err) = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url) {
                return Err(ConfigError::Invalid {
                    key: "smtp.url",
                    reason: format!(
                        "must be a URL such as smtp://host:587?tls=required, \
                         smtps://user:password@host:465 or smtp://localhost:25 ({err})"
                    ),
                });
            }
        }
        if let Err(err) = self.smtp.from.parse::<lettre::message::Mailbox>() {
            return Err(ConfigError::Invalid {
                key: "smtp.from",
                reason: format!(
                    "must be a mailbox such as `Muster <muster@example.com>` or \
                     `muster@example.com` ({err})"
                ),
            });
        }
        if self.smtp.pool_max_size == 0 {
            return Err(invalid("smtp.pool_max_size", "must be at least 1"));
        }
        if self.smtp.timeout_seconds == 0 {
            return Err(invalid("smtp.timeout_seconds", "must be at least 1"));
        }
        if self.invitations.max_per_org_per_hour == 0 {
            return Err(invalid(
                "invitations.max_per_org_per_hour",
                "must be at least 1",
            ));
        }
        if !(1..=256).contains(&self.jobs.concurrency) {
            return Err(invalid("jobs.concurrency", "must be between 1 and 256"));
        }
        // A heartbeat every third of the lease must come round at least
        // once a second.
        if !(3..=86_400).contains(&self.jobs.lease_seconds) {
            return Err(invalid("jobs.lease_seconds", "must be between 3 and 86400"));
        }
        if !(1..=3_600).contains(&self.jobs.poll_interval_seconds) {
            return Err(invalid(
                "jobs.poll_interval_seconds",
                "must be between 1 and 3600",
            ));
        }
        Ok(())
    }

    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> &str {
        self.http.public_url.trim_end_matches('/')
    }
}

/// The `MUSTER_*` layer. Built from the variables given rather than from
/// figment's `Env`, which reads the process environment itself and so
/// cannot be tested without mutating it.
struct EnvLayer {
    /// (dotted key, value) pairs, in the order given.
    values: Vec<(String, Value)>,
}

impl EnvLayer {
    /// `MUSTER_HTTP__ADDR=x` sets `http.addr` to `x` parsed like TOML
    /// scalars; `MUSTER_SMTP__URL_FILE=/run/secrets/smtp` sets `smtp.url` to
    /// the file's content, verbatim. `MUSTER_CONFIG` is not a key.
    fn from_vars(env: &[(String, String)]) -> Result<EnvLayer, ConfigError> {
        let mut values = Vec::new();
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name == CONFIG_PATH_ENV || rest.is_empty() {
                continue;
            }
            if let Some(key) = rest.strip_suffix("_FILE") {
                let secret =
                    std::fs::read_to_string(raw).map_err(|err| ConfigError::SecretFile {
                        var: name.clone(),
                        path: raw.clone(),
                        reason: err.to_string(),
                    })?;
                let secret = secret.trim_end_matches(['\r', '\n']).to_owned();
                values.push((dotted_key(key), Value::from(secret)));
            } else {
                let value = raw.parse::<Value>().unwrap_or_else(|never| match never {});
                values.push((dotted_key(rest), value));
            }
        }
        Ok(EnvLayer { values })
    }
}

fn insert_dotted(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_dotted(inner, rest, value);
            }
        }
    }
}

fn dotted_key(var_suffix: &str) -> String {
    var_suffix.to_ascii_lowercase().replace("__", ".")
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.values {
            insert_dotted(&mut dict, key, value.clone());
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn describe_figment_error(err: figment::Error) -> ConfigError {
    let mut messages = Vec::new();
    for error in err {
        let key = error.path.join(".");
        let source = match error.metadata.as_ref() {
            Some(meta) if meta.name == "environment" && !key.is_empty() => {
                format!(
                    " (from {ENV_PREFIX}{})",
                    error.path.join("__").to_ascii_uppercase()
                )
            }
            Some(meta) => match &meta.source {
                Some(source) => format!(" (from {} {source})", meta.name),
                None => format!(" (from {})", meta.name),
            },
            None => String::new(),
        };
        let kind = error.kind.to_string();
        messages.push(if key.is_empty() {
            format!("{kind}{source}")
        } else {
            format!("key `{key}`: {kind}{source}")
        });
    }
    ConfigError::Figment(messages.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let missing = Path::new("/nonexistent-muster-dir/none.toml");
        // An explicit missing file is an error, so tests point at an empty one.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("muster.toml");
        std::fs::write(&path, "").expect("write");
        assert!(!missing.exists());
        Settings::load_from(Some(&path), env(vars))
    }

    #[test]
    fn defaults_suit_local_development() {
        let settings = load(&[]).expect("defaults");
        assert_eq!(settings.http.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.log.format, LogFormat::Text);
        assert_eq!(settings.mongodb.database, "muster");
        assert_eq!(settings.smtp.url(), None);
        assert_eq!(settings.smtp.from, "Muster <muster@localhost>");
        assert_eq!(settings.smtp.outbox_dir, ".dev/outbox");
        assert_eq!(settings.smtp.pool_max_size, 4);
        assert_eq!(settings.smtp.timeout_seconds, 10);
        assert_eq!(settings.invitations.max_per_org_per_hour, 500);
        assert_eq!(settings.jobs.concurrency, 8);
        assert_eq!(settings.jobs.lease_seconds, 60);
        assert_eq!(settings.jobs.poll_interval_seconds, 5);
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let settings = load(&[
            ("MUSTER_HTTP__ADDR", "0.0.0.0:9000"),
            ("MUSTER_MONGODB__DATABASE", "prod"),
            ("MUSTER_LOG__FORMAT", "json"),
            ("MUSTER_HTTP__PUBLIC_URL", "https://muster.example.com/"),
        ])
        .expect("valid");
        assert_eq!(settings.http.addr.to_string(), "0.0.0.0:9000");
        assert_eq!(settings.mongodb.database, "prod");
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(settings.public_url(), "https://muster.example.com");
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("uri");
        std::fs::write(&secret, "mongodb://secret-host:27017/\n").expect("write");
        let path = secret.to_string_lossy().to_string();
        let settings = load(&[("MUSTER_MONGODB__URI_FILE", &path)]).expect("valid");
        assert_eq!(settings.mongodb.uri, "mongodb://secret-host:27017/");
    }

    #[test]
    fn an_unreadable_secret_file_names_the_variable() {
        let err =
            load(&[("MUSTER_MONGODB__URI_FILE", "/nonexistent/secret")]).expect_err("invalid");
        assert!(
            err.to_string().contains("MUSTER_MONGODB__URI_FILE"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = load(&[("MUSTER_HTTP__ADR", "x")]).expect_err("unknown key");
        assert!(err.to_string().contains("adr"), "{err}");
        let err = load(&[("MUSTER_NOPE", "x")]).expect_err("unknown section");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn invalid_values_are_named() {
        for (var, value, key) in [
            ("MUSTER_HTTP__ADDR", "not-an-address", "http.addr"),
            ("MUSTER_LOG__FORMAT", "xml", "log.format"),
            (
                "MUSTER_HTTP__PUBLIC_URL",
                "muster.example.com",
                "http.public_url",
            ),
            ("MUSTER_MONGODB__URI", "postgres://x", "mongodb.uri"),
            (
                "MUSTER_RATE_LIMIT__API_PER_SECOND",
                "0",
                "rate_limit.api_per_second",
            ),
            (
                "MUSTER_RATE_LIMIT__LOGIN_PER_MINUTE",
                "0",
                "rate_limit.login_per_minute",
            ),
            (
                "MUSTER_RATE_LIMIT__LOGIN_FAILURES_PER_ACCOUNT",
                "0",
                "rate_limit.login_failures_per_account",
            ),
            (
                "MUSTER_RATE_LIMIT__LOGIN_LOCKOUT_MAX_SECONDS",
                "10",
                "rate_limit.login_lockout_max_seconds",
            ),
            (
                "MUSTER_AUTH__PASSWORD_HASH_PERMITS",
                "5000",
                "auth.password_hash_permits",
            ),
            (
                "MUSTER_AUTH__PASSWORD_HASH_WAIT_MS",
                "600000",
                "auth.password_hash_wait_ms",
            ),
            ("MUSTER_SMTP__URL", "mail.example.com:587", "smtp.url"),
            ("MUSTER_SMTP__URL", "http://mail.example.com", "smtp.url"),
            (
                "MUSTER_SMTP__URL",
                "smtp://host:25?tls=sometimes",
                "smtp.url",
            ),
            ("MUSTER_SMTP__FROM", "not a mailbox", "smtp.from"),
            ("MUSTER_SMTP__FROM", "Muster <muster@>", "smtp.from"),
            ("MUSTER_SMTP__POOL_MAX_SIZE", "0", "smtp.pool_max_size"),
            ("MUSTER_SMTP__TIMEOUT_SECONDS", "0", "smtp.timeout_seconds"),
            (
                "MUSTER_INVITATIONS__MAX_PER_ORG_PER_HOUR",
                "0",
                "invitations.max_per_org_per_hour",
            ),
            ("MUSTER_JOBS__CONCURRENCY", "0", "jobs.concurrency"),
            ("MUSTER_JOBS__LEASE_SECONDS", "2", "jobs.lease_seconds"),
            (
                "MUSTER_JOBS__POLL_INTERVAL_SECONDS",
                "0",
                "jobs.poll_interval_seconds",
            ),
            ("MUSTER_METRICS__ADDR", "localhost", "metrics.addr"),
            ("MUSTER_METRICS__ADDR", "127.0.0.1", "metrics.addr"),
            ("MUSTER_METRICS__ADDR", "9090", "metrics.addr"),
            ("MUSTER_METRICS__ADDR", "127.0.0.1:8080", "metrics.addr"),
        ] {
            let err = load(&[(var, value)]).expect_err(var);
            assert!(err.to_string().contains(key), "{var}: {err}");
        }
    }

    #[test]
    fn metrics_addr_is_an_address_or_unset() {
        assert_eq!(load(&[]).expect("defaults").metrics.addr, None);
        assert_eq!(
            load(&[("MUSTER_METRICS__ADDR", "")])
                .expect("empty")
                .metrics
                .addr,
            None
        );
        for (value, expected) in [
            ("0.0.0.0:9090", "0.0.0.0:9090"),
            ("[::1]:9464", "[::1]:9464"),
            (" 127.0.0.1:9090 ", "127.0.0.1:9090"),
        ] {
            let settings = load(&[("MUSTER_METRICS__ADDR", value)]).expect(value);
            assert_eq!(
                settings
                    .metrics
                    .addr
                    .map(|addr| addr.to_string())
                    .as_deref(),
                Some(expected)
            );
        }
        let err = load(&[("MUSTER_METRICS__ADDR", "metrics.internal:9090")]).expect_err("a name");
        let message = err.to_string();
        assert!(message.contains("metrics.addr"), "{message}");
        assert!(message.contains("MUSTER_METRICS__ADDR"), "{message}");
    }

    #[test]
    fn the_file_layer_sits_between_defaults_and_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("muster.toml");
        std::fs::write(
            &path,
            "[http]\naddr = \"127.0.0.1:7000\"\n[mongodb]\ndatabase = \"fromfile\"\n",
        )
        .expect("write");
        let settings =
            Settings::load_from(Some(&path), env(&[("MUSTER_MONGODB__DATABASE", "fromenv")]))
                .expect("valid");
        assert_eq!(settings.http.addr.to_string(), "127.0.0.1:7000");
        assert_eq!(settings.mongodb.database, "fromenv");
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let err = Settings::load_from(Some(Path::new("/nonexistent/muster.toml")), env(&[]))
            .expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/muster.toml"),
            "{err}"
        );
    }

    #[test]
    fn the_uri_is_redacted_in_debug() {
        let mut settings = Settings::default();
        settings.mongodb.uri = "mongodb://user:hunter2@host/".into();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn the_example_file_sets_every_key_to_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("muster.toml.example");
        let settings = Settings::load_from(Some(&path), env(&[])).expect("valid");
        let as_json = |settings: &Settings| serde_json::to_value(settings).expect("json");
        assert_eq!(as_json(&settings), as_json(&Settings::default()));
    }

    #[test]
    fn the_example_file_names_every_key() {
        fn keys(value: &serde_json::Value, prefix: &str, into: &mut Vec<String>) {
            if let serde_json::Value::Object(fields) = value {
                for (name, field) in fields {
                    keys(field, &format!("{prefix}{name}."), into);
                }
            } else if !value.is_null() {
                into.push(prefix.trim_end_matches('.').to_owned());
            }
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("muster.toml.example");
        let written: serde_json::Value = Figment::from(Toml::file_exact(path))
            .extract()
            .expect("the example file");
        let (mut expected, mut found) = (Vec::new(), Vec::new());
        keys(
            &serde_json::to_value(Settings::default()).expect("json"),
            "",
            &mut expected,
        );
        keys(&written, "", &mut found);
        let missing: Vec<&String> = expected.iter().filter(|k| !found.contains(k)).collect();
        assert!(missing.is_empty(), "muster.toml.example lacks {missing:?}");
    }

    #[test]
    fn smtp_settings_come_from_the_environment() {
        let settings = load(&[
            (
                "MUSTER_SMTP__URL",
                "smtp://mail.example.com:587?tls=required",
            ),
            ("MUSTER_SMTP__FROM", "Acme Access <access@acme.example>"),
            ("MUSTER_SMTP__OUTBOX_DIR", "/tmp/muster-outbox"),
            ("MUSTER_SMTP__POOL_MAX_SIZE", "8"),
            ("MUSTER_SMTP__TIMEOUT_SECONDS", "30"),
            ("MUSTER_INVITATIONS__MAX_PER_ORG_PER_HOUR", "20"),
            ("MUSTER_JOBS__CONCURRENCY", "2"),
            ("MUSTER_JOBS__LEASE_SECONDS", "30"),
            ("MUSTER_JOBS__POLL_INTERVAL_SECONDS", "1"),
        ])
        .expect("valid");
        assert_eq!(
            settings.smtp.url(),
            Some("smtp://mail.example.com:587?tls=required")
        );
        assert_eq!(settings.smtp.from, "Acme Access <access@acme.example>");
        assert_eq!(settings.smtp.outbox_dir, "/tmp/muster-outbox");
        assert_eq!(settings.smtp.pool_max_size, 8);
        assert_eq!(settings.smtp.timeout_seconds, 30);
        assert_eq!(settings.invitations.max_per_org_per_hour, 20);
        assert_eq!(settings.jobs.concurrency, 2);
        assert_eq!(settings.jobs.lease_seconds, 30);
        assert_eq!(settings.jobs.poll_interval_seconds, 1);
    }

    #[test]
    fn every_documented_smtp_url_form_is_accepted() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.com:587?tls=required",
            "smtp://mail.example.com?tls=opportunistic",
            "smtps://mail.example.com:465",
            "smtps://user%40example.com:p%40ss@mail.example.com",
            "smtp://user:pass@mail.example.com:587?tls=required",
        ] {
            let settings = load(&[("MUSTER_SMTP__URL", url)]).expect(url);
            assert_eq!(settings.smtp.url(), Some(url));
        }
    }

    #[test]
    fn an_empty_smtp_url_means_the_outbox() {
        let settings = load(&[("MUSTER_SMTP__URL", "")]).expect("valid");
        assert_eq!(settings.smtp.url(), None);
    }

    #[test]
    fn the_smtp_url_comes_from_a_secret_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("smtp");
        std::fs::write(&secret, "smtps://mailer:hunter2@mail.example.com:465\n").expect("write");
        let path = secret.to_string_lossy().to_string();
        let settings = load(&[("MUSTER_SMTP__URL_FILE", &path)]).expect("valid");
        assert_eq!(
            settings.smtp.url(),
            Some("smtps://mailer:hunter2@mail.example.com:465")
        );
    }

    #[test]
    fn an_invalid_smtp_url_is_named_without_its_password() {
        let err = load(&[(
            "MUSTER_SMTP__URL",
            "smtp://mailer:hunter2@host:25?tls=bogus",
        )])
        .expect_err("invalid");
        let message = err.to_string();
        assert!(message.contains("smtp.url"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn an_invalid_from_is_named() {
        let err = load(&[("MUSTER_SMTP__FROM", "Muster muster.example.com")]).expect_err("invalid");
        assert!(err.to_string().contains("smtp.from"), "{err}");
    }

    #[test]
    fn trusted_proxies_come_from_the_environment_as_a_list_or_joined() {
        for value in [
            "10.0.0.0/8,127.0.0.1/32, ::1/128",
            "[10.0.0.0/8, 127.0.0.1/32, \"::1/128\"]",
        ] {
            let settings = load(&[("MUSTER_HTTP__TRUSTED_PROXIES", value)]).expect(value);
            let proxies = &settings.http.trusted_proxies;
            assert_eq!(
                serde_json::to_value(proxies).expect("json"),
                serde_json::json!(["10.0.0.0/8", "127.0.0.1/32", "::1/128"]),
                "{value}"
            );
        }
        let none = load(&[("MUSTER_HTTP__TRUSTED_PROXIES", "")]).expect("empty");
        assert!(none.http.trusted_proxies.is_empty());
        assert!(load(&[]).expect("defaults").http.trusted_proxies.is_empty());
    }

    #[test]
    fn trusted_proxies_come_from_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("muster.toml");
        std::fs::write(
            &path,
            "[http]\ntrusted_proxies = [\"10.1.2.3/8\", \"192.0.2.1\", \"fd00::/8\"]\n",
        )
        .expect("write");
        let settings = Settings::load_from(Some(&path), env(&[])).expect("valid");
        assert_eq!(
            serde_json::to_value(&settings.http.trusted_proxies).expect("json"),
            // Host bits are dropped; a lone address is a range of one.
            serde_json::json!(["10.0.0.0/8", "192.0.2.1/32", "fd00::/8"])
        );
    }

    #[test]
    fn a_bad_trusted_proxy_is_named() {
        for value in [
            "10.0.0.0/33",
            "10.0.0.0/8,proxy.internal",
            "::1/129",
            "10.0.0/8",
        ] {
            let err = load(&[("MUSTER_HTTP__TRUSTED_PROXIES", value)]).expect_err(value);
            let message = err.to_string();
            assert!(
                message.contains("http.trusted_proxies"),
                "{value}: {message}"
            );
            assert!(
                message.contains("MUSTER_HTTP__TRUSTED_PROXIES"),
                "{value}: {message}"
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("muster.toml");
        std::fs::write(&path, "[http]\ntrusted_proxies = [\"10.0.0.0/8\", 7]\n").expect("write");
        let err = Settings::load_from(Some(&path), env(&[])).expect_err("not a string");
        assert!(err.to_string().contains("http.trusted_proxies"), "{err}");
    }

    #[test]
    fn trusted_proxies_match_v4_hosts_however_they_are_written() {
        let proxies =
            TrustedProxies::parse(["10.0.0.0/8", "::1", "::ffff:192.0.2.0/120"]).expect("valid");
        let ip = |text: &str| text.parse::<IpAddr>().expect(text);
        assert!(proxies.contains(ip("10.20.30.40")));
        assert!(proxies.contains(ip("::ffff:10.20.30.40")));
        assert!(proxies.contains(ip("::1")));
        assert!(proxies.contains(ip("192.0.2.7")));
        assert!(proxies.contains(ip("::ffff:192.0.2.7")));
        assert!(!proxies.contains(ip("11.0.0.1")));
        assert!(!proxies.contains(ip("::2")));
        assert!(!proxies.contains(ip("127.0.0.1")));
        assert!(!TrustedProxies::default().contains(ip("127.0.0.1")));
    }

    #[test]
    fn the_smtp_url_is_redacted_in_debug() {
        let mut settings = Settings::default();
        settings.smtp.url = Some("smtps://mailer:hunter2@mail.example.com".into());
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("mail.example.com"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}
