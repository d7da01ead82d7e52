//! A workspace's background jobs, for its owners and admins (`jobs.read`): imports and whatever
//! else runs in the workspace, with their state, attempts and the reason a run failed.

use crate::auth::{perm, Authorized};
use crate::error::ApiError;
use crate::error::{ApiResult, ErrorBody, Json, Query};
use axum::extract::State;
use meshwork_app::jobs::{self, JobView};
use meshwork_app::AppState;
use meshwork_domain::ErrorCode;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only jobs in this state: `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: Option<String>,
    /// At most this many, newest first (1 to 200, default 50).
    pub limit: Option<i64>,
}

/// The workspace's background jobs, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/jobs", tag = "workspaces",
    security(("session" = ["jobs.read"]), ("api_key" = ["jobs.read"])),
    params(("workspace_id" = uuid::Uuid, Path), JobsQuery),
    responses((status = 200, body = Vec<JobView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<perm::JobsRead>,
    Query(q): Query<JobsQuery>,
) -> ApiResult<Json<Vec<JobView>>> {
    let limit = match q.limit {
        None => 50,
        Some(n) if (1..=200).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("query `limit`: must be 1 to 200, got {n}"),
            ))
        }
    };
    Ok(Json(
        jobs::list(&state, Some(auth.workspace), q.state.as_deref(), limit).await?,
    ))
}
