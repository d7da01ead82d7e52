//! `meshwork bench connectors`: how fast connectors sync and how soon an access change at the
//! source shows in search.
//!
//! A real server (this binary, `serve`, SQLite or PostgreSQL) gets:
//! - a folder of `--files` text files in 100 sub-folders, readable by everyone, with 50
//!   accounts in its own passwd and group files; its first full sync is timed (files per second)
//!   beside the server's peak memory (`VmHWM`) before and after;
//! - with `--imap-messages N` (Dovecot installed), a Dovecot server the bench starts on a
//!   loopback port with N messages in one account's mailbox (written as Maildir files), whose
//!   first sync is timed the same way;
//! - the latency of an access change with "sync now": a file readable only by another account
//!   gets an ACL entry for the bench's person (`setfacl`), then loses it; each time the clock
//!   runs from the change to the search result changing, polled every 10 ms through the API as
//!   that person, `--rounds` times. With the default schedule the latency is at most the
//!   interval (5 minutes) plus one sync; it is not waited for here.

use crate::start_server;
use anyhow::{bail, ensure, Context};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct ConnectorsArgs {
    /// Files in the folder.
    #[arg(long, default_value_t = 100_000)]
    files: usize,
    /// Messages in an IMAP mailbox (0: no IMAP run).
    #[arg(long, default_value_t = 0)]
    imap_messages: usize,
    /// Access changes timed (each granted, then removed).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Measure on PostgreSQL (a scratch database: the bench writes to it) instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
}

struct Api<'a> {
    client: &'a reqwest::Client,
    base: String,
    ws: String,
    cookie: String,
    csrf: String,
}

impl Api<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut r = self
            .client
            .request(
                method,
                format!("{}/api/v1/workspaces/{}{path}", self.base, self.ws),
            )
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await?;
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        ensure!(status.is_success(), "{path}: {status} {v}");
        Ok(v)
    }

    /// Starts a sync now and waits for it; answers its run.
    async fn sync(&self, id: &str) -> anyhow::Result<serde_json::Value> {
        let job = self
            .call(
                reqwest::Method::POST,
                &format!("/connectors/{id}/sync"),
                None,
            )
            .await?["job"]
            .as_str()
            .context("no job")?
            .to_string();
        loop {
            let runs = self
                .call(
                    reqwest::Method::GET,
                    &format!("/connectors/{id}/runs?limit=5"),
                    None,
                )
                .await?;
            if let Some(r) = runs
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["id"] == job.as_str())
            {
                if r["state"] != "running" {
                    ensure!(r["state"] == "done", "the sync failed: {r}");
                    return Ok(r.clone());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finds(&self, q: &str) -> anyhow::Result<bool> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/search?q={q}&limit=5"),
                None,
            )
            .await?;
        Ok(v["total"].as_u64().unwrap_or(0) > 0)
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn sh(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    ensure!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

pub async fn run(args: ConnectorsArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let db = args.database_url.as_deref();
    let (server, base) = start_server(db, &client).await?;
    let session = crate::session(&client, &base).await?;
    let (_, ws) = crate::workspace_with_key(&client, &base, &session, "Connectors").await?;
    // The bench's person searches as an account of the folder: its email must be verified.
    let mut verify = Command::new(std::env::current_exe()?);
    verify
        .args(["users", "verify-email", "bench@example.com", "--data-dir"])
        .arg(server.data_dir());
    if let Some(u) = db {
        verify.arg("--database-url").arg(u);
    }
    let out = verify.env("MESHWORK_LOG", "warn").output()?;
    ensure!(
        out.status.success(),
        "verify-email: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = Api {
        client: &client,
        base: base.clone(),
        ws,
        cookie: session.cookie.clone(),
        csrf: session.csrf.clone(),
    };

    // The folder.
    // Outside the server's data directory, which only its owner may enter.
    let tree = tempfile::tempdir()?;
    let root = tree.path().to_path_buf();
    let files = root.join("files");
    std::fs::create_dir_all(&files)?;
    let started = Instant::now();
    for d in 0..100 {
        std::fs::create_dir_all(files.join(format!("d{d:02}")))?;
    }
    for i in 0..args.files {
        std::fs::write(
            files.join(format!("d{:02}/note{i:06}.txt", i % 100)),
            format!(
                "Note {i}: quarterly figures for region {} and the plan for team {}.\n",
                i % 37,
                i % 11
            ),
        )?;
    }
    let probe = files.join("probe.txt");
    std::fs::write(&probe, "okapiprobe: a file one account can read")?;
    sh("chown", &["2001:2001", probe.to_str().context("path")?])?;
    sh("chmod", &["600", probe.to_str().context("path")?])?;
    for p in [&root, &files] {
        sh("chmod", &["755", p.to_str().context("path")?])?;
    }
    let mut passwd = String::from("bench:x:2000:2000::/:/bin/sh\n");
    for i in 1..50 {
        passwd.push_str(&format!("user{i}:x:{}:{}::/:/bin/sh\n", 2000 + i, 2000 + i));
    }
    std::fs::write(root.join("passwd"), passwd)?;
    std::fs::write(root.join("group"), "staff:x:3000:bench,user1,user2\n")?;
    eprintln!(
        "wrote {} files in {:.1} s",
        args.files,
        started.elapsed().as_secs_f64()
    );

    let conn = api
        .call(reqwest::Method::POST, "/connectors", Some(serde_json::json!({"source": "files", "paused": true, "settings": {
            "kind": "folder", "path": files, "passwd_file": root.join("passwd"), "group_file": root.join("group"), "email_domain": "example.com"}})))
        .await?;
    let id = conn["id"].as_str().context("no connector id")?.to_string();
    let pid = server.pid();
    let peak_before = crate::peak_kib(pid).unwrap_or(0);
    let started = Instant::now();
    let run = api.sync(&id).await?;
    let took = started.elapsed();
    let peak_after = crate::peak_kib(pid).unwrap_or(0);
    let stored = run["counts"]["stored"].as_u64().unwrap_or(0);
    println!("folder: {stored} files synced in {:.1} s: {:.0} files/s; server peak memory {} MiB before, {} MiB after", took.as_secs_f64(), stored as f64 / took.as_secs_f64(), peak_before / 1024, peak_after / 1024);
    let started = Instant::now();
    let run = api.sync(&id).await?;
    println!(
        "folder: a sync with nothing changed: {:.1} s ({} unchanged)",
        started.elapsed().as_secs_f64(),
        run["counts"]["unchanged"]
    );

    // Access changes, with sync now.
    ensure!(
        !api.finds("okapiprobe").await?,
        "the probe is visible before any grant"
    );
    let probe_s = probe.to_str().context("path")?.to_string();
    let (grant, revoke) = access_rounds(&api, &id, args.rounds, |add| {
        if add {
            sh("setfacl", &["-m", "u:2000:r", &probe_s])
        } else {
            sh("setfacl", &["-x", "u:2000", &probe_s])
        }
    })
    .await?;
    for (what, mut v) in [("granted", grant), ("removed", revoke)] {
        v.sort();
        println!("access {what} at the source → search changed, with sync now, over {} files: p50 {:.2} s, max {:.2} s ({} rounds)", args.files, pct(&v, 0.5).as_secs_f64(), v.last().map_or(0.0, Duration::as_secs_f64), v.len());
    }

    if args.imap_messages > 0 {
        imap(&api, args.imap_messages, pid, args.rounds).await?;
    }
    drop(server);
    Ok(())
}

/// Changes access at the source (`change(true)` grants the bench's person, `change(false)`
/// takes it away), syncs now, and times each change until the person's search for
/// `okapiprobe` follows; `rounds` of each. Answers the grant and removal latencies.
async fn access_rounds(
    api: &Api<'_>,
    id: &str,
    rounds: usize,
    change: impl Fn(bool) -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    ensure!(
        !api.finds("okapiprobe").await?,
        "the probe is visible before any grant"
    );
    let mut grant = Vec::new();
    let mut revoke = Vec::new();
    for _ in 0..rounds {
        for (add, out) in [(true, &mut grant), (false, &mut revoke)] {
            change(add)?;
            let t0 = Instant::now();
            api.call(
                reqwest::Method::POST,
                &format!("/connectors/{id}/sync"),
                None,
            )
            .await?;
            loop {
                if api.finds("okapiprobe").await? == add {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(600) {
                    bail!("the access change never showed");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            out.push(t0.elapsed());
            // Let that sync end before the next change.
            tokio::time::sleep(Duration::from_millis(50)).await;
            loop {
                let runs = api
                    .call(
                        reqwest::Method::GET,
                        &format!("/connectors/{id}/runs?limit=1"),
                        None,
                    )
                    .await?;
                if runs[0]["state"] != "running" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    Ok((grant, revoke))
}

/// A Dovecot on a loopback port with `n` messages in alice's INBOX; its first sync timed, then
/// the mailbox's ACL granting and taking back the bench's person's read right, `rounds` times.
async fn imap(api: &Api<'_>, n: usize, pid: u32, rounds: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    sh("chmod", &["755", d.to_str().context("path")?])?;
    for sub in [
        "run",
        "state",
        "mail/alice/Maildir/cur",
        "mail/alice/Maildir/new",
        "mail/alice/Maildir/tmp",
    ] {
        std::fs::create_dir_all(d.join(sub))?;
    }
    let started = Instant::now();
    for i in 0..n {
        let msg = format!("From: sender{}@outside.test\r\nTo: alice@mail.test\r\nSubject: Order {i} for account {}\r\nDate: Sat, 5 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{i}@bench>\r\n\r\nHello, this is order {i}. The shipment leaves on day {} from warehouse {}.\r\n", i % 97, i % 1000, i % 28, i % 13);
        std::fs::write(d.join(format!("mail/alice/Maildir/cur/{i}.bench:2,")), msg)?;
    }
    std::fs::write(
        d.join("mail/alice/Maildir/cur/probe.bench:2,"),
        "From: sender@outside.test\r\nTo: alice@mail.test\r\nSubject: okapiprobe\r\nMessage-ID: <probe@bench>\r\n\r\nThe one message the ACL rounds look for.\r\n",
    )?;
    sh(
        "chown",
        &[
            "-R",
            "nobody:nogroup",
            d.join("mail").to_str().context("path")?,
        ],
    )?;
    eprintln!(
        "wrote {n} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // The bench's person reads alice's INBOX only while its ACL says so.
    std::fs::write(
        d.join("users"),
        "alice:{PLAIN}alice-pw::::::\nbench@example.com:{PLAIN}bench-pw::::::\n",
    )?;
    let p = |s: &str| d.join(s).display().to_string();
    let conf = format!(
        "base_dir = {run}\nstate_dir = {state}\nlog_path = {log}\nprotocols = imap\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\nmail_location = maildir:~/Maildir\nmail_plugins = acl\ndefault_internal_user = dovecot\ndefault_login_user = dovenull\nprotocol imap {{\n  mail_plugins = $mail_plugins imap_acl\n}}\npassdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {users}\n}}\nuserdb {{\n  driver = passwd-file\n  args = username_format=%u {users}\n  default_fields = uid=nobody gid=nogroup home={mail}/%u\n}}\nplugin {{\n  acl = vfile\n}}\nservice imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
        run = p("run"), state = p("state"), log = p("dovecot.log"), users = p("users"), mail = p("mail"),
    );
    std::fs::write(d.join("dovecot.conf"), conf)?;
    let mut dovecot = Command::new("/usr/sbin/dovecot")
        .arg("-F")
        .arg("-c")
        .arg(d.join("dovecot.conf"))
        .spawn()
        .context("starting dovecot (Debian's dovecot-imapd)")?;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let conn = api
        .call(reqwest::Method::POST, "/connectors", Some(serde_json::json!({"source": "mail", "paused": true, "settings": {
            "kind": "imap", "host": "127.0.0.1", "port": port, "security": "none", "email_domain": "mail.test",
            "accounts": [{"user": "alice", "password": "alice-pw"}, {"user": "bench@example.com", "password": "bench-pw"}]}})))
        .await?;
    let id = conn["id"].as_str().context("no connector id")?.to_string();
    let peak_before = crate::peak_kib(pid).unwrap_or(0);
    let started = Instant::now();
    let run = api.sync(&id).await?;
    let took = started.elapsed();
    let peak_after = crate::peak_kib(pid).unwrap_or(0);
    let stored = run["counts"]["stored"].as_u64().unwrap_or(0);
    println!("imap: {stored} messages synced in {:.1} s: {:.0} messages/s; server peak memory {} MiB before, {} MiB after", took.as_secs_f64(), stored as f64 / took.as_secs_f64(), peak_before / 1024, peak_after / 1024);
    let started = Instant::now();
    api.sync(&id).await?;
    println!(
        "imap: a sync with nothing changed: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let conf = d.join("dovecot.conf");
    let conf = conf.to_str().context("path")?;
    let (grant, revoke) = access_rounds(api, &id, rounds, |add| {
        let rights: &[&str] = if add { &["lookup", "read"] } else { &[] };
        let mut args = vec!["-c", conf, "acl"];
        if add {
            args.extend(["set", "-u", "alice", "INBOX", "user=bench@example.com"]);
            args.extend(rights);
        } else {
            args.extend(["delete", "-u", "alice", "INBOX", "user=bench@example.com"]);
        }
        sh("doveadm", &args)
    })
    .await?;
    for (what, mut v) in [("granted", grant), ("removed", revoke)] {
        v.sort();
        println!("mailbox ACL {what} → search changed, with sync now, over {stored} messages: p50 {:.2} s, max {:.2} s ({} rounds)", pct(&v, 0.5).as_secs_f64(), v.last().map_or(0.0, Duration::as_secs_f64), v.len());
    }
    let _ = Command::new("kill").arg(dovecot.id().to_string()).status();
    let _ = dovecot.wait();
    Ok(())
}
