//! The container format, versions 1 and 2 (specified in `docs/format.md`).
//! Version 2 is version 1 plus the encryption section in the header; a
//! writer uses it only for encrypted containers, so unencrypted containers
//! stay readable by version-1 readers.
//!
//! A header, then one length-prefixed record per chunk, then a trailer. Every
//! part carries a CRC-32 of its own bytes, so a flipped byte is caught even
//! with no checksum stage, and every size is bounded before anything is
//! allocated: a hostile header cannot make the reader reserve gigabytes.

use std::io::{self, Read};

use crate::cipher::{CipherKind, CHECK_LEN, FILE_NONCE_LEN};
use crate::error::{Error, Result};
use crate::kdf::{KdfParams, SALT_LEN};
use crate::stages::ChecksumKind;

/// The first 8 bytes of every container. The high byte and the CR LF pair
/// catch 7-bit and newline-translating transports, as PNG's magic does.
pub const MAGIC: [u8; 8] = *b"\x89SPIPE\r\n";
/// The format version of unencrypted containers.
pub const VERSION: u16 = 1;
/// The format version of encrypted containers (version 1 plus the
/// encryption section).
pub const VERSION_ENCRYPTED: u16 = 2;
/// Largest header body accepted (bytes after the length field).
pub const MAX_HEADER_LEN: u32 = 4096;
/// Largest chunk size the format allows: 64 MiB.
pub const MAX_CHUNK_SIZE: usize = 64 << 20;
/// Most transform stages in one container (the skip mask is one byte).
pub const MAX_STAGES: usize = 8;
/// Stage id written for a stage that is not built in; restore needs the same
/// stage supplied by the program (see `PipelineBuilder::custom_stage`).
pub const CUSTOM_STAGE_ID: u8 = 0xff;
/// Length of every digest (SHA-256 and BLAKE3 both give 32 bytes).
pub const DIGEST_LEN: usize = 32;

const TAG_CHUNK: u8 = b'C';
const TAG_TRAILER: u8 = b'T';
/// Header flag: chunks vary in length (hill-climbed). The header's chunk
/// size is then the largest a chunk may be, and chunks before the last may
/// be shorter. Without it every chunk but the last is exactly the chunk
/// size, which readers check.
pub const HEADER_FLAG_VARIABLE: u16 = 0x0001;
/// Record flag: this is the final chunk.
pub const FLAG_LAST: u8 = 0x01;
/// Fixed bytes of a chunk record before the digest: tag, index, flags,
/// skip mask, original length, payload length.
const CHUNK_HEAD_LEN: usize = 1 + 8 + 1 + 1 + 4 + 4;

/// The largest payload a record may carry for a given chunk size. Compressed
/// payloads never exceed the chunk (a chunk that does not shrink is stored
/// raw); the slack is for stages that add a little, such as an AEAD tag.
pub fn max_payload(chunk_size: usize) -> usize {
    chunk_size + chunk_size / 8 + 4096
}

/// How one stage is described in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDesc {
    /// Built-in stage id (see `StageSpec::id`) or [`CUSTOM_STAGE_ID`].
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

/// The fixed part of a chunk record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead {
    /// Chunk index, from 0.
    pub index: u64,
    /// [`FLAG_LAST`] or 0.
    pub flags: u8,
    /// Bit i set: stage i was skipped for this chunk (stored as it came in).
    pub skip_mask: u8,
    /// Bytes of original data in the chunk.
    pub original_len: u32,
    /// Bytes of payload that follow the head (and digest).
    pub payload_len: u32,
}

impl RecordHead {
    /// True for the final chunk.
    pub fn is_last(&self) -> bool {
        self.flags & FLAG_LAST != 0
    }

    /// Encodes the head and the digest into `out` (cleared first).
    pub fn encode(&self, digest: Option<&[u8; DIGEST_LEN]>, out: &mut Vec<u8>) {
        out.clear();
        out.push(TAG_CHUNK);
        out.extend_from_slice(&self.index.to_le_bytes());
        out.push(self.flags);
        out.push(self.skip_mask);
        out.extend_from_slice(&self.original_len.to_le_bytes());
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        if let Some(d) = digest {
            out.extend_from_slice(d);
        }
    }
}

/// The end of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Number of chunk records.
    pub chunk_count: u64,
    /// Total bytes of original data.
    pub original_len: u64,
    /// Digest of the whole original, when the container has a checksum.
    pub digest: Option<[u8; DIGEST_LEN]>,
}

impl Trailer {
    /// The trailer's bytes, CRC included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 16 + DIGEST_LEN + 4);
        out.push(TAG_TRAILER);
        out.extend_from_slice(&self.chunk_count.to_le_bytes());
        out.extend_from_slice(&self.original_len.to_le_bytes());
        if let Some(d) = &self.digest {
            out.extend_from_slice(d);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}

/// One item read from the body of a container.
#[derive(Debug)]
pub enum Item {
    /// A chunk record whose CRC has been checked.
    Chunk {
        /// The fixed fields.
        head: RecordHead,
        /// The per-chunk digest of the original bytes, if any.
        digest: Option<[u8; DIGEST_LEN]>,
    },
    /// The trailer (CRC checked).
    Trailer(Trailer),
}

/// Reads the next record or the trailer. A chunk's payload is read into
/// `payload` (resized; its capacity is reused across records).
///
/// # Errors
///
/// [`crate::ErrorKind::Integrity`] for truncation, a bad tag, out-of-range
/// lengths or a CRC mismatch; the error names the chunk it expected.
pub fn read_item(
    r: &mut impl Read,
    header: &Header,
    expected_index: u64,
    payload: &mut Vec<u8>,
) -> Result<Item> {
    let mut tag = [0u8; 1];
    if read_full(r, &mut tag)? == 0 {
        return Err(
            Error::integrity("truncated container: missing chunks or trailer")
                .with_chunk(expected_index),
        );
    }
    match tag[0] {
        TAG_CHUNK => {
            let dlen = header.record_digest_len();
            let mut head_buf = [0u8; CHUNK_HEAD_LEN + DIGEST_LEN];
            head_buf[0] = TAG_CHUNK;
            let head_bytes = &mut head_buf[..CHUNK_HEAD_LEN + dlen];
            read_exact_or(r, &mut head_bytes[1..], "truncated record")
                .map_err(|e| e.with_chunk(expected_index))?;
            let mut c = Cursor {
                buf: head_bytes,
                pos: 1,
            };
            let head = RecordHead {
                index: c.u64()?,
                flags: c.u8()?,
                skip_mask: c.u8()?,
                original_len: c.u32()?,
                payload_len: c.u32()?,
            };
            let digest = c.digest(dlen)?;
            let at = |msg: String| Error::integrity(msg).with_chunk(expected_index);
            if head.index != expected_index {
                return Err(at(format!(
                    "record out of order: found chunk {} (reordered or spliced container)",
                    head.index
                )));
            }
            if head.flags & !FLAG_LAST != 0 {
                return Err(at(format!("unknown record flags {:#x}", head.flags)));
            }
            // Widened before shifting: with 8 stages a u8 shift would overflow.
            if u16::from(head.skip_mask) >> header.stages.len() != 0 {
                return Err(at(format!("bad skip mask {:#x}", head.skip_mask)));
            }
            let olen = head.original_len as usize;
            // Writers fill every chunk but the last (with variable chunks:
            // never beyond the largest size), and only an empty input has
            // an empty chunk (chunk 0).
            if olen > header.chunk_size
                || (!head.is_last() && !header.variable_chunks && olen != header.chunk_size)
                || (olen == 0 && head.index != 0)
            {
                return Err(at(format!(
                    "original length {olen} does not fit chunk size {}",
                    header.chunk_size
                )));
            }
            let plen = head.payload_len as usize;
            if plen > max_payload(header.chunk_size) {
                return Err(at(format!("payload length {plen} exceeds the bound")));
            }
            payload.clear();
            // Room for the claimed length is reserved, not touched: it costs
            // address space, not memory, and fails as an error, not an abort.
            crate::pool::reserve(payload, plen)?;
            // Grown as bytes arrive rather than zero-filled to the claimed
            // length first: a truncated hostile record costs only the bytes
            // it really has (read_to_end retries `Interrupted`).
            let got = r
                .take(plen as u64)
                .read_to_end(payload)
                .map_err(Error::io)?;
            if got < plen {
                return Err(at("truncated record".to_string()));
            }
            let mut crc = [0u8; 4];
            read_exact_or(r, &mut crc, "truncated record")
                .map_err(|e| e.with_chunk(expected_index))?;
            let mut h = crc32fast::Hasher::new();
            h.update(head_bytes);
            h.update(payload);
            if h.finalize() != u32::from_le_bytes(crc) {
                return Err(at("record checksum mismatch (corrupt data)".to_string()));
            }
            Ok(Item::Chunk { head, digest })
        }
        TAG_TRAILER => {
            let dlen = header.digest_len();
            let mut buf = [0u8; 1 + 16 + DIGEST_LEN];
            buf[0] = TAG_TRAILER;
            let bytes = &mut buf[..1 + 16 + dlen];
            read_exact_or(r, &mut bytes[1..], "truncated trailer")?;
            let mut crc = [0u8; 4];
            read_exact_or(r, &mut crc, "truncated trailer")?;
            if crc32fast::hash(bytes) != u32::from_le_bytes(crc) {
                return Err(Error::integrity("trailer checksum mismatch"));
            }
            let mut c = Cursor { buf: bytes, pos: 1 };
            let chunk_count = c.u64()?;
            let original_len = c.u64()?;
            let digest = c.digest(dlen)?;
            Ok(Item::Trailer(Trailer {
                chunk_count,
                original_len,
                digest,
            }))
        }
        other => {
            Err(Error::integrity(format!("bad record tag {other:#04x}")).with_chunk(expected_index))
        }
    }
}

/// Reads a container body in order and enforces the rules that span
/// records: one last chunk, nothing after it but the trailer, a trailer that
/// matches what came before, no more data than the header announced, and
/// nothing after the trailer. Restore and `inspect` share it, so they accept
/// exactly the same containers.
#[derive(Debug)]
pub struct Walker<'h> {
    header: &'h Header,
    next_index: u64,
    original: u64,
    seen_last: bool,
}

impl<'h> Walker<'h> {
    /// A walker positioned at the first record, just after the header.
    pub fn new(header: &'h Header) -> Walker<'h> {
        Walker {
            header,
            next_index: 0,
            original: 0,
            seen_last: false,
        }
    }

    /// The next record (payload in `payload`) or, once, the trailer.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Integrity`] for anything out of place, naming the
    /// chunk where one applies; [`crate::ErrorKind::Io`] for read failures.
    pub fn next(&mut self, r: &mut impl Read, payload: &mut Vec<u8>) -> Result<Item> {
        let at = self.next_index;
        let item = read_item(r, self.header, at, payload)?;
        match &item {
            Item::Chunk { head, .. } => {
                if self.seen_last {
                    return Err(
                        Error::integrity("chunk after the last chunk (spliced container)")
                            .with_chunk(at),
                    );
                }
                self.seen_last = head.is_last();
                self.original += u64::from(head.original_len);
                if let Some(len) = self.header.original_len {
                    if self.original > len {
                        return Err(Error::integrity(format!(
                            "more data than the header's original length of {len} bytes"
                        ))
                        .with_chunk(at));
                    }
                }
                self.next_index = at
                    .checked_add(1)
                    .ok_or_else(|| Error::integrity("chunk counter overflow"))?;
            }
            Item::Trailer(t) => {
                if !self.seen_last {
                    return Err(Error::integrity(
                        "truncated container: the trailer comes before the last chunk",
                    )
                    .with_chunk(at));
                }
                if t.chunk_count != self.next_index || t.original_len != self.original {
                    return Err(Error::integrity(format!(
                        "trailer says {} chunks and {} bytes, the container holds {} and {}",
                        t.chunk_count, t.original_len, self.next_index, self.original
                    )));
                }
                if let Some(len) = self.header.original_len {
                    if len != self.original {
                        return Err(Error::integrity(format!(
                            "header says {len} bytes, the container holds {}",
                            self.original
                        )));
                    }
                }
                let mut extra = [0u8; 1];
                if read_full(r, &mut extra)? != 0 {
                    return Err(Error::integrity("unexpected data after the trailer"));
                }
            }
        }
        Ok(item)
    }
}

/// Fills `buf` as far as the reader allows; returns the bytes read (short
/// only at end of input). Retries `Interrupted`.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(e)),
        }
    }
    Ok(filled)
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    if read_full(r, buf)? < buf.len() {
        return Err(Error::integrity(what.to_string()));
    }
    Ok(())
}

/// A bounds-checked little-endian decoder over a byte slice.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| Error::integrity("header field runs past its end"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// A digest when `len` is non-zero (the container has a checksum).
    fn digest(&mut self, len: usize) -> Result<Option<[u8; DIGEST_LEN]>> {
        if len == 0 {
            return Ok(None);
        }
        let mut d = [0u8; DIGEST_LEN];
        d.copy_from_slice(self.take(DIGEST_LEN)?);
        Ok(Some(d))
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
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
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn header() -> Header {
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

    #[test]
    fn record_round_trips_and_detects_flips() {
        let h = header();
        let head = RecordHead {
            index: 0,
            flags: FLAG_LAST,
            skip_mask: 0,
            original_len: 3,
            payload_len: 3,
        };
        let mut rec = Vec::new();
        head.encode(Some(&[7u8; DIGEST_LEN]), &mut rec);
        rec.extend_from_slice(b"abc");
        let crc = crc32fast::hash(&rec);
        rec.extend_from_slice(&crc.to_le_bytes());
        let mut payload = Vec::new();
        match read_item(&mut &rec[..], &h, 0, &mut payload).expect("valid") {
            Item::Chunk { head: got, digest } => {
                assert_eq!(got, head);
                assert_eq!(digest, Some([7u8; DIGEST_LEN]));
                assert_eq!(payload, b"abc");
            }
            Item::Trailer(_) => panic!("expected a chunk"),
        }
        for i in 0..rec.len() {
            let mut b = rec.clone();
            b[i] ^= 0x01;
            assert!(
                read_item(&mut &b[..], &h, 0, &mut payload).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn short_chunks_before_the_last_need_the_variable_flag() {
        let record = |index: u64, len: u32| {
            let head = RecordHead {
                index,
                flags: 0,
                skip_mask: 0,
                original_len: len,
                payload_len: len,
            };
            let mut rec = Vec::new();
            head.encode(Some(&[7u8; DIGEST_LEN]), &mut rec);
            rec.extend(std::iter::repeat_n(b'x', len as usize));
            let crc = crc32fast::hash(&rec);
            rec.extend_from_slice(&crc.to_le_bytes());
            rec
        };
        let mut payload = Vec::new();
        let fixed = header();
        let short = record(0, 600);
        let e = read_item(&mut &short[..], &fixed, 0, &mut payload).expect_err("fixed size");
        assert!(e.to_string().contains("does not fit"), "{e}");
        let variable = Header {
            variable_chunks: true,
            ..header()
        };
        let back = Header::read_from(&mut &variable.encode()[..]).expect("valid");
        assert!(back.variable_chunks, "the flag round-trips");
        assert!(read_item(&mut &short[..], &variable, 0, &mut payload).is_ok());
        // Still never beyond the largest size.
        let long = record(0, 1025);
        assert!(read_item(&mut &long[..], &variable, 0, &mut payload).is_err());
        // Unknown flags stay refused.
        let mut b = variable.encode();
        b[14] |= 0x02;
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        let e = Header::read_from(&mut &b[..]).expect_err("unknown flag");
        assert!(e.to_string().contains("unknown header flags"), "{e}");
    }
}
