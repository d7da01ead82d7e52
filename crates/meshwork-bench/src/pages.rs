//! `meshwork bench pages`: how long the server takes to render the web app's pages in a large
//! workspace, and how many bytes each page ships.
//!
//! A real server (this binary, `serve`, SQLite or PostgreSQL) gets a workspace of `--contacts`
//! contacts (a generated HubSpot export imported by `meshwork import`, with the companies it
//! names), a pipeline with `--deals` deals spread over its stages, and one contact with a
//! timeline of `--timeline` notes. Signed in with a session cookie, as a browser is, it then
//! asks for each page `--requests` times, one request at a time over loopback, and reports the
//! p50 and p99 of the time to the last byte (the server's time plus loopback), beside `GET
//! /healthz` (the HTTP stack alone) measured the same way. Bytes are the HTML of each page and
//! the CSS and JavaScript it loads, raw and gzip-compressed: the server sends assets gzipped to
//! browsers that accept it, and pages uncompressed (they hold the session's CSRF token beside
//! text the visitor chose; compressing them would open BREACH).

use crate::start_server;
use anyhow::{ensure, Context};
use std::io::Write as _;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct PagesArgs {
    /// Contacts in the workspace (imported from a generated HubSpot export).
    #[arg(long, default_value_t = 1_000_000)]
    contacts: u64,
    /// Deals in the pipeline (created through the API).
    #[arg(long, default_value_t = 2_000)]
    deals: u64,
    /// Notes on the timeline of the contact whose page is measured.
    #[arg(long, default_value_t = 300)]
    timeline: u64,
    /// Requests per page.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Measure on PostgreSQL (a scratch database: the bench writes to it) instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("in memory");
    enc.finish().expect("in memory").len()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The `/assets/…` URLs a page loads.
fn assets(html: &str) -> Vec<String> {
    html.split("\"/assets/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|a| format!("/assets/{a}"))
        .collect()
}

pub async fn run(args: PagesArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let db = args.database_url.as_deref();
    let (mut server, base) = start_server(db, &client).await?;
    let session = crate::session(&client, &base).await?;
    let (key, ws) = crate::workspace_with_key(&client, &base, &session, "Pages").await?;

    // The contacts, imported offline as an administrator would.
    let file = server.data_dir().join("contacts.csv");
    {
        let w = std::io::BufWriter::new(std::fs::File::create(&file)?);
        meshwork_crm_io::generate_hubspot_contacts(7, args.contacts, w)?;
    }
    server.stop();
    eprintln!("importing {} contacts", args.contacts);
    let started = Instant::now();
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args([
        "import",
        "--type",
        "contact",
        "--layout",
        "hubspot",
        "--workspace",
        &ws,
    ])
    .arg("--data-dir")
    .arg(server.data_dir());
    if let Some(u) = db {
        cmd.arg("--database-url").arg(u);
    }
    let out = cmd.arg(&file).env("MESHWORK_LOG", "warn").output()?;
    ensure!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("imported in {:.0} s", started.elapsed().as_secs_f64());
    let (server, base) = server.restart(db, &client).await?;
    let api = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{base}/api/v1/workspaces/{ws}{path}"))
            .bearer_auth(&key)
    };
    // The first search catches the index up with the import.
    let started = Instant::now();
    api(reqwest::Method::GET, "/search?q=a")
        .send()
        .await?
        .error_for_status()?;
    eprintln!(
        "index caught up in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // A pipeline and its deals.
    let pipeline: serde_json::Value = api(reqwest::Method::POST, "/pipelines")
        .json(&serde_json::json!({"name": "Sales", "stages": [
            {"name": "Lead"}, {"name": "Qualified"}, {"name": "Proposal"},
            {"name": "Won", "won": true}, {"name": "Lost", "lost": true}]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let pipeline_id = pipeline["id"]
        .as_str()
        .context("no pipeline id")?
        .to_string();
    let stages = ["lead", "qualified", "proposal", "won", "lost"];
    eprintln!("creating {} deals", args.deals);
    for i in 0..args.deals {
        api(reqwest::Method::POST, "/deals")
            .json(&serde_json::json!({
                "name": format!("Deal {i}"),
                "amount": format!("{}.00", 1000 + (i * 37) % 90_000),
                "currency": if i % 3 == 0 { "USD" } else { "EUR" },
                "pipeline": pipeline_id,
                "stage": stages[(i % 5) as usize],
            }))
            .send()
            .await?
            .error_for_status()?;
    }
    // One contact with a long timeline.
    let list: serde_json::Value = api(reqwest::Method::GET, "/contacts?limit=1")
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let contact = list["records"][0]["id"]
        .as_str()
        .context("no contact")?
        .to_string();
    ensure!(
        list["total"].as_u64() == Some(args.contacts) || args.contacts > 1000,
        "the workspace holds {} contacts",
        list["total"]
    );
    eprintln!("adding {} notes to one contact", args.timeline);
    for i in 0..args.timeline {
        api(reqwest::Method::POST, "/notes")
            .json(&serde_json::json!({"body": format!("Call {i}: discussed the renewal, the budget and the next steps with the team."), "about": [contact]}))
            .send()
            .await?
            .error_for_status()?;
    }

    let pages = [
        (
            "`GET /healthz` (baseline: the HTTP stack alone)",
            "/healthz".to_string(),
        ),
        ("home: one's workspaces", "/".to_string()),
        ("workspace overview (counts)", format!("/w/{ws}")),
        ("contacts list, first page", format!("/w/{ws}/contacts")),
        (
            "contacts list by name",
            format!("/w/{ws}/contacts?sort=name"),
        ),
        (
            "contacts list, search-box text",
            format!("/w/{ws}/contacts?q=smith"),
        ),
        ("deal board", format!("/w/{ws}/board")),
        (
            "contact page with its timeline",
            format!("/w/{ws}/contacts/{contact}"),
        ),
        (
            "search-as-you-type list",
            format!("/w/{ws}/search/suggest?q=jo"),
        ),
    ];
    println!(
        "\n{} contacts, {} deals, a timeline of {} notes; {} requests per page, one at a time\n",
        args.contacts, args.deals, args.timeline, args.requests
    );
    println!("| page | p50 | p99 | HTML | HTML gzip |");
    println!("|---|---|---|---|---|");
    let mut asset_urls = Vec::new();
    for (label, path) in &pages {
        let get = || {
            client
                .get(format!("{base}{path}"))
                .header("cookie", &session.cookie)
        };
        let mut body = Vec::new();
        for _ in 0..10 {
            let r = get().send().await?;
            ensure!(r.status().is_success(), "{path}: {}", r.status());
            body = r.bytes().await?.to_vec();
        }
        let mut times = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            let started = Instant::now();
            let r = get().send().await?;
            let _ = r.bytes().await?;
            times.push(started.elapsed());
        }
        times.sort();
        let html = String::from_utf8_lossy(&body);
        for a in assets(&html) {
            if !asset_urls.contains(&a) {
                asset_urls.push(a);
            }
        }
        println!(
            "| {label} | {} | {} | {:.1} KiB | {:.1} KiB |",
            ms(pct(&times, 0.5)),
            ms(pct(&times, 0.99)),
            body.len() as f64 / 1024.0,
            gzip_len(&body) as f64 / 1024.0
        );
    }
    println!("\n| asset | bytes | gzip |");
    println!("|---|---|---|");
    let (mut raw, mut packed) = (0, 0);
    for a in &asset_urls {
        let bytes = client
            .get(format!("{base}{a}"))
            .send()
            .await?
            .bytes()
            .await?;
        let z = gzip_len(&bytes);
        raw += bytes.len();
        packed += z;
        println!(
            "| `{a}` | {:.1} KiB | {:.1} KiB |",
            bytes.len() as f64 / 1024.0,
            z as f64 / 1024.0
        );
    }
    println!(
        "| all CSS and JavaScript | {:.1} KiB | {:.1} KiB |",
        raw as f64 / 1024.0,
        packed as f64 / 1024.0
    );
    drop(server);
    Ok(())
}
