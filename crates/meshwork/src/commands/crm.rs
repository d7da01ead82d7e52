//! CRM commands that work on the data directory (or PostgreSQL) directly, beside or without a
//! running server: `import`, `export`, `merge`, and `dev generate` for test data.

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use meshwork_app::crm::Crm;
use meshwork_app::import::{self, ImportSpec, Mode};
use meshwork_app::{AppState, Config};
use meshwork_domain::{JobId, RecordId, Role, UserId, WorkspaceId};
use std::path::PathBuf;

/// Where the data is.
#[derive(Debug, ClapArgs)]
pub(crate) struct StoreArgs {
    /// A TOML configuration file (see `meshwork default-config`).
    #[arg(long, env = "MESHWORK_CONFIG")]
    config: Option<PathBuf>,
    /// The data directory [default: ./meshwork-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `postgres://…` when the server uses PostgreSQL.
    #[arg(long)]
    database_url: Option<String>,
    /// The workspace id.
    #[arg(long, short)]
    workspace: uuid::Uuid,
}

impl StoreArgs {
    pub(crate) async fn open(&self) -> anyhow::Result<(AppState, WorkspaceId)> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        // PDFs are read by this same binary, in a child process (`meshwork extract-text`).
        config.file_text_helper = std::env::current_exe().ok();
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(u) = &self.database_url {
            config.database_url = u.clone();
        }
        let state = meshwork_app::open_state(
            config.clone(),
            meshwork_peer_client::HttpsPeers::shared(&config)?,
        )
        .await?;
        state.plug_connector_http(
            meshwork_connector_http::ConnectorHttp::shared(state.connector_addresses.clone())
                .map_err(anyhow::Error::msg)?,
        );
        let ws = WorkspaceId(self.workspace);
        anyhow::ensure!(
            state.store.workspace(ws).await?.is_some(),
            "no workspace {} in this store",
            self.workspace
        );
        Ok((state, ws))
    }
}

pub(crate) async fn an_owner(state: &AppState, ws: WorkspaceId) -> anyhow::Result<UserId> {
    state
        .store
        .members(ws)
        .await?
        .into_iter()
        .find(|m| m.role == Role::Owner)
        .map(|m| m.user_id)
        .context("the workspace has no owner")
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TypeArg {
    Company,
    Contact,
    Deal,
}

impl TypeArg {
    fn as_str(self) -> &'static str {
        match self {
            TypeArg::Company => "company",
            TypeArg::Contact => "contact",
            TypeArg::Deal => "deal",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Create,
    Update,
    Upsert,
}

/// The store fields are spelled out here rather than flattened from [`StoreArgs`]: clap leaves
/// an optional flattened group `None` when it nests another flatten (clap-rs/clap#4697), which
/// made every `meshwork import FILE` fail with "give a file to import".
#[derive(Debug, ClapArgs)]
pub struct ImportArgs {
    /// A TOML configuration file (see `meshwork default-config`).
    #[arg(long, env = "MESHWORK_CONFIG")]
    config: Option<PathBuf>,
    /// The data directory [default: ./meshwork-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `postgres://…` when the server uses PostgreSQL.
    #[arg(long)]
    database_url: Option<String>,
    /// The workspace id.
    #[arg(long, short)]
    workspace: uuid::Uuid,
    /// What the file holds.
    #[arg(long = "type", value_enum)]
    kind: TypeArg,
    /// The file's column layout: hubspot, salesforce, pipedrive, generic (needs --mapping) or
    /// vcard (contacts from a .vcf file).
    #[arg(long, default_value = "hubspot")]
    layout: String,
    /// For the generic layout: a TOML file mapping columns to fields (see docs/import.md).
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// create: only new records; update: only existing ones; upsert: both.
    #[arg(long, value_enum, default_value = "upsert")]
    mode: ModeArg,
    /// Match rows to records by email, domain or external_id [default: email for contacts,
    /// domain for companies, external_id for deals].
    #[arg(long)]
    match_on: Option<String>,
    /// Owner of imported records that name none (a member's email).
    #[arg(long)]
    owner: Option<String>,
    /// Tags added to every imported record (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Where rejected rows are written [default: <file>.errors.csv].
    #[arg(long)]
    errors: Option<PathBuf>,
    /// The file to import.
    file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Undo a finished import: delete what it created, restore what it changed.
    ///
    /// Example: `meshwork import revert --workspace WS 0190…`
    Revert {
        #[command(flatten)]
        store: StoreArgs,
        job: uuid::Uuid,
    },
}

/// `meshwork import`: a file, or `revert JOB`.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ImportCli {
    #[command(subcommand)]
    command: Option<ImportCommand>,
    #[command(flatten)]
    args: Option<ImportArgs>,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn import(cli: ImportCli) -> anyhow::Result<()> {
    match (cli.command, cli.args) {
        (Some(ImportCommand::Revert { store, job }), _) => runtime()?.block_on(async {
            let (state, ws) = store.open().await?;
            let p = import::revert(&state, ws, JobId(job))
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            println!(
                "reverted import {job}: {} records restored or removed",
                p.reverted
            );
            Ok(())
        }),
        (None, Some(args)) => runtime()?.block_on(run_import(args)),
        (None, None) => anyhow::bail!("give a file to import (see `meshwork import --help`)"),
    }
}

impl ImportArgs {
    fn store(&self) -> StoreArgs {
        StoreArgs {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            workspace: self.workspace,
        }
    }
}

async fn run_import(args: ImportArgs) -> anyhow::Result<()> {
    let (state, ws) = args.store().open().await?;
    let file = std::fs::canonicalize(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let size = std::fs::metadata(&file)?.len();
    let sha256 =
        import::sha256_file(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let job = match import::find_unfinished(&state, ws, &sha256)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?
    {
        Some(job) => {
            eprintln!("resuming import {job} of {}", file.display());
            job
        }
        None => {
            let mapping = match &args.mapping {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read the mapping file {}", p.display()))?,
                ),
                None => None,
            };
            let members = meshwork_app::crm::members_by_email(&state, ws)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            let default_owner = match &args.owner {
                Some(email) => {
                    Some(*members.get(&email.to_lowercase()).with_context(|| {
                        format!("--owner {email}: not a member of the workspace")
                    })?)
                }
                None => None,
            };
            let match_on = args.match_on.clone().unwrap_or_else(|| match args.kind {
                TypeArg::Contact => "email".into(),
                TypeArg::Company => "domain".into(),
                TypeArg::Deal => "external_id".into(),
            });
            anyhow::ensure!(
                ["email", "domain", "external_id"].contains(&match_on.as_str()),
                "--match-on must be email, domain or external_id"
            );
            let error_csv = args
                .errors
                .clone()
                .unwrap_or_else(|| file.with_extension("errors.csv"));
            let spec = ImportSpec {
                file: file.clone(),
                sha256,
                kind: args.kind.as_str().into(),
                layout: if args.mapping.is_some() {
                    "generic".into()
                } else {
                    args.layout.to_lowercase()
                },
                mapping,
                mode: match args.mode {
                    ModeArg::Create => Mode::Create,
                    ModeArg::Update => Mode::Update,
                    ModeArg::Upsert => Mode::Upsert,
                },
                match_on,
                default_owner,
                default_tags: args.tags.clone(),
                error_csv,
                sealed_upload: None,
            };
            let actor = an_owner(&state, ws).await?;
            import::create_job(&state, ws, actor, &spec)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?
        }
    };
    let bar = ProgressBar::new(size.max(1));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let summary = import::run(&state, ws, job, &|p| {
        bar.set_message(format!(
            "{} rows: {} created, {} updated, {} rejected",
            p.rows, p.created, p.updated, p.rejected
        ));
    })
    .await;
    bar.finish_and_clear();
    let summary = summary?;
    let p = &summary.progress;
    println!("import {}: {} rows, {} created, {} updated, {} merged with an earlier row of the file, {} rejected", summary.job, p.rows, p.created, p.updated, p.duplicates_in_file, p.rejected);
    for e in p.errors.iter().take(20) {
        match &e.column {
            Some(c) => println!(
                "  {}: row {} (line {}), column {c:?}: {}",
                file.display(),
                e.row,
                e.line,
                e.reason
            ),
            None => println!(
                "  {}: row {} (line {}): {}",
                file.display(),
                e.row,
                e.line,
                e.reason
            ),
        }
    }
    if p.errors.len() > 20 {
        println!("  … and {} more", p.rejected - 20);
    }
    if p.folded > 0 {
        println!(
            "{} cells held line breaks; they were folded into spaces and their rows kept:",
            p.folded
        );
        for n in &p.notes {
            println!(
                "  row {} (line {}), column {}",
                n.row,
                n.line,
                n.column.as_deref().unwrap_or("?")
            );
        }
    }
    if p.owners_unmatched > 0 {
        println!("{} rows named an owner who is not a member of the workspace; they got the default owner (--owner) or none", p.owners_unmatched);
    }
    if let Some(path) = summary.error_csv {
        println!("rejected rows: {}", path.display());
    }
    println!(
        "undo with: meshwork import revert --workspace {} {}",
        ws, summary.job
    );
    state.store.close().await;
    Ok(())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Json,
    Csv,
    Both,
}

#[derive(Debug, ClapArgs)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// json: one JSON file per record type (relations by id, timeline events in events.json);
    /// csv: one CSV file per type; both.
    #[arg(long, value_enum, default_value = "both")]
    format: FormatArg,
    /// The directory to write the files to (created if missing).
    #[arg(long, short)]
    out: PathBuf,
}

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let (state, ws) = args.store.open().await?;
        let crm = Crm::new(&state, ws).map_err(|e| anyhow::anyhow!(e.message))?;
        let (json, csv) = match args.format {
            FormatArg::Json => (true, false),
            FormatArg::Csv => (false, true),
            FormatArg::Both => (true, true),
        };
        let files = meshwork_app::export::write_dir(&crm, &args.out, json, csv).await?;
        let actor = an_owner(&state, ws).await?;
        meshwork_app::audit::record(
            &state,
            None,
            meshwork_app::audit::Event {
                kind: "crm.exported",
                workspace: Some(ws),
                actor: Some(actor),
                subject: None,
                details: serde_json::json!({"via": "cli", "files": files.len()}),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
        println!("wrote {} files to {}", files.len(), args.out.display());
        state.store.close().await;
        Ok(())
    })
}

#[derive(Debug, ClapArgs)]
pub struct MergeArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long = "type", value_enum)]
    kind: TypeArg,
    /// Show the merged record without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// The record that stays.
    survivor: uuid::Uuid,
    /// The record merged into it and then deleted.
    other: uuid::Uuid,
}

pub fn merge(args: MergeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let (state, ws) = args.store.open().await?;
        let crm = Crm::new(&state, ws).map_err(|e| anyhow::anyhow!(e.message))?;
        let kind = args.kind.as_str().parse().map_err(|e: String| anyhow::anyhow!(e))?;
        let result = crm.merge(kind, RecordId(args.survivor), RecordId(args.other), args.dry_run).await.map_err(|e| anyhow::anyhow!(e.message))?;
        if !args.dry_run {
            let actor = an_owner(&state, ws).await?;
            meshwork_app::audit::record(&state, None, meshwork_app::audit::Event {
                kind: "crm.merged",
                workspace: Some(ws),
                actor: Some(actor),
                subject: None,
                details: serde_json::json!({"via": "cli", "type": args.kind.as_str(), "survivor": args.survivor, "merged": args.other}),
            })
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        }
        println!("{}", serde_json::to_string_pretty(&result)?);
        state.store.close().await;
        Ok(())
    })
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Write a deterministic CSV in HubSpot's export layout (for benchmarks and tests).
    ///
    /// Example: `meshwork dev generate --type contact --rows 1048576 --seed 7 > contacts.csv`
    Generate {
        #[arg(long = "type", value_enum, default_value = "contact")]
        kind: TypeArg,
        #[arg(long, default_value_t = 1000)]
        rows: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The file to write [default: standard output].
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

pub fn dev(cmd: DevCommand) -> anyhow::Result<()> {
    match cmd {
        DevCommand::Generate {
            kind,
            rows,
            seed,
            out,
        } => {
            let writer: Box<dyn std::io::Write> = match &out {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            let w = std::io::BufWriter::with_capacity(1 << 20, writer);
            match kind {
                TypeArg::Contact => meshwork_crm_io::generate_hubspot_contacts(seed, rows, w)?,
                TypeArg::Company => meshwork_crm_io::generate_hubspot_companies(seed, rows, w)?,
                TypeArg::Deal => meshwork_crm_io::generate_hubspot_deals(seed, rows, w)?,
            }
            Ok(())
        }
    }
}
