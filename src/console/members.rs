//! An organization's members: the table `GET /orgs/{org}/members` lists.

use minijinja::context;
use minijinja::value::Serde;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use super::{InOrg, html, respond};
use crate::domain::Permission;
use crate::state::AppState;
use crate::store::members::MemberQuery;

const MEMBERS: &str = "console/members.html";
/// The members table shows this many; paging is the next slice.
const MEMBERS_SHOWN: u32 = 200;

pub(super) const TEMPLATES: &[(&str, &str)] = &[(
    MEMBERS,
    include_str!("../../templates/console/members.html"),
)];

/// The organization's members, read-only, with the API's access check
/// and the API's first page.
#[handler]
pub async fn members_page(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            let granted = page.require(Permission::ViewDirectory)?;
            let query = MemberQuery {
                role: None,
                status: None,
                text: None,
                after: None,
                limit: MEMBERS_SHOWN,
            };
            let listed = crate::api::members::list_page(&state, &granted, &query)
                .await
                .map_err(|err| page.error(&err))?;
            let rows: Vec<_> = listed
                .items
                .iter()
                .map(|member| {
                    context! {
                        name => member.display_name.clone().unwrap_or_else(|| member.user_name.clone()),
                        email => member.email.clone(),
                        role => member.role.clone(),
                        status => member.status.clone(),
                        suspended_until => Serde(member.suspended_until),
                    }
                })
                .collect();
            Ok(html(
                StatusCode::OK,
                MEMBERS,
                &format!("Members of {}", page.access.org.name),
                context! {
                    members => rows,
                    more => listed.next_cursor.is_some(),
                    shown => MEMBERS_SHOWN,
                    ..page.values()
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
    fn the_page_renders() {
        let page = html(
            StatusCode::OK,
            MEMBERS,
            "Title",
            context! {
                csrf_session => "t",
                org => context! { id => "o", name => "O" },
                members => vec![context! { name => "n", role => "owner", status => "active" }],
                more => true,
                shown => 200,
            },
        );
        assert_eq!(page.status(), StatusCode::OK);
    }
}
