//! Invitation mails through a real SMTP server: aiosmtpd from the dev
//! virtualenv (`dev/mongo ensure-venv` installs it), which stores what it
//! receives in a Maildir. The messages are read back with Python's own
//! `email` parser, so a MIME mistake on our side cannot cancel out in a
//! parser of ours.
//!
//! The interpreter is `<repo>/.dev/venv/bin/python`, or `TEST_PYTHON`.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::smtp::{SmtpServer, parse_message};
use muster::config::SmtpSettings;
use muster::mail::{InvitationMail, MailError, Mailer, RenderedMail, render_invitation};
use serde_json::Value;

const ACCEPT_URL: &str = "https://muster.example.com/invite/mst_inv_4fQz9xY2kLm8";
const FROM: &str = "Muster Test <noreply@muster.example.com>";
const TO: &str = "grace@example.org";

fn invitation() -> InvitationMail {
    InvitationMail {
        // Non-ASCII on purpose: the subject then needs encoded words and
        // the bodies a transfer encoding.
        org_name: "Zürich Ops".into(),
        inviter_name: "Ada Lovelace".into(),
        inviter_email: "ada@acme.example".into(),
        role: "contributor".into(),
        expires_at: Utc
            .with_ymd_and_hms(2031, 7, 4, 18, 5, 0)
            .single()
            .expect("valid date"),
        accept_url: ACCEPT_URL.into(),
        message: Some("Grüße! Join us <3".into()),
        recipient_email: TO.into(),
    }
}

fn settings(url: Option<String>, outbox_dir: &Path) -> SmtpSettings {
    SmtpSettings {
        url,
        from: FROM.into(),
        outbox_dir: outbox_dir.display().to_string(),
        pool_max_size: 2,
        timeout_seconds: 5,
    }
}

/// The checks every delivered invitation passes, wherever it landed.
fn assert_is_the_invitation(message: &Value, rendered: &RenderedMail) {
    let header = |name: &str| message["headers"][name].as_str().unwrap_or_default();
    assert_eq!(message["defects"], serde_json::json!([]), "{message:#}");
    assert_eq!(
        message["content_type"], "multipart/alternative",
        "{message:#}"
    );
    assert_eq!(header("to"), TO, "{message:#}");
    assert_eq!(header("from"), FROM, "{message:#}");
    assert_eq!(header("subject"), rendered.subject, "{message:#}");
    assert_eq!(
        header("subject"),
        "Ada Lovelace invited you to join Zürich Ops on Muster"
    );
    assert!(!header("date").is_empty(), "{message:#}");
    let parts = message["parts"].as_array().expect("parts");
    let types: Vec<&str> = parts
        .iter()
        .map(|part| part["content_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(types, ["text/plain", "text/html"], "{message:#}");
    let text = parts[0]["content"].as_str().expect("text part");
    let html = parts[1]["content"].as_str().expect("html part");
    for (name, body) in [("text", text), ("html", html)] {
        assert!(
            body.contains(ACCEPT_URL),
            "{name} part lacks the link:\n{body}"
        );
        assert!(body.contains("Zürich Ops"), "{name} part:\n{body}");
        assert!(body.contains("Ada Lovelace"), "{name} part:\n{body}");
        assert!(body.contains("contributor"), "{name} part:\n{body}");
        assert!(
            body.contains("Friday, 4 July 2031 at 18:05 UTC"),
            "{name} part:\n{body}"
        );
    }
    assert!(text.contains("Grüße! Join us <3"), "{text}");
    assert!(html.contains("Grüße! Join us &lt;3"), "{html}");
    assert_eq!(text.trim_end(), rendered.text.trim_end());
    assert_eq!(html.trim_end(), rendered.html.trim_end());
}

#[tokio::test]
async fn an_invitation_goes_through_smtp() {
    let server = SmtpServer::start(&[]);
    let outbox = tempfile::tempdir().expect("tempdir");
    let mailer =
        Mailer::from_settings(&settings(Some(server.url()), outbox.path())).expect("mailer");
    assert!(mailer.is_smtp());
    let rendered = render_invitation(&invitation()).expect("renders");
    let sent = mailer.send(TO, &rendered).await.expect("sent");
    assert!(sent.outbox_file.is_none());

    // aiosmtpd files the mail before it answers 250, so it is there; the
    // deadline only spares a slow disk a spurious failure.
    let messages = common::eventually(Duration::from_secs(10), "the mail is filed", || async {
        let found = server.messages();
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(messages.len(), 1, "{messages:?}\n{}", server.log_text());
    let message = parse_message(&messages[0]);
    assert_is_the_invitation(&message, &rendered);
    let header = |name: &str| message["headers"][name].as_str().unwrap_or_default();
    assert_eq!(header("message-id"), sent.message_id);
    // The envelope, as aiosmtpd recorded it.
    assert_eq!(header("x-rcptto"), TO);
    assert_eq!(header("x-mailfrom"), "noreply@muster.example.com");
    assert_eq!(
        std::fs::read_dir(outbox.path()).expect("outbox").count(),
        0,
        "nothing goes to the outbox when SMTP is set"
    );
}

#[tokio::test]
async fn without_smtp_the_invitation_lands_in_the_outbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = dir.path().join("outbox");
    let mailer = Mailer::from_settings(&settings(None, &outbox)).expect("mailer");
    assert!(!mailer.is_smtp());
    let rendered = render_invitation(&invitation()).expect("renders");
    let sent = mailer.send(TO, &rendered).await.expect("written");
    let file = sent.outbox_file.expect("the .eml file");
    let files: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .expect("outbox created")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    assert_eq!(files, std::slice::from_ref(&file));
    assert_eq!(file.extension().and_then(|e| e.to_str()), Some("eml"));
    let message = parse_message(&file);
    assert_is_the_invitation(&message, &rendered);
    assert_eq!(message["headers"]["message-id"], sent.message_id.as_str());
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let mailer = Mailer::from_settings(&settings(
        Some(format!("smtp://127.0.0.1:{port}")),
        dir.path(),
    ))
    .expect("mailer");
    let rendered = render_invitation(&invitation()).expect("renders");
    let err = mailer
        .send(TO, &rendered)
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, MailError::Smtp(_)), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.smtp_code(), None);
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[tokio::test]
async fn a_refused_mail_is_a_permanent_failure() {
    // aiosmtpd with a 200-byte size limit answers the mail's data 552.
    let server = SmtpServer::start(&["-s", "200"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mailer = Mailer::from_settings(&settings(Some(server.url()), dir.path())).expect("mailer");
    let rendered = render_invitation(&invitation()).expect("renders");
    let err = mailer.send(TO, &rendered).await.expect_err("too large");
    assert!(!err.is_transient(), "{err:?}");
    assert_eq!(err.smtp_code(), Some(552), "{err:?}");
    assert!(server.messages().is_empty());
}
