//! Saved views on a list's page: the views a person sees as links above the list (the
//! workspace's shared ones and their own), a form that saves the list's current search and sort
//! under a name (shared with the workspace or not), and deletion. All through
//! `meshwork_app::views`, which checks who may share and who may delete.

use super::extract::{InWorkspace, Posted};
use super::PageError;
use crate::auth::perm;
use crate::client::Client;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::{views, AppState};
use meshwork_crm::Kind;
use meshwork_domain::ErrorCode;
use std::collections::HashMap;

/// The "save this view" form as shown: what was typed and why it was refused.
#[derive(Debug, Default)]
pub struct ViewForm {
    pub name: String,
    pub shared: bool,
    pub error: Option<String>,
}

/// A saved view as its list's page links it.
#[derive(Debug)]
pub struct ViewLink {
    pub id: String,
    pub name: String,
    pub href: String,
    pub shared: bool,
    pub current: bool,
    pub deletable: bool,
}

/// The views `page`'s member sees on `kind`'s list, the one matching `params` marked current.
pub async fn links(
    state: &AppState,
    page: &InWorkspace<perm::CrmRead>,
    kind: Kind,
    params: &HashMap<String, String>,
) -> Result<Vec<ViewLink>, PageError> {
    let now = views::view_query(params);
    let base = format!("/w/{}/{}", page.ws(), kind.plural());
    Ok(views::list(state, &page.member, kind)
        .await?
        .into_iter()
        .map(|v| ViewLink {
            href: if v.query.is_empty() {
                base.clone()
            } else {
                format!("{base}?{}", v.query)
            },
            current: v.query == now,
            id: v.id,
            name: v.name,
            shared: v.shared,
            deletable: v.deletable,
        })
        .collect())
}

/// Saves the list's view (the posted `view`, its query string) as the posted `name`.
pub async fn save(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::CrmRead>,
    Posted(_, form): Posted<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let query = form.get("view").cloned().unwrap_or_default();
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let name = form.get("name").cloned().unwrap_or_default();
    let shared = form.get("shared").map(String::as_str) == Some("yes");
    match views::save(&state, &client, &page.member, kind, &name, &params, shared).await {
        Ok(v) => {
            let base = format!("/w/{}/{}", page.ws(), kind.plural());
            let to = if v.query.is_empty() {
                base
            } else {
                format!("{base}?{}", v.query)
            };
            Ok(Redirect::to(&to).into_response())
        }
        Err(e)
            if matches!(
                e.code,
                ErrorCode::InvalidField | ErrorCode::PermissionDenied
            ) =>
        {
            let (by_field, general) = super::fields::errors_of(&e);
            let error = by_field
                .get("name")
                .cloned()
                .or(general)
                .or_else(|| by_field.into_values().next());
            let view_form = ViewForm {
                name,
                shared,
                error,
            };
            let mut r = super::records::list_with_view_form(&state, &page, params, kind, view_form)
                .await?
                .into_response();
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes a saved view, then shows the list as it was.
pub async fn delete(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::CrmRead>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, _form): Posted<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    views::delete(&state, &client, &page.member, kind, &id).await?;
    Ok(Redirect::to(&format!("/w/{}/{}", page.ws(), kind.plural())).into_response())
}
