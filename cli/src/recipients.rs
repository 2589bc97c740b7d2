//! Whom `process --format age` encrypts to: X25519 recipients given on
//! the command line (they are public keys, so they may be), in recipients
//! files, or as the recipients of `-i` identity files; with none of them,
//! a passphrase (scrypt) from the usual sources.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use syncpipe::{AgeRecipient, Error, PipelineBuilder};

use crate::key_source::{KeyArgs, Purpose};

#[derive(ClapArgs, Debug, Default)]
pub struct RecipientArgs {
    /// With --format age: encrypt to this X25519 recipient (`age1...`, as
    /// `age-keygen` prints it), repeatable. (`-r` is --recursive, as in
    /// zstd.) SSH and plugin recipients are not supported.
    #[arg(long, value_name = "RECIPIENT")]
    recipient: Vec<String>,
    /// With --format age: encrypt to every recipient in this file (one per
    /// line, `#` comments), repeatable, as `age -R`.
    #[arg(short = 'R', long, value_name = "PATH")]
    recipients_file: Vec<PathBuf>,
    /// With --format age and a passphrase: the scrypt work factor, log2 of
    /// N (1-22; scrypt takes 1 KiB x 2^N of memory). [default: 18, as age]
    #[arg(long, value_name = "N")]
    work_factor: Option<u8>,
}

impl RecipientArgs {
    fn given(&self) -> bool {
        !self.recipient.is_empty() || !self.recipients_file.is_empty() || self.work_factor.is_some()
    }

    /// Refuses these flags without `--format age`, where they would do
    /// nothing.
    pub fn refuse(&self) -> Result<(), Error> {
        if self.given() {
            return Err(Error::usage(
                "--recipient, --recipients-file and --work-factor apply to --format age",
            ));
        }
        Ok(())
    }

    /// `builder` with the recipients, or, when there are none, the
    /// passphrase (asked twice at a prompt).
    pub fn apply(
        &self,
        mut builder: PipelineBuilder,
        keys: &KeyArgs,
        argon2: bool,
    ) -> Result<PipelineBuilder, Error> {
        if argon2 {
            return Err(Error::usage(
                "--argon2 is for syncpipe containers; an age file's passphrase is stretched \
                 with scrypt (--work-factor)",
            ));
        }
        let mut recipients = Vec::new();
        for r in &self.recipient {
            recipients.push(r.parse::<AgeRecipient>()?);
        }
        for p in &self.recipients_file {
            recipients.extend(AgeRecipient::from_file(p)?);
        }
        recipients.extend(keys.identities()?.iter().map(|id| id.recipient()));
        if let Some(n) = self.work_factor {
            builder = builder.age_work_factor(n);
        }
        if recipients.is_empty() {
            let secret = keys.resolve(
                Purpose::Encrypt,
                "an age file without a recipient (--recipient, -R or -i)",
            )?;
            return Ok(builder.secret(secret));
        }
        // A passphrase flag beside recipients is refused by the builder.
        if keys.given() {
            builder = builder.secret(keys.resolve(Purpose::Encrypt, "an age file")?);
        }
        for r in recipients {
            builder = builder.age_recipient(r);
        }
        Ok(builder)
    }
}
