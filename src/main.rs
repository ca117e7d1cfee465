//! The `muster` command.

// A panic drops the connection without an answer (and, in /Bulk, after
// earlier operations committed): code that serves requests returns errors
// instead. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use muster::bootstrap::{BootstrapInput, bootstrap_named};
use muster::config::Settings;
use muster::state::AppState;
use muster::store::Store;
use muster::{api, http, jobs, telemetry, token_cli};

mod health;

#[derive(Parser)]
#[command(
    name = "muster",
    version,
    about = "SCIM 2.0 server and management API for multi-tenant user provisioning"
)]
struct Cli {
    /// Configuration file (default: ./muster.toml if present; also MUSTER_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the SCIM and management APIs (runs migrations first unless disabled).
    Serve {
        /// Do not create missing indexes at start (also `mongodb.migrate_on_start = false`).
        #[arg(long)]
        no_migrate: bool,
        /// Do not run the background jobs (invitation mails, expiry) in this
        /// process; run `muster worker` elsewhere.
        #[arg(long)]
        no_worker: bool,
    },
    /// Run the background jobs only (invitation mails, expiry sweeps); any
    /// number of workers may run together.
    Worker,
    /// Create every collection's indexes; safe to run any number of times.
    Migrate,
    /// Create an organization with its owner, an owner API token and a SCIM token.
    Bootstrap {
        #[arg(long, value_name = "NAME")]
        org_name: String,
        #[arg(long, value_name = "EMAIL")]
        owner_email: String,
        /// Sets the owner's password if the account is new (at least 10 characters).
        #[arg(long, value_name = "PASSWORD")]
        owner_password: Option<String>,
        /// The owner's given and family name ("Ada Lovelace"), which identity
        /// providers such as Okta require when they import users.
        #[arg(long, value_name = "NAME")]
        owner_name: Option<String>,
        /// Print exactly one JSON object: org_id, owner_account_id, owner_token, scim_token.
        #[arg(long)]
        json: bool,
    },
    /// Print the management API's OpenAPI document.
    Openapi,
    /// Create, list and revoke tokens without a browser (audited as the
    /// system).
    Token {
        #[command(subcommand)]
        kind: TokenCommand,
    },
    /// Exit 0 if the server answers `/healthz` with 200 within 2 s, 1
    /// otherwise: the container image's health check (the slim image has
    /// no curl). Asks `http.addr`, or 127.0.0.1 on its port when it listens
    /// on every address.
    Health {
        /// Probe this base URL instead (http only), e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// An organization's SCIM tokens (identity providers).
    Scim {
        #[command(subcommand)]
        action: ScimTokenAction,
    },
    /// An account's personal API tokens.
    Personal {
        #[command(subcommand)]
        action: PersonalTokenAction,
    },
}

#[derive(Subcommand)]
enum PersonalTokenAction {
    /// Issue a personal token for an account in one of its organizations
    /// (its role there must allow tokens); the secret is printed this once.
    Create {
        /// The account's email.
        #[arg(long, value_name = "EMAIL")]
        account: String,
        #[arg(long, value_name = "ORG_ID")]
        org: String,
        #[arg(long, value_name = "NAME")]
        name: String,
        /// When the token stops working (RFC 3339); never when omitted.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Print exactly one JSON object, with the secret as `token`.
        #[arg(long)]
        json: bool,
    },
    /// List an account's personal tokens (never their secrets).
    List {
        #[arg(long, value_name = "EMAIL")]
        account: String,
        /// Only the tokens for this organization.
        #[arg(long, value_name = "ORG_ID")]
        org: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one of an account's personal tokens: it gets 401 at once.
    Revoke {
        #[arg(long, value_name = "EMAIL")]
        account: String,
        #[arg(long, value_name = "TOKEN_ID")]
        id: String,
    },
}

#[derive(Subcommand)]
enum ScimTokenAction {
    /// Issue a SCIM token; its secret is printed this once.
    Create {
        #[arg(long, value_name = "ORG_ID")]
        org: String,
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Let the identity provider add and remove owners.
        #[arg(long)]
        allow_owner_changes: bool,
        /// When the token stops working (RFC 3339); never when omitted.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Print exactly one JSON object, with the secret as `token`.
        #[arg(long)]
        json: bool,
    },
    /// List an organization's SCIM tokens (never their secrets).
    List {
        #[arg(long, value_name = "ORG_ID")]
        org: String,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a SCIM token: the identity provider using it gets 401 at once.
    Revoke {
        #[arg(long, value_name = "ORG_ID")]
        org: String,
        #[arg(long, value_name = "TOKEN_ID")]
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        println!("{}", api::spec_json());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&settings.log);
    if let Command::Health { url } = &cli.command {
        return health::probe(url.as_deref(), settings.http.addr);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    let store = Store::connect(&settings.mongodb).await?;
    match command {
        Command::Serve {
            no_migrate,
            no_worker,
        } => {
            if settings.mongodb.migrate_on_start && !no_migrate {
                store.migrate().await?;
                tracing::info!("indexes are up to date");
            }
            // Without the key, every account with a second factor would
            // be locked out at its next sign-in: refuse to start instead.
            if settings.auth.mfa_key.is_none()
                && muster::store::accounts::any_with_mfa(&store).await?
            {
                anyhow::bail!(
                    "auth.mfa_key is not set, and accounts have two-factor authentication on: \
                     set MUSTER_AUTH__MFA_KEY (or MUSTER_AUTH__MFA_KEY_FILE) to the key they \
                     enrolled under"
                );
            }
            // Before anything records, the worker included.
            muster::metrics_export::init();
            let addr = settings.http.addr;
            let acceptor = bind(addr, "http.addr").await?;
            let local = local_addr(&acceptor, addr);
            tracing::info!(addr = %local, public_url = settings.public_url(), "listening");
            let metrics_acceptor = match settings.metrics.addr {
                Some(addr) => Some(bind(addr, "metrics.addr").await?),
                None => None,
            };
            let cache_on = settings.auth.cache_ttl_ms > 0;
            let state = AppState::new(store, settings);
            let stopping = Stopping::on_signal();
            let metrics =
                metrics_acceptor.map(|acceptor| serve_metrics(acceptor, &state, &stopping));
            // Other servers' revocations reach this one's token cache
            // through the database's change stream.
            let watcher = cache_on.then(|| {
                tokio::spawn(muster::store::token_cache::watch(
                    state.store().clone(),
                    stopping.wait(),
                ))
            });
            let worker = (!no_worker).then(|| {
                let state = state.clone();
                let stopped = stopping.wait();
                tokio::spawn(async move { jobs::run(state, stopped).await })
            });
            http::serve(acceptor, state, stopping.wait()).await?;
            if let Some(worker) = worker {
                worker.await??;
            }
            if let Some(metrics) = metrics {
                metrics.await??;
            }
            if let Some(watcher) = watcher {
                watcher.await?;
            }
            tracing::info!("stopped");
        }
        Command::Worker => {
            if settings.mongodb.migrate_on_start {
                store.migrate().await?;
            }
            // A worker has no other listener: with `metrics.addr` it serves
            // its own counters (jobs, mails) and the queues' figures there.
            let metrics_acceptor = match settings.metrics.addr {
                Some(addr) => {
                    muster::metrics_export::init();
                    Some(bind(addr, "metrics.addr").await?)
                }
                None => None,
            };
            tracing::info!("running background jobs");
            let state = AppState::new(store, settings);
            let stopping = Stopping::on_signal();
            let metrics =
                metrics_acceptor.map(|acceptor| serve_metrics(acceptor, &state, &stopping));
            jobs::run(state, stopping.wait()).await?;
            if let Some(metrics) = metrics {
                metrics.await??;
            }
            tracing::info!("stopped");
        }
        Command::Migrate => {
            store.migrate().await?;
            eprintln!(
                "indexes are up to date in database {:?}",
                settings.mongodb.database
            );
        }
        Command::Bootstrap {
            org_name,
            owner_email,
            owner_password,
            owner_name,
            json,
        } => {
            store.migrate().await?;
            let output = bootstrap_named(
                &store,
                chrono::Utc::now(),
                BootstrapInput {
                    org_name,
                    owner_email,
                    owner_password,
                },
                owner_name,
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string(&output)?);
            } else {
                println!("organization:     {}", output.org_id);
                println!("owner account:    {}", output.owner_account_id);
                println!("owner API token:  {}", output.owner_token);
                println!("SCIM token:       {}", output.scim_token);
                println!("(the tokens are shown only now; store them safely)");
            }
            if !output.account_created {
                eprintln!("note: the owner email already had an account; it was linked unchanged");
            }
        }
        Command::Token {
            kind: TokenCommand::Scim { action },
        } => scim_token(&store, action).await?,
        Command::Token {
            kind: TokenCommand::Personal { action },
        } => personal_token(&store, action).await?,
        Command::Openapi | Command::Health { .. } => {
            unreachable!("handled before the database is reached")
        }
    }
    Ok(())
}

/// Listens on `addr`; the error names the configuration key.
async fn bind(
    addr: std::net::SocketAddr,
    key: &str,
) -> anyhow::Result<impl poem::listener::Acceptor + 'static> {
    poem::listener::Listener::into_acceptor(poem::listener::TcpListener::bind(addr))
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen on {addr} ({key}): {err}"))
}

fn local_addr(
    acceptor: &impl poem::listener::Acceptor,
    configured: std::net::SocketAddr,
) -> std::net::SocketAddr {
    acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .unwrap_or(configured)
}

/// Serves `/metrics` on its own listener until the process stops.
fn serve_metrics(
    acceptor: impl poem::listener::Acceptor + 'static,
    state: &AppState,
    stopping: &Stopping,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let addr = local_addr(&acceptor, std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    tracing::info!(%addr, "serving /metrics on metrics.addr");
    let state = state.clone();
    let stopped = stopping.wait();
    tokio::spawn(async move { http::serve_metrics(acceptor, state, stopped).await })
}

async fn scim_token(store: &Store, action: ScimTokenAction) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    match action {
        ScimTokenAction::Create {
            org,
            name,
            allow_owner_changes,
            expires_at,
            json,
        } => {
            let created =
                token_cli::create_scim(store, now, &org, &name, allow_owner_changes, expires_at)
                    .await?;
            if json {
                println!("{}", serde_json::to_string(&created)?);
            } else {
                println!("{}", created.line());
                println!("token: {}", created.token.as_deref().unwrap_or_default());
                println!("(the token is shown only now; store it safely)");
            }
        }
        ScimTokenAction::List { org, json } => {
            let tokens = token_cli::list_scim(store, &org).await?;
            if json {
                println!("{}", serde_json::to_string(&tokens)?);
            } else {
                for token in &tokens {
                    println!("{}", token.line());
                }
            }
        }
        ScimTokenAction::Revoke { org, id } => {
            token_cli::revoke_scim(store, now, &org, &id).await?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

async fn personal_token(store: &Store, action: PersonalTokenAction) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    match action {
        PersonalTokenAction::Create {
            account,
            org,
            name,
            expires_at,
            json,
        } => {
            let created =
                token_cli::create_personal(store, now, &account, &org, &name, expires_at).await?;
            if json {
                println!("{}", serde_json::to_string(&created)?);
            } else {
                println!("{}", created.line());
                println!("{}", created.token.as_deref().unwrap_or_default());
                println!("(the token is shown only now; store it safely)");
            }
        }
        PersonalTokenAction::List { account, org, json } => {
            let tokens = token_cli::list_personal(store, &account, org.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string(&tokens)?);
            } else {
                for token in &tokens {
                    println!("{}", token.line());
                }
            }
        }
        PersonalTokenAction::Revoke { account, id } => {
            token_cli::revoke_personal(store, now, &account, &id).await?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

/// SIGTERM or Ctrl-C, seen by every part of the process that must stop.
struct Stopping(tokio::sync::watch::Receiver<bool>);

impl Stopping {
    fn on_signal() -> Stopping {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            http::shutdown_signal().await;
            let _ = tx.send(true);
        });
        Stopping(rx)
    }

    fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            // An error means the sender is gone, which only happens at exit.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}
