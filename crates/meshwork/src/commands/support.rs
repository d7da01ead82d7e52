//! `meshwork support`: the operator's side of support access (mm09). Ask a workspace's owners
//! for access, then read its CRM records while an owner's approval holds. Works beside a running
//! server.

use super::jobs::DataArgs;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SupportCommand {
    /// Ask a workspace's owners for access to its CRM data (they are told by mail and approve it
    /// in settings); prints the grant's id.
    ///
    /// Example: `meshwork support request --workspace WS --operator 'Sam (support)' --reason 'Ticket 4411: an import fails' --minutes 60`
    Request {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        workspace: uuid::Uuid,
        /// Who will read (a name the owners recognise).
        #[arg(long)]
        operator: String,
        /// Why, as the owners will read it.
        #[arg(long)]
        reason: String,
        /// How long the access holds once approved.
        #[arg(long, default_value_t = 60)]
        minutes: i64,
    },
    /// Read CRM records under an approved grant (audited in the workspace); prints JSON lines.
    ///
    /// Example: `meshwork support read --grant GRANT --type contact --limit 20`
    Read {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        grant: uuid::Uuid,
        /// company, contact, deal, note, activity or communication.
        #[arg(long = "type")]
        kind: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub fn run(cmd: SupportCommand) -> anyhow::Result<()> {
    super::jobs::rt()?.block_on(async move {
        match cmd {
            SupportCommand::Request {
                data,
                workspace,
                operator,
                reason,
                minutes,
            } => {
                let state = data.open().await?;
                let g = meshwork_app::support::request(
                    &state,
                    meshwork_domain::WorkspaceId(workspace),
                    &operator,
                    &reason,
                    minutes,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                println!("{}", g.id);
                eprintln!("asked; the workspace's owners are told by mail. Nothing can be read until one approves it in the workspace's settings.");
                state.store.close().await;
            }
            SupportCommand::Read {
                data,
                grant,
                kind,
                limit,
            } => {
                let state = data.open().await?;
                let records = meshwork_app::support::read(
                    &state,
                    grant,
                    &kind,
                    limit,
                    meshwork_app::state::now_millis(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                for r in records {
                    println!("{}", serde_json::to_string(&r)?);
                }
                state.store.close().await;
            }
        }
        Ok(())
    })
}

/// `meshwork usage`: the aggregate product usage counts (pm03): day, feature, count.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    #[command(flatten)]
    data: DataArgs,
    /// How many days back, today included.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn usage(args: UsageArgs) -> anyhow::Result<()> {
    super::jobs::rt()?.block_on(async move {
        let state = args.data.open().await?;
        let counts = meshwork_app::usage::report(&state, args.days)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&counts)?);
        } else {
            println!("{:<12} {:<16} {:>10}", "day", "feature", "count");
            for c in counts {
                println!("{:<12} {:<16} {:>10}", c.day, c.feature, c.count);
            }
        }
        state.store.close().await;
        Ok(())
    })
}
