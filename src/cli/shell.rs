//! `musubi completions SHELL` and `musubi man`: shell completions and a roff man page,
//! generated from the clap definitions so that they never drift from the real arguments.
//! Installed by the service notes in the README.

use std::io::Write;

use anyhow::Result;
use clap::{Args, CommandFactory};

use super::Cli;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "musubi", &mut out);
    out.flush()?;
    Ok(())
}

/// One page, `musubi(1)`: the global options and every subcommand with its summary
/// (`musubi COMMAND --help` has each command's own options).
pub fn man() -> Result<()> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    out.flush()?;
    Ok(())
}
