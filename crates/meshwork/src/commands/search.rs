//! `meshwork search` and `meshwork reindex`: the search index from the command line. Both open
//! the index directly, so they need the server stopped (the index has one owner process); with a
//! server running, use `GET /api/v1/workspaces/{id}/search`.

use super::crm::{an_owner, runtime, StoreArgs};
use anyhow::Context;
use clap::Args as ClapArgs;
use indicatif::{ProgressBar, ProgressStyle};
use meshwork_app::actor::Actor;
use meshwork_domain::{EmailAddress, Role};

#[derive(Debug, ClapArgs)]
pub struct SearchArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Search as this member (by email) instead of the workspace's owner, to see what they see.
    #[arg(long = "as")]
    as_email: Option<String>,
    /// Hits per type.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// The query, as typed in the search box (`type:deal stage:won acme`).
    query: Vec<String>,
}

pub fn search(args: SearchArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let (state, ws) = args.store.open().await?;
        let user = match &args.as_email {
            Some(e) => {
                let email = EmailAddress::parse("--as", e).map_err(|e| anyhow::anyhow!("{e}"))?;
                let index = state
                    .email_index(email.as_str())
                    .map_err(|e| anyhow::anyhow!(e.message))?;
                state
                    .store
                    .user_by_email_index(&index)
                    .await?
                    .with_context(|| format!("no account with the email {e}"))?
                    .id
            }
            None => an_owner(&state, ws).await?,
        };
        let role: Role = state
            .store
            .role_of(ws, user)
            .await?
            .context("that account is not a member of the workspace")?;
        let actor = Actor::User {
            id: user,
            session_hash: [0; 32],
        };
        let q = args.query.join(" ");
        let results = state
            .search
            .search(&state, ws, &actor, role, &q, args.limit)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&results)?);
        } else {
            println!("{} results", results.total);
            for g in &results.groups {
                println!("\n{} ({})", g.kind, g.count);
                for h in &g.hits {
                    println!("  {}  {}", h.id, plain(&h.title));
                    if !h.snippet.is_empty() {
                        println!("      {}", plain(&h.snippet));
                    }
                }
            }
        }
        state.store.close().await;
        Ok(())
    })
}

/// The snippet markup as terminal text: matches in brackets, entities decoded.
fn plain(html: &str) -> String {
    html.replace("<mark>", "[")
        .replace("</mark>", "]")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .replace('\n', " ")
}

#[derive(Debug, ClapArgs)]
pub struct ReindexArgs {
    #[command(flatten)]
    store: StoreArgs,
}

pub fn reindex(args: ReindexArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let (state, ws) = args.store.open().await?;
        let total = state.store.workspace(ws).await?.map_or(0, |w| w.last_seq);
        let bar = ProgressBar::new(total.max(0) as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} rebuilding the index {bar:30} {pos}/{len} changes ({per_sec}, {eta})",
            )
            .expect("a valid template"),
        );
        let started = std::time::Instant::now();
        let items = state
            .search
            .rebuild(&state, ws, |seq| bar.set_position(seq.max(0) as u64))
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        bar.finish_and_clear();
        println!(
            "indexed {items} items from {total} changes in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        state.store.close().await;
        Ok(())
    })
}
