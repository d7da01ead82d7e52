//! Imports as durable jobs: a run stopped mid-way and started again ends exactly where an
//! uninterrupted run does (no duplicate, no lost row); bad rows are rejected with row, column
//! and reason into an error CSV; a finished import reverts.

use super::common::*;
use super::crm::setup;
use crate::server_test;
use meshwork_domain::{JobId, UserId, WorkspaceId};
use meshwork_server::import::{self, ImportSpec, Mode};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::io::Write;

fn spec(file: &std::path::Path, mode: Mode) -> ImportSpec {
    ImportSpec {
        file: file.to_path_buf(),
        sha256: import::sha256_file(file).unwrap(),
        kind: "contact".into(),
        layout: "hubspot".into(),
        mapping: None,
        mode,
        match_on: "email".into(),
        default_owner: None,
        default_tags: vec!["imported".into()],
        error_csv: file.with_extension("errors.csv"),
    }
}

async fn contacts(s: &TestServer, ws: &str) -> Vec<String> {
    let state = s.state();
    let crm = meshwork_server::crm::Crm::new(state, WorkspaceId(ws.parse().unwrap())).unwrap();
    let mut emails: Vec<String> = crm
        .all(meshwork_crm::Kind::Contact)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, d)| d["emails"].to_string())
        .collect();
    emails.sort();
    emails
}

async fn import_resumes_after_a_stop_without_duplicates_or_losses(s: &mut TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("contacts.csv");
    let mut bytes = Vec::new();
    meshwork_crm_io::generate_hubspot_contacts(11, 2600, &mut bytes).unwrap();
    // Two bad rows: an invalid email, and a ragged row.
    let header_len = String::from_utf8_lossy(&bytes)
        .lines()
        .next()
        .unwrap()
        .split(',')
        .count();
    let mut bad = vec![String::new(); header_len];
    bad[1] = "Bad".into();
    bad[3] = "not-an-email".into();
    writeln!(bytes, "{}", bad.join(",")).unwrap();
    writeln!(bytes, "{}", vec!["x"; header_len + 2].join(",")).unwrap();
    std::fs::write(&file, &bytes).unwrap();

    let a = setup(s, "Resumer").await;
    let b = setup(s, "Straight").await;
    let state = s.state().clone();
    let owner = UserId(a.who.user_id.parse().unwrap());
    let ws_a = WorkspaceId(a.ws.parse().unwrap());
    let job = import::create_job(&state, ws_a, owner, &spec(&file, Mode::Upsert))
        .await
        .unwrap();
    // Stop the first run after its first committed batch, as a kill would.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let run_state = state.clone();
    let handle = tokio::spawn(async move {
        import::run(&run_state, ws_a, job, &move |p| {
            let _ = tx.send(p.rows);
        })
        .await
    });
    rx.recv().await.unwrap();
    handle.abort();
    let _ = handle.await;
    let (row, _, partial) = import::job_state(&state, ws_a, job).await.unwrap();
    assert_eq!(row.state, "running");
    assert!(
        partial.rows >= 1000 && partial.rows < 2602,
        "stopped part-way: {partial:?}"
    );
    assert_eq!(
        import::find_unfinished(&state, ws_a, &import::sha256_file(&file).unwrap())
            .await
            .unwrap(),
        Some(job)
    );
    let resumed = import::run(&state, ws_a, job, &|_| {}).await.unwrap();

    let ws_b = WorkspaceId(b.ws.parse().unwrap());
    let owner_b = UserId(b.who.user_id.parse().unwrap());
    let job_b = import::create_job(&state, ws_b, owner_b, &spec(&file, Mode::Upsert))
        .await
        .unwrap();
    let straight = import::run(&state, ws_b, job_b, &|_| {}).await.unwrap();
    assert_eq!(
        resumed.progress, straight.progress,
        "same counters as an uninterrupted run"
    );
    assert_eq!(straight.progress.rows, 2602);
    assert_eq!(straight.progress.rejected, 2);
    assert!(
        straight.progress.updated > 0,
        "the generator repeats some emails in other case"
    );
    assert_eq!(contacts(s, &a.ws).await, contacts(s, &b.ws).await);
    // Every accepted row created or updated one contact (companies are created beside them).
    let p = &straight.progress;
    assert_eq!(
        contacts(s, &a.ws).await.len() as u64,
        p.rows - p.rejected - p.updated - p.duplicates_in_file
    );
    // The rejected rows name their row and column, and are in the error CSV.
    let errs = &straight.progress.errors;
    assert_eq!(errs[0].row, 2601);
    assert_eq!(errs[0].column.as_deref(), Some("Email"), "{errs:?}");
    assert!(errs[1].reason.contains("cells"), "{errs:?}");
    let csv = std::fs::read_to_string(straight.error_csv.unwrap()).unwrap();
    assert!(
        csv.contains("not-an-email") && csv.contains("_reason"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3);
    // No raw identifier from the file is stored: the error CSV is only on disk beside the file.
    let first_email = String::from_utf8_lossy(&bytes)
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .to_string();
    assert_absent(s, &[&first_email]).await;
}
server_test!(import_resumes_after_a_stop_without_duplicates_or_losses);

async fn an_import_reverts_what_it_created_and_changed(s: &mut TestServer) {
    let c = setup(s, "Reverter").await;
    let (status, before) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{}/contacts", c.ws),
            &As::User(&c.who),
            Some(json!({"first_name": "Old", "emails": ["keep@example.com"], "title": "Before"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.csv");
    std::fs::write(&file, "First Name,Last Name,Email,Job Title\nNew,Person,new@example.com,CTO\nOld,,KEEP@example.com,After\n").unwrap();
    let state = s.state().clone();
    let ws = WorkspaceId(c.ws.parse().unwrap());
    let owner = UserId(c.who.user_id.parse().unwrap());
    let job = import::create_job(&state, ws, owner, &spec(&file, Mode::Upsert))
        .await
        .unwrap();
    let done = import::run(&state, ws, job, &|_| {}).await.unwrap();
    assert_eq!((done.progress.created, done.progress.updated), (1, 1));
    let (_, changed) = s
        .call(
            Method::GET,
            &format!(
                "/api/v1/workspaces/{}/contacts/{}",
                c.ws,
                before["id"].as_str().unwrap()
            ),
            &As::User(&c.who),
            None,
        )
        .await;
    assert_eq!(changed["fields"]["title"], "After");
    assert_eq!(changed["fields"]["tags"], json!(["imported"]));

    import::revert(&state, ws, job).await.unwrap();
    let (_, restored) = s
        .call(
            Method::GET,
            &format!(
                "/api/v1/workspaces/{}/contacts/{}",
                c.ws,
                before["id"].as_str().unwrap()
            ),
            &As::User(&c.who),
            None,
        )
        .await;
    assert_eq!(restored["fields"], before["fields"]);
    let (_, list) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}/contacts", c.ws),
            &As::User(&c.who),
            None,
        )
        .await;
    assert_eq!(
        list["records"].as_array().unwrap().len(),
        1,
        "the created contact is gone: {list}"
    );
    let err = import::revert(&state, ws, job).await.unwrap_err();
    assert_eq!(err.code, meshwork_domain::ErrorCode::JobNotRevertible);
    assert!(import::job_state(&state, ws, JobId::new()).await.is_err());
}
server_test!(an_import_reverts_what_it_created_and_changed);

async fn a_company_address_split_over_columns_is_joined(s: &mut TestServer) {
    let c = setup(s, "Addy").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("companies.csv");
    std::fs::write(&file, "Company name,Company Domain Name,Street Address,City,Country/Region\nAcme,acme.example,1 Main St,Springfield,USA\n").unwrap();
    let state = s.state().clone();
    let ws = WorkspaceId(c.ws.parse().unwrap());
    let owner = UserId(c.who.user_id.parse().unwrap());
    let mut spec = spec(&file, Mode::Upsert);
    spec.kind = "company".into();
    spec.match_on = "domain".into();
    let job = import::create_job(&state, ws, owner, &spec).await.unwrap();
    let done = import::run(&state, ws, job, &|_| {}).await.unwrap();
    assert_eq!(
        (done.progress.created, done.progress.rejected),
        (1, 0),
        "{:?}",
        done.progress
    );
    let (_, list) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}/companies", c.ws),
            &As::User(&c.who),
            None,
        )
        .await;
    assert_eq!(
        list["records"][0]["fields"]["address"],
        "1 Main St, Springfield, USA"
    );
    assert_eq!(
        list["records"][0]["fields"]["domains"],
        json!(["acme.example"])
    );
}
server_test!(a_company_address_split_over_columns_is_joined);
