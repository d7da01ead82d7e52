//! `meshwork backup` (take one now, or verify one) and `meshwork restore`: `docs/backups.md`.

use super::jobs::DataArgs;
use clap::{Args as ClapArgs, Subcommand};
use std::path::PathBuf;

#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    #[command(flatten)]
    data: DataArgs,
    /// The directory to write to [default: backup.dir, or <data_dir>/backups]. Backups there
    /// older than backup.keep_days are deleted afterwards.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Open a backup (or keyring backup) fully and check what it holds; changes nothing.
    ///
    /// Example: `meshwork backup verify ./meshwork-data/backups/meshwork-20261206T023000Z.backup`
    Verify {
        #[command(flatten)]
        data: DataArgs,
        file: PathBuf,
    },
}

#[derive(Debug, ClapArgs)]
pub struct RestoreArgs {
    #[command(flatten)]
    data: DataArgs,
    /// A keyring backup (`.keyring`) to restore into an empty keyring directory. Without it,
    /// the keyring directory must already hold the live server's keyring (copy it there).
    #[arg(long)]
    keyring: Option<PathBuf>,
    /// The database backup (`.backup`).
    file: PathBuf,
}

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    match args.command {
        Some(BackupCommand::Verify { data, file }) => {
            let config = data.config()?;
            let c = meshwork_app::backup::verify(&config, &file)?;
            let what = match (c.kind.as_str(), c.count) {
                ("keyring", Some(n)) => format!("a keyring of {n} keys"),
                (_, Some(n)) => format!("a {} database of {n} workspaces", c.engine),
                _ => format!("a {} database", c.engine),
            };
            println!(
                "{}: whole and authentic, {what}, {} bytes, written at {} (ms since the epoch)",
                file.display(),
                c.bytes,
                c.created_at
            );
            Ok(())
        }
        None => super::jobs::rt()?.block_on(async move {
            let state = args.data.open().await?;
            let w = meshwork_app::backup::create(&state, args.out.as_deref()).await?;
            println!("{}", w.database.display());
            println!("{}", w.keyring.display());
            eprintln!(
                "backup written ({} bytes of database), the keyring beside it in its own file; {} older files deleted",
                w.bytes,
                w.removed.len()
            );
            Ok(())
        }),
    }
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    super::jobs::rt()?.block_on(async move {
        let config = args.data.config()?;
        let peers = meshwork_peer_client::HttpsPeers::shared(&config)?;
        let r =
            meshwork_app::backup::restore(&config, &args.file, args.keyring.as_deref(), peers)
                .await?;
        println!(
            "restored the {} backup written at {} (ms since the epoch): {} workspaces{}",
            r.engine,
            r.created_at,
            r.workspaces_kept,
            if r.keys_restored > 0 {
                format!(", {} keys from the keyring backup", r.keys_restored)
            } else {
                String::new()
            }
        );
        for ws in &r.workspaces_removed {
            println!("removed workspace {ws}: it was deleted after this backup (its key is destroyed, nothing of it is readable)");
        }
        Ok(())
    })
}
