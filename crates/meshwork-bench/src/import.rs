//! `meshwork bench import`: a HubSpot contacts export imported end to end, beside PostgreSQL's
//! own `COPY` of the same file.
//!
//! One generated file (`meshwork dev generate`, deterministic from `--seed`; about 1 % of its
//! rows repeat an earlier email in another case, and contacts name their company by name and
//! domain) is imported by `meshwork import --layout hubspot` into a fresh workspace on each
//! engine, as an administrator would run it: dedup by email, companies created and linked by
//! domain, every record sealed under the workspace key, the change feed written. The server is
//! then started on the same store and the first search, which catches the index up with the
//! change feed, is timed: the import is usable in search when it returns. Beside it, in the
//! same run, the floor: PostgreSQL's `COPY` of the same file into a plain table of text
//! columns (no encryption, no dedup, no index). Reported per engine: import and indexing
//! times, rows per second, the ratio to `COPY`, and the import process's peak memory.

use crate::{peak_kib, start_server};
use anyhow::{ensure, Context};
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Rows in the generated contacts file (HubSpot's per-file limit by default).
    #[arg(long, default_value_t = 1 << 20)]
    rows: u64,
    /// Seed of the generated file.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// A PostgreSQL server for the `COPY` baseline and the PostgreSQL engine. The bench
    /// creates and drops two scratch databases on it (`meshwork_bench_import_copy`,
    /// `meshwork_bench_import_store`).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Engines to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    engines: Vec<String>,
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let mut u = url::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

async fn fresh_database(admin_url: &str, db: &str) -> anyhow::Result<String> {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("cannot connect to {admin_url}"))?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    with_database(admin_url, db)
}

async fn drop_database(admin_url: &str, db: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

/// PostgreSQL's `COPY` of the file into a plain table of text columns: the floor.
async fn copy_baseline(admin_url: &str, file: &Path) -> anyhow::Result<(Duration, u64)> {
    use sqlx::Connection as _;
    const DB: &str = "meshwork_bench_import_copy";
    let url = fresh_database(admin_url, DB).await?;
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    let columns = meshwork_crm_io::HUBSPOT_CONTACT_HEADER
        .iter()
        .map(|c| format!("\"{c}\" text"))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::raw_sql(&format!("CREATE TABLE hubspot_contacts ({columns})"))
        .execute(&mut conn)
        .await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY hubspot_contacts FROM STDIN WITH (FORMAT csv, HEADER true)")
        .await?;
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        copy.send(&buf[..n]).await?;
    }
    let rows = copy.finish().await?;
    let took = started.elapsed();
    conn.close().await?;
    drop_database(admin_url, DB).await?;
    Ok((took, rows))
}

struct Outcome {
    engine: String,
    import: Duration,
    index: Duration,
    summary: String,
    phases: String,
    peak_kib: u64,
}

async fn call(req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<serde_json::Value> {
    let resp = req.send().await.with_context(|| what.to_string())?;
    let status = resp.status();
    let body = resp.text().await?;
    ensure!(status.is_success(), "{what}: {status}: {body}");
    Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

async fn engine(
    name: &str,
    database_url: Option<&str>,
    file: &Path,
    client: &reqwest::Client,
) -> anyhow::Result<Outcome> {
    let (mut server, base) = start_server(database_url, client).await?;
    let (key, ws) = crate::setup(client, &base, 1).await?.remove(0);
    server.stop();
    let data_dir = server.data_dir().to_path_buf();
    eprintln!("{name}: importing");
    let mut cmd = Command::new(std::env::current_exe()?);
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
    .arg(&data_dir);
    if let Some(u) = database_url {
        cmd.arg("--database-url").arg(u);
    }
    cmd.arg(file)
        .env("MESHWORK_LOG", "warn,meshwork_app::import=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting meshwork import")?;
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(k) = peak_kib(pid) {
            peak = peak.max(k);
        }
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let import = started.elapsed();
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    ensure!(status.success(), "{name}: import failed: {err}{out}");
    let summary = out
        .lines()
        .find(|l| l.starts_with("import "))
        .unwrap_or_default()
        .to_string();
    eprintln!("{name}: {summary}");
    // The import's own account of its phases (read, prepare, write, index wait).
    let phases = err
        .lines()
        .find(|l| l.contains("import finished"))
        .map(|l| {
            l.rsplit_once("import finished")
                .map_or(l, |(_, rest)| rest)
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    // The server on the same store; its first search catches the index up with the import.
    let (server, base) = server.restart(database_url, client).await?;
    let started = Instant::now();
    let hits = call(
        client
            .get(format!("{base}/api/v1/workspaces/{ws}/search?q=a"))
            .bearer_auth(&key),
        "indexing",
    )
    .await?;
    let index = started.elapsed();
    ensure!(
        hits["total"].as_u64().unwrap_or(0) > 0,
        "{name}: the first search found nothing: {hits}"
    );
    drop(server);
    Ok(Outcome {
        engine: name.into(),
        import,
        index,
        summary,
        phases,
        peak_kib: peak,
    })
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("contacts.csv");
    let started = Instant::now();
    {
        let f = std::fs::File::create(&file)?;
        let w = std::io::BufWriter::with_capacity(1 << 20, f);
        meshwork_crm_io::generate_hubspot_contacts(args.seed, args.rows, w)?;
    }
    let size = std::fs::metadata(&file)?.len();
    println!(
        "generated {} contacts (seed {}, {:.1} MiB) in {:.1} s",
        args.rows,
        args.seed,
        size as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()?;
    let wants_pg = args.engines.iter().any(|e| e == "postgres");
    let copy = if wants_pg {
        eprintln!("postgres: COPY");
        let (took, rows) = copy_baseline(&args.postgres_url, &file).await?;
        ensure!(
            rows == args.rows,
            "COPY loaded {rows} rows, expected {}",
            args.rows
        );
        Some(took)
    } else {
        None
    };
    let mut outcomes = Vec::new();
    for e in &args.engines {
        match e.as_str() {
            "sqlite" => outcomes.push(engine("sqlite", None, &file, &client).await?),
            "postgres" => {
                const DB: &str = "meshwork_bench_import_store";
                let url = fresh_database(&args.postgres_url, DB).await?;
                let o = engine("postgres", Some(&url), &file, &client).await;
                drop_database(&args.postgres_url, DB).await?;
                outcomes.push(o?);
            }
            other => anyhow::bail!("unknown engine {other:?} (sqlite, postgres)"),
        }
    }
    println!();
    println!("| engine | import | index catch-up | total | rows/s (total) | × COPY | peak RSS (import) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    if let Some(c) = copy {
        println!(
            "| PostgreSQL `COPY` into a plain table | {:.1} s |  | {:.1} s | {:.0} | 1.00 |  |",
            c.as_secs_f64(),
            c.as_secs_f64(),
            args.rows as f64 / c.as_secs_f64()
        );
    }
    for o in &outcomes {
        let total = o.import + o.index;
        let ratio = copy
            .map(|c| format!("{:.1}", total.as_secs_f64() / c.as_secs_f64()))
            .unwrap_or_else(|| "–".into());
        println!(
            "| meshwork on {} | {:.1} s | {:.1} s | {:.1} s | {:.0} | {ratio} | {} MiB |",
            o.engine,
            o.import.as_secs_f64(),
            o.index.as_secs_f64(),
            total.as_secs_f64(),
            args.rows as f64 / total.as_secs_f64(),
            o.peak_kib / 1024
        );
    }
    println!();
    for o in &outcomes {
        println!("{}: {}", o.engine, o.summary);
        println!("{}: phases: {}", o.engine, o.phases);
    }
    Ok(())
}
