//! `meshwork bench overlap-remote`: partner overlap between two real servers over HTTPS, the
//! two-server mode end to end (private set intersection, `docs/overlap-protocol.md` §6).
//!
//! Two `meshwork serve` processes on this machine, each with TLS (a throwaway self-signed
//! certificate both trust), each with `--rows` companies imported into one workspace (a tenth
//! of their domains shared). B shares its companies with indicators; A's run is timed: one full
//! PSI session of `--rows` × `--rows` identifiers, both servers competing for the same cores.
//! Each run starts once both servers are idle (after the import, each index merges its
//! segments for a few seconds; that work is not the run's).
//! Beside it, in the same run, the floor: the time of the 4 × padded-size scalar
//! multiplications alone on this machine's thread pool. Reported: import and indexing times,
//! the run's wall time, its ratio to the floor, bytes exchanged, and both servers' memory.

use crate::rss_kib;
use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct RemoteArgs {
    /// Companies (one domain each) per side; a tenth are shared.
    #[arg(long, default_value_t = 1 << 20)]
    rows: usize,
    /// Timed runs, one after another on the same two servers, each beside a floor measured
    /// just before it.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// The servers' log filter (`MESHWORK_LOG`); to see each run's phases:
    /// `warn,meshwork_app::remote=debug,meshwork_server::http::remote=debug`.
    #[arg(long, default_value = "warn")]
    server_log: String,
}

struct Side {
    name: &'static str,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    key: String,
    ws: String,
}

impl Side {
    /// One search of the side's workspace: it catches the index up with the change feed.
    async fn search(&self, client: &reqwest::Client, what: &str) -> anyhow::Result<Value> {
        call(
            client
                .get(format!(
                    "{}/api/v1/workspaces/{}/search?q=shared",
                    self.base(),
                    self.ws
                ))
                .bearer_auth(&self.key),
            what,
        )
        .await
    }

    fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    async fn start(
        &mut self,
        tls: &(PathBuf, PathBuf),
        client: &reqwest::Client,
        log: &str,
    ) -> anyhow::Result<()> {
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .arg("serve")
            .arg("--data-dir")
            .arg(self.dir.path())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .env("MESHWORK_LOG", log)
            .env("MESHWORK_AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "1000")
            .env("MESHWORK_BACKUP__ENABLED", "false")
            .env("MESHWORK_TLS_CERT", &tls.0)
            .env("MESHWORK_TLS_KEY", &tls.1)
            .env("MESHWORK_PUBLIC_URL", self.base())
            .env("MESHWORK_OVERLAP__PEER_CA_FILE", &tls.0)
            .env("MESHWORK_OVERLAP__PEER_RUNS_PER_HOUR", "1000")
            .env("MESHWORK_OVERLAP__ALLOW_PRIVATE_PEERS", "true")
            .stdout(Stdio::null())
            .spawn()
            .context("starting a server")?;
        self.child = Some(child);
        let started = Instant::now();
        while !client
            .get(format!("{}/healthz", self.base()))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("server {} did not become ready in 60 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn call(req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
    let resp = req.send().await.with_context(|| what.to_string())?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{what}: {status} {body}");
    }
    Ok(body)
}

/// A HubSpot companies export: row `i` is shared (`shared-{i}.com`) for `i % 10 == 0`.
fn companies_csv(path: &Path, side: &str, rows: usize) -> anyhow::Result<()> {
    let mut out = String::with_capacity(rows * 40);
    out.push_str("Company name,Company Domain Name\r\n");
    for i in 0..rows {
        if i % 10 == 0 {
            let _ = write!(out, "Shared {i},https://www.shared-{i}.com\r\n");
        } else {
            let _ = write!(out, "{side} {i},{side}-{i}.com\r\n");
        }
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// Wall time per scalar multiplication on rayon's pool (all cores), from 2^15 of them.
/// Wall time per scalar multiplication of 2^16 random points, on rayon's pool or on one thread.
fn scalar_mult_wall(on_pool: bool) -> Duration {
    use curve25519_dalek::{RistrettoPoint, Scalar};
    use rayon::prelude::*;
    let mut rng = rand::rngs::OsRng;
    let points: Vec<RistrettoPoint> = (0..1 << 16)
        .map(|_| RistrettoPoint::random(&mut rng))
        .collect();
    let k = Scalar::random(&mut rng);
    let t = Instant::now();
    let out: Vec<RistrettoPoint> = if on_pool {
        points.par_iter().map(|p| k * p).collect()
    } else {
        points.iter().map(|p| k * p).collect()
    };
    let elapsed = t.elapsed();
    std::hint::black_box(out);
    elapsed / (1 << 16)
}

/// The floor's cost per multiplication around a run: the median of `samples` measurements
/// (the host's speed drifts by several percent between seconds; one sample is not enough).
fn median_mult(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub async fn run(args: RemoteArgs) -> anyhow::Result<()> {
    ensure!(args.rows >= 10, "--rows must be at least 10");
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = tempfile::tempdir()?;
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
    let tls = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&tls.0, cert.cert.pem())?;
    std::fs::write(&tls.1, cert.key_pair.serialize_pem())?;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes())?)
        .timeout(Duration::from_secs(7200))
        .build()?;
    println!(
        "meshwork bench overlap-remote: two servers (SQLite, HTTPS on loopback), {} × {} companies (10 % shared), {} cores",
        args.rows,
        args.rows,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );

    let mut sides = Vec::new();
    for name in ["alpha", "beta"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut side = Side {
            name,
            dir: tempfile::tempdir()?,
            port,
            child: None,
            key: String::new(),
            ws: String::new(),
        };
        side.start(&tls, &client, &args.server_log).await?;
        let (key, ws) = crate::setup(&client, &side.base(), 1).await?.remove(0);
        (side.key, side.ws) = (key, ws);
        side.stop();
        // Import with the CLI, as an admin would (the server is stopped meanwhile).
        let file = side.dir.path().join("companies.csv");
        companies_csv(&file, name, args.rows)?;
        let t = Instant::now();
        let out = Command::new(std::env::current_exe()?)
            .args([
                "import",
                "--type",
                "company",
                "--layout",
                "hubspot",
                "--workspace",
                &side.ws,
            ])
            .arg("--data-dir")
            .arg(side.dir.path())
            .arg(&file)
            .env("MESHWORK_LOG", "warn")
            .output()?;
        ensure!(
            out.status.success(),
            "import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "  {name}: imported {} companies in {:.1} s",
            args.rows,
            t.elapsed().as_secs_f64()
        );
        side.start(&tls, &client, &args.server_log).await?;
        // The first search catches the index up with the import.
        let t = Instant::now();
        side.search(&client, "indexing").await?;
        println!("  {name}: indexed in {:.1} s", t.elapsed().as_secs_f64());
        sides.push(side);
    }
    let (a, b) = (&sides[0], &sides[1]);
    let mut pops = Vec::new();
    for s in [a, b] {
        let p = call(
            client
                .post(format!(
                    "{}/api/v1/workspaces/{}/populations",
                    s.base(),
                    s.ws
                ))
                .bearer_auth(&s.key)
                .json(&json!({"name": "All companies", "query": "type:company"})),
            "creating a population",
        )
        .await?;
        pops.push(p["id"].as_str().context("no population id")?.to_string());
    }
    let inv = call(
        client
            .post(format!(
                "{}/api/v1/workspaces/{}/remote-partnerships",
                a.base(),
                a.ws
            ))
            .bearer_auth(&a.key),
        "inviting",
    )
    .await?;
    let a_pid = inv["partnership"]["id"]
        .as_str()
        .context("no id")?
        .to_string();
    let joined = call(
        client
            .post(format!(
                "{}/api/v1/workspaces/{}/remote-partnerships/join",
                b.base(),
                b.ws
            ))
            .bearer_auth(&b.key)
            .json(&json!({"invitation": inv["invitation"]})),
        "joining",
    )
    .await?;
    let b_pid = joined["id"].as_str().context("no id")?.to_string();
    let mut shares = serde_json::Map::new();
    shares.insert(pops[1].clone(), json!("indicators"));
    call(
        client
            .put(format!(
                "{}/api/v1/workspaces/{}/remote-partnerships/{b_pid}/sharing",
                b.base(),
                b.ws
            ))
            .bearer_auth(&b.key)
            .json(&json!({"shares": shares, "threshold": 1})),
        "sharing",
    )
    .await?;

    let padded = args.rows.next_power_of_two().max(1024);
    // The populations and sharing just written reach each index at its next search, whose
    // commit also sets the index merging the import's segments: do it now, not in run 1.
    for s in [a, b] {
        s.search(&client, "searching").await?;
    }
    let pids: Vec<u32> = sides
        .iter()
        .filter_map(|s| s.child.as_ref().map(|c| c.id()))
        .collect();
    for n in 1..=args.runs {
        // Both servers idle first: after an import, each index merges its segments for a while.
        let waited = crate::wait_until_idle(&pids, Duration::from_secs(300)).await;
        if waited > Duration::from_secs(2) {
            println!(
                "  waited {:.0} s for both servers to go idle (index merges)",
                waited.as_secs_f64()
            );
        }
        // The floor, in this run: 4 × padded size scalar multiplications on this machine's pool,
        // measured three times before the run and three times after it.
        let mut samples: Vec<Duration> = (0..3).map(|_| scalar_mult_wall(true)).collect();
        let t = Instant::now();
        let run = call(
            client
                .post(format!(
                    "{}/api/v1/workspaces/{}/remote-partnerships/{a_pid}/runs?wait=true",
                    a.base(),
                    a.ws
                ))
                .bearer_auth(&a.key),
            "running",
        )
        .await?;
        let wall = t.elapsed();
        ensure!(run["state"] == "done", "the run failed: {run}");
        samples.extend((0..3).map(|_| scalar_mult_wall(true)));
        let per_mult = median_mult(&mut samples);
        let floor = per_mult * (4 * padded) as u32;
        let view = call(
            client
                .get(format!(
                    "{}/api/v1/workspaces/{}/remote-partnerships/{a_pid}/overlap",
                    a.base(),
                    a.ws
                ))
                .bearer_auth(&a.key),
            "reading the view",
        )
        .await?;
        let found = view["view"]["records"].as_array().map_or(0, |r| r.len());
        let expected = args.rows.div_ceil(10);
        ensure!(
            found == expected,
            "the run found {found} shared companies, the generator made {expected}"
        );
        let mib = |b: &Value| b.as_u64().unwrap_or(0) as f64 / 1048576.0;
        println!(
            "  run {n} (A learns which of its companies B has): {:.1} s wall; floor {:.1} s (4 × {padded} scalar multiplications at {:.1} µs each on the pool): {:.3}× the floor",
            wall.as_secs_f64(),
            floor.as_secs_f64(),
            per_mult.as_secs_f64() * 1e6,
            wall.as_secs_f64() / floor.as_secs_f64()
        );
        println!(
            "  floor samples: {:.1}–{:.1} µs per multiplication on the pool; on one thread {:.1} µs",
            samples[0].as_secs_f64() * 1e6,
            samples[samples.len() - 1].as_secs_f64() * 1e6,
            scalar_mult_wall(false).as_secs_f64() * 1e6
        );
        println!(
            "  bytes: A sent {:.1} MiB, received {:.1} MiB; shared companies found: {found} (expected {expected})",
            mib(&run["bytes_sent"]),
            mib(&run["bytes_received"])
        );
    }
    for s in &sides {
        if let Some(kib) = s.child.as_ref().and_then(|c| rss_kib(c.id())) {
            println!(
                "  {} server RSS after the run: {:.0} MiB",
                s.name,
                kib as f64 / 1024.0
            );
        }
    }
    Ok(())
}
