//! age's X25519 keys: a recipient (`age1…`, the public key a file is
//! encrypted to) and an identity (`AGE-SECRET-KEY-1…`, the secret that
//! opens it), read from the files `age-keygen` writes.
//!
//! An identity is held in zeroizing memory and never printed (`Debug`
//! says `<redacted>`); as with passphrases, it is read from files only.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::bech32;
use crate::error::{Error, Result};

const RECIPIENT_HRP: &str = "age";
const IDENTITY_HRP: &str = "age-secret-key-";
/// Longest identity or recipients file read: a bound, as for passphrases.
const MAX_KEY_FILE: u64 = 1 << 20;

/// An age X25519 recipient: the public key a file is encrypted to.
///
/// ```
/// use syncpipe::{AgeIdentity, AgeRecipient};
///
/// let identity = AgeIdentity::generate()?;
/// let recipient: AgeRecipient = identity.recipient().to_string().parse()?;
/// assert_eq!(recipient, identity.recipient());
/// # Ok::<(), syncpipe::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AgeRecipient(pub(crate) [u8; 32]);

/// An age X25519 identity: the secret key that opens files encrypted to
/// its [`AgeIdentity::recipient`].
#[derive(Clone)]
pub struct AgeIdentity(pub(crate) Zeroizing<[u8; 32]>);

impl AgeRecipient {
    /// Every recipient in a recipients file (`age -R`'s format): one per
    /// line, `#` comments and blank lines ignored.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Io`] if it cannot be read; [`Error::usage`] for
    /// a line that is not an `age1…` X25519 recipient (SSH and plugin
    /// recipients are not supported) or a file with none.
    pub fn from_file(path: &Path) -> Result<Vec<AgeRecipient>> {
        let text = read_key_file(path)?;
        let mut out = Vec::new();
        for (n, line) in key_lines(&text) {
            out.push(
                line.parse::<AgeRecipient>()
                    .map_err(|e| Error::usage(format!("{}, line {n}: {e}", path.display())))?,
            );
        }
        if out.is_empty() {
            return Err(Error::usage(format!(
                "{} holds no recipient",
                path.display()
            )));
        }
        Ok(out)
    }
}

impl FromStr for AgeRecipient {
    type Err = Error;

    fn from_str(s: &str) -> Result<AgeRecipient> {
        let s = s.trim();
        let (hrp, data) = bech32::decode(s).map_err(|why| {
            Error::usage(format!(
                "`{}` is not an age recipient ({why}); SSH and plugin recipients are not supported",
                shorten(s)
            ))
        })?;
        if hrp != RECIPIENT_HRP {
            return Err(Error::usage(format!(
                "`{}` is not an age X25519 recipient (it is `{hrp}1…`); \
                 SSH and plugin recipients are not supported",
                shorten(s)
            )));
        }
        let key: [u8; 32] = data
            .try_into()
            .map_err(|_| Error::usage(format!("`{}` does not hold a 32-byte key", shorten(s))))?;
        Ok(AgeRecipient(key))
    }
}

impl fmt::Display for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32::encode(RECIPIENT_HRP, &self.0))
    }
}

impl fmt::Debug for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgeRecipient({self})")
    }
}

impl AgeIdentity {
    /// A new identity from the system's CSPRNG (as `age-keygen` makes one).
    ///
    /// # Errors
    ///
    /// An I/O-kind error if the system has no randomness to give.
    pub fn generate() -> Result<AgeIdentity> {
        let mut key = Zeroizing::new([0u8; 32]);
        crate::cipher::random_bytes(key.as_mut())?;
        Ok(AgeIdentity(key))
    }

    /// The recipient whose files this identity opens.
    pub fn recipient(&self) -> AgeRecipient {
        AgeRecipient(PublicKey::from(&self.secret()).to_bytes())
    }

    /// The identity as `age-keygen` writes it, `AGE-SECRET-KEY-1…` (keep
    /// it secret: write it to a file only you can read).
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        Zeroizing::new(bech32::encode(IDENTITY_HRP, self.0.as_ref()).to_ascii_uppercase())
    }

    /// Parses one `AGE-SECRET-KEY-1…` line.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] if it is not one (the message does not repeat it).
    pub fn parse(s: &str) -> Result<AgeIdentity> {
        let bad = |why: &str| {
            Error::usage(format!(
                "not an age X25519 identity (AGE-SECRET-KEY-1…): {why}; \
                 SSH and plugin identities are not supported"
            ))
        };
        let (hrp, data) = bech32::decode(s.trim()).map_err(bad)?;
        let data = Zeroizing::new(data);
        if hrp != IDENTITY_HRP {
            return Err(bad("another kind of key"));
        }
        let key: [u8; 32] = data
            .as_slice()
            .try_into()
            .map_err(|_| bad("not 32 bytes"))?;
        Ok(AgeIdentity(Zeroizing::new(key)))
    }

    /// Every identity in an identity file (what `age-keygen -o` writes:
    /// `#` comments, blank lines and `AGE-SECRET-KEY-1…` lines).
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Io`] if it cannot be read; [`Error::usage`] for
    /// any other line (an encrypted or SSH identity file is not supported)
    /// or a file with none.
    pub fn from_file(path: &Path) -> Result<Vec<AgeIdentity>> {
        let text = read_key_file(path)?;
        let mut out = Vec::new();
        for (n, line) in key_lines(&text) {
            out.push(
                AgeIdentity::parse(line)
                    .map_err(|e| Error::usage(format!("{}, line {n}: {e}", path.display())))?,
            );
        }
        if out.is_empty() {
            return Err(Error::usage(format!(
                "{} holds no identity",
                path.display()
            )));
        }
        Ok(out)
    }

    pub(crate) fn secret(&self) -> StaticSecret {
        StaticSecret::from(*self.0)
    }
}

impl fmt::Debug for AgeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgeIdentity(<redacted>)")
    }
}

fn read_key_file(path: &Path) -> Result<Zeroizing<String>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(e).with_path(path))?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(e).with_path(path))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(Error::usage(format!(
            "{} is larger than a key file can be (1 MiB)",
            path.display()
        )));
    }
    Ok(text)
}

/// The lines of a key file that hold a key, with their line numbers.
fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// A key as an error message may quote it: a public one, cut short.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(24) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An identity written as `age-keygen` writes it reads back as the
    /// same key (the same recipient), and its text is upper-case Bech32.
    #[test]
    fn an_identity_round_trips_through_its_text() {
        let id = AgeIdentity::generate().expect("identity");
        let text = id.to_secret_string();
        assert!(
            text.starts_with("AGE-SECRET-KEY-1") && text.len() == 74,
            "length"
        );
        let back = AgeIdentity::parse(&text).expect("parses");
        assert_eq!(back.recipient(), id.recipient());
        assert!(AgeIdentity::parse(&id.recipient().to_string()).is_err());
        assert_eq!(format!("{id:?}"), "AgeIdentity(<redacted>)");
    }
}
