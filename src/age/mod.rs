//! The age v1 format (C2SP age specification): a header of recipient
//! stanzas that each wrap one random 16-byte file key, authenticated by an
//! HMAC, then the payload in 64 KiB ChaCha20-Poly1305 pieces whose nonces
//! are their index (STREAM). Every piece seals and opens on its own, which
//! is what lets the engine encrypt and decrypt a file's pieces on all its
//! workers (see `docs/design.md`, "Standard formats", and `docs/format.md`).
//!
//! The public part is the keys ([`AgeRecipient`], [`AgeIdentity`]), the
//! scrypt bounds and [`uses_passphrase`]; a pipeline writes and reads the
//! files ([`crate::Format::Age`]).
//!
//! Invariants: nothing from a header is used before a stanza opened the
//! file key *and* the MAC under that key matched; a piece's plaintext is
//! never written before its tag checked; a file ends with a piece sealed as
//! last, so a cut at a piece boundary is an integrity failure.

pub(crate) mod bech32;
pub(crate) mod header;
mod key;
pub(crate) mod payload;
pub(crate) mod reader;
pub(crate) mod stanza;
pub(crate) mod writer;

use std::io::{BufRead, Read};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
pub use key::{AgeIdentity, AgeRecipient};
pub use stanza::{DEFAULT_WORK_FACTOR, MAX_WORK_FACTOR};

use header::Parsed;
use payload::{PayloadKey, NONCE_LEN};

/// A file's 16-byte key, from which the header MAC key and the payload key
/// are derived.
pub(crate) type FileKey = Zeroizing<[u8; 16]>;

/// The keys a pipeline writes age files to and reads them with.
#[derive(Clone, Default)]
pub(crate) struct AgeKeys {
    pub recipients: Vec<AgeRecipient>,
    pub identities: Vec<AgeIdentity>,
    /// The scrypt work factor a passphrase is stretched with.
    pub work_factor: Option<u8>,
}

/// Whether `first` starts an age v1 file (its version line). An armored
/// file (`age -a`, PEM text) is not one: restore refuses it with a note.
pub(crate) fn is_age(first: &[u8]) -> bool {
    first.starts_with(header::VERSION_LINE)
}

/// Whether the age file starting `first` (at least its first 32 bytes) is
/// encrypted under a passphrase: its one stanza is scrypt.
pub fn uses_passphrase(first: &[u8]) -> bool {
    is_age(first) && first[header::VERSION_LINE.len()..].starts_with(b"-> scrypt ")
}

/// What a new file needs: its header and payload nonce, and the key its
/// pieces are sealed under.
pub(crate) struct Sealing {
    pub head: Vec<u8>,
    pub key: PayloadKey,
}

impl AgeKeys {
    /// Whether these keys (and a passphrase, if `passphrase`) say whom an
    /// age file is for: recipients or a passphrase, not both (an scrypt
    /// stanza must be a header's only one), and a work factor of 1 to
    /// [`MAX_WORK_FACTOR`].
    ///
    /// # Errors
    ///
    /// [`Error::usage`] for anything else.
    pub fn check(&self, passphrase: bool) -> Result<()> {
        match (self.recipients.is_empty(), passphrase) {
            (true, false) => Err(Error::usage(
                "the age format needs a recipient (--recipient, --recipients-file; \
                 PipelineBuilder::age_recipient) or a passphrase",
            )),
            (false, true) => Err(Error::usage(
                "an age file is encrypted to recipients or under a passphrase, not both",
            )),
            _ => match self.work_factor {
                Some(n) if n == 0 || n > MAX_WORK_FACTOR => Err(Error::usage(format!(
                    "an scrypt work factor must be 1 to {MAX_WORK_FACTOR}, not {n}"
                ))),
                _ => Ok(()),
            },
        }
    }

    /// A new file key wrapped for every recipient, or under `passphrase`
    /// (scrypt) when there are none.
    ///
    /// # Errors
    ///
    /// As [`AgeKeys::check`].
    pub fn seal(&self, passphrase: Option<&[u8]>) -> Result<Sealing> {
        self.check(passphrase.is_some())?;
        let mut file_key = FileKey::default();
        crate::cipher::random_bytes(file_key.as_mut())?;
        let stanzas = match passphrase {
            Some(p) => vec![stanza::scrypt_wrap(
                p,
                self.work_factor.unwrap_or(DEFAULT_WORK_FACTOR),
                &file_key,
            )?],
            None => self
                .recipients
                .iter()
                .map(|r| stanza::x25519_wrap(r, &file_key))
                .collect::<Result<_>>()?,
        };
        let mut head = header::encode(&stanzas, &file_key);
        let mut nonce = [0u8; NONCE_LEN];
        crate::cipher::random_bytes(&mut nonce)?;
        head.extend_from_slice(&nonce);
        Ok(Sealing {
            head,
            key: PayloadKey::new(&file_key, &nonce),
        })
    }

    /// The file key of `parsed`, opened by an identity or `passphrase`, its
    /// MAC checked.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] when nothing that could open it was given;
    /// [`crate::ErrorKind::WrongKey`] when what was given does not;
    /// [`crate::ErrorKind::Integrity`] for a malformed stanza, an scrypt
    /// stanza beside others, an scrypt cost over the reader's bounds
    /// (before the work) or a MAC that does not match.
    pub fn open(
        &self,
        parsed: &Parsed,
        passphrase: Option<&[u8]>,
        max_memory: usize,
    ) -> Result<FileKey> {
        let stanzas = &parsed.stanzas;
        let scrypt = stanzas.iter().any(|s| s.kind == "scrypt");
        let file_key = if scrypt {
            if stanzas.len() != 1 {
                return Err(Error::integrity(
                    "not a valid age header: an scrypt stanza must be its only stanza",
                ));
            }
            let Some(p) = passphrase else {
                return Err(Error::usage(
                    "the age file is encrypted under a passphrase: one is needed \
                     (a passphrase source; PipelineBuilder::secret)",
                ));
            };
            stanza::scrypt_unwrap(&stanzas[0], p, max_memory)?
                .ok_or_else(|| Error::wrong_key("the passphrase does not open this age file"))?
        } else {
            if self.identities.is_empty() {
                return Err(Error::usage(
                    "the age file is encrypted to recipients: an identity is needed \
                     (-i FILE; PipelineBuilder::age_identity)",
                ));
            }
            let mut found = None;
            'search: for s in stanzas.iter().filter(|s| s.kind == "X25519") {
                for id in &self.identities {
                    if let Some(k) = stanza::x25519_unwrap(s, id)? {
                        found = Some(k);
                        break 'search;
                    }
                }
            }
            found.ok_or_else(|| {
                Error::wrong_key(format!(
                    "no identity given opens this age file ({} given; it has {} X25519 \
                     stanza(s) and {} of other types)",
                    self.identities.len(),
                    stanzas.iter().filter(|s| s.kind == "X25519").count(),
                    stanzas.iter().filter(|s| s.kind != "X25519").count(),
                ))
            })?
        };
        parsed.verify(&file_key)?;
        Ok(file_key)
    }

    /// Reads the header and payload nonce from `input` and opens them: the
    /// file key, the nonce, and the bytes read.
    ///
    /// # Errors
    ///
    /// As [`header::read`] and [`AgeKeys::open`]; an input that ends
    /// before the nonce is an integrity failure.
    pub fn read_head(
        &self,
        input: &mut impl BufRead,
        passphrase: Option<&[u8]>,
        max_memory: usize,
    ) -> Result<Head> {
        let parsed = header::read(input)?;
        let file_key = self.open(&parsed, passphrase, max_memory)?;
        let mut nonce = [0u8; NONCE_LEN];
        if crate::format::read_full(input, &mut nonce)? < NONCE_LEN {
            return Err(Error::integrity(
                "the age file ends before its payload nonce",
            ));
        }
        Ok(Head {
            file_key,
            nonce,
            len: parsed.len + NONCE_LEN as u64,
        })
    }
}

/// An opened header: the file key, the payload nonce, and the bytes of
/// both in the file (the first piece follows).
pub(crate) struct Head {
    pub file_key: FileKey,
    pub nonce: [u8; NONCE_LEN],
    pub len: u64,
}

impl Head {
    pub fn payload_key(&self) -> PayloadKey {
        PayloadKey::new(&self.file_key, &self.nonce)
    }
}

/// A `Read` of a file from `offset` on, by positional reads (the file's
/// own position does not move).
pub(crate) struct At<'a> {
    pub file: &'a std::fs::File,
    pub offset: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}
