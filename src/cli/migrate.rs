//! `musubi migrate --to postgres://...`: moves a council from one server on SQLite to
//! PostgreSQL (issue #16). The copy itself is the store's (`store::pg_copy`): every table,
//! in foreign-key order, in one PostgreSQL transaction, into a database that must be empty;
//! this command connects, runs it, and prints each table's row count on both sides, failing
//! when any differ.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;

use musubi::config::store;
use musubi::store::pg_copy::{self, CopyReport};

use super::check::connect_postgres;
use super::print_json;

#[derive(Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy the store into, postgres://USER@HOST:PORT/DATABASE.
    /// It must be empty (musubi creates the tables). No password in the URL: it is read
    /// from --password-file, else from the environment variable MUSUBI_PG_PASSWORD.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// A file holding the PostgreSQL password (trailing newline ignored).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Print the counts as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(data_dir: &Path, args: MigrateArgs) -> Result<()> {
    let mut settings = store::client_config("--to", &args.to)?;
    let password = match &args.password_file {
        Some(path) => Some(store::read_password_file("--password-file", path)?),
        None => store::password_from_env(),
    };
    if let Some(p) = password {
        settings.password(p);
    }
    let mut client = connect_postgres(settings, &args.to)?;
    let bar = super::spinner("copying");
    let report = pg_copy::copy_sqlite_to_pg(data_dir, &mut client, |table| {
        bar.set_message(format!("copying {table}"));
    })?;
    bar.finish_and_clear();
    let mismatched: Vec<&str> = report.mismatches().map(|t| t.table.as_str()).collect();
    if args.json {
        print_json(&serde_json::json!({
            "target": args.to,
            "schema_version": report.schema_version,
            "tables": report.tables,
            "ok": mismatched.is_empty(),
        }))?;
    } else {
        print_counts(&report);
        if mismatched.is_empty() {
            println!(
                "copied {} tables into {} (schema version {}); every count matches",
                report.tables.len(),
                args.to,
                report.schema_version
            );
        }
    }
    if !mismatched.is_empty() {
        bail!(
            "row counts differ in {} table(s): {}",
            mismatched.len(),
            mismatched.join(", ")
        );
    }
    Ok(())
}

fn print_counts(report: &CopyReport) {
    let width = report
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<width$}  {:>10}  {:>10}", "table", "sqlite", "postgres");
    for t in &report.tables {
        let mark = if t.sqlite == t.postgres {
            ""
        } else {
            "  MISMATCH"
        };
        println!(
            "{:<width$}  {:>10}  {:>10}{mark}",
            t.table, t.sqlite, t.postgres
        );
    }
}
