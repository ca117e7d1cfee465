//! A person's own sessions (`/me/sessions`): where the account is signed
//! in, and ending the sessions they do not recognise. Session-only routes:
//! a personal token acts inside one organization, and these act for the
//! whole account.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::examples::example_time;
use super::me::account_acting;
use super::{ApiTags, SessionAuth};
use crate::app::sessions::{self, SessionEnd, SessionSummary};
use crate::domain::TokenId;
use crate::error::AppError;
use crate::state::AppState;

pub struct SessionsApi;

const EXAMPLE_SESSION_ID: &str = "0194d571-e9c0-7c3a-8f1e-2b6d4a9e0c51";
const EXAMPLE_OTHER_SESSION_ID: &str = "0194d52b-1cc0-7e21-9a4b-6f0d3c8e1a72";

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct SessionView {
    /// The session's id, for `DELETE /me/sessions/{id}`.
    pub id: String,
    /// When it was signed in.
    pub created_at: DateTime<Utc>,
    /// When it last made a request; updated at most once a minute, absent
    /// until its first request after signing in.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// The client address it signed in from (behind a trusted proxy, the
    /// address the proxy forwarded). Absent on sessions opened before
    /// Muster recorded it.
    pub ip: Option<String>,
    /// The `User-Agent` it signed in with, at most 256 characters.
    /// Absent when none was sent.
    pub user_agent: Option<String>,
    /// Whether this is the session making this request.
    pub current: bool,
}

impl Example for SessionView {
    fn example() -> Self {
        SessionView {
            id: EXAMPLE_SESSION_ID.to_owned(),
            created_at: example_time("2025-02-05T09:30:00Z"),
            last_used_at: Some(example_time("2025-02-05T10:02:17Z")),
            expires_at: Some(example_time("2025-02-05T21:30:00Z")),
            ip: Some("198.51.100.7".to_owned()),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:134.0) Gecko/20100101 Firefox/134.0".to_owned(),
            ),
            current: true,
        }
    }
}

/// The caller's sessions that still work, oldest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct SessionList {
    pub items: Vec<SessionView>,
    /// Always null: the list is never split into pages.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for SessionList {
    fn example() -> Self {
        SessionList {
            items: vec![
                SessionView {
                    id: EXAMPLE_OTHER_SESSION_ID.to_owned(),
                    created_at: example_time("2025-02-05T08:12:40Z"),
                    last_used_at: Some(example_time("2025-02-05T09:55:03Z")),
                    expires_at: Some(example_time("2025-02-05T20:12:40Z")),
                    ip: Some("203.0.113.42".to_owned()),
                    user_agent: Some("muster-cli/0.1".to_owned()),
                    current: false,
                },
                SessionView::example(),
            ],
            next_cursor: None,
        }
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct EndedSessions {
    /// How many other sessions were ended (0 when there were none).
    pub sessions_ended: u64,
}

impl Example for EndedSessions {
    fn example() -> Self {
        EndedSessions { sessions_ended: 2 }
    }
}

#[derive(ApiResponse)]
pub enum EndedSession {
    /// The session has ended: its token gets 401 from now on.
    #[oai(status = 204)]
    Ended,
}

fn session_not_found() -> AppError {
    AppError::NotFound("session")
}

fn view(session: SessionSummary) -> SessionView {
    SessionView {
        id: session.id.into_string(),
        created_at: session.created_at,
        last_used_at: session.last_used_at,
        expires_at: session.expires_at,
        ip: session.ip,
        user_agent: session.user_agent,
        current: session.current,
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl SessionsApi {
    /// List your sessions
    ///
    /// Everywhere your account is signed in: when each session started,
    /// when it was last used, the address and user agent it signed in
    /// with, and when it expires. `current` marks the session making this
    /// request. A session only (a personal token gets 403).
    #[oai(path = "/me/sessions", method = "get")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<SessionList>, AppError> {
        let sessions = sessions::list_sessions(
            state.store(),
            state.clock().now(),
            &account_acting(&auth, req),
            auth.session_id(),
        )
        .await?;
        Ok(Json(SessionList {
            items: sessions.into_iter().map(view).collect(),
            next_cursor: None,
        }))
    }

    /// Sign out everywhere else
    ///
    /// Ends every session of your account except the one making this
    /// request, which keeps working; their tokens get 401 from now on.
    /// Answers how many ended. A session only (a personal token gets 403).
    #[oai(path = "/me/sessions", method = "delete")]
    async fn end_others(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<EndedSessions>, AppError> {
        let sessions_ended = sessions::end_other_sessions(
            state.store(),
            state.clock().now(),
            &account_acting(&auth, req),
            auth.session_id(),
        )
        .await?;
        Ok(Json(EndedSessions { sessions_ended }))
    }

    /// End one of your sessions
    ///
    /// Its token gets 401 from now on; ending the current session signs
    /// you out, as `POST /auth/logout` does. Another account's session is
    /// never found (404). A session only (a personal token gets 403).
    #[oai(path = "/me/sessions/:id", method = "delete")]
    async fn end(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        req: &Request,
        /// The session's id, from `GET /me/sessions`.
        id: Path<String>,
    ) -> Result<EndedSession, AppError> {
        let id = TokenId::parse(&id).map_err(|_| session_not_found())?;
        let caller = account_acting(&auth, req);
        match sessions::end_session(&state, &caller.account_id, &id, caller.origin).await? {
            SessionEnd::Ended => Ok(EndedSession::Ended),
            SessionEnd::NotFound => Err(session_not_found()),
        }
    }
}
