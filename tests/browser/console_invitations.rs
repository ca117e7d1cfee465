//! The console's invitation pages in headless Chromium, with the worker
//! and a real SMTP server running: inviting from the form, the mail and
//! its link, resend (the old link dies) and withdraw (the link dies);
//! each page passes axe-core.

use super::{Driver, PASSWORD, console_app};
use crate::common::smtp::{SmtpServer, parse_message};
use crate::common::{self, eventually};

use std::time::Duration;

use muster::state::AppState;
use serde_json::Value;

/// The invitation links of the mails `to` received, oldest first as far
/// as the mail folder tells (callers compare links, not positions).
fn links_to(smtp: &SmtpServer, to: &str) -> Vec<String> {
    smtp.messages()
        .iter()
        .map(|path| parse_message(path))
        .filter(|mail| {
            mail["headers"]["to"]
                .as_str()
                .is_some_and(|t| t.contains(to))
        })
        .filter_map(|mail| {
            let text = mail["parts"]
                .as_array()?
                .iter()
                .find(|p| p["content_type"] == "text/plain")?["content"]
                .as_str()?
                .to_owned();
            let start = text.find("http://")?;
            Some(
                text[start..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect(),
            )
        })
        .collect()
}

/// A link mailed to `to` that is not one of `seen`.
async fn new_link(smtp: &SmtpServer, to: &str, seen: &[String]) -> String {
    eventually(
        Duration::from_secs(30),
        &format!("a new mail to {to}"),
        || async { links_to(smtp, to).into_iter().find(|l| !seen.contains(l)) },
    )
    .await
}

/// The invitation link's page says it cannot be used (and offers no form).
async fn assert_link_dead(driver: &Driver, session: &str, link: &str) {
    driver.open(session, link).await;
    let page = eventually(Duration::from_secs(15), "the dead link's page", || async {
        let page = driver.source(session).await;
        (page.contains("can no longer be used") || page.contains("No such invitation"))
            .then_some(page)
    })
    .await;
    assert!(!page.contains("id=\"password\""), "{page}");
}

#[tokio::test]
async fn an_owner_invites_resends_and_withdraws_in_the_console() {
    let driver = Driver::start().await;
    let smtp = SmtpServer::start(&[]);
    let url = smtp.url();
    let app = console_app(|s| s.smtp.url = Some(url)).await;
    let (output, email) = app.owner_with_password("console").await;
    let state = AppState::new(app.store.clone(), app.settings.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(muster::jobs::run_with(state, common::quick_jobs(), async {
        let _ = stopped.await;
    }));

    let session = driver.console_session(&app, &email).await;
    let invitations = format!("/console/orgs/{}/invitations", output.org_id);

    // The list starts empty and says what to do.
    driver.open(&session, &app.url(&invitations)).await;
    driver
        .wait_for(&session, "the empty list", "No invitation is waiting")
        .await;
    driver.click(&session, "main a[href$=\"/invite\"]").await;
    driver
        .wait_for(&session, "the invite form", "id=\"emails\"")
        .await;
    driver.assert_accessible(&session, "invite form").await;
    driver
        .fill(
            &session,
            &[(
                "#emails",
                "ada@example.com, bob@example.com;\nnot-an-address",
            )],
        )
        .await;
    driver
        .fill(&session, &[("#message", "See you on Monday")])
        .await;
    driver
        .click(&session, "form.invite button[type=submit]")
        .await;
    let outcomes = driver
        .wait_for(&session, "the outcomes", "outcome-invalid_email")
        .await;
    assert_eq!(outcomes.matches("class=\"outcome-invited\"").count(), 2);
    assert!(outcomes.contains("2 invitations were sent."), "{outcomes}");
    assert!(outcomes.contains("not a valid email"), "{outcomes}");
    driver
        .assert_accessible(&session, "invitation outcomes")
        .await;

    // Ada's mail arrives and its link makes her a member.
    let ada_link = new_link(&smtp, "ada@example.com", &[]).await;
    assert!(ada_link.contains("/invite/mst_inv_"), "{ada_link}");
    driver.open(&session, &ada_link).await;
    driver
        .wait_for(&session, "ada's invitation", "ada@example.com")
        .await;
    driver
        .fill_and_submit(
            &session,
            &[
                ("#given_name", "Ada"),
                ("#family_name", "Lovelace"),
                ("#password", PASSWORD),
            ],
        )
        .await;
    driver
        .wait_for(&session, "the welcome page", "You are now a member")
        .await;

    // Bob's invitation is pending, Ada's is not.
    let bob_old = new_link(&smtp, "bob@example.com", &[]).await;
    driver.open(&session, &app.url(&invitations)).await;
    let list = driver
        .wait_for(&session, "the invitations list", "bob@example.com")
        .await;
    assert!(!list.contains("ada@example.com"), "{list}");
    assert!(list.contains(&email), "the inviter: {list}");
    driver.assert_accessible(&session, "invitations list").await;
    let (_, pending) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/invitations", output.org_id),
            &output.owner_token,
            None,
        )
        .await;
    let bob = pending["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["email"] == "bob@example.com"))
        .and_then(|i| i["id"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("bob's invitation in {pending}"));

    // Resend: a new mail whose link works; the old one no longer does.
    driver
        .click(&session, &format!("form[action$=\"/{bob}/resend\"] button"))
        .await;
    driver
        .wait_for(&session, "the resent notice", "was sent again")
        .await;
    let bob_new = new_link(&smtp, "bob@example.com", std::slice::from_ref(&bob_old)).await;
    assert_link_dead(&driver, &session, &bob_old).await;
    driver.open(&session, &bob_new).await;
    let accept = driver
        .wait_for(&session, "bob's new link", "id=\"password\"")
        .await;
    assert!(accept.contains("bob@example.com"), "{accept}");

    // Withdraw: the new link dies too.
    driver.open(&session, &app.url(&invitations)).await;
    driver
        .wait_for(&session, "the invitations list", "bob@example.com")
        .await;
    driver
        .click(
            &session,
            &format!("form[action$=\"/{bob}/withdraw\"] button"),
        )
        .await;
    let withdrawn = driver
        .wait_for(&session, "the withdrawn notice", "was withdrawn")
        .await;
    assert!(
        withdrawn.contains("No invitation is waiting"),
        "{withdrawn}"
    );
    assert_link_dead(&driver, &session, &bob_new).await;
    let (_, revoked) = app
        .call(
            reqwest::Method::GET,
            &format!("/orgs/{}/invitations?status=revoked", output.org_id),
            &output.owner_token,
            None,
        )
        .await;
    assert_eq!(revoked["items"][0]["email"], Value::from("bob@example.com"));

    driver.close(&session).await;
    let _ = stop.send(());
    let _ = worker.await;
    app.shutdown().await;
}
