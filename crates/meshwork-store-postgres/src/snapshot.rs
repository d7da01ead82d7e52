//! Backups of a PostgreSQL database, driven through PostgreSQL's own tools: `pg_dump` (custom
//! format: one consistent snapshot, taken in a repeatable-read transaction, while the servers go
//! on writing) and `pg_restore` into an empty database. The tools must be installed
//! (`postgresql-client`) and as new as the server. The password, if the URL has one, is handed
//! over in `PGPASSWORD`, never on a command line another user could list.

use sqlx::Connection;
use std::path::Path;
use std::process::Command;

/// The URL without its password, and the password.
fn split_password(url: &str) -> Result<(String, Option<String>), String> {
    let mut u = url::Url::parse(url).map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
    let password = u.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    let _ = u.set_password(None);
    Ok((u.to_string(), password))
}

fn tool(name: &str, url: &str) -> Result<Command, String> {
    let (url, password) = split_password(url)?;
    let mut cmd = Command::new(name);
    cmd.arg("--dbname").arg(url).env_remove("PGPASSWORD");
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    Ok(cmd)
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{what}: the program is not installed (install PostgreSQL's client tools, e.g. the Debian package postgresql-client)")
        } else {
            format!("{what}: {e}")
        }
    })?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Dumps the database at `url` into `dest` (`pg_dump --format=custom`). Blocking.
pub fn dump(url: &str, dest: &Path) -> Result<(), String> {
    let mut cmd = tool("pg_dump", url)?;
    cmd.args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
        .arg(dest);
    run(cmd, "pg_dump")
}

/// Restores a dump into the database at `url`, in one transaction: a dump that fails half way
/// leaves the database as it was. Blocking.
pub fn restore(url: &str, dump: &Path) -> Result<(), String> {
    let mut cmd = tool("pg_restore", url)?;
    cmd.args([
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
    ])
    .arg(dump);
    run(cmd, "pg_restore")
}

/// Checks a dump can be read (`pg_restore --list`). Blocking.
pub fn check(dump: &Path) -> Result<(), String> {
    let mut cmd = Command::new("pg_restore");
    cmd.arg("--list").arg(dump);
    run(cmd, "pg_restore --list")
}

/// The tables in the database's `public` schema: a restore goes only into a database with none.
pub async fn table_count(url: &str) -> Result<i64, String> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_password_leaves_the_url() {
        let (url, pw) =
            super::split_password("postgres://meshwork:s%40cret@db.example:5432/meshwork").unwrap();
        assert_eq!(url, "postgres://meshwork@db.example:5432/meshwork");
        assert_eq!(pw.as_deref(), Some("s@cret"));
        let (url, pw) = super::split_password("postgres://postgres@127.0.0.1/test").unwrap();
        assert_eq!(url, "postgres://postgres@127.0.0.1/test");
        assert_eq!(pw, None);
    }
}
