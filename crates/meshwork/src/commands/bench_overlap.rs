//! `meshwork bench overlap`: same-server partner overlap measured through the API of a real
//! server (a child process, as `bench api` starts it).
//!
//! Two workspaces each load a match-only list of `--rows` company domains in HubSpot's company
//! layout, a tenth of them shared; one invites the other, both share their list with
//! indicators, and `POST …/runs` is timed `--runs` times. A run loads and opens both sealed lists,
//! derives both sides' match tokens under the partnership key, intersects them and stores each
//! side's view: the server side of what `cargo bench -p meshwork-overlap -- tokens` measures in
//! isolation. Reported: upload (normalise, hash, seal, store) rows per second, run times, the
//! overlap found (checked against the generator), and the server's resident memory.

use super::bench::{rss_kib, setup, start_server};
use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct OverlapArgs {
    /// Rows (company domains) per side; a tenth are shared.
    #[arg(long, default_value_t = 1 << 20)]
    rows: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Benchmark against PostgreSQL (a scratch database: the bench writes to it) instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
}

/// A HubSpot companies export of `rows` domains: row `i` is shared (`shared-{i}.com`) for
/// `i % 10 == 0`, else unique to `side`.
fn companies_csv(side: &str, rows: usize) -> String {
    let mut out = String::with_capacity(rows * 40);
    out.push_str("Company name,Company Domain Name\r\n");
    for i in 0..rows {
        if i % 10 == 0 {
            let _ = write!(out, "Shared {i},https://www.shared-{i}.com\r\n");
        } else {
            let _ = write!(out, "{side} {i},{side}-{i}.com\r\n");
        }
    }
    out
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

pub async fn run(args: OverlapArgs) -> anyhow::Result<()> {
    ensure!(args.rows >= 10, "--rows must be at least 10");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()?;
    let (server, base) = start_server(args.database_url.as_deref(), &client).await?;
    let pid = server.pid();
    let sides = setup(&client, &base, 2).await?;
    let backend = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "meshwork bench overlap: backend {backend}, {} × {} company domains (10 % shared), {} cores",
        args.rows,
        args.rows,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let idle = rss_kib(pid);

    // Each side loads its match-only list.
    let mut lists = Vec::new();
    for ((key, ws), side) in sides.iter().zip(["alpha", "beta"]) {
        let csv = companies_csv(side, args.rows);
        let bytes = csv.len();
        let t = Instant::now();
        let report = call(
            client
                .post(format!(
                    "{base}/api/v1/workspaces/{ws}/match-lists?name={side}&kind=companies&layout=hubspot"
                ))
                .bearer_auth(key)
                .header("content-type", "text/csv")
                .body(csv),
            "loading a match-only list",
        )
        .await?;
        let secs = t.elapsed().as_secs_f64();
        ensure!(
            report["entries"] == args.rows,
            "the list kept {} of {} rows: {report}",
            report["entries"],
            args.rows
        );
        println!(
            "  load {side}: {:.2} s for {} rows ({:.1} MiB), {:.0} rows/s",
            secs,
            args.rows,
            bytes as f64 / 1048576.0,
            args.rows as f64 / secs
        );
        lists.push(
            report["population"]["id"]
                .as_str()
                .context("no population id")?
                .to_string(),
        );
    }

    // Partnership: invite, accept, both share their list with indicators.
    let (key_a, ws_a) = &sides[0];
    let (key_b, ws_b) = &sides[1];
    let p = call(
        client
            .post(format!("{base}/api/v1/workspaces/{ws_a}/partnerships"))
            .bearer_auth(key_a)
            .json(&json!({ "partner_workspace_id": ws_b })),
        "inviting",
    )
    .await?;
    let pid_p = p["id"].as_str().context("no partnership id")?.to_string();
    call(
        client
            .post(format!(
                "{base}/api/v1/workspaces/{ws_b}/partnerships/{pid_p}/accept"
            ))
            .bearer_auth(key_b),
        "accepting",
    )
    .await?;
    for ((key, ws), list) in sides.iter().zip(&lists) {
        let mut shares = serde_json::Map::new();
        shares.insert(list.clone(), json!("indicators"));
        call(
            client
                .put(format!(
                    "{base}/api/v1/workspaces/{ws}/partnerships/{pid_p}/sharing"
                ))
                .bearer_auth(key)
                .json(&json!({ "shares": shares, "threshold": 1 })),
            "choosing what to share",
        )
        .await?;
    }

    // Timed runs.
    let mut times = Vec::new();
    for _ in 0..args.runs.max(1) {
        let t = Instant::now();
        let summary = call(
            client
                .post(format!(
                    "{base}/api/v1/workspaces/{ws_a}/partnerships/{pid_p}/runs"
                ))
                .bearer_auth(key_a),
            "running",
        )
        .await?;
        times.push(t.elapsed());
        ensure!(
            summary["stored"] == true,
            "the run was not stored: {summary}"
        );
    }
    let peak = rss_kib(pid);
    let view = call(
        client
            .get(format!(
                "{base}/api/v1/workspaces/{ws_a}/partnerships/{pid_p}/overlap"
            ))
            .bearer_auth(key_a),
        "reading the view",
    )
    .await?;
    let shared = view["matrix"]
        .as_array()
        .and_then(|m| m.iter().find(|c| c["population"] == lists[0].as_str()))
        .and_then(|c| c["count"].as_u64())
        .context("no count for the list")?;
    let expected = args.rows.div_ceil(10) as u64;
    ensure!(
        shared == expected,
        "the run found {shared} shared rows, the generator made {expected}"
    );
    times.sort();
    println!(
        "  runs: min {:.3} s, median {:.3} s, max {:.3} s ({} runs); shared rows found: {shared} (expected {expected})",
        times[0].as_secs_f64(),
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        times.len()
    );
    if let (Some(idle), Some(peak)) = (idle, peak) {
        println!(
            "  server RSS: {:.1} MiB idle, {:.1} MiB after the runs",
            idle as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
    drop(server);
    Ok(())
}
