//! `syncpipe completions SHELL` and `syncpipe man`: the shell completion
//! scripts and the man page, generated from the same clap definitions as
//! `--help`, so they never drift from the flags.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;
use syncpipe::Error;

use crate::cli::Args;

/// Writes the completion script for `shell` to stdout.
///
/// # Errors
///
/// A write error on stdout.
pub fn completions(shell: Shell) -> Result<(), Error> {
    let mut cmd = Args::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "syncpipe", &mut out);
    write_stdout(&out)
}

/// Writes the man page (roff, section 1) to stdout: `syncpipe man > syncpipe.1`.
///
/// # Errors
///
/// A write error on stdout.
pub fn man() -> Result<(), Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Args::command()).render(&mut out)?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}
