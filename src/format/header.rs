//! The container header: chunk size, original length and mode, checksum,
//! the stage chain and, in version 2, the encryption section. Encoding,
//! reading with every field bounded, and the bytes the header's MAC covers.

use std::io::Read;

use super::cursor::Cursor;
use super::reader::read_exact_or;
use super::{
    DIGEST_LEN, HEADER_FLAG_VARIABLE, MAGIC, MAX_CHUNK_SIZE, MAX_HEADER_LEN, MAX_STAGES, VERSION,
    VERSION_ENCRYPTED,
};
use crate::cipher::{CipherKind, CHECK_LEN, FILE_NONCE_LEN};
use crate::error::{Error, Result};
use crate::kdf::{KdfParams, SALT_LEN};
use crate::stages::ChecksumKind;

/// How one stage is described in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDesc {
    /// Built-in stage id (see `StageSpec::id`) or
    /// [`CUSTOM_STAGE_ID`](super::CUSTOM_STAGE_ID).
    pub id: u8,
    /// Level or quality; 0 where the stage has none.
    pub param: i32,
    /// The stage's name (at most 255 bytes).
    pub name: String,
}

/// The container header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Bytes per chunk; every chunk but the last holds exactly this many,
    /// unless `variable_chunks` is set, when it is the most any chunk holds.
    pub chunk_size: usize,
    /// Chunks vary in length ([`HEADER_FLAG_VARIABLE`]).
    pub variable_chunks: bool,
    /// Length of the original when it was known up front (not for stdin).
    pub original_len: Option<u64>,
    /// Unix permission bits of the original; 0 when unknown.
    pub mode: u32,
    /// The checksum computed per chunk and over the whole original.
    pub checksum: Option<ChecksumKind>,
    /// The transform stages, in forward order.
    pub stages: Vec<StageDesc>,
    /// The encryption section (version 2 only).
    pub crypto: Option<Crypto>,
}

/// How a passphrase became the master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// No KDF: the master key is a raw 32-byte key file (kdf id 0).
    RawKey,
    /// Argon2id with these parameters and salt (kdf id 1).
    Argon2id {
        /// Cost parameters.
        params: KdfParams,
        /// Random salt.
        salt: [u8; SALT_LEN],
    },
}

/// The encryption section of a version-2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// The AEAD protecting every chunk.
    pub cipher: CipherKind,
    /// Where the master key comes from.
    pub kdf: Kdf,
    /// Random per-file value; the HKDF salt of this file's keys.
    pub file_nonce: [u8; FILE_NONCE_LEN],
    /// Derived from the file's keys: tells a wrong key from a damaged file.
    pub key_check: [u8; CHECK_LEN],
    /// HMAC-SHA256 of every header byte before this field.
    pub mac: [u8; CHECK_LEN],
}

impl Header {
    /// Digest bytes per record: none in an encrypted container, whose AEAD
    /// tag authenticates each chunk (see `docs/format.md`, version 2).
    pub fn record_digest_len(&self) -> usize {
        if self.crypto.is_some() {
            0
        } else {
            self.digest_len()
        }
    }

    /// Digest bytes in the trailer (and, unencrypted, per record).
    pub fn digest_len(&self) -> usize {
        if self.checksum.is_some() {
            DIGEST_LEN
        } else {
            0
        }
    }

    /// The header's bytes, CRC included.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        let flags = if self.variable_chunks {
            HEADER_FLAG_VARIABLE
        } else {
            0
        };
        body.extend_from_slice(&flags.to_le_bytes());
        body.extend_from_slice(&(self.chunk_size as u32).to_le_bytes());
        body.extend_from_slice(&self.original_len.unwrap_or(u64::MAX).to_le_bytes());
        body.extend_from_slice(&self.mode.to_le_bytes());
        body.push(self.checksum.map_or(0, |c| c.id()));
        body.push(self.stages.len() as u8);
        for s in &self.stages {
            body.push(s.id);
            body.extend_from_slice(&s.param.to_le_bytes());
            let name = &s.name.as_bytes()[..s.name.len().min(255)];
            body.push(name.len() as u8);
            body.extend_from_slice(name);
        }
        let version = match &self.crypto {
            None => VERSION,
            Some(c) => {
                body.push(c.cipher.id());
                match &c.kdf {
                    Kdf::RawKey => body.push(0),
                    Kdf::Argon2id { params, salt } => {
                        body.push(1);
                        body.extend_from_slice(&params.m_kib.to_le_bytes());
                        body.extend_from_slice(&params.t.to_le_bytes());
                        body.extend_from_slice(&params.p.to_le_bytes());
                        body.extend_from_slice(salt);
                    }
                }
                body.extend_from_slice(&c.file_nonce);
                body.extend_from_slice(&c.key_check);
                body.extend_from_slice(&c.mac);
                VERSION_ENCRYPTED
            }
        };
        let mut out = Vec::with_capacity(18 + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The part of an encoded header that its MAC covers: everything before
    /// the MAC field (the CRC comes after it). For an unencrypted header,
    /// everything but the CRC.
    pub fn mac_input(encoded: &[u8]) -> &[u8] {
        let end = encoded.len().saturating_sub(4);
        if encoded.get(8..10) == Some(&VERSION_ENCRYPTED.to_le_bytes()[..]) {
            &encoded[..end.saturating_sub(CHECK_LEN)]
        } else {
            &encoded[..end]
        }
    }

    /// Reads and validates a header.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Integrity`] for anything that is not a valid v1
    /// or v2 header (wrong magic, unknown version, bad CRC, out-of-range
    /// sizes, KDF parameters above the caps); [`crate::ErrorKind::Io`] for
    /// read failures.
    pub fn read_from(r: &mut impl Read) -> Result<Header> {
        Header::read_with_bytes(r).map(|(h, _)| h)
    }

    /// As [`Header::read_from`], also returning the header's exact bytes
    /// (which the MAC of an encrypted header covers).
    ///
    /// # Errors
    ///
    /// As [`Header::read_from`].
    pub fn read_with_bytes(r: &mut impl Read) -> Result<(Header, Vec<u8>)> {
        let mut fixed = [0u8; 14];
        read_exact_or(r, &mut fixed, "not a syncpipe container (too short)")?;
        if fixed == *b"-----BEGIN AGE" {
            return Err(Error::usage(
                "an ASCII-armored age file (`age -a`): syncpipe reads binary age files; \
                 `age -d` reads this one",
            ));
        }
        if fixed[..8] != MAGIC {
            return Err(Error::integrity("not a syncpipe container (bad magic)"));
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if version != VERSION && version != VERSION_ENCRYPTED {
            return Err(Error::integrity(format!(
                "unsupported container version {version} (this build reads {VERSION} and {VERSION_ENCRYPTED})"
            )));
        }
        let body_len = u32::from_le_bytes([fixed[10], fixed[11], fixed[12], fixed[13]]);
        // Bound before allocating: a hostile length must not reserve memory.
        if body_len > MAX_HEADER_LEN {
            return Err(Error::integrity(format!(
                "header length {body_len} exceeds the limit of {MAX_HEADER_LEN}"
            )));
        }
        let mut body = vec![0u8; body_len as usize];
        read_exact_or(r, &mut body, "truncated header")?;
        let mut crc = [0u8; 4];
        read_exact_or(r, &mut crc, "truncated header")?;
        let mut h = crc32fast::Hasher::new();
        h.update(&fixed);
        h.update(&body);
        if h.finalize() != u32::from_le_bytes(crc) {
            return Err(Error::integrity("header checksum mismatch"));
        }
        let header = Header::decode_body(&body, version == VERSION_ENCRYPTED)?;
        let mut bytes = Vec::with_capacity(18 + body.len());
        bytes.extend_from_slice(&fixed);
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&crc);
        Ok((header, bytes))
    }

    fn decode_body(body: &[u8], encrypted: bool) -> Result<Header> {
        let mut c = Cursor { buf: body, pos: 0 };
        let flags = c.u16()?;
        if flags & !HEADER_FLAG_VARIABLE != 0 {
            return Err(Error::integrity(format!("unknown header flags {flags:#x}")));
        }
        let chunk_size = c.u32()? as usize;
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::integrity(format!(
                "chunk size {chunk_size} is outside 1..={MAX_CHUNK_SIZE}"
            )));
        }
        let original_len = match c.u64()? {
            u64::MAX => None,
            n => Some(n),
        };
        let mode = c.u32()?;
        let checksum = match c.u8()? {
            0 => None,
            id => Some(
                ChecksumKind::from_id(id)
                    .ok_or_else(|| Error::integrity(format!("unknown checksum id {id}")))?,
            ),
        };
        let count = c.u8()? as usize;
        if count > MAX_STAGES {
            return Err(Error::integrity(format!(
                "{count} stages exceed the limit of {MAX_STAGES}"
            )));
        }
        let mut stages = Vec::with_capacity(count);
        for _ in 0..count {
            let id = c.u8()?;
            let param = c.u32()? as i32;
            let len = c.u8()? as usize;
            let name = std::str::from_utf8(c.take(len)?)
                .map_err(|_| Error::integrity("stage name is not UTF-8"))?
                .to_string();
            stages.push(StageDesc { id, param, name });
        }
        let crypto = if encrypted { Some(c.crypto()?) } else { None };
        if c.pos != body.len() {
            return Err(Error::integrity("trailing bytes in header"));
        }
        Ok(Header {
            chunk_size,
            variable_chunks: flags & HEADER_FLAG_VARIABLE != 0,
            original_len,
            mode,
            checksum,
            stages,
            crypto,
        })
    }
}

/// The header's part of the decoder: the encryption section.
impl Cursor<'_> {
    /// The encryption section. KDF parameters are checked against the caps
    /// here, before anyone can spend memory or time on them.
    fn crypto(&mut self) -> Result<Crypto> {
        let id = self.u8()?;
        let cipher = CipherKind::from_id(id)
            .ok_or_else(|| Error::integrity(format!("unknown cipher id {id}")))?;
        let kdf = match self.u8()? {
            0 => Kdf::RawKey,
            1 => {
                let params = KdfParams {
                    m_kib: self.u32()?,
                    t: self.u32()?,
                    p: self.u32()?,
                };
                params.check().map_err(|e| {
                    Error::integrity(format!("refusing the header's key derivation: {e}"))
                })?;
                Kdf::Argon2id {
                    params,
                    salt: self.array()?,
                }
            }
            other => return Err(Error::integrity(format!("unknown kdf id {other}"))),
        };
        Ok(Crypto {
            cipher,
            kdf,
            file_nonce: self.array()?,
            key_check: self.array()?,
            mac: self.array()?,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ErrorKind;

    /// A valid version-1 header (BLAKE3, one zstd stage); the record tests
    /// use it too.
    pub(in crate::format) fn header() -> Header {
        Header {
            chunk_size: 1024,
            variable_chunks: false,
            original_len: Some(5000),
            mode: 0o644,
            checksum: Some(ChecksumKind::Blake3),
            stages: vec![StageDesc {
                id: 1,
                param: 3,
                name: "zstd".into(),
            }],
            crypto: None,
        }
    }

    fn encrypted_header() -> Header {
        Header {
            crypto: Some(Crypto {
                cipher: CipherKind::ChaCha20Poly1305,
                kdf: Kdf::Argon2id {
                    params: KdfParams::default(),
                    salt: [3; SALT_LEN],
                },
                file_nonce: [4; FILE_NONCE_LEN],
                key_check: [5; CHECK_LEN],
                mac: [6; CHECK_LEN],
            }),
            ..header()
        }
    }

    #[test]
    fn encrypted_header_round_trips_as_version_2() {
        let h = encrypted_header();
        let bytes = h.encode();
        assert_eq!(bytes[8..10], VERSION_ENCRYPTED.to_le_bytes());
        let (back, raw) = Header::read_with_bytes(&mut &bytes[..]).expect("valid");
        assert_eq!(back, h);
        assert_eq!(raw, bytes);
        // The MAC input stops right before the MAC.
        let input = Header::mac_input(&bytes);
        assert_eq!(&bytes[input.len()..bytes.len() - 4], &[6; CHECK_LEN]);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x04;
            assert!(Header::read_from(&mut &b[..]).is_err(), "byte {i}");
        }
    }

    #[test]
    fn hostile_kdf_parameters_are_refused_at_parse_time() {
        let mut h = encrypted_header();
        if let Some(Crypto {
            kdf: Kdf::Argon2id { params, .. },
            ..
        }) = h.crypto.as_mut()
        {
            params.m_kib = u32::MAX;
        }
        let e = Header::read_from(&mut &h.encode()[..]).expect_err("over the cap");
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(e.to_string().contains("key derivation"), "{e}");
    }

    #[test]
    fn header_round_trips() {
        let h = header();
        let bytes = h.encode();
        let back = Header::read_from(&mut &bytes[..]).expect("valid header");
        assert_eq!(back, h);
    }

    #[test]
    fn header_flip_is_detected() {
        let bytes = header().encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let e = Header::read_from(&mut &b[..]).expect_err("flipped byte must fail");
            assert_eq!(e.kind(), ErrorKind::Integrity, "byte {i}");
        }
    }

    #[test]
    fn hostile_header_length_is_refused_before_allocation() {
        let mut b = header().encode();
        b[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = Header::read_from(&mut &b[..]).expect_err("must fail");
        assert!(e.to_string().contains("exceeds"), "{e}");
    }
}
