//! Saved views of the CRM's lists: a name and a list's query (its search text and sort), kept by
//! the member who saved it or shared with the workspace. The name and query are sealed with the
//! workspace key like every other piece of workspace content. Anyone who reads the CRM keeps
//! views of their own; sharing one with everybody takes `crm.write`, and a shared view is
//! removed by its author or by a role that may change the workspace's schema (`crm.schema`).
//! Shared views are created and deleted in the audit log.

use crate::actor::{ClientInfo, Member};
use crate::audit;
use crate::crm::{invalid, RecordList};
use crate::{AppError, AppResult, AppState};
use meshwork_crm::Kind;
use meshwork_domain::{ErrorCode, Permission};
use meshwork_store::SavedViewRow;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The longest name a view may have.
pub const MAX_NAME: usize = 80;
/// The most views one person sees on one list (their own and the shared ones).
pub const MAX_VIEWS: usize = 50;

/// A saved view as its list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedView {
    pub id: String,
    pub name: String,
    /// The list's query string (`q=…&sort=…`), without a page cursor.
    pub query: String,
    pub shared: bool,
    /// Saved by the person asking.
    pub mine: bool,
    /// The person asking may delete it.
    pub deletable: bool,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    name: String,
    query: String,
}

/// The parts of a list's query a view keeps, in a fixed order: the search text and the sort.
/// Anything else (a page cursor, a page size) is left out.
pub fn view_query(params: &HashMap<String, String>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for k in ["q", "sort"] {
        if let Some(v) = params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            out.append_pair(k, v);
        }
    }
    out.finish()
}

fn params_of(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The views of `kind`'s list that `member` sees: the shared ones and their own, oldest first.
pub async fn list(state: &AppState, member: &Member, kind: Kind) -> AppResult<Vec<SavedView>> {
    let me = member.actor.user_id();
    let rows = state
        .store
        .saved_views(member.workspace, kind.as_str(), me)
        .await?;
    rows.iter()
        .map(|r| {
            let plain = state.open_workspace(member.workspace, &r.id, "view", &r.data_sealed)?;
            let s: Sealed = serde_json::from_str(&plain)
                .map_err(|e| AppError::internal(format!("a saved view does not read: {e}")))?;
            let mine = r.user_id == me;
            Ok(SavedView {
                id: r.id.clone(),
                name: s.name,
                query: s.query,
                shared: r.shared,
                mine,
                deletable: mine || member.may(Permission::CrmSchema),
            })
        })
        .collect()
}

/// Saves the list's current query as a view named `name`, shared with the workspace or not.
pub async fn save(
    state: &AppState,
    client: &ClientInfo,
    member: &Member,
    kind: Kind,
    name: &str,
    params: &HashMap<String, String>,
    shared: bool,
) -> AppResult<SavedView> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "give the view a name"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(invalid(
            "name",
            format!("a view's name is at most {MAX_NAME} characters"),
        ));
    }
    if shared && !member.role.allows(Permission::CrmWrite) {
        return Err(AppError::new(
            ErrorCode::PermissionDenied,
            format!(
                "your role ({}) may keep views for itself but not share them",
                member.role
            ),
        ));
    }
    let query = view_query(params);
    // A view opens as a list: its query must be one the list takes.
    RecordList::from_params(kind, &params_of(&query))?;
    let seen = list(state, member, kind).await?;
    if seen
        .iter()
        .any(|v| v.name.to_lowercase() == name.to_lowercase())
    {
        return Err(invalid(
            "name",
            format!("there is already a view called “{name}” on this list"),
        ));
    }
    if seen.len() >= MAX_VIEWS {
        return Err(invalid(
            "name",
            format!("this list has {MAX_VIEWS} views already; delete one first"),
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let sealed = serde_json::to_string(&Sealed {
        name: name.to_string(),
        query: query.clone(),
    })
    .map_err(|e| AppError::internal(e.to_string()))?;
    state
        .store
        .saved_view_put(&SavedViewRow {
            id: id.clone(),
            workspace_id: member.workspace,
            user_id: member.actor.user_id(),
            shared,
            kind: kind.as_str().into(),
            data_sealed: state.seal_workspace(member.workspace, &id, "view", &sealed)?,
            created_at: crate::state::now_millis(),
        })
        .await?;
    if shared {
        audit::workspace_event(
            state,
            client,
            "view.shared",
            member,
            None,
            serde_json::json!({"view": id, "list": kind.plural()}),
        )
        .await?;
    }
    Ok(SavedView {
        id,
        name: name.to_string(),
        query,
        shared,
        mine: true,
        deletable: true,
    })
}

/// Deletes a view `member` sees and may delete; any other answers "not found".
pub async fn delete(
    state: &AppState,
    client: &ClientInfo,
    member: &Member,
    kind: Kind,
    id: &str,
) -> AppResult<()> {
    let not_found = || AppError::new(ErrorCode::RecordNotFound, "there is no such view");
    let view = list(state, member, kind)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(not_found)?;
    if !view.deletable {
        return Err(AppError::new(
            ErrorCode::PermissionDenied,
            "a shared view is removed by the member who saved it or by an admin",
        ));
    }
    if !state.store.saved_view_delete(member.workspace, id).await? {
        return Err(not_found());
    }
    if view.shared {
        audit::workspace_event(
            state,
            client,
            "view.deleted",
            member,
            None,
            serde_json::json!({"view": id, "list": kind.plural()}),
        )
        .await?;
    }
    Ok(())
}
