//! Connectors in the web app (`/w/{ws}/connectors`, for admins: `sources.write`): the list with
//! each connector's latest sync, adding one (its read-only scopes shown first, mm04; settings
//! tried before saving), and each connector's page: its settings (secrets hidden), the sync
//! history with counts and problems, sync now, pause or resume, test, disconnect (asked once
//! more). Every action is the `meshwork_app::connectors` service the API calls.

use super::extract::{CsrfOnly, InWorkspace, Posted};
use super::fields::when;
use super::{Chrome, PageError, Section};
use crate::auth::perm;
use crate::client::Client;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use meshwork_app::connectors::{self, ConnectorView, NewConnector, RunView};
use meshwork_app::AppState;
use meshwork_domain::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/w/{ws}/connectors", get(list))
        .route("/w/{ws}/connectors/new", get(new).post(add))
        .route("/w/{ws}/connectors/{id}", get(show))
        .route("/w/{ws}/connectors/{id}/sync", post(sync))
        .route("/w/{ws}/connectors/{id}/paused", post(set_paused))
        .route("/w/{ws}/connectors/{id}/test", post(test))
        .route("/w/{ws}/connectors/{id}/disconnect", post(disconnect))
}

/// A kind of connector as the page offers it.
#[derive(Debug)]
pub struct KindLine {
    pub kind: String,
    pub name: String,
    pub scopes: Vec<(String, String)>,
}

impl KindLine {
    /// Its name without the description: `LDAP directory`, `Folder`, `IMAP mail`.
    pub fn short(&self) -> &str {
        self.name.split(':').next().unwrap_or(&self.name)
    }
}

fn kinds() -> Vec<KindLine> {
    connectors::kinds()
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| KindLine {
            kind: k["kind"].as_str().unwrap_or_default().into(),
            name: k["name"].as_str().unwrap_or_default().into(),
            scopes: k["scopes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default().into(),
                        s["description"].as_str().unwrap_or_default().into(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// A sync as a line of the history.
#[derive(Debug)]
pub struct RunLine {
    pub when: String,
    pub trigger: String,
    pub state: String,
    pub summary: String,
    pub problems: Vec<String>,
}

fn run_line(kind: &str, r: &RunView) -> RunLine {
    let c = &r.counts;
    let mut parts = vec![];
    if c.people > 0 || c.groups > 0 {
        parts.push(format!("{} people, {} groups", c.people, c.groups));
    }
    if c.memberships_added + c.memberships_removed > 0 {
        parts.push(format!(
            "memberships +{} −{}",
            c.memberships_added, c.memberships_removed
        ));
    }
    if kind == "carddav" {
        parts.push(format!(
            "{} card{}: {} written, {} unchanged, {} contact{} removed",
            c.listed,
            if c.listed == 1 { "" } else { "s" },
            c.stored,
            c.unchanged,
            c.removed,
            if c.removed == 1 { "" } else { "s" }
        ));
        if c.contacts_matched > 0 {
            parts.push(format!("{} matched existing contacts", c.contacts_matched));
        }
        if c.contacts_kept > 0 {
            parts.push(format!("{} kept (changed here)", c.contacts_kept));
        }
    } else if c.listed > 0 {
        parts.push(format!(
            "{} documents: {} read, {} unchanged, {} removed",
            c.listed, c.stored, c.unchanged, c.removed
        ));
    }
    if c.archived_skipped > 0 {
        parts.push(format!("{} archived", c.archived_skipped));
    }
    if c.errors + c.warnings > 0 {
        parts.push(format!("{} errors, {} warnings", c.errors, c.warnings));
    }
    RunLine {
        when: when(r.started_at),
        trigger: match r.trigger.as_str() {
            "schedule" => "scheduled",
            "added" => "first sync",
            _ => "sync now",
        }
        .into(),
        state: r.state.clone(),
        summary: if parts.is_empty() {
            "nothing found".into()
        } else {
            parts.join("; ")
        },
        problems: r.problems.clone(),
    }
}

/// A connector as a card of the list.
#[derive(Debug)]
pub struct ConnectorLine {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub paused: bool,
    pub every_minutes: i64,
    pub next: String,
    pub last: Option<RunLine>,
}

fn line(c: &ConnectorView) -> ConnectorLine {
    ConnectorLine {
        id: c.id.clone(),
        source: c.source.clone(),
        kind: c.kind.clone(),
        paused: c.paused,
        every_minutes: c.every_minutes,
        next: when(c.next_sync_at),
        last: c.last_run.as_ref().map(|r| run_line(&c.kind, r)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace/connectors.html")]
pub struct ListPage {
    chrome: Chrome,
    ws: String,
    connectors: Vec<ConnectorLine>,
    kinds: Vec<KindLine>,
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
    /// Contacts kept on disconnecting (changed in Meshwork).
    #[serde(default)]
    kept: u64,
}

fn notice_of(done: &str) -> Option<String> {
    notice_with(done, 0)
}

fn notice_with(done: &str, kept: u64) -> Option<String> {
    if done == "disconnected" && kept > 0 {
        return Some(format!(
            "Disconnected: everything it brought is deleted, except {kept} contact{} changed in Meshwork since, which stay{}.",
            if kept == 1 { "" } else { "s" },
            if kept == 1 { "s" } else { "" }
        ));
    }
    match done {
        "added" => Some("The connector is added; its first sync has started."),
        "added-paused" => {
            Some("The connector is added, paused: nothing is read until you resume it.")
        }
        "sync" => Some("A sync has started; its result shows below when it ends."),
        "paused" => Some("Paused: no sync runs until you resume it."),
        "resumed" => Some("Resumed: a sync starts now, then on its schedule."),
        "disconnected" => Some("Disconnected: everything it brought is deleted."),
        _ => None,
    }
    .map(Into::into)
}

async fn list(
    State(state): State<AppState>,
    p: InWorkspace<perm::SourcesWrite>,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let connectors = connectors::list(&state, &p.member).await?;
    Ok(ListPage {
        chrome: Chrome::workspace(&state, &p, Section::Settings).await?,
        ws: p.ws().to_string(),
        connectors: connectors.iter().map(line).collect(),
        kinds: kinds(),
        notice: notice_with(&q.done, q.kept),
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace/connector_new.html")]
pub struct NewPage {
    chrome: Chrome,
    ws: String,
    kind: KindLine,
    /// What was typed (never a password).
    typed: HashMap<String, String>,
    error: Option<String>,
    tried: Option<String>,
    accounts: Vec<usize>,
    security_none: bool,
}

impl NewPage {
    /// What was typed in a field (empty when nothing).
    fn value(&self, k: impl AsRef<str>) -> String {
        self.typed.get(k.as_ref()).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
pub struct KindQuery {
    #[serde(default)]
    kind: String,
}

fn kind_line(kind: &str) -> Result<KindLine, PageError> {
    kinds().into_iter().find(|k| k.kind == kind).ok_or_else(|| {
        PageError::new(
            ErrorCode::InvalidField,
            format!("there is no connector of the kind {kind:?}"),
        )
    })
}

const ACCOUNT_ROWS: usize = 6;

async fn new_page(
    state: &AppState,
    p: &InWorkspace<perm::SourcesWrite>,
    kind: KindLine,
    typed: HashMap<String, String>,
    error: Option<String>,
    tried: Option<String>,
) -> Result<NewPage, PageError> {
    Ok(NewPage {
        chrome: Chrome::workspace(state, p, Section::Settings).await?,
        ws: p.ws().to_string(),
        kind,
        security_none: typed.get("security").map(String::as_str) == Some("none"),
        typed,
        error,
        tried,
        accounts: (0..ACCOUNT_ROWS).collect(),
    })
}

async fn new(
    State(state): State<AppState>,
    p: InWorkspace<perm::SourcesWrite>,
    Query(q): Query<KindQuery>,
) -> Result<Response, PageError> {
    let kind = kind_line(&q.kind)?;
    let mut typed = HashMap::new();
    typed.insert(
        "every_minutes".into(),
        connectors::DEFAULT_EVERY_MINUTES.to_string(),
    );
    typed.insert("source".into(), kind.kind.clone());
    Ok(new_page(&state, &p, kind, typed, None, None)
        .await?
        .into_response())
}

/// The settings a posted form describes, as the API takes them.
fn settings_of(kind: &str, f: &HashMap<String, String>) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!(kind));
    let text = |k: &str| {
        f.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    match kind {
        "ldap" => {
            for k in ["url", "bind_dn", "base_dn", "user_filter", "group_filter"] {
                put(k, text(k).map(Value::String));
            }
            put("password", f.get("password").cloned().map(Value::String));
            put(
                "starttls",
                Some(json!(f.get("starttls").map(String::as_str) == Some("yes"))),
            );
        }
        "carddav" => {
            for k in ["url", "user"] {
                put(k, text(k).map(Value::String));
            }
            put("password", f.get("password").cloned().map(Value::String));
        }
        "folder" => {
            for k in ["path", "passwd_file", "group_file", "email_domain"] {
                put(k, text(k).map(Value::String));
            }
            if let Some(url) = text("ldap_url") {
                let mut ldap = Map::new();
                ldap.insert("url".into(), json!(url));
                for k in ["bind_dn", "base_dn"] {
                    if let Some(v) = text(&format!("ldap_{k}")) {
                        ldap.insert(k.into(), json!(v));
                    }
                }
                let password = f.get("ldap_password").cloned().unwrap_or_default();
                ldap.insert("password".into(), json!(password));
                put("ldap", Some(Value::Object(ldap)));
            }
        }
        "imap" => {
            put("host", text("host").map(Value::String));
            put(
                "port",
                text("port").map(|p| {
                    p.parse::<u64>()
                        .map(Value::from)
                        .unwrap_or(Value::String(p))
                }),
            );
            put("security", text("security").map(Value::String));
            put("email_domain", text("email_domain").map(Value::String));
            put(
                "log_to_crm",
                Some(json!(
                    f.get("log_to_crm").map(String::as_str) == Some("yes")
                )),
            );
            let accounts: Vec<Value> = (0..ACCOUNT_ROWS)
                .filter_map(|i| {
                    let user = text(&format!("a{i}_user"))?;
                    Some(json!({"user": user, "password": f.get(&format!("a{i}_password")).cloned().unwrap_or_default()}))
                })
                .collect();
            put("accounts", Some(Value::Array(accounts)));
        }
        _ => {}
    }
    Value::Object(m)
}

/// What a refusal says on the page (anything but an internal failure).
fn shown(e: meshwork_app::AppError) -> Result<String, PageError> {
    if e.code == ErrorCode::Internal {
        return Err(e.into());
    }
    Ok(e.message)
}

fn refused(r: impl IntoResponse) -> Response {
    let mut r = r.into_response();
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

async fn add(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::SourcesWrite>,
    Posted(_, f): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let kind = kind_line(f.get("kind").map(String::as_str).unwrap_or_default())?;
    let settings = settings_of(&kind.kind, &f);
    // Typed values come back, never a password.
    let typed: HashMap<String, String> = f
        .iter()
        .filter(|(k, _)| !k.contains("password") && *k != "csrf_token")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if f.get("action").map(String::as_str) == Some("try") {
        return Ok(
            match connectors::try_settings(&p.member, &state, settings).await {
                Ok(message) => new_page(
                    &state,
                    &p,
                    kind,
                    typed,
                    None,
                    Some(format!(
                        "It works: {message}. Passwords are not kept until you add the connector."
                    )),
                )
                .await?
                .into_response(),
                Err(e) => refused(new_page(&state, &p, kind, typed, Some(shown(e)?), None).await?),
            },
        );
    }
    let every = f.get("every_minutes").map(|v| v.trim().parse::<u32>());
    let every_minutes = match every {
        Some(Ok(m)) => Some(m),
        Some(Err(_)) => {
            let msg = "field `every_minutes`: a whole number of minutes, 1 to 1440".to_string();
            return Ok(refused(
                new_page(&state, &p, kind, typed, Some(msg), None).await?,
            ));
        }
        None => None,
    };
    let paused = f.get("paused").map(String::as_str) == Some("yes");
    let input = NewConnector {
        source: f
            .get("source")
            .cloned()
            .unwrap_or_default()
            .trim()
            .to_string(),
        every_minutes,
        paused,
        settings,
    };
    match connectors::create(&state, &client, &p.member, input).await {
        Ok(c) => Ok(Redirect::to(&format!(
            "/w/{}/connectors/{}?done={}",
            p.ws(),
            c.id,
            if paused { "added-paused" } else { "added" }
        ))
        .into_response()),
        Err(e) => Ok(refused(
            new_page(&state, &p, kind, typed, Some(shown(e)?), None).await?,
        )),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace/connector.html")]
pub struct ShowPage {
    chrome: Chrome,
    ws: String,
    c: ConnectorLine,
    settings: Vec<(String, String)>,
    scopes: Vec<(String, String)>,
    runs: Vec<RunLine>,
    notice: Option<String>,
    error: Option<String>,
}

fn flat(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                if k != "kind" {
                    flat(
                        &if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        },
                        v,
                        out,
                    );
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flat(&format!("{prefix}[{}]", i + 1), v, out);
            }
        }
        Value::String(s) => out.push((prefix.replace('_', " "), s.clone())),
        Value::Null => {}
        other => out.push((prefix.replace('_', " "), other.to_string())),
    }
}

async fn show_page(
    state: &AppState,
    p: &InWorkspace<perm::SourcesWrite>,
    id: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Result<ShowPage, PageError> {
    let c = connectors::get(state, &p.member, id).await?;
    let runs = connectors::runs(state, &p.member, id, 20).await?;
    let mut settings = Vec::new();
    flat("", &c.settings, &mut settings);
    Ok(ShowPage {
        chrome: Chrome::workspace(state, p, Section::Settings).await?,
        ws: p.ws().to_string(),
        scopes: c
            .scopes
            .iter()
            .map(|s| (s.name.to_string(), s.description.to_string()))
            .collect(),
        c: line(&c),
        settings,
        runs: runs.iter().map(|r| run_line(&c.kind, r)).collect(),
        notice,
        error,
    })
}

async fn show(
    State(state): State<AppState>,
    p: InWorkspace<perm::SourcesWrite>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    Ok(show_page(&state, &p, &id, notice_of(&q.done), None)
        .await?
        .into_response())
}

fn back(p: &InWorkspace<perm::SourcesWrite>, id: &str, done: &str) -> Response {
    Redirect::to(&format!("/w/{}/connectors/{id}?done={done}", p.ws())).into_response()
}

async fn sync(
    State(state): State<AppState>,
    p: InWorkspace<perm::SourcesWrite>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, _): Posted<CsrfOnly>,
) -> Result<Response, PageError> {
    connectors::sync_now(&state, &p.member, &id).await?;
    Ok(back(&p, &id, "sync"))
}

#[derive(Debug, Deserialize)]
pub struct PausedForm {
    #[serde(default)]
    paused: String,
}

/// Pauses (`paused=yes`) or resumes and syncs now (`paused=no`).
async fn set_paused(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::SourcesWrite>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, f): Posted<PausedForm>,
) -> Result<Response, PageError> {
    let paused = f.paused == "yes";
    connectors::set_paused(&state, &client, &p.member, &id, paused).await?;
    Ok(back(&p, &id, if paused { "paused" } else { "resumed" }))
}

async fn test(
    State(state): State<AppState>,
    p: InWorkspace<perm::SourcesWrite>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, _): Posted<CsrfOnly>,
) -> Result<Response, PageError> {
    Ok(match connectors::test(&state, &p.member, &id).await {
        Ok(m) => show_page(
            &state,
            &p,
            &id,
            Some(format!("The connection works: {m}.")),
            None,
        )
        .await?
        .into_response(),
        Err(e) => refused(show_page(&state, &p, &id, None, Some(shown(e)?)).await?),
    })
}

#[derive(Debug, Deserialize)]
pub struct DisconnectForm {
    #[serde(default)]
    confirm: String,
}

async fn disconnect(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::SourcesWrite>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, f): Posted<DisconnectForm>,
) -> Result<Response, PageError> {
    if f.confirm != "yes" {
        let msg =
            "Tick the box to confirm: disconnecting deletes everything the connector brought."
                .to_string();
        return Ok(refused(show_page(&state, &p, &id, None, Some(msg)).await?));
    }
    let done = connectors::disconnect(&state, &client, &p.member, &id).await?;
    let kept = match done.contacts_kept {
        0 => String::new(),
        n => format!("&kept={n}"),
    };
    Ok(Redirect::to(&format!("/w/{}/connectors?done=disconnected{kept}", p.ws())).into_response())
}
