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

#[cfg(test)]
mod tests {
    use super::*;
    use syncpipe::batch::Policy;
    use syncpipe::storage::StorageType;
    use syncpipe::{ChunkMethod, Optimize, ReaderKind, SpawnStyle};

    /// The words bash completes after `flag`, from the generated script.
    fn bash_values(script: &str, flag: &str) -> Vec<String> {
        let at = script
            .find(&format!("{flag})"))
            .unwrap_or_else(|| panic!("no case for {flag}"));
        let rest = &script[at..];
        let start = rest.find("compgen -W \"").expect("a word list") + 12;
        let end = start + rest[start..].find('"').expect("closing quote");
        rest[start..end].split(' ').map(str::to_owned).collect()
    }

    fn names<T: std::fmt::Display>(all: &[T]) -> Vec<String> {
        all.iter().map(ToString::to_string).collect()
    }

    /// Each settings flag completes to exactly the library's names, so the
    /// CLI cannot drift from what `FromStr` and the builder accept.
    #[test]
    fn completions_offer_exactly_the_library_names() {
        let mut out = Vec::new();
        clap_complete::generate(Shell::Bash, &mut Args::command(), "syncpipe", &mut out);
        let script = String::from_utf8(out).expect("UTF-8");
        let mut storage = vec!["auto".to_owned()];
        storage.extend(names(StorageType::ALL));
        for (flag, want) in [
            ("--scheduler", names(Policy::ALL)),
            ("--chunk-method", names(ChunkMethod::ALL)),
            ("--optimize", names(Optimize::ALL)),
            ("--reader", names(ReaderKind::ALL)),
            ("--spawn-style", names(SpawnStyle::ALL)),
            ("--storage-type", storage),
        ] {
            assert_eq!(bash_values(&script, flag), want, "{flag}");
        }
    }
}
