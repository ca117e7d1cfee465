//! The mail templates: files under `templates/`, embedded at compile time
//! and rendered with minijinja. `.html` templates escape every value; the
//! text and subject templates do not (they are not HTML), and a subject is
//! collapsed onto one line.

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};

use super::MailError;

const INVITATION_SUBJECT: &str = "invitation/subject.txt";
const INVITATION_TEXT: &str = "invitation/body.txt";
const INVITATION_HTML: &str = "invitation/body.html";

/// Every template, by its path under `templates/`.
const TEMPLATES: [(&str, &str); 3] = [
    (
        INVITATION_SUBJECT,
        include_str!("../../templates/invitation/subject.txt"),
    ),
    (
        INVITATION_TEXT,
        include_str!("../../templates/invitation/body.txt"),
    ),
    (
        INVITATION_HTML,
        include_str!("../../templates/invitation/body.html"),
    ),
];

/// Compiled once. The templates are part of the binary, so an error here
/// is a bug that every render reports (and the unit tests catch).
static ENVIRONMENT: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A misspelt variable fails the render instead of leaving a gap.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|err| err.to_string())?;
    env.set_syntax(syntax);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|err| format!("template {name}: {err}"))?;
    }
    Ok(env)
});

/// What an invitation mail says. Every value is plain text; the HTML
/// template escapes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationMail {
    pub org_name: String,
    pub inviter_name: String,
    pub inviter_email: String,
    /// The role the invitee will have, e.g. `admin`.
    pub role: String,
    pub expires_at: DateTime<Utc>,
    /// The absolute http(s) link that accepts the invitation.
    pub accept_url: String,
    /// A note from the inviter, shown as written.
    pub message: Option<String>,
    pub recipient_email: String,
}

/// A mail ready to send: a one-line subject, and the body twice, as plain
/// text and as HTML (sent as multipart/alternative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders the invitation templates.
pub fn render_invitation(mail: &InvitationMail) -> Result<RenderedMail, MailError> {
    const WHAT: &str = "invitation";
    let env = ENVIRONMENT.as_ref().map_err(|reason| MailError::Render {
        template: WHAT,
        reason: reason.clone(),
    })?;
    let url = mail.accept_url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(MailError::Render {
            template: WHAT,
            reason: "accept_url must be an absolute http(s) URL without spaces".into(),
        });
    }
    let message = mail
        .message
        .as_deref()
        .map(str::trim)
        .filter(|message| !message.is_empty());
    let expires_at = human_utc(mail.expires_at);
    let expires_at_iso = mail.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let base = context! {
        org_name => mail.org_name.as_str(),
        inviter_name => mail.inviter_name.as_str(),
        inviter_email => mail.inviter_email.as_str(),
        role => mail.role.as_str(),
        expires_at => expires_at,
        expires_at_iso => expires_at_iso,
        message => message,
        recipient_email => mail.recipient_email.as_str(),
    };
    let text_ctx = context! { accept_url => url, ..base.clone() };
    // minijinja's HTML escaping also turns `/` into `&#x2f;`, which is
    // valid but makes the link unreadable in the source and trips naive
    // link scanners; the link gets the escaping an attribute needs, and
    // is passed as already safe.
    let html_ctx = context! {
        accept_url => Value::from_safe_string(escape_html_attribute(url)),
        ..base
    };
    let render = |name: &str, ctx: &Value| {
        env.get_template(name)
            .and_then(|template| template.render(ctx))
            .map_err(|err| MailError::Render {
                template: WHAT,
                reason: format!("{name}: {err}"),
            })
    };
    let subject = render(INVITATION_SUBJECT, &text_ctx)?;
    Ok(RenderedMail {
        subject: one_line(&subject),
        text: render(INVITATION_TEXT, &text_ctx)?,
        html: render(INVITATION_HTML, &html_ctx)?,
    })
}

/// `Friday, 14 March 2025 at 09:30 UTC`.
fn human_utc(at: DateTime<Utc>) -> String {
    at.format("%A, %-d %B %Y at %H:%M UTC").to_string()
}

/// Collapses every run of whitespace (newlines included) into one space,
/// so that a name with a line break cannot spill into the headers.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn escape_html_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn invitation() -> InvitationMail {
        InvitationMail {
            org_name: "Acme Corp".into(),
            inviter_name: "Ada Lovelace".into(),
            inviter_email: "ada@acme.example".into(),
            role: "admin".into(),
            expires_at: Utc
                .with_ymd_and_hms(2025, 3, 14, 9, 30, 0)
                .single()
                .expect("valid date"),
            accept_url: "https://muster.example.com/invitations/accept?token=mst_inv_abc123".into(),
            message: Some("Welcome aboard!\nSee you on Monday.".into()),
            recipient_email: "grace@example.org".into(),
        }
    }

    #[test]
    fn every_template_compiles() {
        if let Err(err) = ENVIRONMENT.as_ref() {
            panic!("{err}");
        }
    }

    #[test]
    fn every_part_names_the_invitation() {
        let mail = render_invitation(&invitation()).expect("renders");
        for (part, body) in [("text", &mail.text), ("html", &mail.html)] {
            for needle in [
                "Acme Corp",
                "Ada Lovelace",
                "ada@acme.example",
                "admin",
                "Friday, 14 March 2025 at 09:30 UTC",
                "https://muster.example.com/invitations/accept?token=mst_inv_abc123",
                "Welcome aboard!",
                "See you on Monday.",
                "grace@example.org",
            ] {
                assert!(body.contains(needle), "{part} lacks {needle:?}:\n{body}");
            }
        }
        assert!(mail.subject.contains("Acme Corp"), "{}", mail.subject);
        assert!(mail.subject.contains("Ada Lovelace"), "{}", mail.subject);
        assert!(mail.html.contains("datetime=\"2025-03-14T09:30:00Z\""));
    }

    #[test]
    fn the_message_is_optional() {
        let mut invitation = invitation();
        invitation.message = None;
        let mail = render_invitation(&invitation).expect("renders");
        assert!(!mail.text.contains("wrote:"), "{}", mail.text);
        assert!(!mail.html.contains("<blockquote"), "{}", mail.html);
        // A blank message counts as none.
        invitation.message = Some("  \n ".into());
        let blank = render_invitation(&invitation).expect("renders");
        assert_eq!(blank, mail);
    }

    #[test]
    fn html_escapes_what_people_typed() {
        let mut invitation = invitation();
        invitation.org_name = "<script>alert('org')</script> & Co".into();
        invitation.message = Some("<script>alert(\"msg\")</script>".into());
        invitation.inviter_name = "Eve <b>".into();
        let mail = render_invitation(&invitation).expect("renders");
        assert!(!mail.html.contains("<script"), "{}", mail.html);
        assert!(!mail.html.contains("<b>"), "{}", mail.html);
        assert!(mail.html.contains("&lt;script&gt;alert("), "{}", mail.html);
        assert!(mail.html.contains("&amp; Co"), "{}", mail.html);
        // Text is not HTML: it shows what was typed.
        assert!(mail.text.contains("<script>alert('org')</script> & Co"));
        assert!(mail.text.contains("<script>alert(\"msg\")</script>"));
    }

    #[test]
    fn the_link_is_escaped_for_its_attribute_only() {
        let mut invitation = invitation();
        invitation.accept_url = "https://muster.example.com/accept?a=1&b=\"2\"".into();
        let mail = render_invitation(&invitation).expect("renders");
        assert!(
            mail.html
                .contains("href=\"https://muster.example.com/accept?a=1&amp;b=&quot;2&quot;\""),
            "{}",
            mail.html
        );
        assert!(
            mail.text
                .contains("https://muster.example.com/accept?a=1&b=\"2\"")
        );
    }

    #[test]
    fn the_link_must_be_http() {
        for url in [
            "javascript:alert(1)",
            "muster.example.com/accept",
            "https://x/a b",
        ] {
            let mut invitation = invitation();
            invitation.accept_url = url.into();
            let err = render_invitation(&invitation).expect_err(url);
            assert!(!err.is_transient());
        }
    }

    #[test]
    fn the_subject_is_one_line() {
        let mut invitation = invitation();
        invitation.org_name = "Acme\r\nBcc: victim@example.org\n  Corp".into();
        invitation.inviter_name = "Ada\nLovelace".into();
        let mail = render_invitation(&invitation).expect("renders");
        assert!(!mail.subject.contains(['\r', '\n']), "{:?}", mail.subject);
        assert_eq!(
            mail.subject,
            "Ada Lovelace invited you to join Acme Bcc: victim@example.org Corp on Muster"
        );
    }
}
