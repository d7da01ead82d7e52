//! `meshwork connectors`: connectors from the command line, as the workspace's owner: list them,
//! add one from a settings file, sync now, pause or resume, and read the history. These work
//! beside a running server: they write the store and queue jobs, which the server runs.
//! Disconnecting removes index entries, so it is done through the API or the web app.

use super::crm::{an_owner, runtime, StoreArgs};
use anyhow::Context;
use clap::Subcommand;
use meshwork_app::actor::{Actor, ClientInfo, Member};
use meshwork_app::connectors::{self, NewConnector, RunView};
use meshwork_app::AppState;
use meshwork_domain::{Role, WorkspaceId};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// The workspace's connectors and their latest sync.
    ///
    /// Example: `meshwork connectors list --workspace WS`
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Add a connector; its first sync starts when a server runs (unless `--paused`). The
    /// settings file is JSON as the API takes it (`{"kind": "ldap", "url": …}`); its
    /// credentials are sealed and never printed.
    ///
    /// Example: `meshwork connectors add --workspace WS --source directory ldap.json`
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// The source name its documents, people and groups carry.
        #[arg(long)]
        source: String,
        /// Minutes between syncs.
        #[arg(long, default_value_t = connectors::DEFAULT_EVERY_MINUTES)]
        every_minutes: u32,
        /// Add it paused.
        #[arg(long)]
        paused: bool,
        /// The settings, JSON.
        settings: PathBuf,
    },
    /// Queue a sync now.
    Sync {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// Pause: no sync runs until resumed.
    Pause {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// Resume and sync now.
    Resume {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// The sync history, newest first, with each sync's problems.
    History {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
        #[arg(long, default_value_t = 10)]
        limit: i64,
    },
}

fn when(ms: i64) -> String {
    let secs = ms / 1000;
    format!(
        "{} s ago",
        (meshwork_app::state::now_millis() / 1000 - secs).max(0)
    )
}

fn summary(r: &RunView) -> String {
    let c = &r.counts;
    let mut s = format!(
        "{} people, {} groups, memberships +{} -{}, {} listed: {} written, {} unchanged, {} removed, {} archived; {} errors, {} warnings",
        c.people, c.groups, c.memberships_added, c.memberships_removed, c.listed, c.stored, c.unchanged, c.removed, c.archived_skipped, c.errors, c.warnings
    );
    if c.contacts_matched + c.contacts_kept > 0 {
        s.push_str(&format!(
            "; contacts: {} matched by email, {} kept (changed in Meshwork)",
            c.contacts_matched, c.contacts_kept
        ));
    }
    if c.logged > 0 {
        s.push_str(&format!(
            "; {} messages logged on contacts' timelines",
            c.logged
        ));
    }
    s
}

async fn owner(state: &AppState, ws: WorkspaceId) -> anyhow::Result<Member> {
    Ok(Member {
        workspace: ws,
        actor: Actor::User {
            id: an_owner(state, ws).await?,
            session_hash: [0; 32],
        },
        role: Role::Owner,
        admin_withheld: false,
    })
}

fn cli_client() -> ClientInfo {
    ClientInfo {
        ip: None,
        user_agent: "meshwork connectors (command line)".into(),
    }
}

async fn set_paused(state: &AppState, me: &Member, id: &str, paused: bool) -> anyhow::Result<()> {
    connectors::set_paused(state, &cli_client(), me, id, paused)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if paused {
        println!("connector {id} is paused");
    } else {
        println!("connector {id} is resumed; a sync is queued");
    }
    Ok(())
}

pub fn run(cmd: ConnectorsCommand) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let store = match &cmd {
            ConnectorsCommand::List { store }
            | ConnectorsCommand::Add { store, .. }
            | ConnectorsCommand::Sync { store, .. }
            | ConnectorsCommand::Pause { store, .. }
            | ConnectorsCommand::Resume { store, .. }
            | ConnectorsCommand::History { store, .. } => store,
        };
        let (state, ws) = store.open().await?;
        let me = owner(&state, ws).await?;
        let out = match cmd {
            ConnectorsCommand::List { .. } => {
                for c in connectors::list(&state, &me).await? {
                    let status = if c.paused {
                        "paused".to_string()
                    } else {
                        format!("every {} min", c.every_minutes)
                    };
                    println!("{}  {:<16} {:<7} {status}", c.id, c.source, c.kind);
                    if let Some(r) = &c.last_run {
                        println!(
                            "    last sync {}: {}; {}",
                            when(r.started_at),
                            r.state,
                            summary(r)
                        );
                    }
                }
                Ok(())
            }
            ConnectorsCommand::Add {
                source,
                every_minutes,
                paused,
                settings,
                ..
            } => {
                let text = std::fs::read_to_string(&settings)
                    .with_context(|| format!("reading {}", settings.display()))?;
                let value: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("{}: not JSON", settings.display()))?;
                let c = connectors::create(
                    &state,
                    &cli_client(),
                    &me,
                    NewConnector {
                        source,
                        every_minutes: Some(every_minutes),
                        paused,
                        settings: value,
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                println!("connector {} added ({}, {})", c.id, c.source, c.kind);
                Ok(())
            }
            ConnectorsCommand::Sync { id, .. } => {
                let job = connectors::sync_now(&state, &me, &id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                println!("sync queued as job {job}; a running server runs it");
                Ok(())
            }
            ConnectorsCommand::Pause { id, .. } => set_paused(&state, &me, &id, true).await,
            ConnectorsCommand::Resume { id, .. } => set_paused(&state, &me, &id, false).await,
            ConnectorsCommand::History { id, limit, .. } => {
                for r in connectors::runs(&state, &me, &id, limit)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?
                {
                    println!(
                        "{}  {:<8} {:<7} {}",
                        when(r.started_at),
                        r.trigger,
                        r.state,
                        summary(&r)
                    );
                    for p in &r.problems {
                        println!("    {p}");
                    }
                }
                Ok(())
            }
        };
        state.store.close().await;
        out
    })
}
