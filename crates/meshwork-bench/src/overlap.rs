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

use crate::{rss_kib, setup, start_server};
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
    /// Compare CRM companies (imported, then a saved filter `type:company` on each side)
    /// instead of match-only lists: the first run reads and opens every record; before each
    /// later one, one side edits one company, so the run reads only that record again.
    #[arg(long)]
    crm: bool,
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

/// One side's workspace on the bench's server.
#[derive(Clone, Copy)]
struct Target<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    key: &'a str,
    ws: &'a str,
    side: &'a str,
}

impl Target<'_> {
    /// A request to `path` under the workspace, authenticated with its API key.
    fn at(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(
                method,
                format!("{}/api/v1/workspaces/{}/{path}", self.base, self.ws),
            )
            .bearer_auth(self.key)
    }
}

/// Loads `csv` as a match-only list; answers its population id.
async fn load_list(to: &Target<'_>, csv: String, rows: usize) -> anyhow::Result<String> {
    let path = format!("match-lists?name={}&kind=companies&layout=hubspot", to.side);
    let report = call(
        to.at(reqwest::Method::POST, &path)
            .header("content-type", "text/csv")
            .body(csv),
        "loading a match-only list",
    )
    .await?;
    ensure!(
        report["entries"] == rows,
        "the list kept {} of {rows} rows: {report}",
        report["entries"],
    );
    Ok(report["population"]["id"]
        .as_str()
        .context("no population id")?
        .to_string())
}

/// Imports `csv` as CRM companies, waits for the import and the index, and saves the filter
/// `type:company`; answers its population id.
async fn import_companies(to: &Target<'_>, csv: String, rows: usize) -> anyhow::Result<String> {
    use reqwest::Method;
    let job = call(
        to.at(Method::POST, "imports?type=company&layout=hubspot")
            .header("content-type", "text/csv")
            .body(csv),
        "starting an import",
    )
    .await?;
    let id = job["id"].as_str().context("no import id")?.to_string();
    loop {
        let status = call(
            to.at(Method::GET, &format!("imports/{id}")),
            "reading the import",
        )
        .await?;
        match status["state"].as_str() {
            Some("running") => tokio::time::sleep(Duration::from_millis(500)).await,
            Some("done") => {
                ensure!(
                    status["created"] == rows,
                    "the import created {} of {rows} companies: {status}",
                    status["created"]
                );
                break;
            }
            _ => bail!("the import of {} ended: {status}", to.side),
        }
    }
    // The first search catches the index up with the import.
    call(to.at(Method::GET, "search?q=shared"), "indexing").await?;
    let p = call(
        to.at(Method::POST, "populations")
            .json(&json!({"name": format!("{} companies", to.side), "query": "type:company"})),
        "saving a population",
    )
    .await?;
    Ok(p["id"].as_str().context("no population id")?.to_string())
}

/// Renames one company of the workspace (the `n`-th edit).
async fn edit_one_company(to: &Target<'_>, n: usize) -> anyhow::Result<()> {
    use reqwest::Method;
    let page = call(to.at(Method::GET, "companies?limit=1"), "listing companies").await?;
    let id = page["records"][0]["id"]
        .as_str()
        .with_context(|| format!("no company listed: {page}"))?;
    call(
        to.at(Method::PATCH, &format!("companies/{id}"))
            .json(&json!({"fields": {"name": format!("Edited {n}")}})),
        "editing a company",
    )
    .await?;
    Ok(())
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

    // Each side loads its match-only list, or imports its companies into its CRM.
    let mut lists = Vec::new();
    for ((key, ws), side) in sides.iter().zip(["alpha", "beta"]) {
        let csv = companies_csv(side, args.rows);
        let t = Instant::now();
        let to = Target {
            client: &client,
            base: &base,
            key,
            ws,
            side,
        };
        let population = if args.crm {
            import_companies(&to, csv, args.rows).await?
        } else {
            load_list(&to, csv, args.rows).await?
        };
        println!(
            "  {} {side}: {:.2} s for {} rows",
            if args.crm { "import" } else { "load" },
            t.elapsed().as_secs_f64(),
            args.rows,
        );
        lists.push(population);
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

    // Timed runs. With --crm, one side edits one company before each run after the first.
    let mut times = Vec::new();
    let mut first = None;
    for n in 0..args.runs.max(1) {
        if args.crm && n > 0 {
            let (key, ws) = &sides[n % 2];
            let to = Target {
                client: &client,
                base: &base,
                key,
                ws,
                side: if n % 2 == 0 { "alpha" } else { "beta" },
            };
            edit_one_company(&to, n).await?;
        }
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
        let took = t.elapsed();
        ensure!(
            summary["stored"] == true,
            "the run was not stored: {summary}"
        );
        if args.crm && n == 0 {
            first = Some(took);
        } else {
            times.push(took);
        }
    }
    if let Some(first) = first {
        println!(
            "  first run (every record read and opened): {:.3} s",
            first.as_secs_f64()
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
    ensure!(!times.is_empty(), "--crm needs --runs of at least 2");
    times.sort();
    println!(
        "  {}runs: min {:.3} s, median {:.3} s, max {:.3} s ({} runs); shared rows found: {shared} (expected {expected})",
        if args.crm { "after one edit, " } else { "" },
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
