//! `GET /console`: the organizations the person belongs to, as `GET /me`
//! lists them, each a link to its members (the organization switcher).

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};

use super::{Console, Done, html, notice, respond};
use crate::state::AppState;

const ORGS: &str = "console/orgs.html";

pub(super) const TEMPLATES: &[(&str, &str)] =
    &[(ORGS, include_str!("../../templates/console/orgs.html"))];

/// The notices of forms that end here: an organization deleted from its
/// settings page has no page of its own to go back to.
const DONE: &[(&str, &str)] = &[("organization-deleted", "The organization was deleted.")];

#[handler]
pub async fn home(state: Data<&AppState>, req: &Request, Query(done): Query<Done>) -> Response {
    respond(
        async {
            let console = Console::required(&state, req).await?;
            // What `GET /me` answers: the same memberships, roles and statuses.
            let me = crate::api::me::me_response(&state, &console.principal)
                .await
                .map_err(|err| console.error(&err))?;
            let orgs: Vec<_> = me
                .memberships
                .into_iter()
                .map(|membership| {
                    context! {
                        id => membership.org_id,
                        name => membership.org_name,
                        status => membership.status,
                    }
                })
                .collect();
            Ok(html(
                StatusCode::OK,
                ORGS,
                "Organizations",
                context! {
                    csrf_session => console.csrf(),
                    email => me.account.email,
                    orgs,
                    notice => notice(done.done.as_deref(), DONE),
                },
            ))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_renders_with_and_without_organizations() {
        for orgs in [
            vec![context! { id => "o", name => "O", status => "active" }],
            Vec::new(),
        ] {
            let page = html(
                StatusCode::OK,
                ORGS,
                "Title",
                context! { csrf_session => "t", orgs },
            );
            assert_eq!(page.status(), StatusCode::OK);
        }
    }
}
