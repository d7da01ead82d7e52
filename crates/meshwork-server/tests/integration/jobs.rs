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
    // Retried, it runs now (the runner may claim it before `retry` reads it back, so its state
    // then is queued or already running).
    let j = jobs::retry(s.state(), id).await.unwrap();
    assert!(
        matches!(j.state.as_str(), "queued" | "running" | "done"),
        "{}",
        j.state
    );
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
    let (period, _) = jobs::periodic(&s.state().config)[0].period(now_millis());
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

async fn a_job_whose_runs_keep_stopping_fails_instead_of_looping(s: &mut TestServer) {
    // Held by a server that died, with no attempts left: not taken over again.
    let mut job = NewJob::new(jobs::PRUNE, json!({}));
    job.max_attempts = 2;
    let id = uuid::Uuid::now_v7();
    let mut row = jobs::row(s.state(), &job, id).unwrap();
    row.state = "running".into();
    row.attempts = 2;
    row.lease_holder = Some("a-server-that-died".into());
    row.lease_until = Some(now_millis() - 1);
    assert!(s.state().store.enqueue_job(&row).await.unwrap());
    s.state().jobs_wake.notify_one();
    let failed = wait_state(s, id, "failed").await;
    assert_eq!(failed.attempts, 2, "never run again");
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("stopped while running it, 2 times"),
        "{failed:?}"
    );
}
server_test!(a_job_whose_runs_keep_stopping_fails_instead_of_looping);

async fn cancelling_an_imports_job_ends_the_import(s: &mut TestServer) {
    let owner = s.signup("Olive Owner", "olive@jobs.test").await;
    let ws = WorkspaceId(s.create_workspace(&owner, "Sales").await.parse().unwrap());
    let file = s.data_dir().join("contacts.csv");
    std::fs::write(&file, "First Name,Email\nAda,ada@jobs.test\n").unwrap();
    let spec = meshwork_app::import::ImportSpec {
        file: file.clone(),
        sha256: meshwork_app::import::sha256_file(&file).unwrap(),
        kind: "contact".into(),
        layout: "hubspot".into(),
        mapping: None,
        mode: meshwork_app::import::Mode::Upsert,
        match_on: "email".into(),
        default_owner: None,
        default_tags: vec![],
        error_csv: s.data_dir().join("errors.csv"),
        sealed_upload: None,
    };
    let user = meshwork_domain::UserId(owner.user_id.parse().unwrap());
    let import = meshwork_app::import::create_job(s.state(), ws, user, &spec)
        .await
        .unwrap();
    // Its job, queued for later, is cancelled by an operator.
    let mut job = NewJob::new(jobs::IMPORT, json!({"job": import.to_string()})).in_workspace(ws);
    job.run_at = now_millis() + 3_600_000;
    let id = jobs::enqueue(s.state(), job).await.unwrap().unwrap();
    jobs::cancel(s.state(), id).await.unwrap();
    let (row, _, progress) = meshwork_app::import::job_state(s.state(), ws, import)
        .await
        .unwrap();
    assert_eq!(row.state, "failed");
    assert!(
        progress.errors[0]
            .reason
            .contains("cancelled by an operator"),
        "{:?}",
        progress.errors
    );
}
server_test!(cancelling_an_imports_job_ends_the_import);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_sqlite_database_refuses_to_start() {
    let mut s = TestServer::start(super::common::TestBackend::Sqlite)
        .await
        .unwrap();
    let mut second = s.config.clone();
    second.listen = "127.0.0.1:0".parse().unwrap();
    let err = meshwork_server::start(second.clone()).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("another meshwork serve runs on the SQLite database"),
        "{err:#}"
    );
    // Once the first stops, the database is free again.
    s.stop().await;
    let running = meshwork_server::start(second).await.unwrap();
    running.stop().await.unwrap();
}
