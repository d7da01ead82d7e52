//! `meshwork serve`: runs the server until Ctrl-C or SIGTERM.

use anyhow::Context;
use meshwork_app::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  meshwork serve\n  meshwork serve --listen 127.0.0.1:9000 --data-dir /var/lib/meshwork\n  meshwork serve --database-url postgres://meshwork@db.internal/meshwork\n\nSettings are layered: defaults, then --config FILE, then MESHWORK_* variables, then these flags.\nSee `meshwork default-config` for every setting."
)]
pub struct Args {
    /// A TOML configuration file (see `meshwork default-config`).
    #[arg(long, env = "MESHWORK_CONFIG")]
    config: Option<PathBuf>,
    /// Where the SQLite database, master key and keyring live [default: ./meshwork-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// `postgres://…` to use PostgreSQL instead of SQLite in the data directory.
    #[arg(long)]
    database_url: Option<String>,
    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Contact for vulnerability reports in /.well-known/security.txt.
    #[arg(long)]
    security_contact: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    // PDFs are read by this same binary, in a child process (`meshwork extract-text`).
    config.file_text_helper = std::env::current_exe().ok();
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(u) = args.database_url {
        config.database_url = u;
    }
    if let (Some(c), Some(k)) = (args.tls_cert, args.tls_key) {
        config.tls_cert = c.display().to_string();
        config.tls_key = k.display().to_string();
    }
    if let Some(s) = args.security_contact {
        config.security_contact = s;
    }
    config.validate()?;
    init_logging(&config.log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(meshwork_server::run(config))
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MESHWORK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    // Colours only on a terminal: a log file or journald gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.fmt_fields(super::escaped_fields()).init();
    }
    // A panic anywhere (a request handler's, a job's) is an error line of the log, in its
    // format, rather than bare text on stderr (ASVS 7.4.3).
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location, "panic: {what}");
    }));
}
