//! The job runner across real processes: a `meshwork serve` killed with SIGKILL in the middle of a
//! job leaves it to the next server, which finishes it with nothing lost or duplicated; two
//! `meshwork serve` processes on one PostgreSQL database run each job once and each periodic job
//! once per period.

mod common;

use common::{meshwork, serve_with, signup};
use meshwork_domain::WorkspaceId;
use meshwork_testkit::smtp::SmtpSink;
use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn kill(child: &mut Child, signal: &str) {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

async fn create_workspace(
    http: &reqwest::Client,
    base: &str,
    s: &common::Session,
    name: &str,
) -> String {
    let r = http
        .post(format!("{base}/api/v1/workspaces"))
        .header("x-csrf-token", &s.csrf)
        .header("cookie", &s.cookie)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "workspace: {}", r.status());
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn import(http: &reqwest::Client, base: &str, s: &common::Session, ws: &str, csv: &[u8]) {
    let r = http
        .post(format!(
            "{base}/api/v1/workspaces/{ws}/imports?type=contact&layout=hubspot"
        ))
        .header("x-csrf-token", &s.csrf)
        .header("cookie", &s.cookie)
        .header("content-type", "text/csv")
        .body(csv.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
}

async fn a_server_killed_mid_job_leaves_it_to_the_next(backend: TestBackend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let file = db.dir.path().join("contacts.csv");
    let out = meshwork()
        .args([
            "dev", "generate", "--type", "contact", "--rows", "12000", "--seed", "5", "--out",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let csv = std::fs::read(&file).unwrap();
    // Leases of 3 s: on PostgreSQL the next server waits that long for the dead one's job.
    let env = [("MESHWORK_JOBS__LEASE_SECONDS", "3".to_string())];
    let http = reqwest::Client::new();
    let (mut server, base) = serve_with(&db, &http, &env).await;
    let ada = signup(&http, &base, "ada@jobs.test").await;
    let killed = create_workspace(&http, &base, &ada, "Killed").await;
    let straight = create_workspace(&http, &base, &ada, "Straight").await;
    let store = db.open_store().await;
    let (ws_killed, ws_straight) = (
        WorkspaceId(killed.parse().unwrap()),
        WorkspaceId(straight.parse().unwrap()),
    );

    // The oracle: the same file imported without interruption.
    import(&http, &base, &ada, &straight, &csv).await;
    let started = Instant::now();
    while store.jobs(ws_straight, 1).await.unwrap()[0].state != "done" {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the import never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = store.crm_count(ws_straight, "contact").await.unwrap();

    // The same import, and SIGKILL once it has committed some batches.
    import(&http, &base, &ada, &killed, &csv).await;
    let started = Instant::now();
    loop {
        let jobs = store.jobs(ws_killed, 1).await.unwrap();
        if jobs.first().is_some_and(|j| j.cursor > 0) {
            kill(&mut server, "-KILL");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let partial = store.crm_count(ws_killed, "contact").await.unwrap();
    assert!(partial < total, "killed halfway: {partial} of {total}");
    let job = store.jobs(ws_killed, 1).await.unwrap().remove(0);
    assert_eq!(job.state, "running");
    let queued = store.queued_jobs(Some(ws_killed), None, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].state, "running", "held by the dead server");

    // The next server takes it over and finishes it.
    let (mut server, _) = serve_with(&db, &http, &env).await;
    let started = Instant::now();
    while store.jobs(ws_killed, 1).await.unwrap()[0].state != "done" {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the import was not resumed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.crm_count(ws_killed, "contact").await.unwrap(), total);
    // The runner records the outcome right after the import's last batch.
    let queued = loop {
        let queued = store.queued_jobs(Some(ws_killed), None, 10).await.unwrap();
        if queued.iter().all(|j| j.state != "running") {
            break queued;
        }
        assert!(started.elapsed() < Duration::from_secs(120));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(queued.len(), 1, "one job, resumed");
    assert_eq!(queued[0].state, "done");
    assert_eq!(queued[0].attempts, 2);
    kill(&mut server, "-TERM");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_job_leaves_it_to_the_next_sqlite() {
    a_server_killed_mid_job_leaves_it_to_the_next(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_job_leaves_it_to_the_next_postgres() {
    a_server_killed_mid_job_leaves_it_to_the_next(TestBackend::Postgres).await;
}

/// Two servers on one PostgreSQL database, sharing the keyring (as a shared mount would), each
/// with its own data directory, both sending mail to one SMTP server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_run_each_job_once_and_each_periodic_job_once_per_period() {
    let Some(db) = TestDatabase::new(TestBackend::Postgres).await else {
        return;
    };
    let sink = SmtpSink::start();
    let http = reqwest::Client::new();
    let a_dir = db.dir.path().join("a");
    let b_dir = db.dir.path().join("b");
    let common_env = |dir: &std::path::Path| {
        vec![
            ("MESHWORK_DATA_DIR", dir.display().to_string()),
            ("MESHWORK_SMTP__HOST", "127.0.0.1".to_string()),
            ("MESHWORK_SMTP__PORT", sink.port.to_string()),
            ("MESHWORK_SMTP__TLS", "none".to_string()),
            ("MESHWORK_SMTP__FROM", "meshwork@jobs.test".to_string()),
            ("MESHWORK_JOBS__POLL_MILLIS", "20".to_string()),
            ("MESHWORK_JOBS__HOUSEKEEPING_SECONDS", "1".to_string()),
            ("MESHWORK_AUTH__SIGNUPS_PER_HOUR", "1000".to_string()),
            // Each sign-up helper signs in too.
            (
                "MESHWORK_AUTH__LOGIN_ATTEMPTS_PER_MINUTE",
                "1000".to_string(),
            ),
        ]
    };
    let (mut a, base_a) = serve_with(&db, &http, &common_env(&a_dir)).await;
    let mut b_env = common_env(&b_dir);
    b_env.push((
        "MESHWORK_MASTER_KEY_FILE",
        a_dir.join("master.key").display().to_string(),
    ));
    b_env.push((
        "MESHWORK_KEYRING_DIR",
        a_dir.join("keyring").display().to_string(),
    ));
    let (mut b, base_b) = serve_with(&db, &http, &b_env).await;

    // Forty sign-ups, half through each server: forty verification mails, queued by both and
    // claimed by whichever runner gets there first.
    let started = Instant::now();
    let mut sent = Vec::new();
    for i in 0..40 {
        let base = if i % 2 == 0 { &base_a } else { &base_b };
        let email = format!("person{i}@jobs.test");
        signup(&http, base, &email).await;
        sent.push(email);
    }
    let got = sink.wait_for(40, Duration::from_secs(60)).await;
    // Time for a duplicate to show if there were one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_again = sink.messages();
    assert_eq!(got_again.len(), got.len(), "mail arrived after all were in");
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for m in &got_again {
        *per_recipient.entry(m.envelope_to.clone()).or_default() += 1;
    }
    for email in &sent {
        assert_eq!(
            per_recipient.get(email),
            Some(&1),
            "{email}: {per_recipient:?}"
        );
    }
    assert_eq!(got_again.len(), 40);

    // Housekeeping every second: one row per period, each run once.
    let elapsed = started.elapsed().as_secs();
    let store = db.open_store().await;
    let jobs = store.queued_jobs(None, None, 1000).await.unwrap();
    let mail: Vec<_> = jobs.iter().filter(|j| j.kind == "mail.send").collect();
    assert_eq!(mail.len(), 40);
    assert!(
        mail.iter().all(|j| j.state == "done" && j.attempts == 1),
        "{mail:?}"
    );
    let mut periods = BTreeMap::new();
    for j in jobs.iter().filter(|j| j.kind == "jobs.prune") {
        *periods.entry(j.unique_key.clone().unwrap()).or_insert(0) += 1;
        if j.state == "done" {
            assert_eq!(j.attempts, 1, "{j:?}");
        }
    }
    assert!(periods.values().all(|n| *n == 1), "{periods:?}");
    assert!(
        periods.len() as u64 >= elapsed.saturating_sub(1).max(1),
        "{} periods in {elapsed} s",
        periods.len()
    );
    kill(&mut a, "-TERM");
    kill(&mut b, "-TERM");
    store.close().await;
}
