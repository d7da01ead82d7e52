//! `meshwork notify`: the operator's notices (mm08, cl16), through the outbox and into the audit
//! log. Works beside a running server (which sends them) or with it stopped (they are sent when
//! it starts).

use super::jobs::DataArgs;
use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use meshwork_app::notices::{self, Audience};
use std::path::PathBuf;

#[derive(Debug, ClapArgs)]
pub struct Text {
    /// The subject line.
    #[arg(long)]
    subject: String,
    /// A file holding the notice's text (plain text).
    #[arg(long)]
    body_file: PathBuf,
    /// Count the recipients; send nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Tell every member of a workspace affected by a personal-data breach (mm08).
    ///
    /// Example: `meshwork notify breach --workspace WS --subject 'A security incident' --body-file notice.txt`
    Breach {
        #[command(flatten)]
        data: DataArgs,
        /// The affected workspace.
        #[arg(long)]
        workspace: uuid::Uuid,
        #[command(flatten)]
        text: Text,
    },
    /// Tell every user of the server of a material change to the privacy policy (cl16).
    ///
    /// Example: `meshwork notify policy-change --subject 'Our privacy policy changes on 1 March' --body-file changes.txt`
    PolicyChange {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        text: Text,
    },
    /// Send product news to every user who has not declined it (pm13); each mail carries a
    /// one-click unsubscribe link (RFC 8058).
    ///
    /// Example: `meshwork notify news --subject 'What is new in Meshwork' --body-file news.txt`
    News {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        text: Text,
    },
}

pub fn run(cmd: NotifyCommand) -> anyhow::Result<()> {
    super::jobs::rt()?.block_on(async move {
        let (data, audience, text) = match cmd {
            NotifyCommand::Breach {
                data,
                workspace,
                text,
            } => (
                data,
                Audience::Breach(meshwork_domain::WorkspaceId(workspace)),
                text,
            ),
            NotifyCommand::PolicyChange { data, text } => (data, Audience::Everyone, text),
            NotifyCommand::News { data, text } => (data, Audience::News, text),
        };
        let body = std::fs::read_to_string(&text.body_file)
            .with_context(|| format!("reading {}", text.body_file.display()))?;
        let state = data.open().await?;
        let sent = notices::send(&state, audience, &text.subject, &body, text.dry_run)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let verb = if text.dry_run {
            "would queue"
        } else {
            "queued"
        };
        println!(
            "{verb} {} notice{}; {} account{} left out (email not verified){}",
            sent.queued,
            if sent.queued == 1 { "" } else { "s" },
            sent.unverified,
            if sent.unverified == 1 { "" } else { "s" },
            if audience == Audience::News {
                format!("; {} declined product news", sent.declined)
            } else {
                String::new()
            }
        );
        state.store.close().await;
        Ok(())
    })
}
