//! `musubi check`: validates musubi.toml, rules/ and feeds.toml, reporting every problem of
//! every file before failing, and says which store backend the daemon would use; for
//! PostgreSQL it connects and reports the server's version and the database's schema version.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use musubi::config::Config;
use musubi::config::store::StoreBackend;
use musubi::store::schema_pg::{self, PgStatus};

/// How long `check` (and `migrate`) wait for PostgreSQL to answer before calling it
/// unreachable: a health check that hangs is worse than one that fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(config: &Config, data_dir: &Path) -> Result<()> {
    match &config.source {
        Some(p) => println!("{}: ok", p.display()),
        None => println!("musubi.toml: not found, using built-in defaults"),
    }
    // Every problem of every file is reported before failing.
    let mut failed = 0;
    if config.rules_dir.is_dir() {
        match musubi::correlate::rules::Rules::load(&config.rules_dir) {
            Ok(_) => println!("{}: ok", config.rules_dir.display()),
            Err(e) => {
                failed += 1;
                for p in &e.problems {
                    eprintln!("musubi: {p}");
                }
            }
        }
    } else {
        println!(
            "{}: not found, using the shipped rules",
            config.rules_dir.display()
        );
    }
    if config.feeds_file.is_file() {
        match musubi::config::feeds::FeedsConfig::load(&config.feeds_file) {
            Ok(f) => println!(
                "{}: ok ({} feeds, {} enabled)",
                config.feeds_file.display(),
                f.feeds.len(),
                f.enabled().count()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("musubi: {e}");
            }
        }
    }
    match &config.store {
        StoreBackend::Sqlite => println!(
            "store: sqlite ({})",
            data_dir.join(musubi::store::DB_FILE).display()
        ),
        StoreBackend::Postgres(pg) => match postgres_status(pg) {
            Ok(s) if s.schema_version > s.known_version => {
                failed += 1;
                eprintln!(
                    "musubi: store: {}: schema version {} is newer than this musubi knows ({}); upgrade musubi",
                    pg.url, s.schema_version, s.known_version
                );
            }
            Ok(s) => println!(
                "store: postgres {}: PostgreSQL {}, schema version {} of {}{}",
                pg.url,
                s.server_version,
                s.schema_version,
                s.known_version,
                if s.schema_version < s.known_version {
                    " (musubi serve brings it up to date)"
                } else {
                    ""
                }
            ),
            Err(e) => {
                failed += 1;
                eprintln!("musubi: store: {e:#}");
            }
        },
    }
    if failed > 0 {
        bail!("{failed} problem(s) found");
    }
    Ok(())
}

fn postgres_status(pg: &musubi::config::store::PostgresSettings) -> Result<PgStatus> {
    let settings = pg.client_config()?;
    let mut client = connect_postgres(settings, &pg.url)?;
    Ok(schema_pg::status(&mut client)?)
}

/// Connects within [`CONNECT_TIMEOUT`]. The client's own timeout covers the TCP connect
/// only; a server (or a proxy) that accepts and then says nothing would hang the command,
/// so the whole login runs on a thread that is abandoned when the time is up.
pub fn connect_postgres(mut settings: postgres::Config, url: &str) -> Result<postgres::Client> {
    settings.connect_timeout(CONNECT_TIMEOUT);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(settings.connect(postgres::NoTls));
    });
    match rx.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(anyhow!(
            "cannot connect to {url}: {}",
            schema_pg::pg_message(&e)
        )),
        Err(_) => Err(anyhow!(
            "cannot connect to {url}: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}
