//! The pipeline board: a pipeline's deals as cards in stage columns, each column with its count
//! and its total per currency (from the index's stage totals, so they are exact however many
//! deals there are). A deal moves by dragging its card to another column (`assets/app.js`) or,
//! with the keyboard or without script, by the "Move to" choice on the card; both post the same
//! form, which updates the deal through the CRM service with the version the card was drawn
//! from, so a move never overwrites a change made meanwhile. Those whose role shapes the
//! workspace (`crm.schema`) create pipelines here.

use super::extract::{InWorkspace, Posted};
use super::fields;
use super::{Chrome, PageError, Section};
use crate::auth::perm;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::crm::{Crm, RecordList};
use meshwork_app::AppState;
use meshwork_crm::{Doc, Filter, Kind};
use meshwork_domain::{ErrorCode, Permission, RecordId};
use serde::Deserialize;
use serde_json::{json, Value};

/// Cards shown per column; the column's count and total cover all of its deals.
const CARDS_PER_STAGE: usize = 50;

#[derive(Debug)]
pub struct Card {
    pub id: String,
    pub href: String,
    pub name: String,
    pub amount: String,
    pub version: i64,
}

#[derive(Debug)]
pub struct Column {
    pub id: String,
    pub name: String,
    pub count: u64,
    pub totals: Vec<String>,
    pub cards: Vec<Card>,
    pub more: u64,
}

#[derive(Template, WebTemplate)]
#[template(path = "records/board.html")]
pub struct BoardPage {
    chrome: Chrome,
    ws: String,
    pipelines: Vec<(String, String)>,
    pipeline: String,
    columns: Vec<Column>,
    can_write: bool,
    can_shape: bool,
    new_name: String,
    new_stages: String,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct BoardQuery {
    #[serde(default)]
    pipeline: String,
}

async fn board_page(
    state: &AppState,
    page: &InWorkspace<perm::CrmRead>,
    wanted: &str,
) -> Result<BoardPage, PageError> {
    let crm = Crm::new(state, page.ws())?;
    let pipelines = crm.all(Kind::Pipeline).await?;
    let chosen = pipelines
        .iter()
        .find(|(row, _)| row.id.to_string() == wanted)
        .or_else(|| pipelines.first());
    let mut columns = Vec::new();
    if let Some((row, doc)) = chosen {
        let pipeline_id = row.id.to_string();
        let stages = doc
            .get("stages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // One query for the counts and totals of every stage.
        let all = crm
            .list(
                &page.member.actor,
                page.member.role,
                deals_in(&pipeline_id, None, 1)?,
            )
            .await?;
        let totals = all.stage_totals.unwrap_or_default();
        for stage in &stages {
            let Some(id) = stage.get("id").and_then(Value::as_str) else {
                continue;
            };
            let name = stage.get("name").and_then(Value::as_str).unwrap_or(id);
            let here: Vec<_> = totals.iter().filter(|t| t.stage == id).collect();
            let count: u64 = here.iter().map(|t| t.count).sum();
            let sums = here
                .iter()
                .filter(|t| t.currency.is_some() || t.amount != "0")
                .map(|t| fields::money(&t.amount, t.currency.as_deref()))
                .collect();
            let cards = if count == 0 {
                Vec::new()
            } else {
                crm.list(
                    &page.member.actor,
                    page.member.role,
                    deals_in(&pipeline_id, Some(id), CARDS_PER_STAGE)?,
                )
                .await?
                .records
                .into_iter()
                .map(|r| Card {
                    href: format!("/w/{}/deals/{}", page.ws(), r.id),
                    id: r.id.to_string(),
                    name: fields::title(Kind::Deal, &r.fields),
                    amount: r
                        .fields
                        .get("amount")
                        .and_then(Value::as_str)
                        .map(|a| fields::money(a, r.fields.get("currency").and_then(Value::as_str)))
                        .unwrap_or_default(),
                    version: r.version,
                })
                .collect::<Vec<_>>()
            };
            columns.push(Column {
                id: id.to_string(),
                name: name.to_string(),
                more: count.saturating_sub(cards.len() as u64),
                count,
                totals: sums,
                cards,
            });
        }
    }
    Ok(BoardPage {
        chrome: Chrome::workspace(state, page, Section::Board).await?,
        ws: page.ws().to_string(),
        pipelines: pipelines
            .iter()
            .map(|(row, doc)| (row.id.to_string(), fields::title(Kind::Pipeline, doc)))
            .collect(),
        pipeline: chosen.map(|(r, _)| r.id.to_string()).unwrap_or_default(),
        columns,
        can_write: page.member.may(Permission::CrmWrite),
        can_shape: page.member.may(Permission::CrmSchema),
        new_name: if pipelines.is_empty() {
            "Sales".into()
        } else {
            String::new()
        },
        new_stages: "Lead, Qualified, Proposal, Won, Lost".into(),
        error: None,
    })
}

/// The deals of a pipeline (and stage), most recently changed first.
fn deals_in(pipeline: &str, stage: Option<&str>, limit: usize) -> Result<RecordList, PageError> {
    let mut terms = vec![("pipeline", pipeline)];
    if let Some(s) = stage {
        terms.push(("stage", s));
    }
    Ok(RecordList {
        kind: Kind::Deal,
        filter: Filter::parse(Kind::Deal, terms).map_err(meshwork_app::AppError::from)?,
        text: None,
        sort: "-updated".parse().unwrap_or_default(),
        cursor: None,
        limit,
        linked_to: None,
    })
}

pub async fn board(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmRead>,
    Query(q): Query<BoardQuery>,
) -> Result<Response, PageError> {
    Ok(board_page(&state, &page, &q.pipeline)
        .await?
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    stage: String,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    pipeline: String,
}

/// Moves a deal to another stage of its pipeline.
pub async fn move_deal(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmWrite>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<MoveForm>,
) -> Result<Response, PageError> {
    let id: RecordId = id
        .parse()
        .map_err(|_| PageError::new(ErrorCode::RecordNotFound, "there is no such deal"))?;
    let mut patch = Doc::new();
    patch.insert("stage".into(), Value::String(form.stage.clone()));
    let crm = Crm::new(&state, page.ws())?;
    match crm.update(Kind::Deal, id, &patch, form.version).await {
        Ok(_) => Ok(Redirect::to(&format!(
            "/w/{}/board?pipeline={}",
            page.ws(),
            form.pipeline
        ))
        .into_response()),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let read = page.also::<perm::CrmRead>()?;
            let mut p = board_page(&state, &read, &form.pipeline).await?;
            p.error = Some(if e.code == ErrorCode::ConcurrentChange {
                "That deal was changed by someone else after the board was drawn; here is the board as it is now. Move it again if you still want to.".into()
            } else {
                fields::errors_of(&e)
                    .1
                    .unwrap_or_else(|| super::accounts::capitalized(&e.message))
            });
            let mut r = p.into_response();
            *r.status_mut() = if e.code == ErrorCode::ConcurrentChange {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Ok(r)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PipelineForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    stages: String,
}

/// Creates a pipeline from a name and its stages' names in order (a stage named "Won" or
/// "Lost" closes the deal as won or lost).
pub async fn create_pipeline(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmSchema>,
    Posted(_, form): Posted<PipelineForm>,
) -> Result<Response, PageError> {
    let stages: Vec<Value> = form
        .stages
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let l = s.to_lowercase();
            json!({"name": s, "won": l == "won" || l == "closed won", "lost": l == "lost" || l == "closed lost"})
        })
        .collect();
    let mut doc = Doc::new();
    doc.insert("name".into(), Value::String(form.name.trim().into()));
    doc.insert("stages".into(), Value::Array(stages));
    let crm = Crm::new(&state, page.ws())?;
    match crm.create(Kind::Pipeline, &doc).await {
        Ok(v) => {
            Ok(Redirect::to(&format!("/w/{}/board?pipeline={}", page.ws(), v.id)).into_response())
        }
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let read = page.also::<perm::CrmRead>()?;
            let mut p = board_page(&state, &read, "").await?;
            p.new_name = form.name;
            p.new_stages = form.stages;
            p.error = Some(super::accounts::field_of(&e).1);
            let mut r = p.into_response();
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}
