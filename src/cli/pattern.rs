//! `musubi stix-pattern`: checks STIX 2.1 patterns on standard input, one per line, with the
//! same parser an import uses, and says what each would yield.
//!
//! Why a command of its own: a producer can check its patterns before sending them (an
//! import keeps an invalid pattern only as text), and the peer benchmark can set musubi's
//! parser beside the OASIS validator on the same work without a store in between.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use clap::Args;

use musubi::formats::stix_pattern;

#[derive(Args)]
pub struct PatternArgs {
    /// One JSON object per input line: {"line", "valid", and "observables" and
    /// "unsupported" for a valid pattern or "offset" and "error" for an invalid one}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: PatternArgs) -> Result<()> {
    let stdin = std::io::stdin().lock();
    let mut out = super::stdout();
    let (mut checked, mut invalid) = (0usize, 0usize);
    for (i, line) in stdin.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {} (UTF-8 text expected)", i + 1))?;
        let pattern = line.trim_end_matches('\r');
        if pattern.trim().is_empty() {
            continue;
        }
        checked += 1;
        let n = i + 1;
        match stix_pattern::parse(pattern) {
            Ok(outcome) if args.json => {
                let observables: Vec<_> = outcome
                    .observables
                    .iter()
                    .map(|o| serde_json::json!({ "type": o.kind().as_str(), "value": o.value() }))
                    .collect();
                let v = serde_json::json!({
                    "line": n, "valid": true,
                    "observables": observables, "unsupported": outcome.unsupported,
                });
                writeln!(out, "{v}")?;
            }
            Ok(_) => {}
            Err(e) => {
                invalid += 1;
                if args.json {
                    let v = serde_json::json!({
                        "line": n, "valid": false, "offset": e.offset, "error": e.message,
                    });
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "line {n}: {e}")?;
                }
            }
        }
    }
    out.flush()?;
    eprintln!("musubi: {checked} pattern(s) checked, {invalid} invalid");
    if invalid > 0 {
        bail!("{invalid} of {checked} pattern(s) are not valid STIX 2.1 patterning");
    }
    Ok(())
}
