//! The subcommands and the options they share.

mod backup;
mod connectors;
mod crm;
mod default_config;
mod extract_text;
mod jobs;
mod notify;
mod search;
mod serve;
mod support;

use clap::{Parser, Subcommand};

/// Meshwork: a CRM, permission-aware workplace search and partner overlap, in one server.
#[derive(Debug, Parser)]
#[command(name = "meshwork", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    ///
    /// Example: `meshwork serve --data-dir ./meshwork-data --listen 127.0.0.1:8080`
    Serve(serve::Args),
    /// Print the documented default configuration (TOML).
    ///
    /// Example: `meshwork default-config > meshwork.toml`
    DefaultConfig,
    /// Benchmarks: start a real server and measure it (see BENCHMARKS.md).
    ///
    /// Example: `cargo run --release -- bench api`
    Bench(meshwork_bench::Args),
    /// Import companies, contacts or deals from CSV (HubSpot, Salesforce, Pipedrive or a mapping
    /// file) or vCard, as a resumable, revertible job; or revert an import.
    ///
    /// Example: `meshwork import --workspace WS --type contact --layout hubspot contacts.csv`
    Import(crm::ImportCli),
    /// Export a workspace as JSON and/or CSV files, one per record type (audited).
    ///
    /// Example: `meshwork export --workspace WS --format both --out ./export`
    Export(crm::ExportArgs),
    /// Merge two records: the survivor keeps its values, gains the other's, and takes all its
    /// relations and timeline (audited).
    ///
    /// Example: `meshwork merge --workspace WS --type contact --dry-run KEEP_ID OTHER_ID`
    Merge(crm::MergeArgs),
    /// Search a workspace as its owner (or `--as` a member), as the search box does. Needs the
    /// server stopped; with a server running, use the API.
    ///
    /// Example: `meshwork search --workspace WS 'type:deal acme renew'`
    Search(search::SearchArgs),
    /// Rebuild a workspace's search index from the store (it also rebuilds itself when missing
    /// or unreadable). Needs the server stopped.
    ///
    /// Example: `meshwork reindex --workspace WS`
    Reindex(search::ReindexArgs),
    /// Connectors (LDAP, folders, IMAP): list, add from a settings file, sync now, pause,
    /// resume, the history. Works beside a running server.
    ///
    /// Example: `meshwork connectors history --workspace WS CONNECTOR_ID`
    #[command(subcommand)]
    Connectors(connectors::ConnectorsCommand),
    /// Background jobs (mail, imports, housekeeping, syncs): list, show, retry, cancel. Works
    /// beside a running server.
    ///
    /// Example: `meshwork jobs list --state failed`
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Accounts: verify an email address without mail.
    ///
    /// Example: `meshwork users verify-email ada@example.com`
    #[command(subcommand)]
    Users(jobs::UsersCommand),
    /// Operator notices by email, through the outbox and recorded in the audit log: a breach
    /// notice to an affected workspace's members (mm08), a policy-change notice to every user
    /// (cl16). Works beside a running server.
    ///
    /// Example: `meshwork notify policy-change --subject 'Policy update' --body-file notice.txt`
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// Take a sealed backup of the database now (and of the keyring, in its own file), then
    /// delete backups older than backup.keep_days; or `verify` one. Works beside a running server.
    ///
    /// Example: `meshwork backup --out /mnt/backups` or `meshwork backup verify FILE`
    Backup(backup::BackupArgs),
    /// Restore a backup into a fresh data directory (or an empty PostgreSQL database); workspaces
    /// deleted since the backup (their keys destroyed) are removed. Nothing is ever overwritten.
    ///
    /// Example: `meshwork restore --data-dir ./restored --keyring FILE.keyring FILE.backup`
    Restore(backup::RestoreArgs),
    /// Support access (mm09): ask a workspace's owners for access to its CRM data, then read it
    /// while an owner's approval holds; every read is in the workspace's audit log.
    ///
    /// Example: `meshwork support request --workspace WS --operator Sam --reason 'Ticket 4411'`
    #[command(subcommand)]
    Support(support::SupportCommand),
    /// Product usage, as the server counts it (pm03): per day and feature, a count and nothing
    /// else. Workspaces that turned third-party processing off are not counted.
    ///
    /// Example: `meshwork usage --days 7`
    Usage(support::UsageArgs),
    /// Developer tools: test-data generation.
    ///
    /// Example: `meshwork dev generate --type contact --rows 1048576 --seed 7 --out contacts.csv`
    #[command(subcommand)]
    Dev(crm::DevCommand),
    /// The helper process that reads PDF text for the server (internal).
    #[command(hide = true)]
    ExtractText(extract_text::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if !matches!(cli.command, Command::Serve(_) | Command::ExtractText(_)) {
        init_cli_logging();
    }
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::DefaultConfig => default_config::run(),
        Command::Bench(args) => meshwork_bench::run(args),
        Command::Import(cli) => crm::import(cli),
        Command::Export(args) => crm::export(args),
        Command::Merge(args) => crm::merge(args),
        Command::Search(args) => search::search(args),
        Command::Reindex(args) => search::reindex(args),
        Command::Connectors(cmd) => connectors::run(cmd),
        Command::Jobs(cmd) => jobs::jobs(cmd),
        Command::Users(cmd) => jobs::users(cmd),
        Command::Notify(cmd) => notify::run(cmd),
        Command::Backup(args) => backup::backup(args),
        Command::Support(cmd) => support::run(cmd),
        Command::Usage(args) => support::usage(args),
        Command::Restore(args) => backup::restore(args),
        Command::Dev(cmd) => crm::dev(cmd),
        Command::ExtractText(args) => extract_text::run(args),
    }
}

/// Logging for the one-shot commands: warnings and errors on standard error (`MESHWORK_LOG`
/// overrides, e.g. `MESHWORK_LOG=info meshwork import …` for the import's phase timings).
/// `serve` sets up its own, with the configured format.
fn init_cli_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MESHWORK_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .fmt_fields(escaped_fields())
        .with_writer(std::io::stderr)
        .try_init();
}

/// How the text log writes an event's fields: each value with its line breaks and other control
/// characters escaped (`\n`, `\u{1b}`), so that no logged value, such as an error message
/// quoting outside input, can forge a log line or drive a terminal (OWASP ASVS 7.3.1). The
/// JSON log escapes by its nature.
pub(crate) fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let mut text = String::new();
        for c in format!("{value:?}").chars() {
            // Control characters, and the line and paragraph separators and direction overrides
            // that some viewers act on.
            if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            {
                text.extend(c.escape_default());
            } else {
                text.push(c);
            }
        }
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{field}={text}")
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    /// ASVS 7.3.1: a value holding a line break, a carriage return or a terminal escape stays on
    /// its event's line in the text log.
    #[test]
    fn text_log_values_cannot_forge_lines() {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(super::escaped_fields())
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let forged = "bad\n2026-12-07T00:00:00Z  WARN forged=line\r\u{1b}[2J\u{2028}\u{202e}";
            tracing::warn!(error = %forged, name = forged, "refused: {forged}");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        for c in ['\r', '\u{1b}', '\u{2028}', '\u{202e}'] {
            assert!(!text.contains(c), "{c:?} in {text}");
        }
        assert!(text.contains("error=bad\\n2026"), "{text}");
        assert!(text.contains("refused: bad\\n"), "{text}");
    }
}
