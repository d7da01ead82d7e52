//! Several servers on one PostgreSQL database, sharing no memory (issue 28, part 6): a write
//! through one is found by the other's very next search (each search catches its own index up
//! from the change feed first); an API key revoked through one is refused at once by that one
//! and by the other once its key cache forgets the key (`auth.api_key_cache_seconds`); a session
//! ended on one is ended on both. Jobs running once across servers, and a server killed mid-job,
//! are `jobs.rs`.

mod common;

use common::{call, serve_with, signup, Auth};
use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::process::{Child, Command};
use std::time::Duration;

fn stop(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

fn hit_ids(v: &Value) -> Vec<String> {
    v["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["hits"].as_array().cloned().unwrap_or_default())
        .map(|h| h["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_writes_searches_key_revocations_and_sign_outs() {
    let Some(db) = TestDatabase::new(TestBackend::Postgres).await else {
        return;
    };
    let http = reqwest::Client::new();
    let a_dir = db.dir.path().join("a");
    let b_dir = db.dir.path().join("b");
    let env = |dir: &std::path::Path| {
        vec![
            ("MESHWORK_DATA_DIR", dir.display().to_string()),
            ("MESHWORK_AUTH__API_KEY_CACHE_SECONDS", "1".to_string()),
            (
                "MESHWORK_AUTH__LOGIN_ATTEMPTS_PER_MINUTE",
                "1000".to_string(),
            ),
        ]
    };
    let (a, base_a) = serve_with(&db, &http, &env(&a_dir)).await;
    let mut b_env = env(&b_dir);
    b_env.push((
        "MESHWORK_MASTER_KEY_FILE",
        a_dir.join("master.key").display().to_string(),
    ));
    b_env.push((
        "MESHWORK_KEYRING_DIR",
        a_dir.join("keyring").display().to_string(),
    ));
    let (b, base_b) = serve_with(&db, &http, &b_env).await;

    let me = signup(&http, &base_a, "kim@servers.test").await;
    let (status, ws) = call(
        &http,
        reqwest::Method::POST,
        format!("{base_a}/api/v1/workspaces"),
        &Auth::Session(&me),
        Some(json!({"name": "Shared"})),
    )
    .await;
    assert_eq!(status, 201, "{ws}");
    let ws = ws["id"].as_str().unwrap().to_string();
    let path = |base: &str, rest: &str| format!("{base}/api/v1/workspaces/{ws}{rest}");

    // The session made on A works on B.
    let (status, _) = call(
        &http,
        reqwest::Method::GET,
        path(&base_b, ""),
        &Auth::Session(&me),
        None,
    )
    .await;
    assert_eq!(status, 200, "a session is the database's, not a server's");

    // Each write through one server is in the other's very next search: search both first, so
    // that each has its index open and caught up, then write and search at once.
    for base in [&base_a, &base_b] {
        let (status, _) = call(
            &http,
            reqwest::Method::GET,
            path(base, "/search?q=nobody"),
            &Auth::Session(&me),
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
    // Names far apart, so that no search's typo tolerance finds another's.
    for (name, write, read) in [
        ("Quokka", &base_a, &base_b),
        ("Narwhal", &base_b, &base_a),
        ("Pangolin", &base_a, &base_b),
    ] {
        let (status, contact) = call(
            &http,
            reqwest::Method::POST,
            path(write, "/contacts"),
            &Auth::Session(&me),
            Some(json!({"first_name": name})),
        )
        .await;
        assert_eq!(status, 201, "{contact}");
        let (status, hits) = call(
            &http,
            reqwest::Method::GET,
            path(read, &format!("/search?q={name}")),
            &Auth::Session(&me),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            hit_ids(&hits),
            vec![contact["id"].as_str().unwrap().to_string()],
            "written through {write}, searched through {read}: {hits}"
        );
    }

    // An API key made on A, used on both (each server caches it), revoked on A.
    let (status, key) = call(
        &http,
        reqwest::Method::POST,
        path(&base_a, "/api-keys"),
        &Auth::Session(&me),
        Some(
            json!({"name": "shared", "role": "member", "password": "correct horse battery staple"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_string();
    for base in [&base_a, &base_b] {
        let (status, _) = call(
            &http,
            reqwest::Method::GET,
            path(base, "/contacts"),
            &Auth::Key(&secret),
            None,
        )
        .await;
        assert_eq!(status, 200, "{base}: the key works");
    }
    let (status, _) = call(
        &http,
        reqwest::Method::DELETE,
        path(
            &base_a,
            &format!("/api-keys/{}", key["id"].as_str().unwrap()),
        ),
        &Auth::Session(&me),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        &http,
        reqwest::Method::GET,
        path(&base_a, "/contacts"),
        &Auth::Key(&secret),
        None,
    )
    .await;
    assert_eq!(
        status, 401,
        "the server that revoked it refuses it at once: {body}"
    );
    // B may still hold it in its cache for up to a second; after that it asks the database.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = call(
        &http,
        reqwest::Method::GET,
        path(&base_b, "/contacts"),
        &Auth::Key(&secret),
        None,
    )
    .await;
    assert_eq!(
        status, 401,
        "the other server refuses it once its cache window has passed: {body}"
    );
    assert_eq!(body["code"], "api_key_revoked");

    // Signing out through B ends the session on A too.
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{base_b}/api/v1/auth/logout"),
        &Auth::Session(&me),
        None,
    )
    .await;
    assert!(status == 204 || status == 200, "{status}");
    let (status, _) = call(
        &http,
        reqwest::Method::GET,
        path(&base_a, ""),
        &Auth::Session(&me),
        None,
    )
    .await;
    assert_eq!(
        status, 401,
        "a session ended on one server is ended on both"
    );

    stop(a);
    stop(b);
}
