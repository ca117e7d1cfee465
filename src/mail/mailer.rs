//! Sending: over SMTP through a pooled lettre transport, or, without an
//! SMTP server, into a directory of `.eml` files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{MailError, RenderedMail};
use crate::config::SmtpSettings;
use crate::measure::{self, MailOutcome};

/// Sends rendered mails from `smtp.from`. Cheap to clone: clones share the
/// SMTP connection pool.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// A mail handed over for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    /// The `Message-ID` header, angle brackets included.
    pub message_id: String,
    /// The `.eml` file written, when the mail went to the outbox.
    pub outbox_file: Option<PathBuf>,
}

impl Mailer {
    /// A mailer for `smtp.url`, or for `smtp.outbox_dir` when the URL is
    /// unset. No connection is made until the first send. With an SMTP URL
    /// this must be called inside a Tokio runtime (the connection pool
    /// runs a clean-up task there); outside one it is an error.
    pub fn from_settings(settings: &SmtpSettings) -> Result<Mailer, MailError> {
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|err| MailError::Config {
                key: "smtp.from",
                reason: err.to_string(),
            })?;
        let transport = match settings.url() {
            None => Transport::Outbox(PathBuf::from(&settings.outbox_dir)),
            Some(url) => {
                if settings.pool_max_size == 0 {
                    return Err(MailError::Config {
                        key: "smtp.pool_max_size",
                        reason: "must be at least 1".into(),
                    });
                }
                if settings.timeout_seconds == 0 {
                    return Err(MailError::Config {
                        key: "smtp.timeout_seconds",
                        reason: "must be at least 1".into(),
                    });
                }
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(MailError::Config {
                        key: "smtp.url",
                        reason: "the SMTP mailer must be created inside a Tokio runtime".into(),
                    });
                }
                // lettre's error names the part of the URL it could not
                // use, never the URL itself (which may hold a password).
                let builder =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|err| {
                        MailError::Config {
                            key: "smtp.url",
                            reason: err.to_string(),
                        }
                    })?;
                Transport::Smtp(
                    builder
                        .timeout(Some(Duration::from_secs(settings.timeout_seconds)))
                        .pool_config(PoolConfig::new().max_size(settings.pool_max_size))
                        .build(),
                )
            }
        };
        let mailer = Mailer { from, transport };
        measure::register_mail_transport(mailer.transport_name());
        Ok(mailer)
    }

    /// The `transport` label of the mail counters.
    fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
        }
    }

    /// Whether mails go to an SMTP server (rather than the outbox).
    pub fn is_smtp(&self) -> bool {
        matches!(self.transport, Transport::Smtp(_))
    }

    /// Sends `mail` to `to` as multipart/alternative (text, then HTML).
    /// `to` is an address, optionally with a name (`Grace <g@example.org>`).
    /// Counted here, where every mail goes through, by how it went.
    pub async fn send(&self, to: &str, mail: &RenderedMail) -> Result<SentMail, MailError> {
        let sent = self.deliver(to, mail).await;
        let outcome = match &sent {
            Ok(_) => MailOutcome::Sent,
            Err(err) if err.is_transient() => MailOutcome::FailedTransient,
            Err(_) => MailOutcome::FailedPermanent,
        };
        measure::mail(self.transport_name(), outcome);
        sent
    }

    async fn deliver(&self, to: &str, mail: &RenderedMail) -> Result<SentMail, MailError> {
        let recipient =
            to.trim()
                .parse::<Mailbox>()
                .map_err(|err| MailError::InvalidRecipient {
                    address: to.to_owned(),
                    reason: err.to_string(),
                })?;
        let message_id = format!(
            "<{}@{}>",
            uuid::Uuid::new_v4().simple(),
            self.from.email.domain()
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(recipient)
            .subject(mail.subject.as_str())
            .message_id(Some(message_id.clone()))
            .date_now()
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))?;
        match &self.transport {
            Transport::Smtp(transport) => {
                transport.send(message).await?;
                Ok(SentMail {
                    message_id,
                    outbox_file: None,
                })
            }
            Transport::Outbox(dir) => {
                let file = write_to_outbox(dir, &message.formatted()).await?;
                tracing::info!(
                    file = %file.display(),
                    "no smtp.url set: mail written to the outbox"
                );
                Ok(SentMail {
                    message_id,
                    outbox_file: Some(file),
                })
            }
        }
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Mailer");
        debug.field("from", &self.from.to_string());
        match &self.transport {
            // The URL may hold a password: not shown.
            Transport::Smtp(_) => debug.field("transport", &"smtp"),
            Transport::Outbox(dir) => debug.field("outbox_dir", dir),
        };
        debug.finish()
    }
}

/// Writes the message as `<UTC timestamp>-<random>.eml`: first under a
/// hidden temporary name, then renamed, so a reader of the directory never
/// sees half a mail.
async fn write_to_outbox(dir: &Path, message: &[u8]) -> Result<PathBuf, MailError> {
    let outbox_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| MailError::Outbox { path, source }
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(outbox_error(dir))?;
    let name = format!(
        "{}-{:016x}.eml",
        Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        rand::random::<u64>()
    );
    let file = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let write = async {
        use tokio::io::AsyncWriteExt;
        let mut out = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .await?;
        out.write_all(message).await?;
        out.sync_all().await?;
        drop(out);
        tokio::fs::rename(&partial, &file).await
    };
    if let Err(err) = write.await {
        // Best effort: a leftover hidden file is harmless.
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(outbox_error(&file)(err));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> RenderedMail {
        RenderedMail {
            subject: "Hello".into(),
            text: "Hi there\nhttps://example.com/x\n".into(),
            html: "<p>Hi there <a href=\"https://example.com/x\">link</a></p>\n".into(),
        }
    }

    fn outbox_settings(dir: &Path) -> SmtpSettings {
        SmtpSettings {
            outbox_dir: dir.join("nested/outbox").display().to_string(),
            ..SmtpSettings::default()
        }
    }

    #[tokio::test]
    async fn a_bad_recipient_is_permanent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mailer = Mailer::from_settings(&outbox_settings(dir.path())).expect("mailer");
        for to in ["", "not-an-address", "a@b@c", "Grace <grace@>"] {
            let err = mailer.send(to, &rendered()).await.expect_err(to);
            assert!(
                matches!(err, MailError::InvalidRecipient { .. }),
                "{to}: {err}"
            );
            assert!(!err.is_transient(), "{to}");
        }
    }

    #[tokio::test]
    async fn the_outbox_is_created_and_gets_one_file_per_mail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mailer = Mailer::from_settings(&outbox_settings(dir.path())).expect("mailer");
        assert!(!mailer.is_smtp());
        let first = mailer
            .send("Grace <grace@example.org>", &rendered())
            .await
            .expect("sent");
        let second = mailer
            .send("grace@example.org", &rendered())
            .await
            .expect("sent");
        assert_ne!(first.message_id, second.message_id);
        assert!(first.message_id.starts_with('<'));
        assert!(first.message_id.ends_with("@localhost>"));
        let file = first.outbox_file.expect("a file");
        assert_ne!(Some(&file), second.outbox_file.as_ref());
        assert_eq!(file.extension().and_then(|e| e.to_str()), Some("eml"));
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.contains(&format!("Message-ID: {}", first.message_id)));
        let entries = std::fs::read_dir(file.parent().expect("dir"))
            .expect("list")
            .count();
        assert_eq!(entries, 2, "no leftover partial files");
    }

    #[tokio::test]
    async fn an_unwritable_outbox_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").expect("write");
        let settings = SmtpSettings {
            outbox_dir: blocker.join("outbox").display().to_string(),
            ..SmtpSettings::default()
        };
        let mailer = Mailer::from_settings(&settings).expect("mailer");
        let err = mailer
            .send("grace@example.org", &rendered())
            .await
            .expect_err("cannot write");
        assert!(matches!(err, MailError::Outbox { .. }), "{err}");
    }

    #[test]
    fn smtp_needs_a_runtime_and_a_valid_url() {
        let settings = SmtpSettings {
            url: Some("smtp://127.0.0.1:2525".into()),
            ..SmtpSettings::default()
        };
        let err = Mailer::from_settings(&settings).expect_err("no runtime");
        assert!(err.to_string().contains("Tokio runtime"), "{err}");

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mailer = Mailer::from_settings(&settings).expect("mailer");
            assert!(mailer.is_smtp());
            let settings = SmtpSettings {
                url: Some("smtp://user:hunter2@host:25?tls=bogus".into()),
                ..SmtpSettings::default()
            };
            let err = Mailer::from_settings(&settings).expect_err("bad url");
            assert!(err.to_string().contains("smtp.url"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
            assert!(!err.is_transient());
        });
    }

    #[tokio::test]
    async fn debug_hides_the_url() {
        let settings = SmtpSettings {
            url: Some("smtps://mailer:hunter2@mail.example.com".into()),
            ..SmtpSettings::default()
        };
        let mailer = Mailer::from_settings(&settings).expect("mailer");
        let debug = format!("{mailer:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
