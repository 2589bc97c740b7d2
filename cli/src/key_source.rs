//! Where the CLI gets the passphrase or key: never from an argument (it
//! would show in `ps` and the shell history), only from a file, an open
//! descriptor, `SYNCPIPE_PASSPHRASE_FILE`, or a prompt on the terminal.

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use clap::Args as ClapArgs;
use syncpipe::{Error, Secret};

/// The environment variable naming a passphrase file.
pub const PASSPHRASE_ENV: &str = "SYNCPIPE_PASSPHRASE_FILE";

/// The key-source flags shared by process, restore and verify.
#[derive(ClapArgs, Debug, Default)]
pub struct KeyArgs {
    /// Read the passphrase from the first line of this file.
    #[arg(long, value_name = "PATH", group = "key_source")]
    passphrase_file: Option<PathBuf>,
    /// Read the passphrase from the first line of this open file descriptor.
    #[arg(long, value_name = "N", group = "key_source")]
    passphrase_fd: Option<u32>,
    /// Use a raw 32-byte key from this file (no key derivation), e.g. made
    /// with `head -c 32 /dev/urandom > key`.
    #[arg(long, value_name = "PATH", group = "key_source")]
    key_file: Option<PathBuf>,
}

/// Why the secret is wanted: encrypting asks twice at a prompt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Encrypt,
    Decrypt,
}

impl KeyArgs {
    /// True when a flag names a source.
    pub fn given(&self) -> bool {
        self.passphrase_file.is_some() || self.passphrase_fd.is_some() || self.key_file.is_some()
    }

    /// True when the source is a raw key file.
    pub fn is_key_file(&self) -> bool {
        self.key_file.is_some()
    }

    /// The secret, from the first source that applies: a flag, then
    /// `SYNCPIPE_PASSPHRASE_FILE`, then a prompt if stdin is a terminal.
    pub fn resolve(&self, purpose: Purpose, why: &str) -> Result<Secret, Error> {
        if let Some(p) = &self.passphrase_file {
            return Secret::from_passphrase_file(p);
        }
        if let Some(fd) = self.passphrase_fd {
            return Secret::from_passphrase_fd(fd);
        }
        if let Some(p) = &self.key_file {
            return Secret::from_key_file(p);
        }
        if let Some(p) = std::env::var_os(PASSPHRASE_ENV).filter(|p| !p.is_empty()) {
            return Secret::from_passphrase_file(&PathBuf::from(p))
                .map_err(|e| e.with_stage(PASSPHRASE_ENV));
        }
        if io::stdin().is_terminal() {
            return prompt(purpose);
        }
        Err(Error::usage(format!(
            "{why} needs a passphrase or key and there is no terminal to ask on: \
             give --passphrase-file PATH, --passphrase-fd N or --key-file PATH, \
             or set {PASSPHRASE_ENV}=PATH"
        )))
    }
}

/// Asks on the terminal (`/dev/tty`, echo off); twice when encrypting, since
/// a typo would make the output unreadable.
fn prompt(purpose: Purpose) -> Result<Secret, Error> {
    // rpassword turns echo off while it reads; if a signal ends the
    // process meanwhile (the reaper, `signals.rs`), echo must come back.
    crate::signals::save_terminal();
    let secret = ask_secret(purpose);
    crate::signals::forget_terminal();
    secret
}

fn ask_secret(purpose: Purpose) -> Result<Secret, Error> {
    let ask = |text: &str| {
        rpassword::prompt_password(text)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| Error::io(e).with_stage("reading the passphrase from the terminal"))
    };
    let first = ask("Passphrase: ")?;
    if purpose == Purpose::Encrypt {
        let again = ask("Passphrase (again): ")?;
        if *first != *again {
            return Err(Error::usage("the passphrases do not match"));
        }
    }
    Secret::passphrase(first.as_bytes())
}
