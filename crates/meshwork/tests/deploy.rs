//! The deployment files in `deploy/` stay true: the sample configuration loads and a real
//! server starts with it (health, readiness and metrics answering where `docs/deploy.md` says),
//! and the systemd unit runs that configuration from the directories it names.

mod common;

use meshwork_testkit::{TestBackend, TestDatabase};
use std::path::{Path, PathBuf};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

#[test]
fn the_sample_configuration_is_valid_and_safe() {
    let c = meshwork_app::Config::load(Some(&deploy("meshwork.toml")), []).unwrap();
    assert!(
        c.listen.ip().is_loopback(),
        "behind a proxy on this machine"
    );
    assert!(!c.trusted_proxies.is_empty(), "the proxy's header is read");
    assert!(!c.auth.open_signup, "sign-up by invitation");
    assert!(c.metrics.listen_addr().unwrap().ip().is_loopback());
    assert!(c.metrics.token.is_empty(), "no secret in the file");
    assert!(c.public_url.starts_with("https://"));
    assert!(c.backup.enabled && !c.backup.dir.is_empty());
    assert_eq!(c.log_format, "json");
}

#[test]
fn the_unit_runs_the_sample_configuration_from_its_directories() {
    let unit = std::fs::read_to_string(deploy("meshwork.service")).unwrap();
    let c = meshwork_app::Config::load(Some(&deploy("meshwork.toml")), []).unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("the unit has no {key}"))
            .to_string()
    };
    assert_eq!(
        value("ExecStart"),
        "/usr/local/bin/meshwork serve --config /etc/meshwork/meshwork.toml"
    );
    // StateDirectory=meshwork is /var/lib/meshwork: the configuration's data directory.
    assert_eq!(value("StateDirectory"), "meshwork");
    assert_eq!(c.data_dir, Path::new("/var/lib/meshwork"));
    assert_eq!(value("ReadWritePaths"), c.backup.dir);
    assert_eq!(value("User"), "meshwork");
    assert_eq!(value("NoNewPrivileges"), "yes");
    assert_eq!(value("ProtectSystem"), "strict");
}

/// The binary starts on the sample configuration (only the directories and ports moved to the
/// test's own, and the SMTP password given as the docs say): healthy, ready, metrics on their
/// own listener and not on the main one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_starts_on_the_sample_configuration() {
    let db = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backups = db.dir.path().join("backups");
    let http = reqwest::Client::new();
    let (mut server, base) = common::serve_with(
        &db,
        &http,
        &[
            (
                "MESHWORK_CONFIG",
                deploy("meshwork.toml").display().to_string(),
            ),
            ("MESHWORK_SMTP_PASSWORD", "from-secrets-env".into()),
            (
                "MESHWORK_METRICS__LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            ),
            ("MESHWORK_BACKUP__DIR", backups.display().to_string()),
            ("MESHWORK_BACKUP__ENABLED", "true".into()),
        ],
    )
    .await;
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    // The sample's public_url is https://: browsers are told to keep to HTTPS.
    assert_eq!(
        ready.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(ready.text().await.unwrap(), "ready");
    let metrics = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("meshwork_store_up 1"));
    assert_eq!(
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // The daily backup ran at start-up into the configured directory.
    let started = std::time::Instant::now();
    while std::fs::read_dir(&backups).map(|d| d.count()).unwrap_or(0) < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no backup in {}: {}",
            backups.display(),
            common::server_log(&base)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// ASVS 7.2.1 and 7.2.2: a refused request is a warning in the log, naming the route template,
/// the status, the error code and the client, and who was refused where that is known; never
/// the credential. A plain-HTTP server sends no HSTS; a JSON answer is an attachment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_logged_with_route_code_and_client_never_the_secret() {
    let db = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let http = reqwest::Client::new();
    let (mut server, base) = common::serve(&db, &http).await;
    let elsewhere = "0190e3b4-0000-7000-8000-000000000001";
    let bad_key = "mw_live_notarealkeybutlongenoughtolooklikeone";
    let r = http
        .get(format!("{base}/api/v1/workspaces/{elsewhere}/contacts"))
        .bearer_auth(bad_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("strict-transport-security").is_none());
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"api.json\""
    );

    let ann = common::signup(&http, &base, "ann@refused.test").await;
    let (status, _) = common::call(
        &http,
        reqwest::Method::GET,
        format!("{base}/api/v1/workspaces/{elsewhere}/contacts"),
        &common::Auth::Session(&ann),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let log = common::server_log(&base);
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("refused")).collect();
    let line = |needles: &[&str]| {
        refused
            .iter()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    };
    assert!(
        line(&[
            "request refused",
            "/api/v1/workspaces/{workspace_id}/contacts",
            "401",
            "invalid_api_key",
            "127.0.0.1"
        ]),
        "{log}"
    );
    assert!(
        line(&["access refused", "not a member", elsewhere, "caller=user "]),
        "{log}"
    );
    assert!(
        line(&["request refused", "404", "workspace_not_found"]),
        "{log}"
    );
    assert!(
        !log.contains(bad_key) && !log.contains(&ann.csrf),
        "a secret was logged"
    );
    let _ = server.kill();
    let _ = server.wait();
}
