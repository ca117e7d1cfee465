//! Outgoing mail: invitation emails rendered from the templates under
//! `templates/` (embedded at compile time) and sent by a [`Mailer`] over
//! SMTP (`smtp.url`), or written as `.eml` files into `smtp.outbox_dir`
//! when no SMTP server is configured (development).
//!
//! A [`MailError`] tells a failure worth retrying ([`MailError::is_transient`]:
//! the server is unreachable, slow or answered 4xx) from one that will fail
//! the same way again (a bad address, a 5xx answer).

mod mailer;
mod templates;

pub use mailer::{Mailer, SentMail};
pub use templates::{InvitationMail, RenderedMail, render_invitation};

/// Why a mail could not be rendered or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The `[smtp]` settings cannot be used (normally caught when the
    /// configuration is loaded).
    #[error("mail is not configured correctly: key `{key}`: {reason}")]
    Config { key: &'static str, reason: String },
    /// The recipient is not a valid address; retrying cannot help.
    #[error("invalid recipient address `{address}`: {reason}")]
    InvalidRecipient { address: String, reason: String },
    /// A template failed to render, or the values given cannot go into a
    /// mail (e.g. a link that is not http(s)).
    #[error("cannot render the {template} mail: {reason}")]
    Render {
        template: &'static str,
        reason: String,
    },
    /// The message could not be assembled from its parts.
    #[error("cannot build the message: {0}")]
    Message(#[from] lettre::error::Error),
    /// The SMTP exchange failed: connecting, TLS, authentication, or the
    /// server refused the mail.
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The `.eml` file could not be written into the outbox directory.
    #[error("cannot write to the mail outbox {path}: {source}")]
    Outbox {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl MailError {
    /// Whether sending the same mail again later may succeed, so a job
    /// should retry it: the SMTP server could not be reached or did not
    /// answer in time, the connection or TLS handshake broke, the server
    /// answered 4xx (try later), or the outbox could not be written.
    /// Permanent: bad configuration, an invalid recipient, a template
    /// that does not render, and a 5xx answer from the server.
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Config { .. }
            | MailError::InvalidRecipient { .. }
            | MailError::Render { .. }
            | MailError::Message(_) => false,
            // lettre's kinds: Transient (4xx) and Permanent (5xx) replies,
            // Client (a message lettre itself cannot send), and connection,
            // network, TLS, timeout, malformed-reply and shut-down errors,
            // all of which are about the link to the server, not the mail.
            MailError::Smtp(err) => !(err.is_permanent() || err.is_client()),
            MailError::Outbox { .. } => true,
        }
    }

    /// The SMTP reply code, when the server answered with an error.
    pub fn smtp_code(&self) -> Option<u16> {
        match self {
            MailError::Smtp(err) => err.status().map(u16::from),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_delivery_problems_are_transient() {
        let config = MailError::Config {
            key: "smtp.url",
            reason: "x".into(),
        };
        assert!(!config.is_transient());
        let recipient = MailError::InvalidRecipient {
            address: "nope".into(),
            reason: "x".into(),
        };
        assert!(!recipient.is_transient());
        let outbox = MailError::Outbox {
            path: "/x".into(),
            source: std::io::Error::other("disk full"),
        };
        assert!(outbox.is_transient());
        assert_eq!(outbox.smtp_code(), None);
    }
}
