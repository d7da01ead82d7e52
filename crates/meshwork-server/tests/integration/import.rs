//! Imports as durable jobs: a run stopped mid-way and started again ends exactly where an
//! uninterrupted run does (no duplicate, no lost row); bad rows are rejected with row, column
//! and reason into an error CSV; a finished import reverts.

use super::common::*;
use super::crm::setup;
use crate::server_test;
use meshwork_app::import::{self, ImportSpec, Mode};
use meshwork_domain::{JobId, UserId, WorkspaceId};
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
        sealed_upload: None,
    }
}

async fn contacts(s: &TestServer, ws: &str) -> Vec<String> {
    let state = s.state();
    let crm = meshwork_app::crm::Crm::new(state, WorkspaceId(ws.parse().unwrap())).unwrap();
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
    meshwork_crm_io::generate_hubspot_contacts(11, 20_000, &mut bytes).unwrap();
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
    // Stop the first run after its first committed batch, as a kill would. The batch it was
    // writing then still lands whole, and the resumed run waits for it before it reads the
    // job's cursor (batches of 4,000 rows, 4,000 more, then 8,000).
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
        partial.rows >= 4000 && partial.rows < 20_002,
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
    assert_eq!(straight.progress.rows, 20_002);
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
    assert_eq!(errs[0].row, 20_001);
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

async fn wait_done(s: &TestServer, c: &super::crm::Crm<'_>, job: &str) -> serde_json::Value {
    for _ in 0..600 {
        let (status, v) = c.get(&format!("imports/{job}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        if v["state"] != "running" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = s;
    panic!("the import {job} did not finish");
}

/// The API import: refused requests name the parameter and leave nothing behind; the upload is
/// sealed on disk while the job runs in the background and deleted when it ends; rejected rows
/// are listed by row and column; an unfinished upload import resumes when the server starts;
/// a finished one reverts.
async fn an_api_import_runs_in_the_background_resumes_at_start_and_reverts(s: &mut TestServer) {
    let c = setup(s, "Uploads").await;
    let post = |query: &str, body: Vec<u8>| {
        s.req(
            Method::POST,
            &format!("/api/v1/workspaces/{}/imports?{query}", c.ws),
            &As::User(&c.who),
        )
        .header("content-type", "text/csv")
        .body(body)
        .send()
    };
    let mut csv = Vec::new();
    meshwork_crm_io::generate_hubspot_contacts(5, 300, &mut csv).unwrap();
    let header_len = String::from_utf8_lossy(&csv)
        .lines()
        .next()
        .unwrap()
        .split(',')
        .count();
    let mut bad = vec![String::new(); header_len];
    bad[1] = "Bad".into();
    bad[3] = "secret-not-an-email".into();
    writeln!(csv, "{}", bad.join(",")).unwrap();

    for (query, body, needle) in [
        ("type=widget", csv.clone(), "query `type`"),
        ("type=contact&layout=generic", csv.clone(), "query `layout`"),
        ("type=company&layout=vcard", csv.clone(), "query `layout`"),
        ("type=contact&mode=merge", csv.clone(), "query `mode`"),
        (
            "type=contact&owner=nobody@x.example",
            csv.clone(),
            "query `owner`",
        ),
        ("type=contact", Vec::new(), "empty"),
    ] {
        let r = post(query, body).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{query}: {v}"
        );
    }
    let uploads = s.data_dir().join("uploads");
    let files = |dir: &std::path::Path| -> usize { walk(dir).len() };
    assert_eq!(files(&uploads), 0, "refused uploads leave nothing");

    let r = post("type=contact&tags=webinar,2026", csv.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: serde_json::Value = r.json().await.unwrap();
    let job = v["id"].as_str().unwrap().to_string();
    let done = wait_done(s, &c, &job).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        (done["rows"].as_u64(), done["rejected"].as_u64()),
        (Some(301), Some(1)),
        "{done}"
    );
    let e = &done["errors"][0];
    assert_eq!(
        (e["row"].as_u64(), e["column"].as_str()),
        (Some(301), Some("Email")),
        "{done}"
    );
    // The job is marked done before its task deletes the upload: wait for it briefly.
    // What stays is the rejected row with its cells, sealed, for the import's page.
    let kept = |dir: &std::path::Path| -> Vec<String> {
        walk(dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    for _ in 0..100 {
        if kept(&uploads).len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        kept(&uploads),
        vec![format!("rejected-{job}.sealed")],
        "the upload is deleted when the import ends"
    );
    for f in walk(&uploads) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!bytes.windows(19).any(|w| w == b"secret-not-an-email"));
    }
    let ws_id = WorkspaceId(c.ws.parse().unwrap());
    let job_id = meshwork_domain::JobId(job.parse().unwrap());
    let rows = import::rejected_rows(s.state(), ws_id, job_id)
        .await
        .unwrap()
        .expect("the rejected rows are kept");
    let rows = String::from_utf8(rows).unwrap();
    assert!(
        rows.contains(",Bad,")
            && rows.contains("secret-not-an-email")
            && rows.contains(",301,Email,"),
        "{rows}"
    );
    let first = contacts(s, &c.ws).await.len() as u64;
    assert_eq!(
        first,
        300 - done["duplicates_in_file"].as_u64().unwrap(),
        "{done}"
    );

    // An upload import that a stop interrupted (here: never started) resumes at start-up.
    let ws = WorkspaceId(c.ws.parse().unwrap());
    let mut more = Vec::new();
    meshwork_crm_io::generate_hubspot_contacts(6, 200, &mut more).unwrap();
    let upload = "0192f5e0-7d1c-7a00-8000-00000000abcd";
    let path = import::background::upload_path(s.state(), ws, upload);
    let mut w = meshwork_app::upload::SealedWriter::create(
        &path,
        s.state().workspace_key(ws).unwrap(),
        ws,
        upload,
    )
    .unwrap();
    w.write(&more).unwrap();
    w.finish().unwrap();
    let raw = std::fs::read(&path).unwrap();
    let first_email = String::from_utf8_lossy(&more)
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .to_string();
    assert!(
        !first_email.is_empty()
            && !raw
                .windows(first_email.len())
                .any(|w| w == first_email.as_bytes()),
        "sealed on disk"
    );
    let mut spec = spec(&path, Mode::Upsert);
    spec.sealed_upload = Some(upload.into());
    spec.error_csv = Default::default();
    let user = UserId(c.who.user_id.parse().unwrap());
    let pending = import::create_job(s.state(), ws, user, &spec)
        .await
        .unwrap();
    let (who, ws_id) = (c.who.clone(), c.ws.clone());
    s.restart().await;
    let c = super::crm::Crm { s, who, ws: ws_id };
    let done = wait_done(s, &c, &pending.to_string()).await;
    assert_eq!(
        (done["state"].as_str(), done["rows"].as_u64()),
        (Some("done"), Some(200)),
        "{done}"
    );
    let both = contacts(s, &c.ws).await.len() as u64;
    assert!(
        both > first,
        "{both} after the resumed import, {first} before"
    );
    for _ in 0..100 {
        if kept(&uploads).len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        kept(&uploads),
        vec![format!("rejected-{job}.sealed")],
        "the resumed import's upload is deleted too"
    );

    // Revert the first import: its contacts go.
    let (status, v) = c.post(&format!("imports/{job}/revert"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "reverted");
    assert_eq!(contacts(s, &c.ws).await.len() as u64, both - first);
    assert!(kept(&uploads).is_empty(), "its rejected rows go with it");
    let (status, v) = c.get("imports/0192f5e0-7d1c-7a00-8000-00000000ffff").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("job_not_found"))
    );
}
server_test!(an_api_import_runs_in_the_background_resumes_at_start_and_reverts);

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// One batch is written while the next is prepared: a row repeating a record of the batch
/// still being written, or of an earlier one, updates that record (never a duplicate, never a
/// conflict), and companies created by one batch are linked, not created again, by the next.
async fn rows_repeating_records_of_earlier_batches_update_them(s: &mut TestServer) {
    let c = setup(s, "Pipeliner").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.csv");
    let mut csv =
        String::from("First Name,Last Name,Email,Job Title,Company Name,Company Domain Name\n");
    for i in 1..=8000 {
        let co = i % 50;
        csv.push_str(&format!(
            "P{i},Person,p{i}@example.com,T{i},Acme {co},acme{co}.com\n"
        ));
    }
    // Rows 8001… are the third batch: 7999 is in the second (possibly still being written),
    // 5 in the first.
    csv.push_str("P7999,Person,P7999@EXAMPLE.COM,Changed,Acme 49,acme49.com\n");
    csv.push_str("P5,Person,p5@example.com,Early,Acme 5,acme5.com\n");
    csv.push_str("New,Person,new@example.com,CEO,Acme New,acmenew.com\n");
    std::fs::write(&file, &csv).unwrap();
    let state = s.state().clone();
    let ws = WorkspaceId(c.ws.parse().unwrap());
    let owner = UserId(c.who.user_id.parse().unwrap());
    let job = import::create_job(&state, ws, owner, &spec(&file, Mode::Upsert))
        .await
        .unwrap();
    let done = import::run(&state, ws, job, &|_| {}).await.unwrap();
    let p = &done.progress;
    assert_eq!((p.rows, p.rejected), (8003, 0), "{p:?}");
    assert_eq!(p.updated + p.duplicates_in_file, 2, "{p:?}");
    let emails = contacts(s, &c.ws).await;
    assert_eq!(emails.len(), 8001, "one contact per distinct email");
    let crm = meshwork_app::crm::Crm::new(&state, ws).unwrap();
    let all = crm.all(meshwork_crm::Kind::Contact).await.unwrap();
    let title = |email: &str| {
        all.iter()
            .find(|(_, d)| {
                d["emails"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|e| e.as_str().unwrap().eq_ignore_ascii_case(email))
                })
            })
            .map(|(_, d)| d["title"].clone())
            .unwrap_or_else(|| panic!("no contact {email}"))
    };
    assert_eq!(title("p7999@example.com"), "Changed");
    assert_eq!(title("p5@example.com"), "Early");
    assert_eq!(title("p4000@example.com"), "T4000");
    let companies = crm.all(meshwork_crm::Kind::Company).await.unwrap();
    assert_eq!(companies.len(), 51, "one company per domain");

    // The same file again: every row matches a stored contact.
    std::fs::write(file.with_extension("errors.csv"), "").unwrap();
    let again = import::create_job(&state, ws, owner, &spec(&file, Mode::Upsert))
        .await
        .unwrap();
    let p = import::run(&state, ws, again, &|_| {})
        .await
        .unwrap()
        .progress;
    assert_eq!(p.created, 0, "{p:?}");
    assert_eq!(contacts(s, &c.ws).await.len(), 8001);
}
server_test!(rows_repeating_records_of_earlier_batches_update_them);

async fn a_name_cell_with_a_line_break_keeps_its_contact_and_is_reported(s: &mut TestServer) {
    let c = setup(s, "Folder").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.csv");
    // A quoted cell spanning lines, as other CRMs export them; the file's next row is intact.
    std::fs::write(
        &file,
        "First Name,Last Name,Email,Job Title\n\"Mary\r\nAnn\",Smith,mary@example.com,\"Head of\nSales\"\nBob,Jones,bob@example.com,CTO\n",
    )
    .unwrap();
    let state = s.state().clone();
    let ws = WorkspaceId(c.ws.parse().unwrap());
    let owner = UserId(c.who.user_id.parse().unwrap());
    let job = import::create_job(&state, ws, owner, &spec(&file, Mode::Upsert))
        .await
        .unwrap();
    let done = import::run(&state, ws, job, &|_| {}).await.unwrap();
    let p = &done.progress;
    assert_eq!((p.created, p.rejected, p.folded), (2, 0, 2), "{p:?}");
    assert_eq!(
        p.notes
            .iter()
            .map(|n| (n.row, n.column.as_deref().unwrap()))
            .collect::<Vec<_>>(),
        vec![(1, "First Name"), (1, "Job Title")]
    );
    let crm = meshwork_app::crm::Crm::new(&state, ws).unwrap();
    let mary = crm
        .all(meshwork_crm::Kind::Contact)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d["emails"] == json!(["mary@example.com"]))
        .expect("the row kept its contact");
    assert_eq!(mary["first_name"], "Mary Ann");
    assert_eq!(mary["title"], "Head of Sales");
}
server_test!(a_name_cell_with_a_line_break_keeps_its_contact_and_is_reported);
