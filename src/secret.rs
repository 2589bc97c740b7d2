//! The secret that opens encrypted containers: a passphrase (stretched with
//! Argon2id) or a raw 32-byte key.
//!
//! Held in zeroizing memory, never printed (`Debug` says `<redacted>`), and
//! never taken from the command line: the sources are files and file
//! descriptors, so the secret does not show in `ps` or shell history.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Longest passphrase read from a file or descriptor: a bound, so that
/// pointing `--passphrase-file` at a huge file fails fast.
pub const MAX_PASSPHRASE_LEN: usize = 64 << 10;
/// Length of a raw key.
pub const KEY_LEN: usize = 32;

/// A passphrase or a raw key.
///
/// ```
/// use syncpipe::{parse_stages, Pipeline, Secret};
///
/// let key = Secret::random_key()?;
/// assert_eq!(format!("{key:?}"), "Secret::Key(<redacted>)");
/// let pipeline = Pipeline::builder()
///     .stages(parse_stages("zstd:3,chacha20-poly1305,blake3")?)
///     .secret(key)
///     .build()?;
/// let mut sealed = Vec::new();
/// pipeline.run(&b"attack at dawn"[..], &mut sealed)?;
///
/// // Another key is refused as a wrong key, not as corruption.
/// let other = Pipeline::builder().secret(Secret::random_key()?).build()?;
/// let err = other.restore(&sealed[..], &mut Vec::new()).expect_err("another key");
/// assert_eq!(err.kind(), syncpipe::ErrorKind::WrongKey);
/// # Ok::<(), syncpipe::Error>(())
/// ```
#[derive(Clone)]
pub struct Secret(Kind);

#[derive(Clone)]
enum Kind {
    Passphrase(Zeroizing<Vec<u8>>),
    Key(Zeroizing<[u8; KEY_LEN]>),
}

impl Secret {
    /// A passphrase, used as given (bytes, no normalisation).
    ///
    /// # Errors
    ///
    /// [`Error::usage`] if it is empty or longer than
    /// [`MAX_PASSPHRASE_LEN`].
    pub fn passphrase(bytes: impl Into<Vec<u8>>) -> Result<Secret> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.is_empty() {
            return Err(Error::usage("the passphrase is empty"));
        }
        if bytes.len() > MAX_PASSPHRASE_LEN {
            return Err(Error::usage(format!(
                "the passphrase is longer than {MAX_PASSPHRASE_LEN} bytes"
            )));
        }
        Ok(Secret(Kind::Passphrase(bytes)))
    }

    /// A raw key of exactly [`KEY_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] for any other length.
    pub fn key(bytes: &[u8]) -> Result<Secret> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::usage(format!(
                "a key must be exactly {KEY_LEN} bytes, this one has {}",
                bytes.len()
            ))
        })?;
        Ok(Secret(Kind::Key(Zeroizing::new(key))))
    }

    /// A new random 32-byte key from the system's CSPRNG, for data that is
    /// encrypted and restored by the same program (a benchmark, a cache):
    /// it is never written anywhere, so what it encrypts is lost with it.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Io`] if the system has no randomness to give.
    pub fn random_key() -> Result<Secret> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        crate::cipher::random_bytes(&mut key[..])?;
        Ok(Secret(Kind::Key(key)))
    }

    /// The first line of the file at `path` (without its line ending) as a
    /// passphrase.
    ///
    /// # Errors
    ///
    /// I/O errors with the path; [`Error::usage`] as [`Secret::passphrase`].
    pub fn from_passphrase_file(path: &Path) -> Result<Secret> {
        let file = File::open(path).map_err(|e| Error::io(e).with_path(path))?;
        first_line(file).map_err(|e| e.with_path(path))
    }

    /// The first line read from the open file descriptor `fd` (for example a
    /// pipe set up by the calling program) as a passphrase. Reads through
    /// `/dev/fd/N`, so it needs a system that has it (Linux, macOS, the BSDs).
    ///
    /// # Errors
    ///
    /// As [`Secret::from_passphrase_file`].
    pub fn from_passphrase_fd(fd: u32) -> Result<Secret> {
        let path = format!("/dev/fd/{fd}");
        let file = File::open(&path).map_err(|e| {
            Error::io(e).with_stage(format!("passphrase descriptor {fd} (not open?)"))
        })?;
        first_line(file).map_err(|e| e.with_stage(format!("passphrase descriptor {fd}")))
    }

    /// A raw key: the file must hold exactly [`KEY_LEN`] bytes (for example
    /// made with `head -c 32 /dev/urandom > key`).
    ///
    /// # Errors
    ///
    /// I/O errors and [`Error::usage`] for any other size, with the path.
    pub fn from_key_file(path: &Path) -> Result<Secret> {
        let file = File::open(path).map_err(|e| Error::io(e).with_path(path))?;
        let mut buf = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
        // One byte more than a key, to see that a file is too long without
        // reading all of it.
        file.take(KEY_LEN as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(e).with_path(path))?;
        if buf.len() != KEY_LEN {
            let found = if buf.len() > KEY_LEN {
                format!("more than {KEY_LEN}")
            } else {
                buf.len().to_string()
            };
            return Err(Error::usage(format!(
                "a key file must hold exactly {KEY_LEN} raw bytes, this one has {found}"
            ))
            .with_path(path));
        }
        Secret::key(&buf)
    }

    /// True for a passphrase, false for a raw key.
    pub fn is_passphrase(&self) -> bool {
        matches!(self.0, Kind::Passphrase(_))
    }

    pub(crate) fn passphrase_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Kind::Passphrase(p) => Some(p),
            Kind::Key(_) => None,
        }
    }

    pub(crate) fn key_bytes(&self) -> Option<&[u8; KEY_LEN]> {
        match &self.0 {
            Kind::Passphrase(_) => None,
            Kind::Key(k) => Some(k),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Kind::Passphrase(_) => "Secret::Passphrase(<redacted>)",
            Kind::Key(_) => "Secret::Key(<redacted>)",
        })
    }
}

/// The first line of `r`, bounded by [`MAX_PASSPHRASE_LEN`]. Read a byte
/// at a time on purpose: a buffered reader would leave a copy of the secret
/// in its buffer, which is freed without being zeroed; the only copy here is
/// the zeroizing `line`. (A passphrase is short, so the cost is nothing.)
#[allow(clippy::unbuffered_bytes)]
fn first_line(r: impl Read) -> Result<Secret> {
    let mut line = Zeroizing::new(Vec::new());
    for byte in r.bytes() {
        let byte = byte.map_err(Error::io)?;
        if byte == b'\n' {
            break;
        }
        if line.len() == MAX_PASSPHRASE_LEN {
            return Err(Error::usage(format!(
                "the passphrase is longer than {MAX_PASSPHRASE_LEN} bytes"
            )));
        }
        line.push(byte);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Secret::passphrase(std::mem::take(&mut *line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::passphrase("hunter2").expect("valid");
        assert!(!format!("{s:?}").contains("hunter2"));
        let k = Secret::key(&[0x41; KEY_LEN]).expect("valid");
        assert!(!format!("{k:?}").contains("65"), "{k:?}");
    }

    #[test]
    fn first_line_only_and_line_endings() {
        let s = first_line(&b"pass word\r\nsecond"[..]).expect("valid");
        assert_eq!(s.passphrase_bytes(), Some(&b"pass word"[..]));
        assert!(first_line(&b"\n"[..]).is_err());
        assert!(Secret::key(&[0; 31]).is_err());
    }
}
