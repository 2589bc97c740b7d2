//! The age header (C2SP age specification, "Header"): the version line,
//! one or more recipient stanzas, and the MAC line.
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <ephemeral share, base64>
//! <wrapped file key, base64 in lines of 64 columns>
//! --- <HMAC-SHA256 of everything above up to "---", base64>
//! ```
//!
//! The header is read before anything else and bounded ([`MAX_HEADER`]):
//! nothing in it is trusted until the MAC, keyed from the file key one of
//! its stanzas opened, matches.

use std::io::BufRead;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ring::hmac;

use super::FileKey;
use crate::error::{Error, Result};

/// The version line every age v1 file starts with.
pub(crate) const VERSION_LINE: &[u8] = b"age-encryption.org/v1\n";
/// Longest header read: far more than any real recipient list needs
/// (an X25519 stanza is about 110 bytes), a bound on what a hostile file
/// can make a reader buffer before anything is authenticated.
pub(crate) const MAX_HEADER: usize = 1 << 20;
/// Columns of a full body line.
const BODY_COLUMNS: usize = 64;
const MAC_PREFIX: &[u8] = b"---";

/// One recipient stanza: its type, arguments and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stanza {
    pub kind: String,
    pub args: Vec<String>,
    pub body: Vec<u8>,
}

/// A header as read: its stanzas, its MAC, where the MAC's input ends and
/// its length in bytes (the payload nonce follows).
pub(crate) struct Parsed {
    pub stanzas: Vec<Stanza>,
    mac: Vec<u8>,
    /// The bytes the MAC covers: up to and including `---`.
    signed: Vec<u8>,
    pub len: u64,
}

/// The header of a file whose key is `file_key`, wrapped in `stanzas`.
pub(crate) fn encode(stanzas: &[Stanza], file_key: &FileKey) -> Vec<u8> {
    let mut out = VERSION_LINE.to_vec();
    for s in stanzas {
        out.extend_from_slice(b"-> ");
        out.extend_from_slice(s.kind.as_bytes());
        for a in &s.args {
            out.push(b' ');
            out.extend_from_slice(a.as_bytes());
        }
        out.push(b'\n');
        let text = STANDARD_NO_PAD.encode(&s.body);
        let mut lines = text.as_bytes().chunks(BODY_COLUMNS).peekable();
        // The body ends at its first line shorter than 64 columns: a body
        // that fills its last line needs an empty one after it.
        let mut last_full = true;
        while let Some(line) = lines.next() {
            out.extend_from_slice(line);
            out.push(b'\n');
            last_full = line.len() == BODY_COLUMNS && lines.peek().is_none();
        }
        if last_full {
            out.push(b'\n');
        }
    }
    out.extend_from_slice(MAC_PREFIX);
    let mac = hmac::sign(&mac_key(file_key), &out);
    out.push(b' ');
    out.extend_from_slice(STANDARD_NO_PAD.encode(mac.as_ref()).as_bytes());
    out.push(b'\n');
    out
}

fn mac_key(file_key: &FileKey) -> hmac::Key {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    crate::cipher::hkdf_sha256(&[], file_key.as_ref(), b"header", key.as_mut());
    hmac::Key::new(hmac::HMAC_SHA256, key.as_ref())
}

impl Parsed {
    /// Checks the MAC under the file key a stanza opened.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Integrity`] if it does not match: the header
    /// was changed after it was written.
    pub fn verify(&self, file_key: &FileKey) -> Result<()> {
        hmac::verify(&mac_key(file_key), &self.signed, &self.mac).map_err(|_| {
            Error::integrity("the age header's MAC does not match: the header was altered")
        })
    }
}

fn malformed(why: impl std::fmt::Display) -> Error {
    Error::integrity(format!("not a valid age header: {why}"))
}

/// Reads one `\n`-terminated line of at most what is left of the header's
/// bound, appending it to `all`; returns it without the newline.
fn line<'a>(input: &mut impl BufRead, all: &'a mut Vec<u8>) -> Result<&'a [u8]> {
    let start = all.len();
    let room = (MAX_HEADER - start.min(MAX_HEADER)) as u64;
    let n = std::io::Read::take(&mut *input, room)
        .read_until(b'\n', all)
        .map_err(Error::io)?;
    if n == 0 || all.last() != Some(&b'\n') {
        return Err(if all.len() >= MAX_HEADER {
            malformed("it is larger than 1 MiB")
        } else {
            malformed("the input ends inside it")
        });
    }
    Ok(&all[start..all.len() - 1])
}

fn decode_b64(text: &[u8], what: &str) -> Result<Vec<u8>> {
    STANDARD_NO_PAD
        .decode(text)
        .map_err(|_| malformed(format!("{what} is not canonical unpadded base64")))
}

/// Reads a header from `input` (positioned at its first byte), leaving
/// `input` at the payload's nonce. Only the framing is checked here.
///
/// # Errors
///
/// [`crate::ErrorKind::Integrity`] for anything the specification does
/// not allow, a header over [`MAX_HEADER`] or an input that ends inside
/// it; [`crate::ErrorKind::Io`] if it cannot be read.
pub(crate) fn read(input: &mut impl BufRead) -> Result<Parsed> {
    let mut all = Vec::new();
    if line(input, &mut all)? != &VERSION_LINE[..VERSION_LINE.len() - 1] {
        return Err(malformed("the version line is not age-encryption.org/v1"));
    }
    let mut stanzas = Vec::new();
    loop {
        let start = all.len();
        let text = line(input, &mut all)?.to_vec();
        if let Some(rest) = text.strip_prefix(b"--- ") {
            if stanzas.is_empty() {
                return Err(malformed("it has no recipient stanza"));
            }
            let mac = decode_b64(rest, "the MAC")?;
            if mac.len() != 32 {
                return Err(malformed("the MAC is not 32 bytes"));
            }
            let signed = all[..start + MAC_PREFIX.len()].to_vec();
            return Ok(Parsed {
                stanzas,
                mac,
                signed,
                len: all.len() as u64,
            });
        }
        let Some(rest) = text.strip_prefix(b"-> ") else {
            return Err(malformed("a line is neither a stanza nor the MAC"));
        };
        let mut args = Vec::new();
        for arg in rest.split(|&b| b == b' ') {
            if arg.is_empty() || arg.iter().any(|&b| !(0x21..=0x7e).contains(&b)) {
                return Err(malformed(
                    "a stanza argument is empty or not printable ASCII",
                ));
            }
            args.push(String::from_utf8_lossy(arg).into_owned());
        }
        let kind = args.remove(0);
        let mut body_text = Vec::new();
        loop {
            let l = line(input, &mut all)?;
            if l.len() > BODY_COLUMNS {
                return Err(malformed("a stanza body line is longer than 64 columns"));
            }
            body_text.extend_from_slice(l);
            if l.len() < BODY_COLUMNS {
                break;
            }
        }
        let body = decode_b64(&body_text, "a stanza body")?;
        stanzas.push(Stanza { kind, args, body });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(kind: &str, body_len: usize) -> Stanza {
        Stanza {
            kind: kind.into(),
            args: vec!["arg".into()],
            body: vec![0xa5; body_len],
        }
    }

    /// Bodies of every length around the 48-byte line (64 columns) read
    /// back as written, the MAC checks, and a flipped bit fails it.
    #[test]
    fn round_trips_bodies_around_a_full_line() {
        let key = FileKey::from([9u8; 16]);
        for len in [0, 1, 32, 47, 48, 49, 95, 96, 97] {
            let stanzas = vec![stanza("X25519", len), stanza("other", 3)];
            let bytes = encode(&stanzas, &key);
            let mut input = &bytes[..];
            let parsed = read(&mut input).expect("reads back");
            assert!(input.is_empty(), "len {len}: the header is all read");
            assert_eq!(parsed.stanzas, stanzas, "len {len}");
            assert_eq!(parsed.len, bytes.len() as u64);
            parsed.verify(&key).expect("MAC");
            assert!(parsed.verify(&FileKey::from([8u8; 16])).is_err());
        }
    }

    #[test]
    fn refuses_malformed_headers() {
        let key = FileKey::from([1u8; 16]);
        let good = encode(&[stanza("X25519", 32)], &key);
        let text = String::from_utf8(good.clone()).expect("ascii");
        for bad in [
            text.replace("v1", "v2"),
            text.replace("-> X25519 arg", "-> X25519  arg"),
            text.replace("-> X25519 arg\n", ""),
            text.replace("---", "--"),
            text[..text.len() - 1].to_string(),
        ] {
            let err = read(&mut bad.as_bytes()).err().expect("refused");
            assert_eq!(err.kind(), crate::ErrorKind::Integrity, "{bad:?}: {err}");
        }
        // A body line over 64 columns.
        let long = format!("age-encryption.org/v1\n-> a\n{}\n--- x\n", "A".repeat(65));
        assert!(read(&mut long.as_bytes()).is_err());
        // No newline for a megabyte: refused at the bound, not buffered on.
        let endless = vec![b'a'; MAX_HEADER + 10];
        let err = read(&mut &endless[..]).err().expect("refused");
        assert!(
            err.to_string().contains("version") || err.to_string().contains("1 MiB"),
            "{err}"
        );
    }
}
