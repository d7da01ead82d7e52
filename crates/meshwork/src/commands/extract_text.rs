//! `meshwork extract-text` (hidden): the helper process that reads an untrusted file format
//! (PDF) for the server. It caps its own memory and CPU time and confines itself (no file,
//! network, program or process) first, then reads the file from stdin and writes its text to
//! stdout; see `meshwork_extract::sandbox`.

use anyhow::Context;
use std::io::{Read, Write};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file's format (`pdf`).
    #[arg(long)]
    format: String,
    /// The address space this process may use.
    #[arg(long, default_value_t = 1 << 30)]
    memory_bytes: u64,
    /// The CPU time this process may use.
    #[arg(long, default_value_t = 20)]
    cpu_seconds: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Limits and confinement (no file, network, program or process) before a byte is read.
    let confinement = meshwork_extract::sandbox::limit_self(args.memory_bytes, args.cpu_seconds)
        .context("limiting and confining this process")?;
    if confinement != meshwork_extract::sandbox::Confinement::Full {
        // Seccomp and the limits hold; this kernel's Landlock covers less (or nothing).
        eprintln!("note: Landlock confinement {confinement:?} on this kernel");
    }
    let format = meshwork_extract::Format::from_arg(&args.format)
        .with_context(|| format!("unknown format {:?}", args.format))?;
    // A reader that panics on a malformed file is reported as an error, not a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .context("reading the file from stdin")?;
    let text = match meshwork_extract::extract(format, &bytes) {
        Ok(t) => t,
        // The reason alone, on one line: the server names the format around it.
        Err(meshwork_extract::ExtractError::Malformed { reason, .. }) => {
            eprintln!("{reason}");
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the text")?;
    Ok(())
}
