//! The two recipient stanzas syncpipe writes and reads (C2SP age
//! specification, "X25519 recipient type" and "scrypt recipient type"):
//! each wraps the 16-byte file key with ChaCha20-Poly1305 under a key
//! derived from an X25519 exchange or from a passphrase.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::header::Stanza;
use super::key::{AgeIdentity, AgeRecipient};
use super::FileKey;
use crate::cipher::{hkdf_sha256, random_bytes, ChunkCipher, CipherKind};
use crate::error::{Error, Result};

const X25519_INFO: &[u8] = b"age-encryption.org/v1/X25519";
const SCRYPT_LABEL: &[u8] = b"age-encryption.org/v1/scrypt";
/// The scrypt work factor (log2 N) `age` itself encrypts with: about a
/// second and 256 MiB (scrypt needs 128 × r × N bytes, r = 8).
pub const DEFAULT_WORK_FACTOR: u8 = 18;
/// The largest work factor read (4 GiB of memory); `age` refuses more too.
pub const MAX_WORK_FACTOR: u8 = 22;
/// A wrapped file key: 16 bytes and the 16-byte tag.
const WRAPPED_LEN: usize = 32;

fn wrap(key: &[u8; 32], file_key: &FileKey) -> Result<Vec<u8>> {
    let mut body = file_key.as_ref().to_vec();
    ChunkCipher::new(CipherKind::ChaCha20Poly1305, key).seal([0; 12], &[], &mut body)?;
    Ok(body)
}

/// The file key in `body`, if `key` opens it.
fn unwrap(key: &[u8; 32], body: &[u8]) -> Option<FileKey> {
    let mut buf = Zeroizing::new(body.to_vec());
    ChunkCipher::new(CipherKind::ChaCha20Poly1305, key)
        .open([0; 12], &[], &mut buf)
        .ok()?;
    let key: [u8; 16] = buf.as_slice().try_into().ok()?;
    Some(FileKey::from(key))
}

fn x25519_key(shared: &[u8; 32], share: &[u8; 32], recipient: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(share);
    salt[32..].copy_from_slice(recipient);
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf_sha256(&salt, shared, X25519_INFO, key.as_mut());
    key
}

/// An X25519 stanza wrapping `file_key` for `recipient`.
pub(crate) fn x25519_wrap(recipient: &AgeRecipient, file_key: &FileKey) -> Result<Stanza> {
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    random_bytes(ephemeral.as_mut())?;
    let ephemeral = StaticSecret::from(*ephemeral);
    let share = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(recipient.0));
    if !shared.was_contributory() {
        return Err(Error::usage(format!(
            "{recipient} is a low-order point, not a usable recipient"
        )));
    }
    let key = x25519_key(shared.as_bytes(), &share, &recipient.0);
    Ok(Stanza {
        kind: "X25519".into(),
        args: vec![STANDARD_NO_PAD.encode(share)],
        body: wrap(&key, file_key)?,
    })
}

/// The file key of an X25519 stanza, if `identity` opens it.
///
/// # Errors
///
/// [`crate::ErrorKind::Integrity`] for a stanza that breaks the
/// specification (a share that is not 32 bytes, a body that is not 32, a
/// low-order share).
pub(crate) fn x25519_unwrap(stanza: &Stanza, identity: &AgeIdentity) -> Result<Option<FileKey>> {
    let bad = |why: &str| Error::integrity(format!("a malformed X25519 stanza: {why}"));
    let [share] = stanza.args.as_slice() else {
        return Err(bad("it must have exactly one argument"));
    };
    let share: [u8; 32] = STANDARD_NO_PAD
        .decode(share)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad("its share is not 32 bytes of base64"))?;
    if stanza.body.len() != WRAPPED_LEN {
        return Err(bad("its body is not 32 bytes"));
    }
    let secret = identity.secret();
    let shared = secret.diffie_hellman(&PublicKey::from(share));
    if !shared.was_contributory() {
        return Err(bad("its share is a low-order point"));
    }
    let key = x25519_key(shared.as_bytes(), &share, &identity.recipient().0);
    Ok(unwrap(&key, &stanza.body))
}

fn scrypt_key(passphrase: &[u8], salt: &[u8; 16], work_factor: u8) -> Result<Zeroizing<[u8; 32]>> {
    let mut full = SCRYPT_LABEL.to_vec();
    full.extend_from_slice(salt);
    let params = scrypt::Params::new(work_factor, 8, 1, 32)
        .map_err(|e| Error::usage(format!("scrypt work factor {work_factor}: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase, &full, &params, key.as_mut())
        .map_err(|e| Error::stage(format!("scrypt failed: {e}")))?;
    Ok(key)
}

/// Bytes of memory scrypt takes at `work_factor` (r = 8).
fn scrypt_memory(work_factor: u8) -> u64 {
    1024u64 << work_factor
}

/// An scrypt stanza wrapping `file_key` under `passphrase`.
pub(crate) fn scrypt_wrap(
    passphrase: &[u8],
    work_factor: u8,
    file_key: &FileKey,
) -> Result<Stanza> {
    let mut salt = [0u8; 16];
    random_bytes(&mut salt)?;
    let key = scrypt_key(passphrase, &salt, work_factor)?;
    Ok(Stanza {
        kind: "scrypt".into(),
        args: vec![STANDARD_NO_PAD.encode(salt), work_factor.to_string()],
        body: wrap(&key, file_key)?,
    })
}

/// The work factor an scrypt stanza asks for, checked against the
/// specification and the reader's bounds before any work.
///
/// # Errors
///
/// [`crate::ErrorKind::Integrity`] for a malformed stanza or a work factor
/// over [`MAX_WORK_FACTOR`]; [`crate::ErrorKind::Resource`] for one whose
/// memory is over `max_memory`.
fn scrypt_cost(stanza: &Stanza, max_memory: usize) -> Result<([u8; 16], u8)> {
    let bad = |why: &str| Error::integrity(format!("a malformed scrypt stanza: {why}"));
    let [salt, factor] = stanza.args.as_slice() else {
        return Err(bad("it must have exactly two arguments"));
    };
    let salt: [u8; 16] = STANDARD_NO_PAD
        .decode(salt)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad("its salt is not 16 bytes of base64"))?;
    // Decimal, no sign and no leading zero, as the specification says.
    let factor: u8 = match factor.as_bytes() {
        [b'1'..=b'9', rest @ ..] if rest.len() <= 2 && rest.iter().all(u8::is_ascii_digit) => {
            factor
                .parse()
                .map_err(|_| bad("its work factor is too large"))?
        }
        _ => return Err(bad("its work factor is not a decimal number")),
    };
    if factor > MAX_WORK_FACTOR {
        return Err(Error::integrity(format!(
            "the scrypt work factor 2^{factor} is over the most read, 2^{MAX_WORK_FACTOR}: refused before the work"
        )));
    }
    let need = scrypt_memory(factor);
    if need > max_memory as u64 {
        return Err(Error::new(
            crate::ErrorKind::Resource,
            format!(
                "the scrypt work factor 2^{factor} needs {} MiB, over the memory limit of {} MiB \
                 (raise it with --max-memory)",
                need >> 20,
                max_memory >> 20
            ),
        ));
    }
    if stanza.body.len() != WRAPPED_LEN {
        return Err(bad("its body is not 32 bytes"));
    }
    Ok((salt, factor))
}

/// The file key of an scrypt stanza, if `passphrase` opens it.
///
/// # Errors
///
/// As [`scrypt_cost`].
pub(crate) fn scrypt_unwrap(
    stanza: &Stanza,
    passphrase: &[u8],
    max_memory: usize,
) -> Result<Option<FileKey>> {
    let (salt, factor) = scrypt_cost(stanza, max_memory)?;
    let key = scrypt_key(passphrase, &salt, factor)?;
    Ok(unwrap(&key, &stanza.body))
}
