//! `meshwork-bench`: the benchmarks behind `meshwork bench` (their figures are in BENCHMARKS.md).
//! Each starts real servers as child processes of the running binary (`meshwork serve`) and
//! drives them from this process; `search` measures the index in-process against PostgreSQL
//! and SQLite full-text search.
//!
//! `meshwork bench api`: measures authenticated API throughput and latency, and idle memory.
//!
//! It starts a real server as a child process (this binary, `serve`, on a free loopback port, in
//! a temporary data directory), signs up, creates a workspace and an API key, reads the server's
//! idle resident memory, then drives load from this process over loopback, phase by phase:
//! `GET /healthz` (the baseline: the HTTP stack with no auth and no store), authenticated reads
//! (`GET /api/v1/workspaces/{id}` with a Bearer key) and authenticated writes (`PATCH` of the
//! workspace name: a sealed update, a change-feed entry and an audit entry per request).

mod connectors;
mod import;
mod load;
mod overlap;
mod overlap_remote;
mod pages;
mod search;

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  meshwork bench api\n  meshwork bench api --database-url postgres://postgres@127.0.0.1:5432/meshwork_bench --duration 10\n  meshwork bench search --records 20000 --documents 20000 --queries 500\n  meshwork bench overlap --rows 1048576\n  meshwork bench import --rows 1048576\n  meshwork bench pages --contacts 1000000\n  meshwork bench load --duration 600\n\nUse a release build (`cargo run --release -- bench api`): debug builds are many times slower."
)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Authenticated reads and writes per second with latency percentiles, and idle memory.
    Api(ApiArgs),
    /// The search index against PostgreSQL tsvector + GIN and SQLite FTS5: latency percentiles
    /// and queries per second at 1 and 16 clients, build time, size and memory.
    Search(crate::search::SearchArgs),
    /// Same-server partner overlap through the API: two workspaces each load a match-only list
    /// of 2^20 company domains (10 % shared), then runs are timed.
    Overlap(crate::overlap::OverlapArgs),
    /// Partner overlap between two real servers over HTTPS (private set intersection): two
    /// servers each import 2^20 companies (10 % shared), one run is timed against the floor of
    /// its scalar multiplications.
    OverlapRemote(crate::overlap_remote::RemoteArgs),
    /// A generated HubSpot contacts export (2^20 rows) imported with dedup, encryption and
    /// indexing on SQLite and PostgreSQL, beside PostgreSQL's own `COPY` of the same file.
    Import(crate::import::ImportArgs),
    /// The web app's pages in a workspace of 1,000,000 contacts: server time per page (p50,
    /// p99) beside `/healthz`, and the bytes of HTML, CSS and JavaScript each ships.
    Pages(crate::pages::PagesArgs),
    /// Connector syncs: a folder of 100,000 files (and with `--imap-messages`, a Dovecot
    /// mailbox) synced, with throughput and peak memory; and how soon an access change at the
    /// source shows in search with "sync now".
    Connectors(crate::connectors::ConnectorsArgs),
    /// Sustained mixed load for 10 minutes (reads, writes, searches, list views, pages, and an
    /// import every 30 s): per kind of request the rate, p50 and p99, errors (must be none),
    /// and the server's memory over time.
    Load(crate::load::LoadArgs),
}

#[derive(Debug, clap::Args)]
struct ApiArgs {
    /// Benchmark against PostgreSQL (a scratch database: the bench writes to it) instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Api(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(api(a)),
        What::Search(a) => crate::search::run(a),
        What::Overlap(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(crate::overlap::run(a)),
        What::OverlapRemote(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(crate::overlap_remote::run(a)),
        What::Import(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(crate::import::run(a)),
        What::Pages(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(crate::pages::run(a)),
        What::Connectors(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(crate::connectors::run(a)),
        What::Load(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(crate::load::run(a)),
    }
}

pub(crate) struct ServerChild {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl ServerChild {
    /// The server's process id (0 once stopped).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The server's data directory (removed when this is dropped).
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server (SIGTERM, then waits); the data directory stays.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory (and database).
    pub(crate) async fn restart(
        mut self,
        database_url: Option<&str>,
        client: &reqwest::Client,
    ) -> anyhow::Result<(ServerChild, String)> {
        self.stop();
        let dir = tempfile::TempDir::new()?;
        let dir = std::mem::replace(&mut self.dir, dir);
        start_server_in(dir, database_url, client).await
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A process's peak resident memory so far (`VmHWM`), in KiB.
pub(crate) fn peak_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// The CPU time a process has used so far (user and system, `/proc/{pid}/stat`), in clock
/// ticks (`sysconf(_SC_CLK_TCK)`, 100 per second on Linux).
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may hold spaces: count after its `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Waits until the processes `pids` together use under a tenth of a core over a second (an
/// index merging after an import, say, would otherwise run beside what is timed), at most
/// `limit`; answers how long it waited.
pub(crate) async fn wait_until_idle(
    pids: &[u32],
    limit: std::time::Duration,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    let total = || pids.iter().filter_map(|p| cpu_ticks(*p)).sum::<u64>();
    let mut before = total();
    while start.elapsed() < limit {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = total();
        if now.saturating_sub(before) < 10 {
            break;
        }
        before = now;
    }
    start.elapsed()
}

/// A KiB figure of `/proc/{pid}/status` (`key` with its colon).
pub(crate) fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct Phase {
    name: &'static str,
    requests: usize,
    errors: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
}

/// Starts `meshwork serve` (this binary) on a free loopback port in a temporary data directory
/// and waits until it answers; answers the child and its base URL.
pub(crate) async fn start_server(
    database_url: Option<&str>,
    client: &reqwest::Client,
) -> anyhow::Result<(ServerChild, String)> {
    start_server_in(tempfile::tempdir()?, database_url, client).await
}

/// `start_server` in a given data directory.
async fn start_server_in(
    dir: tempfile::TempDir,
    database_url: Option<&str>,
    client: &reqwest::Client,
) -> anyhow::Result<(ServerChild, String)> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let exe: PathBuf = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"));
    if let Some(url) = database_url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.env("MESHWORK_LOG", "warn")
        .env("MESHWORK_AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "1000")
        // A bench measures what the server can do, not the allowance of one key.
        .env("MESHWORK_AUTH__API_REQUESTS_PER_MINUTE", "100000000")
        // No daily backup at start-up in the middle of a measurement.
        .env("MESHWORK_BACKUP__ENABLED", "false")
        // The connectors bench reads folders in temp dirs,
        .env("MESHWORK_CONNECTORS__FOLDER_ROOTS", std::env::temp_dir())
        // and the IMAP server it starts is on loopback.
        .env("MESHWORK_CONNECTORS__PRIVATE_HOSTS", "127.0.0.1")
        .stdout(Stdio::null());
    let child = cmd.spawn().context("starting the server")?;
    let server = ServerChild {
        child: Some(child),
        dir,
    };
    let started = Instant::now();
    loop {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok((server, base));
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the server did not become ready in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    let (server, base) = start_server(args.database_url.as_deref(), &client).await?;
    let pid = server.pid();
    let (key, ws) = setup(&client, &base, 1).await?.remove(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(pid);

    let backend = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "meshwork bench api: backend {backend}, {} connections, {} s per phase, {} cores",
        args.connections,
        args.duration,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let dur = Duration::from_secs(args.duration);
    let mut phases = Vec::new();
    let health_url = format!("{base}/healthz");
    phases.push(
        load(
            &client,
            "GET /healthz (baseline, no auth)",
            args.connections,
            dur,
            move |c, _| c.get(&health_url),
        )
        .await,
    );
    let read_url = format!("{base}/api/v1/workspaces/{ws}");
    let (u, k) = (read_url.clone(), key.clone());
    phases.push(
        load(
            &client,
            "GET workspace (API key, read)",
            args.connections,
            dur,
            move |c, _| c.get(&u).bearer_auth(&k),
        )
        .await,
    );
    let (u, k) = (read_url.clone(), key.clone());
    phases.push(
        load(
            &client,
            "PATCH workspace (API key, write)",
            args.connections,
            dur,
            move |c, i| {
                c.patch(&u)
                    .bearer_auth(&k)
                    .json(&serde_json::json!({ "name": format!("bench {i}") }))
            },
        )
        .await,
    );
    let peak = rss_kib(pid);

    println!();
    println!("| phase | requests/s | p50 | p99 | errors |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for p in &phases {
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} |",
            p.name,
            p.requests as f64 / p.seconds,
            p.p50.as_secs_f64() * 1000.0,
            p.p99.as_secs_f64() * 1000.0,
            p.errors
        );
    }
    println!();
    if let Some(kib) = idle {
        println!("server idle RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    if let Some(kib) = peak {
        println!("server RSS after load: {:.1} MiB", kib as f64 / 1024.0);
    }
    drop(server);
    Ok(())
}

/// Signs up one person and creates `workspaces` workspaces with an owner API key each; answers
/// (key, workspace id) per workspace.
/// A signed-in person's session: its cookie (`name=value`) and CSRF token.
pub(crate) struct BenchSession {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

/// Signs up the bench's person and signs in.
pub(crate) async fn session(client: &reqwest::Client, base: &str) -> anyhow::Result<BenchSession> {
    let resp = client
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&serde_json::json!({"name": "Bench", "email": "bench@example.com", "password": "load test passphrase 42", "confirm_age_16_or_over": true}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("sign-up failed: {}", resp.text().await?);
    }
    // A sign-up starts no session: sign in.
    let resp = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "bench@example.com", "password": "load test passphrase 42"}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("sign-in failed: {}", resp.text().await?);
    }
    let cookie = resp
        .headers()
        .get("set-cookie")
        .context("no session cookie")?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let body: serde_json::Value = resp.json().await?;
    let csrf = body["csrf_token"]
        .as_str()
        .context("no csrf token")?
        .to_string();
    Ok(BenchSession { cookie, csrf })
}

/// Creates a workspace and an owner's API key in it; answers (key, workspace id).
pub(crate) async fn workspace_with_key(
    client: &reqwest::Client,
    base: &str,
    s: &BenchSession,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let ws: serde_json::Value = client
        .post(format!("{base}/api/v1/workspaces"))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await?
        .json()
        .await?;
    let ws = ws["id"].as_str().context("no workspace id")?.to_string();
    let key: serde_json::Value = client
        .post(format!("{base}/api/v1/workspaces/{ws}/api-keys"))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .json(&serde_json::json!({"name": "bench", "role": "owner", "password": "load test passphrase 42"}))
        .send()
        .await?
        .json()
        .await?;
    Ok((key["secret"].as_str().context("no key")?.to_string(), ws))
}

/// Signs up, then creates `workspaces` workspaces, each with an owner's API key; answers
/// (key, workspace id) per workspace.
pub(crate) async fn setup(
    client: &reqwest::Client,
    base: &str,
    workspaces: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let s = session(client, base).await?;
    let mut out = Vec::new();
    for i in 0..workspaces {
        out.push(workspace_with_key(client, base, &s, &format!("Bench {i}")).await?);
    }
    Ok(out)
}

async fn load<F>(
    client: &reqwest::Client,
    name: &'static str,
    connections: usize,
    duration: Duration,
    make: F,
) -> Phase
where
    F: Fn(&reqwest::Client, String) -> reqwest::RequestBuilder + Send + Sync + Clone + 'static,
{
    // Warm up the connections first so the measurement sees steady state.
    let warm_until = Instant::now() + Duration::from_millis(500);
    let deadline = warm_until + duration;
    let mut tasks = Vec::new();
    for t in 0..connections {
        let client = client.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0usize;
            let mut i = 0u64;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                i += 1;
                let ok = match make(&client, format!("{t}-{i}")).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if now >= warm_until {
                    lat.push(now.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Phase {
        name,
        requests: all.len(),
        errors,
        seconds: duration.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
    }
}
