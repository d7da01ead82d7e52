//! The test harness: a running server, an HTTP client, and helpers to sign up and call routes.

use meshwork_server::{Config, Running};
pub use meshwork_testkit::{TestBackend, TestDatabase};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestServer {
    pub db: TestDatabase,
    /// The configuration it was started with (restarts reuse it).
    pub config: Config,
    pub running: Option<Running>,
    pub base: String,
    pub client: reqwest::Client,
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub cookie: String,
    pub csrf: String,
    pub email: String,
}

pub enum As<'a> {
    Anonymous,
    User(&'a Session),
    /// The session cookie without the CSRF header.
    UserNoCsrf(&'a Session),
    Key(&'a str),
}

pub fn config_for(db: &TestDatabase) -> Config {
    let mut config = Config {
        data_dir: db.dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.url.clone().unwrap_or_default(),
        ..Config::default()
    };
    config.auth.login_attempts_per_minute = 1000;
    config.auth.signups_per_hour = 1000;
    // Some tests send thousands of requests; the allowance has its own test.
    config.auth.api_requests_per_minute = 1_000_000;
    // The connector tests' folders are temp dirs.
    config.connectors.folder_roots = vec![std::env::temp_dir()];
    // The connector tests' servers (slapd, Dovecot, Radicale) are on loopback.
    config.connectors.private_hosts = vec!["127.0.0.0/8".into(), "::1".into()];
    // Backups have their own tests; the others take none at start-up.
    config.backup.enabled = false;
    config
}

impl TestServer {
    pub async fn start(backend: TestBackend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: TestBackend, tweak: impl FnOnce(&mut Config)) -> Option<Self> {
        let db = TestDatabase::new(backend).await?;
        let mut config = config_for(&db);
        tweak(&mut config);
        let running = meshwork_server::start(config.clone())
            .await
            .expect("server starts");
        let base = format!("http://{}", running.addr);
        Some(Self {
            db,
            config,
            running: Some(running),
            base,
            client: reqwest::Client::new(),
        })
    }

    /// Stops the server and starts it again on the same database and data directory (a new
    /// port; sessions and keys stay valid).
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = meshwork_server::start(self.config.clone())
            .await
            .expect("server restarts");
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// The data directory the server was started with.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.config.data_dir.clone()
    }

    pub fn state(&self) -> &meshwork_app::AppState {
        &self.running.as_ref().expect("running").state
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean shutdown");
        }
    }

    pub fn req(&self, method: Method, path: &str, who: &As<'_>) -> RequestBuilder {
        let mut b = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("user-agent", "meshwork-tests/1");
        match who {
            As::Anonymous => {}
            As::User(s) => {
                b = b
                    .header("cookie", &s.cookie)
                    .header("x-csrf-token", &s.csrf)
            }
            As::UserNoCsrf(s) => b = b.header("cookie", &s.cookie),
            As::Key(k) => b = b.bearer_auth(k),
        }
        b
    }

    /// Sends and returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        who: &As<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut b = self.req(method, path, who);
        if let Some(body) = body {
            b = b.json(&body);
        }
        let resp = b.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends and returns the status only.
    pub async fn status(
        &self,
        method: Method,
        path: &str,
        who: &As<'_>,
        body: Option<Value>,
    ) -> StatusCode {
        self.call(method, path, who, body).await.0
    }

    pub async fn signup_with(&self, body: Value) -> (StatusCode, Value, Option<String>) {
        let resp = self
            .client
            .post(format!("{}/api/v1/auth/signup", self.base))
            .header("user-agent", "meshwork-tests/1")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_string());
        (status, resp.json().await.unwrap_or(Value::Null), cookie)
    }

    pub async fn signup(&self, name: &str, email: &str) -> Session {
        let (status, body, cookie) = self
            .signup_with(json!({"name": name, "email": email, "password": PASSWORD, "company": "Acme", "job_title": "Engineer", "confirm_age_16_or_over": true}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert!(cookie.is_none(), "a sign-up starts no session");
        self.login(email).await
    }

    pub async fn login_raw(&self, email: &str, password: &str, extra: Value) -> reqwest::Response {
        let mut body = json!({"email": email, "password": password});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        self.client
            .post(format!("{}/api/v1/auth/login", self.base))
            .header("user-agent", "meshwork-tests/1")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str) -> Session {
        let resp = self.login_raw(email, PASSWORD, json!({})).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = resp.json().await.unwrap();
        session_from(&body, cookie.as_deref(), email)
    }

    pub async fn create_workspace(&self, s: &Session, name: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/workspaces",
                &As::User(s),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Confirms `who`'s email address with the token from the verification mail in the outbox.
    pub async fn verify_email(&self, who: &Session) {
        let (_, me) = self
            .call(Method::GET, "/api/v1/me", &As::User(who), None)
            .await;
        if me["email_verified"] == true {
            return;
        }
        let token = self.queued_token("verify_email", &who.email).await;
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/verify-email",
                &As::Anonymous,
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    /// The single-use token in the newest queued mail of `kind` (`verify_email`,
    /// `password_reset`…) to `to`.
    pub async fn queued_token(&self, kind: &str, to: &str) -> String {
        let mail = meshwork_app::mail::unsent(self.state(), 10_000)
            .await
            .unwrap();
        let m = mail
            .iter()
            .rev()
            .find(|m| m.kind == kind && m.to == to)
            .unwrap_or_else(|| panic!("no {kind} mail to {to}"));
        m.body
            .split("token=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }

    /// Invites `who` into `ws` with `role` (as `owner`) and accepts.
    pub async fn add_member(&self, owner: &Session, ws: &str, who: &Session, role: &str) {
        self.verify_email(who).await;
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/invites"),
                &As::User(owner),
                Some(json!({"email": who.email, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = body["accept_token"].as_str().unwrap();
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/invites/accept",
                &As::User(who),
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Makes the session's last authentication `minutes` old, as if time had passed.
    pub async fn age_session(&self, who: &Session, minutes: i64) {
        let token = who.cookie.split_once('=').unwrap().1;
        let hash = meshwork_app::state::token_hash(token);
        let at = meshwork_app::state::now_millis() - minutes * 60_000;
        self.state()
            .store
            .set_session_reauth(&hash, at)
            .await
            .unwrap();
    }

    /// The role of the member with `email` in `ws`, as `who` (a member) lists them.
    pub async fn member_role(&self, who: &Session, ws: &str, email: &str) -> Option<String> {
        let (_, members) = self
            .call(
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/members"),
                &As::User(who),
                None,
            )
            .await;
        members
            .as_array()?
            .iter()
            .find(|m| m["email"] == email)
            .and_then(|m| m["role"].as_str().map(str::to_string))
    }

    /// The newest audit entries of `ws` (with `Some`) or of `who`'s own account, as `who`
    /// reads them.
    pub async fn audit_entries(&self, who: &Session, ws: Option<&str>) -> Vec<Value> {
        let path = match ws {
            Some(ws) => format!("/api/v1/workspaces/{ws}/audit?limit=200"),
            None => "/api/v1/me/audit?limit=200".to_string(),
        };
        let (status, audit) = self.call(Method::GET, &path, &As::User(who), None).await;
        assert_eq!(status, StatusCode::OK, "{audit}");
        audit.as_array().cloned().unwrap_or_default()
    }

    pub async fn create_key(&self, s: &Session, ws: &str, role: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/api-keys"),
                &As::User(s),
                Some(json!({"name": format!("{role} key"), "role": role, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["secret"].as_str().unwrap().to_string()
    }

    /// Every byte the server stored: each file under the data directory, and a dump of the
    /// PostgreSQL database when that is the backend.
    pub async fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        walk(self.db.dir.path(), &mut out);
        if let Some(dump) = self.db.pg_dump() {
            out.push(("pg_dump".into(), dump));
        }
        out
    }
}

fn walk(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p.display().to_string(), bytes));
        }
    }
}

/// The `kind` of each entry of an audit answer, in order.
pub fn kinds(audit: &Value) -> Vec<&str> {
    audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Asserts no stored byte contains any of `needles` (also lower-cased and as UTF-16LE).
pub async fn assert_absent(server: &TestServer, needles: &[&str]) {
    let stored = server.stored_bytes().await;
    assert!(!stored.is_empty());
    for needle in needles {
        let forms = [
            needle.as_bytes().to_vec(),
            needle.to_lowercase().into_bytes(),
            needle
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect(),
        ];
        for (path, bytes) in &stored {
            for form in &forms {
                assert!(
                    !contains(bytes, form),
                    "{needle:?} found in clear in {path}"
                );
            }
        }
    }
}

pub fn session_from(body: &Value, set_cookie: Option<&str>, email: &str) -> Session {
    let cookie = set_cookie
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    Session {
        user_id: body["user_id"].as_str().unwrap().to_string(),
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
        cookie,
        email: email.to_string(),
    }
}

/// Runs `async fn $name(s: &mut TestServer)` against a fresh server on each backend, as the
/// tests `$name::sqlite` and `$name::postgres`.
#[macro_export]
macro_rules! server_test {
    ($name:ident) => {
        mod $name {
            use $crate::integration::common::{TestBackend, TestServer};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let mut s = TestServer::start(TestBackend::Sqlite).await.unwrap();
                super::$name(&mut s).await;
                s.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(mut s) = TestServer::start(TestBackend::Postgres).await else {
                    return;
                };
                super::$name(&mut s).await;
                s.stop().await;
            }
        }
    };
}
