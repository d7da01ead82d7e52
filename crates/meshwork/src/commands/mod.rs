//! The subcommands and the options they share.

mod bench;
mod default_config;
mod serve;

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
    Bench(bench::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::DefaultConfig => default_config::run(),
        Command::Bench(args) => bench::run(args),
    }
}
