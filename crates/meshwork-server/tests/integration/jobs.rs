//! The job runner inside a real server: leases taken over, operators' cancel and retry, payloads
//! that can no longer be opened, periodic jobs, and a workspace's jobs through the API.

use super::common::{As, TestServer};
use crate::server_test;
use meshwork_app::jobs::{self, JobView, NewJob};
use meshwork_app::state::now_millis;
use meshwork_domain::WorkspaceId;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

async fn wait_state(s: &TestServer, id: uuid::Uuid, want: &str) -> JobView {
    let start = Instant::now();
    loop {
        let j = jobs::show(s.state(), id).await.unwrap();
        if j.state == want {
            return j;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "job {id} never became {want}: {j:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_job_held_by_a_dead_runner_is_taken_over_when_its_lease_expires(s: &mut TestServer) {
    // A job some other server claimed, then died holding: its lease runs out in 1.5 s.
    let job = NewJob::new(jobs::PRUNE, json!({}));
    let id = uuid::Uuid::now_v7();
    let mut row = jobs::row(s.state(), &job, id).unwrap();
    row.state = "running".into();
    row.attempts = 1;
    row.lease_holder = Some("a-server-that-died".into());
    row.lease_until = Some(now_millis() + 1500);
    assert!(s.state().store.enqueue_job(&row).await.unwrap());
    s.state().jobs_wake.notify_one();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = jobs::show(s.state(), id).await.unwrap();
    assert_eq!(held.state, "running");
    assert_eq!(held.lease_holder.as_deref(), Some("a-server-that-died"));
    let done = wait_state(s, id, "done").await;
    assert_eq!(done.attempts, 2, "the takeover is a second attempt");
    assert_eq!(done.lease_holder, None);
}
server_test!(a_job_held_by_a_dead_runner_is_taken_over_when_its_lease_expires);

async fn operators_cancel_a_queued_job_and_retry_it(s: &mut TestServer) {
    let mut job = NewJob::new(jobs::PRUNE, json!({}));
    job.run_at = now_millis() + 3_600_000;
    let id = jobs::enqueue(s.state(), job).await.unwrap().unwrap();
    assert_eq!(jobs::show(s.state(), id).await.unwrap().state, "queued");
    let err = jobs::retry(s.state(), id).await.unwrap_err();
    assert!(
        err.message.contains("only a failed or cancelled job"),
        "{err}"
    );
    assert_eq!(
        jobs::cancel(s.state(), id).await.unwrap().state,
        "cancelled"
    );
    let err = jobs::cancel(s.state(), id).await.unwrap_err();
    assert!(err.message.contains("is cancelled"), "{err}");
    // Retried, it runs now.
    let j = jobs::retry(s.state(), id).await.unwrap();
    assert_eq!(j.attempts, 0);
    let done = wait_state(s, id, "done").await;
    assert_eq!(done.attempts, 1);
    let err = jobs::show(s.state(), uuid::Uuid::now_v7())
        .await
        .unwrap_err();
    assert!(err.message.starts_with("no job"), "{err}");
    let err = jobs::list(s.state(), None, Some("finished"), 10)
        .await
        .unwrap_err();
    assert!(err.message.contains("field `state`"), "{err}");
}
server_test!(operators_cancel_a_queued_job_and_retry_it);

async fn a_payload_that_can_no_longer_be_opened_fails_its_job_with_the_reason(s: &mut TestServer) {
    let owner = s.signup("Olive Owner", "olive@jobs.test").await;
    let ws: uuid::Uuid = s.create_workspace(&owner, "Doomed").await.parse().unwrap();
    // A sealed payload (personal data) in a workspace whose key is then destroyed, as a
    // deletion that stopped half-way leaves it.
    let mut job =
        NewJob::new(jobs::PRUNE, json!({"who": "someone@jobs.test"})).in_workspace(WorkspaceId(ws));
    job.sealed = true;
    job.run_at = now_millis() + 3_600_000;
    let id = jobs::enqueue(s.state(), job).await.unwrap().unwrap();
    let row = s.state().store.queued_job(id).await.unwrap().unwrap();
    assert!(row.payload_sealed);
    assert!(!super::common::contains(&row.payload, b"someone@jobs.test"));
    s.state().keyring.destroy_workspace_key(ws).unwrap();
    jobs::cancel(s.state(), id).await.unwrap();
    jobs::retry(s.state(), id).await.unwrap();
    let failed = wait_state(s, id, "failed").await;
    assert_eq!(failed.attempts, 1, "never retried");
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("cannot be opened"),
        "{failed:?}"
    );
}
server_test!(a_payload_that_can_no_longer_be_opened_fails_its_job_with_the_reason);

async fn a_periodic_job_is_one_row_per_period(s: &mut TestServer) {
    // The runner scheduled this period's housekeeping at start; scheduling it again (as another
    // server would) adds nothing.
    let every = s.state().config.jobs.housekeeping_seconds as i64 * 1000;
    let period = now_millis() / every;
    let start = Instant::now();
    loop {
        let found = jobs::list(s.state(), None, None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.kind == jobs::PRUNE)
            .count();
        if found == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no housekeeping job"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut again = NewJob::new(jobs::PRUNE, json!({}));
    again.unique_key = Some(format!("{}@{period}", jobs::PRUNE));
    assert_eq!(jobs::enqueue(s.state(), again).await.unwrap(), None);
}
server_test!(a_periodic_job_is_one_row_per_period);

async fn owners_and_admins_see_a_workspaces_jobs(s: &mut TestServer) {
    let owner = s.signup("Olive Owner", "olive@jobs.test").await;
    let ws = s.create_workspace(&owner, "Sales").await;
    let viewer = s.signup("Vic Viewer", "vic@jobs.test").await;
    s.add_member(&owner, &ws, &viewer, "viewer").await;
    let csv = "First Name,Last Name,Email\nAda,Lovelace,ada@jobs.test\n";
    let r = s
        .req(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/imports?type=contact&layout=hubspot"),
            &As::User(&owner),
        )
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let start = Instant::now();
    let list = loop {
        let (status, list) = s
            .call(
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/jobs?state=done"),
                &As::User(&owner),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        if !list.as_array().unwrap().is_empty() {
            break list;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the import never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(list[0]["kind"], "import");
    assert_eq!(list[0]["workspace_id"], ws.as_str());
    assert!(list[0].get("payload").is_none());
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/jobs"),
            &As::User(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Mail jobs belong to no workspace: they never show in one.
    let (_, all) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/jobs"),
            &As::User(&owner),
            None,
        )
        .await;
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["workspace_id"] == ws.as_str()));
}
server_test!(owners_and_admins_see_a_workspaces_jobs);
