//! `musubi extract`: observables in free text on standard input.

use std::io::{Read, Write};

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct ExtractArgs {
    /// One JSON object per line: {"type": ..., "value": ...}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExtractArgs) -> Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading standard input (UTF-8 text expected)")?;
    let mut out = super::stdout();
    for o in musubi::formats::extract::extract(&text) {
        if args.json {
            let line = serde_json::json!({ "type": o.kind().as_str(), "value": o.value() });
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}\t{}", o.kind().as_str(), o.value())?;
        }
    }
    out.flush()?;
    Ok(())
}
