//! `musubi check`: validates musubi.toml, rules/ and feeds.toml, reporting every problem of
//! every file before failing.

use anyhow::{Result, bail};

use musubi::config::Config;

pub fn run(config: &Config) -> Result<()> {
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
    if failed > 0 {
        bail!("{failed} configuration file(s) have problems");
    }
    Ok(())
}
