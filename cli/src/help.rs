//! The command line as `--help`, the man pages and the completions show
//! it: the derived [`Args`] plus what a derive cannot say per subcommand.
//!
//! - Flags shared through one struct (the output, many-files and tuning
//!   flags) are worded for process; restore, verify and bench get their
//!   own wording here, so each page describes its own command.
//! - The observability flags are global (they may stand anywhere on the
//!   line) but act only where a pipeline runs. Where they do not, a hidden
//!   copy stands in: help, man pages and completions leave them out, and a
//!   use of one still reaches the error that names it.
//! - A value that is not a path completes to nothing rather than to file
//!   names (clap's guess for a value it knows nothing about).

use std::ffi::OsString;

use clap::{Arg, Command, CommandFactory, ValueHint};

use crate::cli::Args;

/// The command the man pages are made from: every subcommand in full.
pub fn command() -> Command {
    shaped(Absent::Hidden, &|_| true)
}

/// The command a run parses `args` (the process's arguments) with: that of
/// [`command`] for every subcommand the line names, and only the name,
/// about and after-help of the others (their arguments are deferred, see
/// `cli::Command`). Building every subcommand's arguments was most of the
/// start-up of a run, which a one-file run (`find -exec`) pays every time;
/// clap parses only the subcommand the line names, and the top-level help
/// shows the others' names and about lines alone. `help` names them all
/// (`syncpipe help process`); a word that only looks like a subcommand (a
/// file called `info`) just builds one more.
pub fn command_for(args: &[OsString]) -> Command {
    let named = |name: &str| args.iter().skip(1).any(|a| a == name || a == "help");
    shaped(Absent::Hidden, &named)
}

/// The command the completion scripts are made from. clap_complete offers
/// hidden flags too, so here a global flag that a subcommand does not act
/// on is not part of that subcommand at all (nothing parses with this
/// command: a flag left out of it is still refused by the real parse).
pub fn completion_command() -> Command {
    shaped(Absent::Omitted, &|_| true)
}

/// How a subcommand leaves out the global flags it does not act on.
#[derive(Clone, Copy)]
enum Absent {
    /// A hidden local copy shadows the global one.
    Hidden,
    /// No global flag propagates; those it acts on are copied in.
    Omitted,
}

/// The derived command, its subcommands that `wanted` picks built in full
/// and shaped (worded, scoped, completed).
fn shaped(absent: Absent, wanted: &dyn Fn(&str) -> bool) -> Command {
    let top = complete_no_files(Args::command());
    let globals: Vec<Arg> = top
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let top = match absent {
        Absent::Hidden => top,
        Absent::Omitted => top.mut_args(|a| a.global(false)),
    };
    top.mut_subcommands(|sub| {
        if !wanted(sub.get_name()) {
            // Never parsed, so left without its arguments. Not with the
            // derive's deferral either: built anyway (`Command::build`), it
            // would add them after clap has copied the global flags in, and
            // info's own `--json` would then be there twice.
            return sub.defer(as_is);
        }
        // Its arguments now, before clap propagates the global flags into
        // it (which it does before it runs a deferral): shaping looks at
        // which flags are its own.
        let sub = crate::cli::augment_subcommand(sub).defer(as_is);
        complete_no_files(scope(reword(sub, &globals), &globals, absent))
    })
}

/// Replaces the derive's deferral once the arguments are in.
fn as_is(cmd: Command) -> Command {
    cmd
}

/// The global flags a subcommand acts on; `None`: all of them.
fn globals_taken(subcommand: &str) -> Option<&'static [&'static str]> {
    match subcommand {
        "process" | "restore" | "verify" => None,
        // Its rows are short runs of their own: no dashboard, no metrics
        // outputs (bench_cli refuses them), but JSON lines.
        "bench" => Some(&["quiet", "verbose", "json"]),
        // info has a `--json` of its own; it prints the same with -q or -v.
        // completions and man print a script or a page, nothing else.
        _ => Some(&[]),
    }
}

fn scope(sub: Command, globals: &[Arg], absent: Absent) -> Command {
    let taken = globals_taken(sub.get_name());
    let takes = |a: &Arg| taken.is_none_or(|t| t.contains(&a.get_id().as_str()));
    globals.iter().fold(sub, |sub, a| {
        // A local flag of the same name (info's --json, a reworded one) wins.
        if has(&sub, a.get_id().as_str()) {
            return sub;
        }
        match absent {
            Absent::Hidden if !takes(a) => sub.arg(a.clone().global(false).hide(true)),
            Absent::Hidden => sub,
            Absent::Omitted if takes(a) => sub.arg(a.clone().global(false)),
            Absent::Omitted => sub,
        }
    })
}

/// Help texts of shared flags, per subcommand: (flag id, text).
fn wording(subcommand: &str) -> &'static [(&'static str, &'static str)] {
    const OPTIMIZE_READ: &str = "A preset over -T, --cpu-tokens, --io-tokens, --channel-depth, \
        --scheduler and --files-in-flight (the chunk size is the container's): `throughput` \
        (depth 8, FIFO), `latency` (depth 2, fair), `resources` (1 thread, 1 CPU token, \
        2 IO tokens, depth 1, 2 files in flight). Flags given explicitly win; -v prints the \
        result";
    const IDENTITY_READ: &str = "An age identity file (what `age-keygen -o` writes: `#` \
        comments and AGE-SECRET-KEY-1... lines), repeatable: each identity is tried on the \
        X25519 stanzas of an age file";
    match subcommand {
        "process" => &[(
            "verbose",
            "Print a detailed summary after processing (chunks, buffer reuse, memory, \
             permit waits, p50/p95/p99 of CPU time and waits); in a batch, one line per file",
        )],
        "restore" => &[
            (
                "output",
                "The file to restore into; `-` for stdout. [default: INPUT without its \
                 .spipe, .zst, .gz or .age suffix (.tgz and .tzst become .tar, x.zst.age \
                 becomes x); stdout when INPUT is `-`]",
            ),
            ("stdout", "Write the restored data to stdout"),
            ("force", "Overwrite an existing output"),
            (
                "recursive",
                "Walk directories given as inputs and restore their `*.spipe`, `*.zst`, \
                 `*.gz`, `*.tgz`, `*.tzst` and `*.age` files (each named by its path below \
                 the directory, less the suffix); without it a directory is a failed input",
            ),
            (
                "files_from",
                "Read the containers' paths from FILE (`-` = stdin), one per line. \
                 Listed paths name the restored files, so they must be relative and free \
                 of `..`",
            ),
            (
                "output_dir",
                "Write the restored files under DIR, mirroring the containers' relative \
                 paths less their suffix (created as needed). [default: beside each \
                 container]",
            ),
            (
                "skip_existing",
                "Skip containers whose restored file exists (outputs appear only when \
                 complete, so a rerun after an interruption finishes the batch)",
            ),
            ("optimize", OPTIMIZE_READ),
            ("identities", IDENTITY_READ),
            (
                "verbose",
                "Print a detailed summary after restoring (chunks, buffer reuse, memory, \
                 permit waits, p50/p95/p99 of CPU time and waits); in a batch, one line \
                 per file",
            ),
        ],
        "verify" => &[
            (
                "recursive",
                "Walk directories given as inputs and check their `*.spipe`, `*.zst`, \
                 `*.gz`, `*.tgz`, `*.tzst` and `*.age` files; without it a directory is a \
                 failed input",
            ),
            (
                "files_from",
                "Read the containers' paths from FILE (`-` = stdin), one per line; \
                 relative paths free of `..`",
            ),
            ("optimize", OPTIMIZE_READ),
            ("identities", IDENTITY_READ),
            (
                "json",
                "Print JSON lines on stdout (status, file_done, error, summary; see \
                 docs/json.md) instead of the `ok` lines (`-q` does not silence them)",
            ),
            (
                "verbose",
                "Also print the p50/p95/p99 of chunk CPU time, stage \
                 time and permit and queue waits",
            ),
        ],
        "bench" => &[
            (
                "json",
                "Print JSON lines on stdout: one `bench_row` per row and a `summary` \
                 (docs/json.md); the table then goes to stderr",
            ),
            (
                "verbose",
                "Print the storage found under the input, and each row's full settings \
                 and where its time went",
            ),
        ],
        _ => &[],
    }
}

fn reword(sub: Command, globals: &[Arg]) -> Command {
    let texts = wording(sub.get_name());
    let text_of = |id: &str| texts.iter().find(|(i, _)| *i == id).map(|&(_, t)| t);
    // In place (not `mut_arg`, which moves the flag to the end and so
    // under the wrong heading).
    let sub = sub.mut_args(|a| match text_of(a.get_id().as_str()) {
        Some(text) => a.help(text),
        None => a,
    });
    // A global flag: a local copy of it (the same name, so its value
    // reaches the command as the global's does) carries the text.
    globals
        .iter()
        .fold(sub, |sub, a| match text_of(a.get_id().as_str()) {
            Some(text) if !has(&sub, a.get_id().as_str()) => {
                sub.arg(a.clone().global(false).help(text))
            }
            _ => sub,
        })
}

fn has(cmd: &Command, id: &str) -> bool {
    cmd.get_arguments().any(|a| a.get_id() == id)
}

/// Flags whose value is neither one of a fixed set nor a path (sizes,
/// counts, durations, addresses, stage lists) complete to nothing.
fn complete_no_files(cmd: Command) -> Command {
    cmd.mut_args(|a| {
        if a.get_action().takes_values()
            && a.get_possible_values().is_empty()
            && a.get_value_hint() == ValueHint::Unknown
        {
            a.value_hint(ValueHint::Other)
        } else {
            a
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    /// The subcommand a run parses with is the one its help and man page
    /// show: same flags, same wording, same scoping.
    #[test]
    fn a_named_subcommand_is_built_as_its_help_shows_it() {
        for name in crate::manual::SUBCOMMANDS {
            let words = line(&["syncpipe", name, "--help"]);
            let help = |mut cmd: Command| match cmd.try_get_matches_from_mut(&words) {
                Err(e) => e.render().to_string(),
                Ok(_) => panic!("{name} --help parsed"),
            };
            assert_eq!(help(command_for(&words)), help(command()), "{name}");
        }
    }

    /// Built whole, as `Command::build` does, the parse's command holds
    /// together (clap's debug checks: no flag twice).
    #[test]
    fn the_parse_command_builds_whole() {
        command_for(&line(&["syncpipe", "verify", "x.spipe"])).build();
    }

    #[test]
    fn only_the_subcommands_a_line_names_get_their_arguments() {
        let args = |cmd: &Command, name: &str| {
            cmd.find_subcommand(name)
                .expect("subcommand")
                .get_arguments()
                .count()
        };
        let cmd = command_for(&line(&["syncpipe", "-q", "verify", "x.spipe"]));
        assert!(args(&cmd, "verify") > 0);
        assert_eq!(args(&cmd, "process"), 0);
        let cmd = command_for(&line(&["syncpipe", "help", "process"]));
        for name in crate::manual::SUBCOMMANDS {
            assert!(args(&cmd, name) > 0, "{name}");
        }
    }
}
