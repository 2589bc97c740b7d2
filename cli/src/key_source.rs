//! Where the CLI gets the passphrase or key: never from an argument (it
//! would show in `ps` and the shell history), only from a file, an open
//! descriptor, `SYNCPIPE_PASSPHRASE_FILE`, or a prompt on the terminal.

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use clap::Args as ClapArgs;
use syncpipe::container::ContainerInfo;
use syncpipe::{AgeIdentity, Error, Format, PipelineBuilder, Secret};

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
    /// An age identity file (what `age-keygen -o` writes: `#` comments
    /// and AGE-SECRET-KEY-1... lines), repeatable: opens age files
    /// encrypted to its recipients. With process --format age, the file
    /// is encrypted to each identity's recipient, as with `age -e -i`.
    #[arg(short = 'i', long = "identity", value_name = "PATH")]
    identities: Vec<PathBuf>,
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

    /// The age identities of every `-i` file, in order.
    pub fn identities(&self) -> Result<Vec<AgeIdentity>, Error> {
        let mut out = Vec::new();
        for p in &self.identities {
            out.extend(AgeIdentity::from_file(p)?);
        }
        Ok(out)
    }

    /// The builder with the `-i` identities, and the passphrase when the
    /// input to restore or verify needs one (`peeked`, its first bytes):
    /// an encrypted container's, or an age file's scrypt stanza. A key
    /// flag or an identity for a plaintext input is refused (it may have
    /// been substituted), as the library refuses it.
    pub fn for_reading(
        &self,
        mut builder: PipelineBuilder,
        peeked: &Peeked,
        why: &str,
    ) -> Result<PipelineBuilder, Error> {
        for id in self.identities()? {
            builder = builder.age_identity(id);
        }
        // A key flag says "this is encrypted": the library refuses
        // plaintext for a pipeline with a secret. SYNCPIPE_PASSPHRASE_FILE
        // alone demands nothing: it may be set for every command of a
        // session.
        if peeked.needs_secret() || self.given() {
            return Ok(builder.secret(self.resolve(Purpose::Decrypt, why)?));
        }
        if peeked.is_plaintext() && !self.identities.is_empty() {
            return Err(Error::integrity(
                "the input is not encrypted, but an identity was given \
                 (an unencrypted file may have been substituted); \
                 restore it without -i if that is expected",
            ));
        }
        Ok(builder)
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

/// What an input to restore or verify is, from its first bytes: what
/// decides whether a passphrase is asked for.
pub enum Peeked {
    /// A syncpipe container, its header read.
    Container(ContainerInfo),
    /// An age file; `passphrase` when its stanza is scrypt.
    Age { passphrase: bool },
    /// A `.zst` or `.gz`: never encrypted.
    Plain,
    /// Not read (a batch whose first input could not be): each input is
    /// checked by the library on its own.
    Unknown,
}

impl Peeked {
    /// Whether opening it takes a passphrase or key.
    pub fn needs_secret(&self) -> bool {
        match self {
            Peeked::Container(info) => info.is_encrypted(),
            Peeked::Age { passphrase } => *passphrase,
            Peeked::Plain | Peeked::Unknown => false,
        }
    }

    /// Whether it is known to be unencrypted.
    pub fn is_plaintext(&self) -> bool {
        match self {
            Peeked::Container(info) => !info.is_encrypted(),
            Peeked::Plain => true,
            Peeked::Age { .. } | Peeked::Unknown => false,
        }
    }

    /// What the file at `path` is (`Unknown` if it cannot be read).
    pub fn file(path: &std::path::Path) -> Peeked {
        use std::io::Read;
        let Ok(mut f) = crate::cli::open_unseen(path) else {
            return Peeked::Unknown;
        };
        let mut first = Vec::with_capacity(crate::cli::PEEK_LEN);
        if (&mut f)
            .take(crate::cli::PEEK_LEN as u64)
            .read_to_end(&mut first)
            .is_err()
        {
            return Peeked::Unknown;
        }
        if let Some(p) = Peeked::standard(&first) {
            return p;
        }
        match syncpipe::container::peek(std::io::Cursor::new(first).chain(f)) {
            Ok((info, _)) => Peeked::Container(info),
            Err(_) => Peeked::Unknown,
        }
    }

    /// What `first` (the input's first 32 bytes, or all of a shorter one)
    /// starts, for an input that is not a container.
    pub fn standard(first: &[u8]) -> Option<Peeked> {
        match Format::detect(first)? {
            Format::Spipe => None,
            Format::Age => Some(Peeked::Age {
                passphrase: syncpipe::age::uses_passphrase(first),
            }),
            _ => Some(Peeked::Plain),
        }
    }
}
