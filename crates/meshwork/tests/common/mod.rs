//! What the binary's end-to-end tests share: the `meshwork` command, a real `meshwork serve` on
//! a free loopback port, and a signed-up account's session.

#![allow(dead_code)]

use meshwork_testkit::TestDatabase;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test, with no configuration file and quiet logs.
pub fn meshwork() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meshwork"));
    // No daily backup at start-up unless a test asks for one (`MESHWORK_BACKUP__ENABLED`).
    c.env_remove("MESHWORK_CONFIG")
        .env("MESHWORK_LOG", "warn")
        .env("MESHWORK_BACKUP__ENABLED", "false");
    c
}

/// `--data-dir` and, for PostgreSQL, `--database-url`.
pub fn store_args(db: &TestDatabase) -> Vec<String> {
    let mut args = vec![
        "--data-dir".to_string(),
        db.dir.path().display().to_string(),
    ];
    if let Some(url) = &db.url {
        args.push("--database-url".into());
        args.push(url.clone());
    }
    args
}

/// `meshwork serve` on `db`, answering `/healthz`; returns the process and its base URL.
pub async fn serve(db: &TestDatabase, http: &reqwest::Client) -> (Child, String) {
    serve_with(db, http, &[]).await
}

/// `meshwork serve` on `db` with extra arguments (`--data-dir` given here wins over the
/// database's directory) and `MESHWORK_*` environment variables.
pub async fn serve_with(
    db: &TestDatabase,
    http: &reqwest::Client,
    env: &[(&str, String)],
) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A server may have a data directory of its own (`MESHWORK_DATA_DIR`; flags would win
    // over the environment, so it is passed as the flag).
    let data_dir = env
        .iter()
        .find(|(k, _)| *k == "MESHWORK_DATA_DIR")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| db.dir.path().display().to_string());
    let mut cmd = meshwork();
    cmd.arg("serve").args(["--data-dir", &data_dir]);
    if let Some(url) = &db.url {
        cmd.args(["--database-url", url]);
    }
    cmd.env("MESHWORK_LOG", "warn,meshwork_app::search=info");
    for (k, v) in env {
        if *k != "MESHWORK_DATA_DIR" {
            cmd.env(k, v);
        }
    }
    cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
    // Its log goes to a file a failing test can show ([`server_log`]): warnings, and what the
    // search index does with files.
    let log = std::fs::File::create(log_path(port)).unwrap();
    let child = cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base)
}

fn log_path(port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("meshwork-test-serve-{port}.log"))
}

/// What the server at `base` (from [`serve`]) has logged so far.
pub fn server_log(base: &str) -> String {
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    std::fs::read_to_string(log_path(port)).unwrap_or_default()
}

/// A session: the cookie and the CSRF token of a fresh account signed up as `email`.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub async fn signup(http: &reqwest::Client, base: &str, email: &str) -> Session {
    let r = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"name": "Ada Lovelace", "email": email, "password": "correct horse battery staple", "company": "Analytical Engines", "job_title": "Founder", "confirm_age_16_or_over": true}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "signup: {}", r.status());
    // A sign-up starts no session: sign in.
    sign_in(http, base, email).await
}

/// Signs in an account made by [`signup`] (its password).
pub async fn sign_in(http: &reqwest::Client, base: &str, email: &str) -> Session {
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "login: {}", r.status());
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    Session { cookie, csrf }
}

/// How a request authenticates: a signed-in session (cookie and CSRF token) or an API key.
pub enum Auth<'a> {
    Session(&'a Session),
    Key(&'a str),
}

/// Sends a request and returns its status and JSON body (`Null` when it has none).
pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    auth: &Auth<'_>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url);
    req = match auth {
        Auth::Session(s) => req
            .header("cookie", &s.cookie)
            .header("x-csrf-token", &s.csrf),
        Auth::Key(k) => req.bearer_auth(k),
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
