//! `meshwork default-config`: prints every setting with its default and what it means.

pub fn run() -> anyhow::Result<()> {
    print!("{}", meshwork_server::DEFAULT_CONFIG);
    Ok(())
}
