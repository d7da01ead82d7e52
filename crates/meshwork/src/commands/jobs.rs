//! `meshwork jobs` and `meshwork users`: operator commands on the store a server uses (they
//! work beside a running server: the job queue is shared through the database).

use clap::{Args as ClapArgs, Subcommand};
use meshwork_app::jobs::{self, JobView};
use meshwork_app::{AppState, Config};
use meshwork_domain::WorkspaceId;
use std::path::PathBuf;

/// Where the data is.
#[derive(Debug, ClapArgs)]
pub struct DataArgs {
    /// A TOML configuration file (see `meshwork default-config`).
    #[arg(long, env = "MESHWORK_CONFIG")]
    config: Option<PathBuf>,
    /// The data directory [default: ./meshwork-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `postgres://…` when the server uses PostgreSQL.
    #[arg(long)]
    database_url: Option<String>,
}

impl DataArgs {
    /// The configuration these arguments name.
    pub(super) fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(u) = &self.database_url {
            config.database_url = u.clone();
        }
        config.validate()?;
        Ok(config)
    }

    pub(super) async fn open(&self) -> anyhow::Result<AppState> {
        let config = self.config()?;
        let state = meshwork_app::open_state(
            config.clone(),
            meshwork_peer_client::HttpsPeers::shared(&config)?,
        )
        .await?;
        state.plug_connector_http(
            meshwork_connector_http::ConnectorHttp::shared(state.connector_addresses.clone())
                .map_err(anyhow::Error::msg)?,
        );
        Ok(state)
    }
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The newest jobs, of every workspace or one.
    ///
    /// Example: `meshwork jobs list --state failed`
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Only this workspace's jobs.
        #[arg(long, short)]
        workspace: Option<uuid::Uuid>,
        /// Only jobs in this state: queued, running, done, failed or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One job, with the reason its last run failed.
    Show {
        #[command(flatten)]
        data: DataArgs,
        id: uuid::Uuid,
    },
    /// Queue a failed or cancelled job again, its attempts reset.
    Retry {
        #[command(flatten)]
        data: DataArgs,
        id: uuid::Uuid,
    },
    /// Cancel a queued or running job (a running one stops at its next lease renewal).
    Cancel {
        #[command(flatten)]
        data: DataArgs,
        id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Mark an account's email address verified without mail (a server without SMTP, or a
    /// lost mail). Audited.
    ///
    /// Example: `meshwork users verify-email ada@example.com`
    VerifyEmail {
        #[command(flatten)]
        data: DataArgs,
        email: String,
    },
}

pub(super) fn rt() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn print_job(j: &JobView) {
    println!("id:           {}", j.id);
    println!("kind:         {}", j.kind);
    if let Some(ws) = j.workspace_id {
        println!("workspace:    {ws}");
    }
    println!("state:        {}", j.state);
    println!("attempts:     {} of {}", j.attempts, j.max_attempts);
    println!("run at:       {}", time(j.run_at));
    if let (Some(h), Some(until)) = (&j.lease_holder, j.lease_until) {
        println!("held by:      {h} until {}", time(until));
    }
    println!("created:      {}", time(j.created_at));
    println!("updated:      {}", time(j.updated_at));
    if let Some(e) = &j.error {
        println!("last error:   {e}");
    }
}

pub fn jobs(cmd: JobsCommand) -> anyhow::Result<()> {
    rt()?.block_on(async move {
        match cmd {
            JobsCommand::List {
                data,
                workspace,
                state: job_state,
                limit,
                json,
            } => {
                let state = data.open().await?;
                let list = jobs::list(
                    &state,
                    workspace.map(WorkspaceId),
                    job_state.as_deref(),
                    limit,
                )
                .await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    println!(
                        "{:<36}  {:<12}  {:<9}  {:>8}  {:<20}  ERROR",
                        "ID", "KIND", "STATE", "ATTEMPTS", "RUN AT"
                    );
                    for j in &list {
                        println!(
                            "{:<36}  {:<12}  {:<9}  {:>8}  {:<20}  {}",
                            j.id,
                            j.kind,
                            j.state,
                            format!("{}/{}", j.attempts, j.max_attempts),
                            time(j.run_at),
                            j.error.as_deref().unwrap_or("")
                        );
                    }
                }
            }
            JobsCommand::Show { data, id } => {
                let state = data.open().await?;
                print_job(&jobs::show(&state, id).await?);
            }
            JobsCommand::Retry { data, id } => {
                let state = data.open().await?;
                let j = jobs::retry(&state, id).await?;
                println!("job {} is queued again", j.id);
            }
            JobsCommand::Cancel { data, id } => {
                let state = data.open().await?;
                let j = jobs::cancel(&state, id).await?;
                println!("job {} is cancelled", j.id);
            }
        }
        Ok(())
    })
}

pub fn users(cmd: UsersCommand) -> anyhow::Result<()> {
    rt()?.block_on(async move {
        match cmd {
            UsersCommand::VerifyEmail { data, email } => {
                let state = data.open().await?;
                let user = meshwork_app::accounts::verify_email_by_operator(&state, &email).await?;
                println!("the email address of account {user} is verified");
            }
        }
        Ok(())
    })
}
