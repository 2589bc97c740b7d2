//! The one exit-code table of the tool. `--help`, the man pages and the
//! README's table are all this enum's `meaning`s (a test holds the README to
//! it).

use syncpipe::{Error, ErrorKind};

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything worked.
    Success = 0,
    /// A runtime error: I/O, a failing stage, a panic, a resource limit.
    Runtime = 1,
    /// Bad usage: flags, stage specs, an existing output without `-f`.
    Usage = 2,
    /// Integrity failure: not a container, corrupt, truncated, checksum mismatch.
    Integrity = 3,
    /// Wrong key or passphrase (the encryption stages).
    WrongKey = 4,
    /// Some files of a batch failed (the many-files mode).
    BatchPartial = 5,
    /// Interrupted by SIGINT.
    Interrupted = 130,
    /// Terminated by SIGTERM.
    Terminated = 143,
}

/// What follows the table in `--help` and the README.
pub const FOOTNOTE: &str = "A closed stdout pipe (e.g. `| head`) ends the run through SIGPIPE, \
as zstd and gzip end: the shell sees 141 (128 + 13), which `set -o pipefail` scripts rely on \
(any command that writes to stdout; a batch `verify` keeps its code when files failed).";

impl ExitCode {
    /// Every code, in the order the table lists them.
    pub const ALL: [ExitCode; 8] = [
        ExitCode::Success,
        ExitCode::Runtime,
        ExitCode::Usage,
        ExitCode::Integrity,
        ExitCode::WrongKey,
        ExitCode::BatchPartial,
        ExitCode::Interrupted,
        ExitCode::Terminated,
    ];

    /// The process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, as the help and the README say it.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::Runtime => {
                "runtime error (I/O, a failing stage, `--metrics-listen` port in use, \
                 `--prometheus-file` not writable, out of memory, a container over \
                 `--max-memory` or `--max-kdf-passes`)"
            }
            ExitCode::Usage => {
                "usage error (bad flag or stage spec, output exists without `-f`, \
                 input = output)"
            }
            ExitCode::Integrity => {
                "integrity failure (not a container, corrupt, truncated, reordered, \
                 appended data, checksum mismatch; encrypted: a chunk or header that \
                 does not authenticate, or an unencrypted container where a key was given)"
            }
            ExitCode::WrongKey => "wrong key or passphrase (encryption stages)",
            ExitCode::BatchPartial => "some files of a batch failed (many-files mode)",
            ExitCode::Interrupted => "interrupted (SIGINT; a second one exits at once)",
            ExitCode::Terminated => "terminated (SIGTERM)",
        }
    }

    /// The code for a library error; `terminated` tells SIGTERM from SIGINT.
    pub fn of(err: &Error, terminated: bool) -> ExitCode {
        match err.kind() {
            ErrorKind::Usage => ExitCode::Usage,
            ErrorKind::Integrity => ExitCode::Integrity,
            ErrorKind::WrongKey => ExitCode::WrongKey,
            ErrorKind::Cancelled if terminated => ExitCode::Terminated,
            ErrorKind::Cancelled => ExitCode::Interrupted,
            _ => ExitCode::Runtime,
        }
    }
}

/// The table as `--help` and the man pages show it: one code per entry,
/// meanings wrapped under a 7-column indent so no line passes 79 columns.
/// Built once: every subcommand's help shows it.
pub fn table() -> &'static str {
    static TABLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut out = String::from("Exit codes:\n");
        for code in ExitCode::ALL {
            wrap(&mut out, &format!("  {:<5}", code.code()), code.meaning());
        }
        wrap(&mut out, "", FOOTNOTE);
        out.truncate(out.trim_end().len());
        out
    })
}

/// Appends `text` after `head`, wrapped at 79 columns; continuation lines
/// are indented to `head`'s width.
fn wrap(out: &mut String, head: &str, text: &str) {
    const WIDTH: usize = 79;
    let indent = head.len();
    let mut line = head.to_owned();
    for word in text.split(' ') {
        if line.len() > indent {
            if line.len() + 1 + word.len() > WIDTH {
                out.push_str(&line);
                out.push('\n');
                line = " ".repeat(indent);
            } else {
                line.push(' ');
            }
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_code_within_79_columns() {
        let t = table();
        for code in ExitCode::ALL {
            let head = format!("  {:<5}", code.code());
            assert!(
                t.lines().any(|l| l.starts_with(&head)),
                "{code:?} missing:\n{t}"
            );
        }
        assert!(t.lines().all(|l| l.len() <= 79), "{t}");
        // Every word of every meaning is there, in order.
        let words: Vec<&str> = t.split_whitespace().collect();
        for code in ExitCode::ALL {
            let m: Vec<&str> = code.meaning().split(' ').collect();
            assert!(
                words.windows(m.len()).any(|w| w == m.as_slice()),
                "{code:?}"
            );
        }
    }

    #[test]
    fn the_readme_table_is_this_enum() {
        let readme = include_str!("../../README.md");
        for code in ExitCode::ALL {
            let row = format!("| {} | {} |", code.code(), code.meaning());
            assert!(readme.contains(&row), "README lacks the row: {row}");
        }
        let flowed = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flowed.contains(FOOTNOTE), "README lacks: {FOOTNOTE}");
    }
}
