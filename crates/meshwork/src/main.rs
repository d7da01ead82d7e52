//! `meshwork`: the command line. Glue only: it parses arguments, layers the configuration, sets
//! up logging and calls into `meshwork-server` (serve), `meshwork-app` (the other commands) and
//! `meshwork-bench`. Each command is one file under `commands/`.

mod commands;

/// mimalloc instead of the system allocator: an import spent a third of its main thread in
/// glibc's malloc and free (many small strings and JSON values, freed on other threads). Its
/// `override` feature makes it the C allocator too, so SQLite's writer thread, the import's
/// bottleneck, stops paying for glibc's malloc as well (BENCHMARKS.md, "CRM import").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain, so the cause is never hidden behind a summary.
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
