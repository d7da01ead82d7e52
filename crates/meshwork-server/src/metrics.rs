//! Prometheus metrics (`GET /metrics`, OpenMetrics text): requests by route, method and status
//! and their latencies (counted by a layer over every route), this process's job runs, and, read
//! at each scrape, the job queue, the outbox backlog and how far each open search index lags
//! behind its workspace's change feed. Labels name routes as templates (`/api/v1/workspaces/{ws}`),
//! never a path's ids, a person or a record.
//!
//! Served on `metrics.listen` (an address of its own, loopback unless a token is set) and, when
//! `metrics.token` is set, on the main listener to holders of the token.

use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meshwork_app::state::AppState;
use meshwork_domain::ErrorCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    backend: String,
}

type Histograms = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The metrics kept between scrapes (the HTTP ones); shared by the layer and the handlers.
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    durations: Histograms,
    started: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        fn histogram() -> Histogram {
            // 1 ms to about 16 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        }
        Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(histogram as fn() -> Histogram),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }
}

/// A bounded label for a request's method: the ones routes use, or `other`.
pub(crate) fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The layer over every route: counts each request and times it, by its route's template.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let response = next.run(req).await;
    metrics
        .durations
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method,
        })
        .observe(start.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Whether the request carries the configured token (compared in constant time).
fn token_ok(headers: &HeaderMap, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// `GET /metrics` on the main listener: only with `metrics.token` set, and only to its holders.
pub async fn on_main_listener(
    State((state, metrics)): State<(AppState, Metrics)>,
    headers: HeaderMap,
) -> Response {
    let token = &state.config.metrics.token;
    if token.is_empty() {
        return ApiError::new(
            ErrorCode::RouteNotFound,
            "no route matches this path; see /api/openapi.json",
        )
        .into_response();
    }
    serve(&state, &metrics, &headers).await
}

/// `GET /metrics` on `metrics.listen`: open to whoever reaches it unless a token is set.
pub async fn on_own_listener(
    State((state, metrics)): State<(AppState, Metrics)>,
    headers: HeaderMap,
) -> Response {
    serve(&state, &metrics, &headers).await
}

async fn serve(state: &AppState, metrics: &Metrics, headers: &HeaderMap) -> Response {
    let token = &state.config.metrics.token;
    if !token.is_empty() && !token_ok(headers, token) {
        let mut r = ApiError::new(
            ErrorCode::MissingAuthentication,
            "/metrics needs `Authorization: Bearer` with the configured metrics.token",
        )
        .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return r;
    }
    match render(state, metrics).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "could not encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The resident memory of this process (`VmRSS` of `/proc/self/status`), where there is one.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn open_fds() -> Option<i64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as i64)
}

/// The whole text: the HTTP metrics, then what is read now from the job runner and the store.
pub async fn render(state: &AppState, metrics: &Metrics) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("meshwork");
    registry.register(
        "http_requests",
        "HTTP requests answered, by route template, method and status",
        metrics.requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time to answer HTTP requests, by route template and method",
        metrics.durations.clone(),
    );

    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            backend: format!("{:?}", state.store.backend()).to_lowercase(),
        })
        .set(1);
    registry.register("build_info", "The version and storage engine", build);

    let runs = Family::<RunLabels, Counter>::default();
    let run_secs = Family::<RunLabels, Counter<f64, AtomicU64>>::default();
    for (kind, outcome, n, secs) in state.job_runs.counts() {
        let labels = RunLabels {
            kind,
            outcome: outcome.as_str(),
        };
        runs.get_or_create(&labels).inc_by(n);
        run_secs.get_or_create(&labels).inc_by(secs);
    }
    registry.register(
        "job_runs",
        "Job runs this process ended, by kind and outcome (done, retried, failed)",
        runs,
    );
    registry.register(
        "job_run_seconds",
        "Time this process spent in job runs, by kind and outcome",
        run_secs,
    );

    let store_up = Gauge::<i64>::default();
    match meshwork_app::operations::snapshot(state).await {
        Ok(s) => {
            store_up.set(1);
            let jobs = Family::<JobLabels, Gauge>::default();
            for (kind, st, n) in &s.jobs {
                jobs.get_or_create(&JobLabels {
                    kind: kind.clone(),
                    state: st.clone(),
                })
                .set(*n);
            }
            registry.register(
                "jobs",
                "Jobs in the queue not done, by kind and state (queued, running, failed), over all servers",
                jobs,
            );
            let gauge = |v: i64| {
                let g = Gauge::<i64>::default();
                g.set(v);
                g
            };
            registry.register(
                "outbox_unsent",
                "Mail queued and not yet sent",
                gauge(s.unsent_mail),
            );
            let age = Gauge::<f64, AtomicU64>::default();
            age.set(s.oldest_unsent_age_secs);
            registry.register(
                "outbox_oldest_unsent_age_seconds",
                "How long the oldest unsent mail has waited (0 when none waits)",
                age,
            );
            registry.register(
                "search_indexes_open",
                "Search indexes open in this process",
                gauge(s.indexes_open as i64),
            );
            registry.register(
                "search_index_lag_changes",
                "Changes of the feed not yet applied to this process's open search indexes, over all of them",
                gauge(s.index_lag_total),
            );
            registry.register(
                "search_index_lag_max_changes",
                "Changes of the feed not yet applied to the open search index furthest behind",
                gauge(s.index_lag_max),
            );
            registry.register(
                "workspaces",
                "Workspaces on this server",
                gauge(s.workspaces as i64),
            );
        }
        Err(e) => tracing::warn!(error = %e, "metrics: the store could not be read"),
    }
    registry.register(
        "store_up",
        "Whether the store answered the reads of this scrape",
        store_up,
    );

    let mut process = Registry::with_prefix("process");
    if let Some(rss) = resident_bytes() {
        let g = Gauge::<i64>::default();
        g.set(rss);
        process.register("resident_memory_bytes", "Resident memory size", g);
    }
    if let Some(n) = open_fds() {
        let g = Gauge::<i64>::default();
        g.set(n);
        process.register("open_fds", "Open file descriptors", g);
    }
    let start = Gauge::<f64, AtomicU64>::default();
    start.set(metrics.started);
    process.register(
        "start_time_seconds",
        "Start time of the process since the Unix epoch",
        start,
    );
    let mut out = String::new();
    prometheus_client::encoding::text::encode_registry(&mut out, &registry)?;
    prometheus_client::encoding::text::encode_registry(&mut out, &process)?;
    prometheus_client::encoding::text::encode_eof(&mut out)?;
    Ok(out)
}

/// The router of `metrics.listen`: `/metrics` and nothing else.
pub fn own_router(state: AppState, metrics: Metrics) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(on_own_listener))
        .with_state((state, metrics))
}
