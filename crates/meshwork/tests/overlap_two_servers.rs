//! Partner overlap between two real `meshwork serve` processes on loopback, over HTTPS (a
//! self-signed certificate each trusts through `overlap.peer_ca_file`): one on SQLite, the
//! other on PostgreSQL when it is available. Invitation and acceptance, what each side learns
//! under the other's share settings (checked against plain sets), signed peer requests, the
//! hourly run cap, a partner that vanishes mid-way, and revocation from the other side.

use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Node {
    db: TestDatabase,
    port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
    base: String,
    cookie: String,
    csrf: String,
    ws: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

impl Node {
    async fn start(
        backend: TestBackend,
        tls: &(PathBuf, PathBuf),
        extra: &[(&str, &str)],
    ) -> Option<Self> {
        let db = TestDatabase::new(backend).await?;
        let port = free_port();
        let mut env = vec![
            ("MESHWORK_TLS_CERT".to_string(), tls.0.display().to_string()),
            ("MESHWORK_TLS_KEY".to_string(), tls.1.display().to_string()),
            (
                "MESHWORK_PUBLIC_URL".to_string(),
                format!("https://127.0.0.1:{port}"),
            ),
            (
                "MESHWORK_OVERLAP__PEER_CA_FILE".to_string(),
                tls.0.display().to_string(),
            ),
            (
                "MESHWORK_AUTH__LOGIN_ATTEMPTS_PER_MINUTE".to_string(),
                "1000".to_string(),
            ),
            // Both servers are on loopback.
            (
                "MESHWORK_OVERLAP__ALLOW_PRIVATE_PEERS".to_string(),
                "true".to_string(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut node = Node {
            db,
            port,
            env,
            child: None,
            base: format!("https://127.0.0.1:{port}"),
            cookie: String::new(),
            csrf: String::new(),
            ws: String::new(),
        };
        node.spawn(&tls.0).await;
        Some(node)
    }

    async fn spawn(&mut self, ca: &Path) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_meshwork"));
        c.env_remove("MESHWORK_CONFIG")
            .env("MESHWORK_LOG", "warn")
            .envs(self.env.iter().cloned())
            .arg("serve")
            .arg("--data-dir")
            .arg(self.db.dir.path())
            .args(["--listen", &format!("127.0.0.1:{}", self.port)]);
        if let Some(url) = &self.db.url {
            c.args(["--database-url", url]);
        }
        self.child = Some(
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let http = client(ca);
        let started = Instant::now();
        while http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn call(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, v) = self.call(http, method, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {v}");
        v
    }

    /// Signs up, creates a workspace.
    async fn set_up(&mut self, http: &reqwest::Client, who: &str) {
        let r = http
            .post(format!("{}/api/v1/auth/signup", self.base))
            .json(&json!({"name": who, "email": format!("{who}@servers.test"), "password": "correct horse battery staple", "company": who, "job_title": "Partnerships", "confirm_age_16_or_over": true}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "signup: {}", r.status());
        // A sign-up starts no session: sign in.
        let r = http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": format!("{who}@servers.test"), "password": "correct horse battery staple"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "login: {}", r.status());
        self.cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        self.csrf = r.json::<Value>().await.unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_string();
        let w = self
            .ok(
                http,
                reqwest::Method::POST,
                "/api/v1/workspaces",
                Some(json!({"name": format!("{who} Inc")})),
            )
            .await;
        self.ws = w["id"].as_str().unwrap().to_string();
    }

    fn path(&self, rest: &str) -> String {
        format!("/api/v1/workspaces/{}{rest}", self.ws)
    }

    async fn contact(&self, http: &reqwest::Client, body: Value) -> String {
        let v = self
            .ok(
                http,
                reqwest::Method::POST,
                &self.path("/contacts"),
                Some(body),
            )
            .await;
        v["id"].as_str().unwrap().to_string()
    }

    async fn population(&self, http: &reqwest::Client, name: &str, query: &str) -> String {
        let v = self
            .ok(
                http,
                reqwest::Method::POST,
                &self.path("/populations"),
                Some(json!({"name": name, "query": query})),
            )
            .await;
        v["id"].as_str().unwrap().to_string()
    }

    /// Runs the overlap now from this side; answers the run's progress.
    async fn run(&self, http: &reqwest::Client, partnership: &str) -> Value {
        self.ok(
            http,
            reqwest::Method::POST,
            &self.path(&format!(
                "/remote-partnerships/{partnership}/runs?wait=true"
            )),
            None,
        )
        .await
    }

    async fn overlap(&self, http: &reqwest::Client, partnership: &str) -> Value {
        self.ok(
            http,
            reqwest::Method::GET,
            &self.path(&format!("/remote-partnerships/{partnership}/overlap")),
            None,
        )
        .await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cell(view: &Value, mine: &str, theirs: &str) -> Value {
    view["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["population"] == mine && c["partner_population"] == theirs)
        .cloned()
        .unwrap_or_else(|| panic!("no cell {mine} × {theirs} in {view}"))
}

/// Every file under `dir`, read whole.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_pm04_two_servers_learn_only_their_own_overlap_through_psi_over_https() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = tempfile::tempdir().unwrap();
    let key =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let tls = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&tls.0, key.cert.pem()).unwrap();
    std::fs::write(&tls.1, key.key_pair.serialize_pem()).unwrap();
    let http = client(&tls.0);

    // Server A on SQLite; server B on PostgreSQL when there is one (at most 3 runs an hour).
    let mut a = Node::start(TestBackend::Sqlite, &tls, &[]).await.unwrap();
    let b_backend = if std::env::var("MESHWORK_TEST_POSTGRES_URL").is_ok() {
        TestBackend::Postgres
    } else {
        TestBackend::Sqlite
    };
    let mut b = Node::start(
        b_backend,
        &tls,
        &[("MESHWORK_OVERLAP__PEER_RUNS_PER_HOUR", "3")],
    )
    .await
    .unwrap();
    a.set_up(&http, "alpha").await;
    b.set_up(&http, "bravo").await;
    use reqwest::Method as M;

    // A's contacts; B's overlap with three of them, written differently, and one of its own.
    let a_shared = a
        .contact(
            &http,
            json!({"first_name": "Sam", "last_name": "Shared", "emails": ["sam@both.example"]}),
        )
        .await;
    let a_jane = a
        .contact(
            &http,
            json!({"first_name": "Jane", "last_name": "Doe", "emails": ["Jane.Doe@gmail.com"]}),
        )
        .await;
    let a_phone = a
        .contact(
            &http,
            json!({"first_name": "Phil", "last_name": "Phone", "phones": ["+1 415 555 0100"]}),
        )
        .await;
    let _a_only = a.contact(&http, json!({"first_name": "Alma", "last_name": "Alone", "emails": ["alma@only-alpha.example"]})).await;
    b.contact(&http, json!({"first_name": "S.", "last_name": "Shared", "emails": ["SAM@both.example"], "tags": ["vip"]})).await;
    b.contact(&http, json!({"first_name": "J.", "last_name": "Doe", "emails": ["janedoe+crm@googlemail.com"], "tags": ["vip"]})).await;
    b.contact(
        &http,
        json!({"first_name": "P.", "last_name": "Phone", "phones": ["(415) 555-0100"]}),
    )
    .await;
    b.contact(&http, json!({"first_name": "Bert", "last_name": "Secret", "emails": ["bert.secret@only-bravo.example"], "tags": ["vip"]})).await;
    let a_all = a.population(&http, "All contacts", "type:contact").await;
    let b_all = b.population(&http, "All contacts", "type:contact").await;
    let b_vip = b.population(&http, "VIPs", "type:contact tag:vip").await;

    // A invites; the invitation works once.
    let (status, v) = a
        .call(&http, M::POST, &a.path("/remote-partnerships"), None)
        .await;
    assert_eq!(status, 201, "{v}");
    let invitation = v["invitation"].as_str().unwrap().to_string();
    let a_pid = v["partnership"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["partnership"]["state"], "pending");
    let (status, v) = b
        .call(
            &http,
            M::POST,
            &b.path("/remote-partnerships/join"),
            Some(json!({"invitation": "mwinv1.garbage"})),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("invitation_invalid")),
        "{v}"
    );
    let (status, v) = b
        .call(
            &http,
            M::POST,
            &b.path("/remote-partnerships/join"),
            Some(json!({"invitation": invitation})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let b_pid = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["state"], "active");
    assert_eq!(v["partner_name"], "alpha Inc");
    let (status, v) = b
        .call(
            &http,
            M::POST,
            &b.path("/remote-partnerships/join"),
            Some(json!({"invitation": invitation})),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("invitation_invalid")),
        "a spent invitation: {v}"
    );
    let listed = a
        .ok(&http, M::GET, &a.path("/remote-partnerships"), None)
        .await;
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["partner_name"], "bravo Inc");

    // Before B shares anything, A learns nothing.
    let run = a.run(&http, &a_pid).await;
    assert_eq!(run["state"], "done", "{run}");
    let v = a.overlap(&http, &a_pid).await["view"].clone();
    assert_eq!(v["partner_populations"], json!([]));
    assert_eq!(v["records"], json!([]));

    // B shares its VIPs with indicators and all its contacts as counts (no threshold).
    b.ok(&http, M::PUT, &b.path(&format!("/remote-partnerships/{b_pid}/sharing")), Some(json!({"shares": {b_vip.clone(): "indicators", b_all.clone(): "counts"}, "threshold": 1}))).await;
    let run = a.run(&http, &a_pid).await;
    assert_eq!(run["state"], "done", "{run}");
    // One full session for the VIPs, one counts session per population of A's (3 built in + 1).
    assert_eq!(
        (
            run["sessions_total"].as_u64(),
            run["sessions_done"].as_u64()
        ),
        (Some(5), Some(5)),
        "{run}"
    );
    let v = a.overlap(&http, &a_pid).await["view"].clone();
    let named: BTreeSet<&str> = v["partner_populations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(named, BTreeSet::from([b_vip.as_str(), b_all.as_str()]));
    // Records: exactly A's contacts among B's VIPs (by email, across spellings); the phone
    // match is in a counts-only population, so it is counted but not named.
    let records: BTreeSet<String> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["partner_populations"], json!([b_vip]), "{r}");
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(records, BTreeSet::from([a_shared.clone(), a_jane.clone()]));
    assert!(!records.contains(&a_phone));
    assert_eq!(cell(&v, &a_all, &b_vip)["count"], 2);
    assert_eq!(
        cell(&v, &a_all, &b_all)["count"],
        3,
        "shared identifiers, counted"
    );
    assert_eq!(
        cell(&v, "customers", &b_all)["fewer_than"],
        1,
        "none: under a threshold of 1"
    );
    let text = v.to_string();
    for secret in ["bert", "only-bravo", "googlemail", "Secret"] {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "{secret} in {text}"
        );
    }
    // A's page for the partnership shows the same: the matrix, and its own records named
    // (Jane), never the partner's.
    let page = http
        .get(format!("{}/w/{}/partners/remote/{a_pid}", a.base, a.ws))
        .header("cookie", &a.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("State: active")
            && html.contains(&format!(
                "on the Meshwork server at <code>{}</code>",
                b.base
            )),
        "{html}"
    );
    assert!(
        html.contains(">VIPs</th>") && html.contains(">Jane Doe</a>"),
        "{html}"
    );
    assert!(
        !html.to_lowercase().contains("bert") && !html.contains("only-bravo"),
        "{html}"
    );
    // The export lists the same records, formula-safe CSV.
    let r = http
        .get(format!(
            "{}{}",
            a.base,
            a.path(&format!(
                "/remote-partnerships/{a_pid}/overlap/export?format=csv"
            ))
        ))
        .header("cookie", &a.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains(&a_jane) && csv.contains("Jane Doe"), "{csv}");

    // B learns nothing of A until A shares; then only counts, as A chose.
    let run = b.run(&http, &b_pid).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(
        b.overlap(&http, &b_pid).await["view"]["partner_populations"],
        json!([])
    );
    a.ok(
        &http,
        M::PUT,
        &a.path(&format!("/remote-partnerships/{a_pid}/sharing")),
        Some(json!({"shares": {a_all.clone(): "counts"}, "threshold": 3})),
    )
    .await;
    let run = b.run(&http, &b_pid).await;
    assert_eq!(run["state"], "done", "{run}");
    let vb = b.overlap(&http, &b_pid).await["view"].clone();
    assert_eq!(vb["records"], json!([]), "counts only: no record is named");
    assert_eq!(cell(&vb, &b_all, &a_all)["count"], 3);
    assert_eq!(
        cell(&vb, &b_vip, &a_all)["fewer_than"],
        3,
        "2 under A's threshold of 3"
    );
    // A stops sharing: B's server is told and drops the view that counted A's records.
    let v = a
        .ok(
            &http,
            M::PUT,
            &a.path(&format!("/remote-partnerships/{a_pid}/sharing")),
            Some(json!({"shares": {}, "threshold": 3})),
        )
        .await;
    assert_eq!(v["ours"]["shares"], json!({}));
    assert_eq!(
        b.overlap(&http, &b_pid).await["view"],
        Value::Null,
        "B's view after A withdrew"
    );
    assert!(
        a.overlap(&http, &a_pid).await["view"]["records"].is_array(),
        "A's own view stays"
    );

    // Peer routes take only signed requests.
    let peer_path = format!("/peer/v1/partnerships/{b_pid}/runs");
    let r = http
        .post(format!("{}{peer_path}", b.base))
        .json(&json!({"run": "00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "peer_signature_invalid"
    );
    let r = http
        .post(format!("{}{peer_path}", b.base))
        .header("x-meshwork-peer-time", "0")
        .header("x-meshwork-peer-signature", "00".repeat(32))
        .json(&json!({"run": "00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // B vanishes: A's run fails cleanly, naming the partner; B comes back and runs resume.
    b.kill();
    let run = a.run(&http, &a_pid).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{run}"
    );
    b.spawn(&tls.0).await;
    let run = a.run(&http, &a_pid).await;
    assert_eq!(run["state"], "done", "{run}");
    // B takes three runs of A's an hour, restarts included: the fourth is refused (the one
    // while B was down never reached it).
    let run = a.run(&http, &a_pid).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("runs per partnership and hour"),
        "{run}"
    );

    // Nothing of B's own records reached A's server: a scan of A's files.
    for (path, bytes) in files(a.db.dir.path()) {
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for secret in ["bert.secret", "only-bravo.example"] {
            assert!(!text.contains(secret), "{secret} in {}", path.display());
        }
    }

    // B revokes: A is told at once, its view is gone and it can run no more.
    let v = b
        .ok(
            &http,
            M::POST,
            &b.path(&format!("/remote-partnerships/{b_pid}/revoke")),
            None,
        )
        .await;
    assert_eq!(
        (
            v["partnership"]["state"].as_str(),
            v["partner_notified"].as_bool()
        ),
        (Some("revoked"), Some(true)),
        "{v}"
    );
    let v = a.overlap(&http, &a_pid).await;
    assert_eq!(v["partnership"]["state"], "revoked");
    assert_eq!(v["view"], Value::Null);
    let (status, v) = a
        .call(
            &http,
            M::POST,
            &a.path(&format!("/remote-partnerships/{a_pid}/runs?wait=true")),
            None,
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("partnership_not_active")),
        "{v}"
    );
    // Both audit logs hold the runs; B's entries of A's runs carry no address of A's.
    let log = b.ok(&http, M::GET, &b.path("/audit"), None).await;
    let runs: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "overlap.run" && e["details"]["requested_by"] == "partner")
        .collect();
    assert!(runs.len() >= 3, "{log}");
    assert!(
        runs.iter().all(|e| e["details"].get("ip").is_none()),
        "{log}"
    );
    a.kill();
    b.kill();
}
