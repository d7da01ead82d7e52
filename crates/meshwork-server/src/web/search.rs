//! Search in the browser: the search box in every workspace page's header asks
//! `/w/{ws}/search/suggest` as one types (htmx) and shows the best hits grouped by type, opened
//! with the arrow keys and Enter (`assets/app.js`); with an empty box it shows recent items.
//! `/w/{ws}/search` is the full results page, where the box's form goes without script. Both
//! run the API's search for the signed-in person (`meshwork_app` search, access evaluated now),
//! so a page shows exactly what the API would.

use super::extract::{InWorkspace, Posted};
use super::{Chrome, PageError, Section};
use crate::auth::perm;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::document_marks::{self, MarkChange};
use meshwork_app::AppState;
use meshwork_crm::Kind;
use meshwork_domain::{ErrorCode, WorkspaceId};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    done: String,
}

/// A hit as a page links it.
#[derive(Debug)]
pub struct HitLine {
    /// An id unique on the page (for `aria-activedescendant`).
    pub dom_id: String,
    /// Where it opens; empty for a source document with no web address (a file of a folder, a
    /// message): shown, with its source, but not a link.
    pub href: String,
    /// The source of a document (`source:` filters on it).
    pub source: String,
    /// Leaves this server (a source document in its own tool).
    pub external: bool,
    /// HTML-escaped by the index, matches in `<mark>`.
    pub title: String,
    pub snippet: String,
    /// A source document's id (it can be pinned and noted); empty for a CRM record.
    pub document: String,
    /// The title as plain text, for labels.
    pub plain_title: String,
    pub pinned: bool,
    /// The searcher's own note on it.
    pub note: String,
}

#[derive(Debug)]
pub struct GroupLines {
    pub label: String,
    pub count: u64,
    pub hits: Vec<HitLine>,
}

/// What a type's group is called.
pub fn type_label(kind: &str) -> String {
    match kind.parse::<Kind>() {
        Ok(k) => super::accounts::capitalized(&k.plural().replace('_', " ")),
        Err(_) if kind == "document" => "Documents".into(),
        Err(_) => super::accounts::capitalized(kind),
    }
}

/// Where a hit opens: a record's page, or for a source document its link in its own tool
/// (only `http`/`https` links; anything else is not a link).
pub fn hit_href(ws: WorkspaceId, hit: &meshwork_search::Hit) -> Option<(String, bool)> {
    match hit.kind.parse::<Kind>() {
        Ok(k @ (Kind::Contact | Kind::Company | Kind::Deal)) => {
            Some((format!("/w/{ws}/{}/{}", k.plural(), hit.id), false))
        }
        Ok(_) => Some((format!("/w/{ws}/records/{}", hit.id), false)),
        Err(_) => hit
            .url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| (u.to_string(), true)),
    }
}

fn lines(ws: WorkspaceId, results: &meshwork_search::SearchResults) -> Vec<GroupLines> {
    let mut n = 0;
    results
        .groups
        .iter()
        .map(|g| GroupLines {
            label: type_label(&g.kind),
            count: g.count,
            hits: g
                .hits
                .iter()
                .map(|h| {
                    let (href, external) = hit_href(ws, h).unwrap_or_default();
                    n += 1;
                    HitLine {
                        dom_id: format!("hit-{n}"),
                        href,
                        source: h.source.clone().unwrap_or_default(),
                        external,
                        title: h.title.clone(),
                        snippet: h.snippet.clone(),
                        document: if h.kind == "document" {
                            h.id.clone()
                        } else {
                            String::new()
                        },
                        plain_title: plain(&h.title),
                        pinned: h.pinned,
                        note: h.note.clone().unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// Text of the index's HTML-escaped, `<mark>`ed title.
fn plain(html: &str) -> String {
    html.replace("<mark>", "")
        .replace("</mark>", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Runs the search; a query the parser refuses is shown as a message, not an error page.
async fn run(
    state: &AppState,
    page: &InWorkspace<perm::SearchRead>,
    q: &str,
    limit: usize,
) -> Result<Result<(u64, Vec<GroupLines>), String>, PageError> {
    match state
        .search
        .search(
            state,
            page.ws(),
            &page.member.actor,
            page.member.role,
            q,
            limit,
        )
        .await
    {
        Ok(r) => Ok(Ok((r.total, lines(page.ws(), &r)))),
        Err(e) if e.code == ErrorCode::InvalidQuery => {
            Ok(Err(super::accounts::capitalized(&e.message)))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "search/results.html")]
pub struct ResultsPage {
    chrome: Chrome,
    ws: String,
    q: String,
    notice: Option<String>,
    total: u64,
    groups: Vec<GroupLines>,
    error: Option<String>,
}

pub async fn results(
    State(state): State<AppState>,
    page: InWorkspace<perm::SearchRead>,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let mut chrome = Chrome::workspace(&state, &page, Section::Search).await?;
    if let Some(w) = chrome.ws.as_mut() {
        w.q = query.q.clone();
    }
    let (total, groups, error) = match run(&state, &page, &query.q, 25).await? {
        Ok((total, groups)) => (total, groups, None),
        Err(message) => (0, Vec::new(), Some(message)),
    };
    Ok(ResultsPage {
        chrome,
        ws: page.ws().to_string(),
        q: query.q,
        notice: match query.done.as_str() {
            "pinned" => Some("Pinned: it comes first when you find it.".into()),
            "unpinned" => Some("Unpinned.".into()),
            "noted" => Some("Your note is saved; only you see it.".into()),
            _ => None,
        },
        total,
        groups,
        error,
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct MarkForm {
    document: String,
    #[serde(default)]
    q: String,
    /// `pin`, `unpin` or `note`.
    action: String,
    #[serde(default)]
    note: String,
}

/// Pins, unpins or notes a document from the results, then shows the same results again.
pub async fn mark(
    State(state): State<AppState>,
    page: InWorkspace<perm::SearchRead>,
    Posted(_, f): Posted<MarkForm>,
) -> Result<Response, PageError> {
    let (change, done) = match f.action.as_str() {
        "pin" => (
            MarkChange {
                pinned: Some(true),
                note: None,
            },
            "pinned",
        ),
        "unpin" => (
            MarkChange {
                pinned: Some(false),
                note: None,
            },
            "unpinned",
        ),
        _ => (
            MarkChange {
                pinned: None,
                note: Some(Some(f.note)),
            },
            "noted",
        ),
    };
    document_marks::mark(&state, &page.member, &f.document, change).await?;
    let q: String = url::form_urlencoded::byte_serialize(f.q.as_bytes()).collect();
    Ok(Redirect::to(&format!("/w/{}/search?q={q}&done={done}", page.ws())).into_response())
}

/// The list under the search box: a fragment, not a page.
#[derive(Template, WebTemplate)]
#[template(path = "search/suggest.html")]
pub struct Suggestions {
    ws: String,
    q: String,
    groups: Vec<GroupLines>,
    error: Option<String>,
}

pub async fn suggest(
    State(state): State<AppState>,
    page: InWorkspace<perm::SearchRead>,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let (groups, error) = match run(&state, &page, &query.q, 5).await? {
        Ok((_, groups)) => (groups, None),
        Err(message) => (Vec::new(), Some(message)),
    };
    Ok(Suggestions {
        ws: page.ws().to_string(),
        q: query.q,
        groups,
        error,
    }
    .into_response())
}
