//! The age bodies that differ from the other standard formats (see
//! `crate::age` for the format, `standard.rs` for the shared engine): a
//! file's header opened and its pieces laid out before any output exists,
//! then restored in jobs of [`JOB_PIECES`] pieces on the workers, or, when
//! the plaintext is itself a `.zst` or `.gz`, opened in order and decoded
//! in one sequential stream.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};

use super::standard::Decode;
use crate::age::payload::{plain_len, PayloadKey, SEALED_PIECE};
use crate::age::reader::Opener;
use crate::age::{At, FileKey, Head, Sealing};
use crate::error::{Error, Result};
use crate::file_format::{Format, Sniffed, SNIFF_LEN};
use crate::layout::{Layout, Span};
use crate::pipeline::Pipeline;
use crate::report::Report;

/// The plaintext of an age stream read from `R`, its first bytes read to
/// tell its format and put back.
pub(crate) type Plaintext<R> = Sniffed<Opener<BufReader<R>>>;

/// Pieces per restore job: 1 MiB of plaintext, the default chunk.
const JOB_PIECES: u64 = 16;

/// A regular age file, its header opened (its keys never leave the crate).
pub struct AgeLayout {
    file_key: FileKey,
    nonce: [u8; 16],
    /// Bytes of the header and nonce: the first piece starts here.
    head: u64,
    /// Bytes of the file.
    len: u64,
    /// The standard format the plaintext is, which restore decodes too.
    inner: Option<Format>,
}

impl std::fmt::Debug for AgeLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgeLayout")
            .field("head", &self.head)
            .field("len", &self.len)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl PartialEq for AgeLayout {
    fn eq(&self, other: &AgeLayout) -> bool {
        (self.head, self.len, self.inner) == (other.head, other.len, other.inner)
    }
}

impl AgeLayout {
    fn key(&self) -> PayloadKey {
        PayloadKey::new(&self.file_key, &self.nonce)
    }
}

/// The standard formats restore takes off an age file's plaintext too,
/// as `age -d | zstd -d` would.
fn peeled(first: &[u8]) -> Option<Format> {
    Format::detect(first).filter(|f| matches!(f, Format::Zst | Format::Gz | Format::Bgzf))
}

impl Pipeline {
    /// A new age header for this pipeline's recipients or passphrase.
    pub(crate) fn age_sealing(&self) -> Result<Sealing> {
        self.inner.age.seal(self.age_passphrase()?)
    }

    /// The passphrase of this pipeline's secret: age has no raw-key stanza.
    fn age_passphrase(&self) -> Result<Option<&[u8]>> {
        match &self.inner.secret {
            None => Ok(None),
            Some(s) => s
                .passphrase_bytes()
                .map(Some)
                .ok_or_else(|| Error::usage("an age file takes a passphrase, not a raw key file")),
        }
    }

    fn age_head(&self, input: &mut impl io::BufRead) -> Result<Head> {
        let cfg = &self.inner.config;
        self.inner
            .age
            .read_head(input, self.age_passphrase()?, cfg.max_memory)
    }

    /// Opens the age header read from `input` (unless `key` says it was
    /// opened already) and tells the format of the plaintext, handing back
    /// a reader of the plaintext that still yields every byte.
    pub(crate) fn age_opener<R: Read>(
        &self,
        input: R,
        key: Option<PayloadKey>,
    ) -> Result<(Plaintext<R>, Option<Format>)> {
        let mut input = BufReader::with_capacity(SEALED_PIECE, input);
        let key = match key {
            Some(k) => k,
            None => self.age_head(&mut input)?.payload_key(),
        };
        let mut opener = Opener::new(input, key);
        // Not `file_format::sniff`: its reads report any failure as I/O,
        // and a piece that does not authenticate is an integrity failure.
        let mut first = vec![0u8; SNIFF_LEN];
        let mut n = 0;
        while n < first.len() {
            match opener.read(&mut first[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    return Err(Error::integrity(e.to_string()))
                }
                Err(e) => return Err(Error::io(e)),
            }
        }
        first.truncate(n);
        let inner = peeled(&first);
        Ok((io::Read::chain(io::Cursor::new(first), opener), inner))
    }

    /// Opens the header of the regular age file `file` of `len` bytes and
    /// checks that its payload has a length sealed pieces can have, before
    /// any output exists; the first piece tells what the plaintext is.
    pub(crate) fn age_layout(&self, file: &File, len: u64) -> Result<Layout> {
        let mut input = BufReader::new(At { file, offset: 0 });
        let head = self.age_head(&mut input)?;
        let sealed = len - head.len.min(len);
        if plain_len(sealed).is_none() {
            return Err(Error::integrity(format!(
                "the age payload's {sealed} bytes are not whole sealed pieces: the file is truncated"
            )));
        }
        let mut first = vec![0u8; (sealed as usize).min(SEALED_PIECE)];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut first, head.len).map_err(Error::io)?;
        let mut plain = Vec::new();
        head.payload_key()
            .open(0, sealed as usize <= SEALED_PIECE, &first, &mut plain)?;
        Ok(Layout::Age(Box::new(AgeLayout {
            inner: peeled(&plain[..plain.len().min(SNIFF_LEN)]),
            file_key: head.file_key,
            nonce: head.nonce,
            head: head.len,
            len,
        })))
    }

    /// Restores a laid-out age file: its pieces opened in parallel jobs,
    /// or, when the plaintext is a `.zst` or `.gz`, opened in order and
    /// decoded in one sequential stream.
    pub(crate) fn restore_age_file<W: Write + Send>(
        &self,
        age: &AgeLayout,
        file: &File,
        output: W,
    ) -> Result<(W, Report)> {
        if age.inner.is_some() {
            let payload = At {
                file,
                offset: age.head,
            };
            return self.restore_sequential_from(
                Format::Age,
                Some((age.key(), age.head)),
                payload,
                output,
            );
        }
        let job = JOB_PIECES * SEALED_PIECE as u64;
        // The header is a unit of no content (as a zstd skippable frame),
        // then jobs of whole pieces.
        let mut spans = vec![Span {
            len: age.head,
            content: 0,
            skippable: true,
        }];
        let mut at = age.head;
        while at < age.len {
            let len = job.min(age.len - at);
            let content = plain_len(len).expect("the layout checked the payload's length");
            spans.push(Span {
                len,
                content,
                skippable: false,
            });
            at += len;
        }
        let key = age.key();
        let last = spans.len() as u64 - 1;
        let decode: &Decode<'_> = &|index, unit, _, out| match index {
            0 => Ok(()),
            i => key.open((i - 1) * JOB_PIECES, i == last, unit, out),
        };
        self.restore_units(Format::Age, &spans, At { file, offset: 0 }, output, decode)
    }
}
