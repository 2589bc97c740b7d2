//! `syncpipe completions SHELL` and `syncpipe man [SUBCOMMAND | --dir DIR]`:
//! the shell completion scripts and the man pages, generated from the same
//! clap definitions as `--help` (`help::command`), so they never drift from
//! the flags.

use std::io::{self, Write};
use std::path::Path;

use clap::Command;
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use syncpipe::Error;

use crate::exit_code::{ExitCode, FOOTNOTE};

/// The subcommands with a page of their own, `syncpipe-NAME(1)`; a test
/// holds this list to the command's.
pub const SUBCOMMANDS: [&str; 7] = [
    "process",
    "restore",
    "verify",
    "info",
    "bench",
    "completions",
    "man",
];

/// Writes the completion script for `shell` to stdout.
///
/// # Errors
///
/// A write error on stdout.
pub fn completions(shell: Shell) -> Result<(), Error> {
    write_stdout(&script(shell))
}

fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(
        shell,
        &mut crate::help::completion_command(),
        "syncpipe",
        &mut out,
    );
    out
}

/// Writes one man page (roff, section 1) to stdout, syncpipe(1) or a
/// subcommand's; or, with `dir`, every page into that folder (created if
/// missing), each replacing a file of its name atomically.
///
/// # Errors
///
/// A write error on stdout or in `dir`, with its path.
pub fn man(page: Option<&str>, dir: Option<&Path>) -> Result<(), Error> {
    let pages = pages()?;
    let Some(dir) = dir else {
        let want = match page {
            Some(sub) => format!("syncpipe-{sub}.1"),
            None => "syncpipe.1".to_owned(),
        };
        return match pages.iter().find(|(name, _)| *name == want) {
            Some((_, text)) => write_stdout(text.as_bytes()),
            None => Err(Error::usage(format!("no man page {want}"))),
        };
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(e).with_path(dir))?;
    for (name, text) in &pages {
        let path = dir.join(name);
        // A temp file renamed into place: a link at the name is replaced,
        // not written through, and a reader never sees half a page.
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(e).with_path(dir))?;
        tmp.write_all(text.as_bytes())
            .map_err(|e| Error::io(e).with_path(&path))?;
        tmp.persist(&path)
            .map_err(|e| Error::io(e.error).with_path(&path))?;
    }
    Ok(())
}

/// Every page as (file name, roff): syncpipe.1 first, then one per
/// subcommand.
fn pages() -> Result<Vec<(String, String)>, Error> {
    let mut top = crate::help::command().disable_help_subcommand(true);
    top.build();
    let source = format!("syncpipe {}", top.get_version().unwrap_or_default());
    let subs: Vec<&Command> = top.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let mut see_also = Vec::new();
    for (i, sub) in subs.iter().enumerate() {
        if i > 0 {
            see_also.push(roman(", "));
        }
        see_also.push(bold(format!("syncpipe-{}", sub.get_name())));
        see_also.push(roman("(1)"));
    }
    let mut pages = vec![page(&top, &source, &see_also)?];
    for sub in &subs {
        pages.push(page(sub, &source, &[bold("syncpipe"), roman("(1)")])?);
    }
    Ok(pages)
}

/// clap_mangen's page for `cmd`, its after-help (the exit-code table laid
/// out for a terminal, which roff would reflow into one paragraph)
/// replaced by an EXIT STATUS section of one `.TP` entry per code, and a
/// SEE ALSO section.
fn page(
    cmd: &Command,
    source: &str,
    see_also: &[clap_mangen::roff::Inline],
) -> Result<(String, String), Error> {
    let man = Man::new(cmd.clone().after_help(None::<&str>)).source(source);
    let mut out = Vec::new();
    man.render(&mut out)?;
    // roff output is UTF-8 whenever its input is, and all of ours is.
    let mut text = String::from_utf8_lossy(&out).into_owned();
    let mut extra = Roff::new();
    extra.control("SH", ["EXIT STATUS"]);
    for code in ExitCode::ALL {
        extra.control("TP", []);
        extra.text([roman(code.code().to_string())]);
        extra.text([roman(code.meaning())]);
    }
    extra.control("PP", []);
    extra.text([roman(FOOTNOTE)]);
    extra.control("SH", ["SEE ALSO"]);
    extra.text(see_also.to_vec());
    let extra = extra.to_roff();
    match text.find("\n.SH VERSION") {
        Some(at) => text.insert_str(at + 1, &extra),
        None => text.push_str(&extra),
    }
    Ok((man.get_filename(), text))
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
    use clap::{Arg, ValueHint};
    use syncpipe::batch::Policy;
    use syncpipe::storage::StorageType;
    use syncpipe::{ChunkMethod, Format, Optimize, ReaderKind, SpawnStyle};

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
        let script = String::from_utf8(script(Shell::Bash)).expect("UTF-8");
        let mut storage = vec!["auto".to_owned()];
        storage.extend(names(StorageType::ALL));
        for (flag, want) in [
            ("--scheduler", names(Policy::ALL)),
            ("--chunk-method", names(ChunkMethod::ALL)),
            ("--format", names(Format::ALL)),
            ("--optimize", names(Optimize::ALL)),
            ("--reader", names(ReaderKind::ALL)),
            ("--spawn-style", names(SpawnStyle::ALL)),
            ("--storage-type", storage),
        ] {
            assert_eq!(bash_values(&script, flag), want, "{flag}");
        }
    }

    /// The command as the pages and scripts see it: globals propagated.
    fn built(mut cmd: Command) -> Command {
        cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        cmd
    }

    /// How roff spells a flag: every `-` escaped.
    fn roff(text: &str) -> String {
        text.replace('-', "\\-")
    }

    #[test]
    fn every_subcommand_has_a_page_and_the_list_is_the_commands() {
        let cmd = built(crate::help::command());
        let subs: Vec<&str> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(Command::get_name)
            .collect();
        assert_eq!(subs, SUBCOMMANDS);
        let names: Vec<String> = pages().expect("pages").into_iter().map(|p| p.0).collect();
        let mut want = vec!["syncpipe.1".to_owned()];
        want.extend(SUBCOMMANDS.iter().map(|s| format!("syncpipe-{s}.1")));
        assert_eq!(names, want);
    }

    /// Each page names every flag its command lists in `--help`, and none
    /// that the command hides (the flags it does not act on).
    #[test]
    fn every_option_of_every_command_is_on_its_page() {
        let top = built(crate::help::command());
        let pages = pages().expect("pages");
        let mut cmds = vec![&top];
        cmds.extend(top.get_subcommands());
        for (cmd, (name, page)) in cmds.into_iter().zip(&pages) {
            let mut listed = 0;
            for arg in cmd.get_arguments() {
                let mut spelled = Vec::new();
                if let Some(long) = arg.get_long() {
                    spelled.push(format!("\\fB{}\\fR", roff(&format!("--{long}"))));
                }
                if let Some(short) = arg.get_short() {
                    spelled.push(format!("\\fB{}\\fR", roff(&format!("-{short}"))));
                }
                if arg.is_positional() {
                    let value = arg
                        .get_value_names()
                        .map_or_else(|| arg.get_id().to_string(), |v| v.join(" "));
                    spelled.push(format!("\\fI{value}\\fR"));
                }
                for s in spelled {
                    assert_eq!(
                        page.contains(&s),
                        !arg.is_hide_set(),
                        "{name}: {s} (hidden: {})",
                        arg.is_hide_set()
                    );
                }
                listed += usize::from(!arg.is_hide_set());
            }
            assert!(listed > 0, "{name} lists no option");
        }
        // The flags the reports complained of, by name.
        let process = &pages[1].1;
        for flag in [
            "--shard",
            "--skip-existing",
            "--files-from",
            "--chunk-method",
        ] {
            assert!(
                process.contains(&roff(flag)),
                "syncpipe-process.1 lacks {flag}"
            );
        }
        assert!(process.contains(".TP\n\\fB\\-s\\fR, \\fB\\-\\-stages\\fR"));
        let info = &pages[4].1;
        assert!(info.contains(&roff("--json")));
        assert!(!info.contains(&roff("--prometheus-file\\fR")));
    }

    /// The exit codes are an EXIT STATUS section of one `.TP` entry per
    /// code (man renders each on a line of its own), on every page.
    #[test]
    fn every_page_has_the_exit_codes_as_tagged_paragraphs() {
        for (name, page) in pages().expect("pages") {
            let at = page.find("\n.SH \"EXIT STATUS\"\n").unwrap_or_else(|| {
                page.find("\n.SH EXIT STATUS\n")
                    .unwrap_or_else(|| panic!("{name}: no EXIT STATUS"))
            });
            let section = &page[at..];
            let end = section[1..].find("\n.SH ").map_or(section.len(), |e| e + 1);
            let lines: Vec<&str> = section[..end].lines().collect();
            for code in ExitCode::ALL {
                let tag = lines
                    .iter()
                    .position(|l| *l == code.code().to_string())
                    .unwrap_or_else(|| panic!("{name}: no entry for {}", code.code()));
                assert_eq!(lines[tag - 1], ".TP", "{name}: {}", code.code());
                let first = code.meaning().split(' ').next().expect("a word");
                assert!(
                    lines[tag + 1].starts_with(&roff(first)),
                    "{name}: {} is followed by {:?}",
                    code.code(),
                    lines[tag + 1]
                );
            }
            assert!(
                !page.contains("Exit codes:"),
                "{name} still has the --help table"
            );
        }
    }

    /// What a flag's value completes to.
    #[derive(Debug, PartialEq)]
    enum Completes {
        Values(Vec<String>),
        Paths,
        Nothing,
    }

    fn completes(arg: &Arg) -> Completes {
        let values = arg.get_possible_values();
        if !values.is_empty() {
            return Completes::Values(values.iter().map(|v| v.get_name().to_owned()).collect());
        }
        match arg.get_value_hint() {
            ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath => Completes::Paths,
            _ => Completes::Nothing,
        }
    }

    /// Every flag that takes a value, with its long name, in every command
    /// of the completion scripts.
    fn value_flags() -> Vec<(String, Completes)> {
        let top = built(crate::help::completion_command());
        let mut cmds = vec![&top];
        cmds.extend(top.get_subcommands());
        cmds.into_iter()
            .flat_map(Command::get_arguments)
            .filter(|a| !a.is_positional() && a.get_action().takes_values())
            .filter_map(|a| Some((a.get_long()?.to_owned(), completes(a))))
            .collect()
    }

    fn text(shell: Shell) -> String {
        String::from_utf8(script(shell)).expect("UTF-8")
    }

    /// Each flag's case in the bash script: values from a word list, paths
    /// from compgen -f (or plusdirs), anything else the word as typed.
    #[test]
    fn bash_completes_values_not_file_names() {
        let script = text(Shell::Bash);
        let mut checked = 0;
        for (long, want) in value_flags() {
            let case = format!("\n                --{long})\n");
            let mut found = false;
            for (at, _) in script.match_indices(&case) {
                let body = &script[at + case.len()..];
                let body = &body[..body.find(";;").expect("end of case")];
                let ok = match &want {
                    Completes::Values(v) => {
                        body.contains(&format!("compgen -W \"{}\"", v.join(" ")))
                    }
                    Completes::Paths => body.contains("compgen -f") || body.contains("plusdirs"),
                    Completes::Nothing => {
                        body.contains("COMPREPLY=(\"${cur}\")") && !body.contains("compgen -f")
                    }
                };
                assert!(ok, "--{long} ({want:?}):\n{body}");
                found = true;
            }
            assert!(found, "bash: no case for --{long}");
            checked += 1;
        }
        assert!(checked > 40, "only {checked} flags");
    }

    /// zsh: `'--flag=[help]:NAME:ACTION'`; ACTION is `(values)`, `_files`
    /// or empty.
    #[test]
    fn zsh_completes_values_not_file_names() {
        let script = text(Shell::Zsh);
        for (long, want) in value_flags() {
            // `'--flag=[`, `'*--flag=[` (repeatable) or, after its
            // conflicts, `...)--flag=[`.
            let head = format!("--{long}=[");
            let mut found = false;
            for (at, _) in script
                .match_indices(&head)
                .filter(|(at, _)| script[..*at].ends_with(['\'', ')', '*']))
            {
                let rest = &script[at + head.len()..];
                // The help ends at the first `]:` not escaped.
                let close = rest
                    .match_indices("]:")
                    .find(|(i, _)| !rest[..*i].ends_with('\\'))
                    .expect("end of help")
                    .0;
                let spec = &rest[close + 2..];
                let action = &spec[spec.find(':').expect("value name") + 1..];
                let ok = match &want {
                    Completes::Values(v) => {
                        action.starts_with('(')
                            && v.iter()
                                .all(|v| action[..200.min(action.len())].contains(v.as_str()))
                    }
                    Completes::Paths => action.starts_with("_files"),
                    Completes::Nothing => action.starts_with('\''),
                };
                assert!(
                    ok,
                    "--{long} ({want:?}): {}",
                    &action[..40.min(action.len())]
                );
                found = true;
            }
            assert!(found, "zsh: no spec for --{long}");
        }
    }

    /// fish: `-r -f` (no files) unless the flag takes a path (`-F`, or
    /// directories); values as `-a "..."`.
    #[test]
    fn fish_completes_values_not_file_names() {
        let script = text(Shell::Fish);
        for (long, want) in value_flags() {
            let flag = format!(" -l {long} ");
            let mut found = false;
            for (at, _) in script.match_indices(&flag) {
                let line_start = script[..at].rfind("\ncomplete ").expect("line");
                let rest = &script[line_start + 1..];
                let entry = &rest[..rest[1..].find("\ncomplete ").map_or(rest.len(), |e| e + 1)];
                let ok = match &want {
                    Completes::Values(v) => {
                        entry.contains(" -r -f -a \"")
                            && v.iter().all(|v| entry.contains(&format!("{v}\\t")))
                    }
                    Completes::Paths => {
                        entry.trim_end().ends_with(" -r -F")
                            || entry.contains("__fish_complete_directories")
                    }
                    Completes::Nothing => entry.trim_end().ends_with(" -r -f"),
                };
                assert!(ok, "--{long} ({want:?}): {entry}");
                found = true;
            }
            assert!(found, "fish: no line for --{long}");
        }
    }

    /// Sizes, counts, durations and the like complete to nothing; paths
    /// only where the flag takes one.
    #[test]
    fn the_kinds_are_the_flags_meanings() {
        let kinds = value_flags();
        let kind = |long: &str| {
            &kinds
                .iter()
                .find(|(l, _)| l == long)
                .unwrap_or_else(|| panic!("no --{long}"))
                .1
        };
        for long in [
            "chunk-size",
            "threads",
            "cpu-tokens",
            "io-tokens",
            "channel-depth",
            "shard",
            "files-in-flight",
            "metrics-interval",
            "metrics-listen",
            "max-memory",
            "max-kdf-passes",
            "stages",
            "argon2",
            "passphrase-fd",
            "size",
            "seed",
            "runs",
        ] {
            assert_eq!(kind(long), &Completes::Nothing, "--{long}");
        }
        for long in [
            "output",
            "files-from",
            "output-dir",
            "prometheus-file",
            "passphrase-file",
            "key-file",
            "csv",
            "plot",
            "dir",
        ] {
            assert_eq!(kind(long), &Completes::Paths, "--{long}");
        }
        for long in [
            "scheduler",
            "chunk-method",
            "optimize",
            "reader",
            "spawn-style",
            "storage-type",
            "progress",
            "data",
        ] {
            assert!(matches!(kind(long), Completes::Values(_)), "--{long}");
        }
    }
}
