//! `meshwork bench load`: sustained mixed load (issue 28, part 5).
//!
//! A real `meshwork serve` (a child process, on loopback) holds a workspace of imported
//! contacts; this process then drives it with `--connections` clients at once for `--duration`
//! seconds, each request drawn from a fixed mix: record reads, writes (new notes, contact
//! updates), searches, list views and web pages (a signed-in session), while a CSV import of
//! 500 new contacts starts every `--import-every` seconds. Every answer is checked (a 2xx
//! status, the whole body read); any other answer is an error, and the first few are printed.
//!
//! It reports, per kind of request: the count, the rate, p50, p99 and the slowest; the imports'
//! times; and every `--sample-seconds`, the server's resident memory and the rate over that
//! interval, so growth shows. It fails (exit status 1) when any request failed.

use anyhow::{bail, ensure, Context};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Run against PostgreSQL (a scratch database: the bench writes to it) instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// Seconds of load, after a 10-second warm-up that is not counted.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Clients sending requests at once, each waiting for its answer before the next.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Contacts imported before the load starts.
    #[arg(long, default_value_t = 20_000)]
    contacts: u64,
    /// Seconds between samples of the server's memory.
    #[arg(long, default_value_t = 30)]
    sample_seconds: u64,
    /// Seconds between the imports (of 500 new contacts each) that run beside the requests.
    #[arg(long, default_value_t = 30)]
    import_every: u64,
    /// Keep the data's size constant, to tell a leak from growth with the data: no imports,
    /// and notes changed (a pool of 500 made before the load) instead of added.
    #[arg(long)]
    steady: bool,
}

/// The kinds of request and their share of the mix, in percent.
const MIX: [(&str, u32); 7] = [
    ("read: GET a contact", 25),
    ("write: POST a note", 8),
    ("write: PATCH a contact", 7),
    ("search: GET /search", 20),
    ("list: GET /contacts", 15),
    ("page: contacts list", 12),
    ("page: a contact", 13),
];

#[derive(Default)]
struct Stats {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    errors: BTreeMap<&'static str, usize>,
    first_errors: Vec<String>,
}

struct Ctx {
    client: reqwest::Client,
    base: String,
    ws: String,
    key: String,
    cookie: String,
    ids: Vec<String>,
    names: Vec<String>,
    /// `--steady`: the notes changed instead of added.
    notes: Vec<String>,
}

/// The name of a kind of request (a note is changed, not added, with `--steady`).
fn label(kind: usize, steady: bool) -> &'static str {
    match (kind, steady) {
        (1, true) => "write: PATCH a note",
        _ => MIX[kind].0,
    }
}

impl Ctx {
    fn request(
        &self,
        kind: usize,
        rng: &mut rand::rngs::StdRng,
        n: u64,
    ) -> reqwest::RequestBuilder {
        let (base, ws) = (&self.base, &self.ws);
        let id = &self.ids[rng.gen_range(0..self.ids.len())];
        let api = |m: reqwest::Method, path: String| {
            self.client
                .request(m, format!("{base}/api/v1/workspaces/{ws}{path}"))
                .bearer_auth(&self.key)
        };
        let page = |path: String| {
            self.client
                .get(format!("{base}/w/{ws}{path}"))
                .header("cookie", &self.cookie)
        };
        match kind {
            0 => api(reqwest::Method::GET, format!("/contacts/{id}")),
            1 if !self.notes.is_empty() => {
                let note = &self.notes[rng.gen_range(0..self.notes.len())];
                api(reqwest::Method::PATCH, format!("/notes/{note}")).json(
                    &serde_json::json!({"fields": {"body": format!("Load note {n}: called again.")}}),
                )
            }
            1 => api(reqwest::Method::POST, "/notes".into()).json(&serde_json::json!({
                "body": format!("Load note {n}: called about the renewal."), "about": [id]})),
            2 => api(reqwest::Method::PATCH, format!("/contacts/{id}"))
                .json(&serde_json::json!({"fields": {"title": format!("Title {n}")}})),
            3 => {
                let q = &self.names[rng.gen_range(0..self.names.len())];
                api(reqwest::Method::GET, format!("/search?q={q}"))
            }
            4 => match n % 3 {
                0 => api(reqwest::Method::GET, "/contacts?limit=50".into()),
                1 => api(reqwest::Method::GET, "/contacts?limit=50&sort=name".into()),
                _ => {
                    let q = &self.names[rng.gen_range(0..self.names.len())];
                    api(reqwest::Method::GET, format!("/contacts?limit=50&q={q}"))
                }
            },
            5 => page("/contacts".into()),
            _ => page(format!("/contacts/{id}")),
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Imports `rows` generated contacts (seed `seed`) through the API and waits for the job to
/// end; answers how long it took.
async fn import(ctx: &Ctx, seed: u64, rows: u64) -> anyhow::Result<Duration> {
    let mut csv = Vec::new();
    meshwork_crm_io::generate_hubspot_contacts(seed, rows, &mut csv)?;
    let started = Instant::now();
    let r = ctx
        .client
        .post(format!(
            "{}/api/v1/workspaces/{}/imports?type=contact&layout=hubspot",
            ctx.base, ctx.ws
        ))
        .bearer_auth(&ctx.key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await?;
    ensure!(r.status().as_u16() == 202, "import: {}", r.status());
    let job: serde_json::Value = r.json().await?;
    let id = job["id"].as_str().context("no job id")?.to_string();
    loop {
        let j: serde_json::Value = ctx
            .client
            .get(format!(
                "{}/api/v1/workspaces/{}/imports/{id}",
                ctx.base, ctx.ws
            ))
            .bearer_auth(&ctx.key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match j["state"].as_str() {
            Some("done") => return Ok(started.elapsed()),
            Some("failed") | Some("cancelled") => bail!("import {id} ended {}", j["state"]),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let db = args.database_url.as_deref();
    let (server, base) = crate::start_server(db, &client).await?;
    let session = crate::session(&client, &base).await?;
    let (key, ws) = crate::workspace_with_key(&client, &base, &session, "Load").await?;
    let mut ctx = Ctx {
        client: client.clone(),
        base: base.clone(),
        ws,
        key,
        cookie: session.cookie.clone(),
        ids: Vec::new(),
        names: Vec::new(),
        notes: Vec::new(),
    };
    eprintln!("importing {} contacts", args.contacts);
    let took = import(&ctx, 7, args.contacts).await?;
    eprintln!("imported in {:.0} s", took.as_secs_f64());
    // A sample of the contacts to read and change, and first names to search for.
    let mut cursor: Option<String> = None;
    while ctx.ids.len() < 2000 {
        let mut url = format!("{base}/api/v1/workspaces/{}/contacts?limit=200", ctx.ws);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = client
            .get(url)
            .bearer_auth(&ctx.key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for r in page["records"].as_array().context("no records")? {
            ctx.ids.push(r["id"].as_str().context("no id")?.to_string());
            if let Some(name) = r["fields"]["first_name"].as_str() {
                ctx.names.push(name.to_string());
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    ensure!(
        !ctx.ids.is_empty() && !ctx.names.is_empty(),
        "no contacts to load"
    );
    if args.steady {
        for n in 0..500 {
            let note: serde_json::Value = client
                .post(format!("{base}/api/v1/workspaces/{}/notes", ctx.ws))
                .bearer_auth(&ctx.key)
                .json(&serde_json::json!({"body": format!("Steady note {n}"), "about": [&ctx.ids[n % ctx.ids.len()]]}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            ctx.notes
                .push(note["id"].as_str().context("no note id")?.to_string());
        }
    }
    let pid = server.pid();
    let ctx = Arc::new(ctx);
    let backend = if db.is_some() { "PostgreSQL" } else { "SQLite" };
    let beside = match args.steady {
        true => "steady: no imports, notes changed not added".to_string(),
        false => format!("an import of 500 contacts every {} s", args.import_every),
    };
    println!(
        "meshwork bench load: backend {backend}, {} contacts, {} connections, {} s (after 10 s of warm-up), {beside}, {} cores",
        args.contacts,
        args.connections,
        args.duration,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let steady = args.steady;

    let warm_until = Instant::now() + Duration::from_secs(10);
    let deadline = warm_until + Duration::from_secs(args.duration);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let counted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..args.connections {
        let (ctx, stats, counted) = (ctx.clone(), stats.clone(), counted.clone());
        let name = move |kind: usize| label(kind, steady);
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(t as u64);
            let mut local: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
            let mut n = t as u64 * 1_000_000;
            while Instant::now() < deadline {
                n += 1;
                let mut pick = rng.gen_range(0..100);
                let kind = MIX
                    .iter()
                    .position(|(_, share)| {
                        let hit = pick < *share;
                        pick = pick.saturating_sub(*share);
                        hit
                    })
                    .unwrap_or(0);
                let req = ctx.request(kind, &mut rng, n);
                let started = Instant::now();
                let outcome = match req.send().await {
                    Ok(r) => {
                        let status = r.status();
                        match r.bytes().await {
                            Ok(_) if status.is_success() => Ok(()),
                            Ok(body) => Err(format!(
                                "{}: {status} {}",
                                name(kind),
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            )),
                            Err(e) => Err(format!("{}: {e}", name(kind))),
                        }
                    }
                    Err(e) => Err(format!("{}: {e}", name(kind))),
                };
                if started < warm_until {
                    continue;
                }
                local.entry(name(kind)).or_default().push(started.elapsed());
                counted.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = outcome {
                    let mut s = stats.lock().expect("stats");
                    *s.errors.entry(name(kind)).or_default() += 1;
                    if s.first_errors.len() < 5 {
                        s.first_errors.push(e);
                    }
                }
            }
            let mut s = stats.lock().expect("stats");
            for (k, v) in local {
                s.latencies.entry(k).or_default().extend(v);
            }
        }));
    }
    // Imports beside the requests.
    let imports = {
        let ctx = ctx.clone();
        let every = Duration::from_secs(args.import_every.max(1));
        tokio::spawn(async move {
            let mut times = Vec::new();
            let mut failures = Vec::new();
            let mut seed = 1000;
            tokio::time::sleep_until(warm_until.into()).await;
            while !steady && Instant::now() + every <= deadline {
                let next = Instant::now() + every;
                seed += 1;
                match import(&ctx, seed, 500).await {
                    Ok(t) => times.push(t),
                    Err(e) => failures.push(format!("{e:#}")),
                }
                tokio::time::sleep_until(next.into()).await;
            }
            (times, failures)
        })
    };
    // Memory and rate over time.
    let mut samples = Vec::new();
    tokio::time::sleep_until(warm_until.into()).await;
    let mut last = (Instant::now(), counted.load(Ordering::Relaxed));
    let heap = || crate::status_kib(pid, "RssAnon:").unwrap_or(0);
    samples.push((0u64, crate::rss_kib(pid).unwrap_or(0), heap(), 0.0));
    while Instant::now() < deadline {
        let next = (Instant::now() + Duration::from_secs(args.sample_seconds)).min(deadline);
        tokio::time::sleep_until(next.into()).await;
        let now = (Instant::now(), counted.load(Ordering::Relaxed));
        let rate = (now.1 - last.1) as f64 / (now.0 - last.0).as_secs_f64();
        samples.push((
            (now.0 - warm_until).as_secs(),
            crate::rss_kib(pid).unwrap_or(0),
            heap(),
            rate,
        ));
        last = now;
    }
    for t in tasks {
        t.await?;
    }
    let (import_times, import_failures) = imports.await?;

    let stats = Arc::try_unwrap(stats)
        .map_err(|_| anyhow::anyhow!("stats still shared"))?
        .into_inner()
        .expect("stats");
    let secs = args.duration as f64;
    println!();
    println!("| request | count | per second | p50 | p99 | slowest | errors |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut all = Vec::new();
    let mut errors = 0;
    for kind in 0..MIX.len() {
        let name = label(kind, steady);
        let mut l = stats.latencies.get(name).cloned().unwrap_or_default();
        l.sort_unstable();
        let e = stats.errors.get(name).copied().unwrap_or(0);
        errors += e;
        println!(
            "| {name} | {} | {:.1} | {} | {} | {} | {e} |",
            l.len(),
            l.len() as f64 / secs,
            ms(pct(&l, 0.5)),
            ms(pct(&l, 0.99)),
            ms(l.last().copied().unwrap_or_default())
        );
        all.extend(l);
    }
    all.sort_unstable();
    println!(
        "| **all** | {} | {:.1} | {} | {} | {} | {errors} |",
        all.len(),
        all.len() as f64 / secs,
        ms(pct(&all, 0.5)),
        ms(pct(&all, 0.99)),
        ms(all.last().copied().unwrap_or_default())
    );
    let mut it = import_times.clone();
    it.sort_unstable();
    println!();
    println!(
        "imports of 500 contacts beside the load: {} done, {} failed; p50 {:.1} s, slowest {:.1} s",
        it.len(),
        import_failures.len(),
        pct(&it, 0.5).as_secs_f64(),
        it.last().copied().unwrap_or_default().as_secs_f64()
    );
    println!();
    // RSS counts the search index's memory-mapped pages (file-backed, growing with the index
    // and given back under pressure); the anonymous part is the heap, where a leak would show.
    println!("| seconds into the load | server RSS | of it anonymous (heap) | requests/s over the interval |");
    println!("| ---: | ---: | ---: | ---: |");
    for (t, kib, anon, rate) in &samples {
        println!(
            "| {t} | {:.1} MiB | {:.1} MiB | {rate:.1} |",
            *kib as f64 / 1024.0,
            *anon as f64 / 1024.0
        );
    }
    if samples.len() >= 4 {
        // Flat: the last quarter's memory against the second quarter's (the first holds the
        // caches' warm-up).
        let q = samples.len() / 4;
        let mean = |s: &[(u64, u64, u64, f64)], f: fn(&(u64, u64, u64, f64)) -> u64| {
            s.iter().map(|x| f(x) as f64).sum::<f64>() / s.len() as f64
        };
        for (what, f) in [
            ("RSS", (|x: &(u64, u64, u64, f64)| x.1) as fn(&_) -> u64),
            ("anonymous", |x: &(u64, u64, u64, f64)| x.2),
        ] {
            let early = mean(&samples[q..2 * q], f);
            let late = mean(&samples[samples.len() - q..], f);
            println!(
                "memory ({what}): {:.1} MiB in the second quarter, {:.1} MiB in the last ({:+.1} %)",
                early / 1024.0,
                late / 1024.0,
                (late / early - 1.0) * 100.0
            );
        }
    }
    for e in stats.first_errors.iter().chain(&import_failures) {
        println!("error: {e}");
    }
    drop(server);
    ensure!(
        errors == 0 && import_failures.is_empty(),
        "{errors} requests and {} imports failed",
        import_failures.len()
    );
    Ok(())
}
