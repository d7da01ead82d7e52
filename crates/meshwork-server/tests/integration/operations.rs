//! Operating the server: Prometheus metrics on their own loopback listener or behind a token.

use super::common::*;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::json;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// GETs `url` with an optional bearer token: (status, content type, body).
async fn scrape(url: &str, token: Option<&str>) -> (StatusCode, String, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status(), ct, r.text().await.unwrap())
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Requests are counted by route template (never a path's ids), and the queues, the outbox and
/// the search index's lag behind the feed are read at each scrape; the main listener has no
/// `/metrics` without a token.
async fn metrics_count_requests_by_route_and_report_queues_and_lag(s: &mut TestServer) {
    s.config.metrics.listen = "127.0.0.1:0".into();
    s.restart().await;
    let metrics = format!(
        "http://{}/metrics",
        s.running.as_ref().unwrap().metrics_addr.unwrap()
    );
    let me = s.signup("Kim", "kim@example.com").await;
    let ws = s.create_workspace(&me, "Acme").await;
    for _ in 0..2 {
        let (status, _) = s
            .call(
                Method::GET,
                &format!("/api/v1/workspaces/{ws}"),
                &As::User(&me),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = s
        .call(Method::GET, "/api/v1/no-such-route", &As::User(&me), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/search?q=acme"),
            &As::User(&me),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, ct, text) = scrape(&metrics, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        sample(
            &text,
            "meshwork_http_requests_total{route=\"/api/v1/workspaces/{workspace_id}\",method=\"GET\",status=\"200\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "meshwork_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "meshwork_http_request_duration_seconds_count{route=\"/api/v1/workspaces/{workspace_id}\",method=\"GET\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "meshwork_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/api/v1/workspaces/{workspace_id}\",method=\"GET\"}"),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains(&ws), "no workspace id in the metrics");
    assert!(!text.contains("kim@example.com"));
    assert_eq!(sample(&text, "meshwork_store_up"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "meshwork_workspaces"), Some(1.0), "{text}");
    // No SMTP server: the verification mail waits in the outbox.
    assert!(
        sample(&text, "meshwork_outbox_unsent").unwrap() >= 1.0,
        "{text}"
    );
    assert!(sample(&text, "meshwork_outbox_oldest_unsent_age_seconds").is_some());
    assert_eq!(
        sample(&text, "meshwork_search_indexes_open"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "meshwork_search_index_lag_changes"),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, "process_resident_memory_bytes").unwrap() > 1e6,
        "{text}"
    );
    let backend = format!("{:?}", s.state().store.backend()).to_lowercase();
    assert!(
        text.contains(&format!(
            "meshwork_build_info{{version=\"{}\",backend=\"{backend}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );

    // A change the index has not applied yet (an invitation is in the feed, and only CRM
    // writes and searches catch the index up) is lag; the next search applies it.
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/invites"),
            &As::User(&me),
            Some(json!({"email": "lee@example.com", "role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, text) = scrape(&metrics, None).await;
    assert!(
        sample(&text, "meshwork_search_index_lag_changes").unwrap() >= 1.0,
        "{text}"
    );
    s.call(
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/search?q=acme"),
        &As::User(&me),
        None,
    )
    .await;
    let (_, _, text) = scrape(&metrics, None).await;
    assert_eq!(
        sample(&text, "meshwork_search_index_lag_changes"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "meshwork_search_index_lag_max_changes"),
        Some(0.0)
    );

    // Without a token the main listener has no /metrics.
    let (status, _, body) = scrape(&format!("{}/metrics", s.base), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("route_not_found"), "{body}");
}
server_test!(metrics_count_requests_by_route_and_report_queues_and_lag);

/// With `metrics.token` set, both listeners answer only to its holders; a wrong token is refused
/// like none.
async fn metrics_need_the_token_where_one_is_set(s: &mut TestServer) {
    s.config.metrics.listen = "127.0.0.1:0".into();
    s.config.metrics.token = TOKEN.into();
    s.restart().await;
    let own = format!(
        "http://{}/metrics",
        s.running.as_ref().unwrap().metrics_addr.unwrap()
    );
    let main = format!("{}/metrics", s.base);
    for url in [&own, &main] {
        let (status, _, body) = scrape(url, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{url}: {body}");
        assert!(body.contains("metrics.token"), "{body}");
        let (status, _, _) = scrape(url, Some("0123456789abcdef0123456789abcdeX")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{url}");
        let (status, _, text) = scrape(url, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(text.contains("meshwork_store_up 1"), "{text}");
    }
    // The metrics listener serves nothing else.
    let (status, _, _) = scrape(&own.replace("/metrics", "/healthz"), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
server_test!(metrics_need_the_token_where_one_is_set);
